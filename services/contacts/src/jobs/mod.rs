//! Background jobs: bulk tag changes by filter and CSV imports. A job is a row in
//! `contacts.jobs`; one replica claims it (`FOR UPDATE SKIP LOCKED`, kept by a heartbeat),
//! works through it in batches that each commit their effects, their events (outbox) and the
//! job's progress together, so a job taken over after a crash continues where it stopped.

mod import;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use switchboard_messaging::Partitions;
use switchboard_postgres::CachedStatements as _;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use switchboard_domain::{JobId, WorkspaceId};
use switchboard_postgres::{GenericClient, Pool, Transaction};
use switchboard_proto::contacts::v1 as proto;
use switchboard_proto::events::v1::ContactChange;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::stored_id;
use crate::filter::Filter;
use crate::model::{Contact, timestamp};
use crate::outbox::{self, ChangeEvent};
use crate::{ContactsError, store};

/// Contacts or rows per batch (one transaction).
const BATCH: usize = 500;
/// Row errors kept on a job.
const MAX_ERRORS: usize = 1_000;
/// A running job whose heartbeat is older than this is taken over.
const STALE_AFTER_SECONDS: f64 = 30.0;

/// A job row.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) id: JobId,
    pub(crate) workspace_id: WorkspaceId,
    pub(crate) kind: String,
    pub(crate) status: String,
    pub(crate) dry_run: bool,
    pub(crate) params: Value,
    pub(crate) total: i64,
    pub(crate) processed: i64,
    pub(crate) created: i64,
    pub(crate) updated: i64,
    pub(crate) failed: i64,
    pub(crate) errors: Vec<proto::RowError>,
    pub(crate) error: String,
    pub(crate) position: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
}

const JOB_COLUMNS: &str = "id, workspace_id, kind, status, dry_run, params, total, processed, created, updated, \
     failed, errors, error, position, created_at, finished_at";

impl Job {
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, ContactsError> {
        let errors: Value = row.get(11);
        Ok(Self {
            id: stored_id("job id", row.get(0))?,
            workspace_id: stored_id("job workspace id", row.get(1))?,
            kind: row.get(2),
            status: row.get(3),
            dry_run: row.get(4),
            params: row.get(5),
            total: row.get(6),
            processed: row.get(7),
            created: row.get(8),
            updated: row.get(9),
            failed: row.get(10),
            errors: errors
                .as_array()
                .into_iter()
                .flatten()
                .map(|error| proto::RowError {
                    row: error.get("row").and_then(Value::as_i64).unwrap_or(0),
                    message: error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                })
                .collect(),
            error: row.get(12),
            position: row.get(13),
            created_at: row.get(14),
            finished_at: row.get(15),
        })
    }

    /// The proto form.
    pub(crate) fn to_proto(&self) -> proto::Job {
        let kind = match self.kind.as_str() {
            "bulk_tags" => proto::JobKind::BulkTags,
            "import" => proto::JobKind::Import,
            _ => proto::JobKind::Unspecified,
        };
        let status = match self.status.as_str() {
            "pending" => proto::JobStatus::Pending,
            "running" => proto::JobStatus::Running,
            "done" => proto::JobStatus::Done,
            "failed" => proto::JobStatus::Failed,
            _ => proto::JobStatus::Unspecified,
        };
        proto::Job {
            id: self.id.to_string(),
            kind: kind as i32,
            status: status as i32,
            dry_run: self.dry_run,
            total: self.total,
            processed: self.processed,
            created: self.created,
            updated: self.updated,
            failed: self.failed,
            errors: self.errors.clone(),
            error: self.error.clone(),
            created_at: Some(timestamp(self.created_at)),
            finished_at: self.finished_at.map(timestamp),
        }
    }
}

/// What a new job is.
pub(crate) struct NewJob<'a> {
    pub(crate) workspace_id: &'a WorkspaceId,
    pub(crate) kind: &'static str,
    pub(crate) request_id: &'a str,
    pub(crate) dry_run: bool,
    pub(crate) params: Value,
    pub(crate) input: Option<Vec<u8>>,
}

/// Stores a pending job, or returns the job already started with the same request id.
pub(crate) async fn start(client: &impl GenericClient, job: NewJob<'_>) -> Result<Job, ContactsError> {
    if job.request_id.chars().count() > 200 {
        return Err(ContactsError::invalid("request_id: at most 200 characters"));
    }
    let id = JobId::generate();
    let inserted = client
        .query_opt_cached(
            &format!(
                "INSERT INTO contacts.jobs (id, workspace_id, kind, request_id, dry_run, params, input)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (workspace_id, kind, request_id) WHERE request_id <> '' DO NOTHING
                 RETURNING {JOB_COLUMNS}"
            ),
            &[
                &id.as_str(),
                &job.workspace_id.as_str(),
                &job.kind,
                &job.request_id,
                &job.dry_run,
                &job.params,
                &job.input,
            ],
        )
        .await?;
    if let Some(row) = inserted {
        return Job::from_row(&row);
    }
    let row = client
        .query_one_cached(
            &format!(
                "SELECT {JOB_COLUMNS} FROM contacts.jobs
                 WHERE workspace_id = $1 AND kind = $2 AND request_id = $3"
            ),
            &[&job.workspace_id.as_str(), &job.kind, &job.request_id],
        )
        .await?;
    Job::from_row(&row)
}

/// One job of the workspace.
pub(crate) async fn get(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &JobId,
) -> Result<Job, ContactsError> {
    let row = client
        .query_opt_cached(
            &format!("SELECT {JOB_COLUMNS} FROM contacts.jobs WHERE id = $1 AND workspace_id = $2"),
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?
        .ok_or_else(|| ContactsError::NotFound(format!("job {id}")))?;
    Job::from_row(&row)
}

/// Runs pending jobs until shutdown.
pub(crate) struct JobRunner {
    pub(crate) pool: Pool,
    pub(crate) partitions: Partitions,
    /// Woken when a job is started.
    pub(crate) wake: Arc<Notify>,
    /// Wakes the outbox relay after a batch.
    pub(crate) outbox_wake: Arc<Notify>,
    pub(crate) interval: Duration,
    pub(crate) shutdown: CancellationToken,
}

impl JobRunner {
    /// Runs until shutdown.
    pub(crate) async fn run(self) -> Result<(), switchboard_server::BoxError> {
        loop {
            match self.claim().await {
                Ok(Some(job)) => {
                    let id = job.id.clone();
                    if let Err(error) = self.work(job).await {
                        tracing::warn!(job_id = %id, error = %error, "job interrupted; it is resumed later");
                    }
                    continue;
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(error = %error, "cannot look for jobs"),
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    async fn claim(&self) -> Result<Option<Job>, ContactsError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt_cached(
                &format!(
                    "UPDATE contacts.jobs SET status = 'running', heartbeat_at = now()
                     WHERE id = (
                         SELECT id FROM contacts.jobs
                         WHERE status = 'pending'
                            OR (status = 'running' AND heartbeat_at < now() - make_interval(secs => $1))
                         ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
                     RETURNING {JOB_COLUMNS}"
                ),
                &[&STALE_AFTER_SECONDS],
            )
            .await?;
        row.as_ref().map(Job::from_row).transpose()
    }

    async fn work(&self, job: Job) -> Result<(), ContactsError> {
        let result = match job.kind.as_str() {
            "bulk_tags" => self.bulk_tags(job.clone()).await,
            "import" => self.import(job.clone()).await,
            other => Err(ContactsError::Corrupt(format!("unknown job kind {other}"))),
        };
        match result {
            Err(ContactsError::Invalid { message, .. }) => {
                let client = self.pool.get().await?;
                client
                    .execute_cached(
                        "UPDATE contacts.jobs SET status = 'failed', error = $2, input = NULL, finished_at = now()
                         WHERE id = $1",
                        &[&job.id.as_str(), &message],
                    )
                    .await?;
                Ok(())
            }
            other => other,
        }
    }

    /// Saves a batch's progress in its transaction; `done` ends the job.
    async fn progress(tx: &Transaction<'_>, job: &Job, done: bool) -> Result<(), ContactsError> {
        let errors: Vec<Value> = job
            .errors
            .iter()
            .map(|error| json!({"row": error.row, "message": error.message}))
            .collect();
        tx.execute_cached(
            "UPDATE contacts.jobs SET total = $2, processed = $3, created = $4, updated = $5, failed = $6,
                 errors = $7, position = $8, heartbeat_at = now(),
                 status = CASE WHEN $9 THEN 'done' ELSE status END,
                 input = CASE WHEN $9 THEN NULL ELSE input END,
                 finished_at = CASE WHEN $9 THEN now() END
             WHERE id = $1",
            &[
                &job.id.as_str(),
                &job.total,
                &job.processed,
                &job.created,
                &job.updated,
                &job.failed,
                &Value::Array(errors),
                &job.position,
                &done,
            ],
        )
        .await?;
        Ok(())
    }

    async fn bulk_tags(&self, mut job: Job) -> Result<(), ContactsError> {
        let filter: Option<Filter> = match job.params.get("filter") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                serde_json::from_value(value.clone())
                    .map_err(|error| ContactsError::Corrupt(format!("job filter: {error}")))?,
            ),
        };
        let strings = |key: &str| -> Vec<String> {
            job.params
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|value| value.as_str().map(str::to_owned))
                .collect()
        };
        let (add, remove, search) = (
            strings("add"),
            strings("remove"),
            job.params["query"].as_str().unwrap_or("").to_owned(),
        );
        let now = Utc::now();
        let mut client = self.pool.get().await?;
        let types = store::field_types(&store::field_definitions(&client, &job.workspace_id).await?);
        let query = store::ContactQuery {
            workspace: &job.workspace_id,
            search: &search,
            filter: filter.as_ref(),
            types: &types,
            now,
        };
        if job.processed == 0 {
            job.total = store::count_contacts(&client, &query).await?;
        }
        loop {
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            let tx = client.transaction().await?;
            let batch = store::contacts_after_id(&tx, &query, &job.position, BATCH as i64).await?;
            for contact in &batch {
                let mut tags: BTreeSet<String> = contact.tags.iter().cloned().collect();
                tags.extend(add.iter().cloned());
                for tag in &remove {
                    tags.remove(tag);
                }
                let tags: Vec<String> = tags.into_iter().collect();
                if tags != contact.tags && tags.len() <= crate::editable::MAX_TAGS {
                    let updated = store::update_contact(&tx, &contact.id, "tags = $2", &[&tags]).await?;
                    let added: Vec<String> = tags
                        .iter()
                        .filter(|tag| !contact.tags.contains(tag))
                        .cloned()
                        .collect();
                    let removed: Vec<String> = contact
                        .tags
                        .iter()
                        .filter(|tag| !tags.contains(tag))
                        .cloned()
                        .collect();
                    self.announce(
                        &tx,
                        &job.workspace_id,
                        ContactChange::TagsChanged,
                        &updated,
                        "bulk",
                        added,
                        removed,
                    )
                    .await?;
                    job.created += 1;
                }
            }
            job.processed += batch.len() as i64;
            if let Some(last) = batch.last() {
                job.position = last.id.to_string();
            }
            let done = batch.len() < BATCH;
            Self::progress(&tx, &job, done).await?;
            tx.commit().await?;
            self.outbox_wake.notify_one();
            if done {
                tracing::info!(job_id = %job.id, changed = job.created, "bulk tag job done");
                return Ok(());
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn announce(
        &self,
        tx: &Transaction<'_>,
        workspace: &WorkspaceId,
        change: ContactChange,
        contact: &Contact,
        source: &str,
        tags_added: Vec<String>,
        tags_removed: Vec<String>,
    ) -> Result<(), ContactsError> {
        outbox::record(
            tx,
            &self.partitions,
            ChangeEvent {
                workspace_id: workspace,
                change,
                contact_id: &contact.id,
                contact: Some(contact.to_proto(&HashMap::new(), Vec::new())),
                source,
                tags_added,
                tags_removed,
                other_contact_id: None,
            },
        )
        .await
    }
}
