//! The send worker: consumes send jobs from the account partitions (`delivery.send.pNN`),
//! waits for the account's lane, claims the attempt, calls the provider and records what it
//! said: `sent` with the provider id (applying receipts that arrived first), a retry with
//! backoff and jitter never sooner than the provider's retry-after, `failed` with the
//! provider's code, or an unknown outcome when the call timed out after the request went out.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use switchboard_domain::{ChannelAccountId, MessageId};
use switchboard_messaging::{Handler, HandlerError, Incoming, Partitions};
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::Pool;
use switchboard_proto::common::v1::ProviderError;
use switchboard_proto::events::v1::SendRequested;
use switchboard_proto::events::v1::envelope::Payload;
use tokio::sync::Notify;
use tracing::Instrument as _;

use crate::lanes::{Deferred, Lanes};
use crate::lookup::Lookups;
use crate::metrics::{AttemptLabel, DeliveryMetrics};
use crate::outcome::{Outcome, Verdict};
use crate::retry::{self, NextAttempt};
use crate::store::{self, MESSAGE_COLUMNS, MessageRow, StatusUpdate};
use crate::transport::Transport;
use crate::{DeliveryConfig, DeliveryError, receipts};

/// The condition under which a job's attempt (`$2` attempts made before it) is still the
/// message's next: queued, not waiting for a retry or a deferral, not deleted.
const ATTEMPT_IS_NEXT: &str =
    "id = $1 AND status = 'queued' AND attempts = $2 AND next_attempt_at IS NULL AND deleted_at IS NULL";

/// Claims a job's attempt and reads the message; built once.
static CLAIM_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE delivery.messages SET attempts = attempts + 1, status = 'sending', updated_at = now()
         WHERE {ATTEMPT_IS_NEXT} RETURNING {MESSAGE_COLUMNS}"
    )
});

/// Reads the message of a job queued by an earlier version, while its attempt is the next.
static STILL_QUEUED_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {MESSAGE_COLUMNS} FROM delivery.messages WHERE {ATTEMPT_IS_NEXT}"));

/// Leaves a broadcast's attempt waiting in the database for `$3` seconds.
static DEFER_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE delivery.messages SET next_attempt_at = now() + make_interval(secs => $3), updated_at = now()
         WHERE {ATTEMPT_IS_NEXT}"
    )
});

/// Sends jobs of the partitions this process consumes.
pub struct Sender {
    /// The `delivery` schema.
    pub pool: Pool,
    /// Accounts with secrets.
    pub lookups: Lookups,
    /// Rate limits.
    pub lanes: Arc<Lanes>,
    /// Provider APIs, SMTP and web chat.
    pub transport: Arc<Transport>,
    /// The `[delivery]` section.
    pub config: Arc<DeliveryConfig>,
    /// Bus partitions.
    pub partitions: Partitions,
    /// Wakes the outbox relay.
    pub outbox_wake: Arc<Notify>,
    /// Counters.
    pub metrics: Arc<DeliveryMetrics>,
}

impl Handler for Sender {
    /// Live replies to one recipient are handed over one at a time in queue order (the job's
    /// order key), so a customer sees them in the order they were sent; the lane's
    /// `Turn` then keeps any two calls to one recipient, broadcasts too, apart.
    fn order_key(&self, incoming: &Incoming) -> Option<String> {
        match incoming.decode_envelope().ok()?.payload {
            Some(Payload::SendRequested(job)) if !job.order_key.is_empty() => Some(job.order_key),
            _ => None,
        }
    }

    async fn handle(&self, incoming: &Incoming) -> Result<(), HandlerError> {
        let envelope = incoming.decode_envelope().map_err(HandlerError::permanent)?;
        let job_id = envelope.event_id.clone();
        let Some(Payload::SendRequested(job)) = envelope.payload else {
            return Err(HandlerError::permanent("not a send job"));
        };
        let message_id = MessageId::parse(&job.message_id).map_err(HandlerError::permanent)?;
        let account_id = ChannelAccountId::parse(&job.channel_account_id).map_err(HandlerError::permanent)?;
        self.send(&job_id, &message_id, &account_id, &job)
            .await
            .map_err(|error| HandlerError::classified(error.failure(), error))
    }
}

impl Sender {
    async fn send(
        &self,
        job_id: &str,
        message_id: &MessageId,
        account_id: &ChannelAccountId,
        job: &SendRequested,
    ) -> Result<(), DeliveryError> {
        let previous = i32::try_from(job.attempt).unwrap_or(i32::MAX) - 1;
        // The job names its recipient, so the lane is passed before the database is touched;
        // a job queued by an earlier version does not, and the message is read first.
        let (recipient, live) = if job.recipient.is_empty() {
            match self.still_queued(message_id, previous).await? {
                Some(row) => (row.recipient, row.priority == 0),
                None => {
                    tracing::debug!(job_id, %message_id, attempt = job.attempt, "stale send job skipped");
                    return Ok(());
                }
            }
        } else {
            (job.recipient.clone(), job.live)
        };
        let account = self.lookups.account(account_id).await?;
        let admission = match self.lanes.admit(&account, &recipient, live) {
            Ok(admission) => admission,
            Err(Deferred(wait)) => {
                return self
                    .defer(message_id, account.channel.as_str(), previous, wait)
                    .await;
            }
        };
        let cleared = admission.clear().await;
        // Claiming the attempt reads the message too: a job whose attempt is no longer the
        // next (sent, retried, deleted, claimed by a copy of the job) claims nothing.
        let client = self.pool.get().await?;
        let claimed = client
            .query_opt_cached(&CLAIM_SQL, &[&message_id.as_str(), &previous])
            .await?;
        drop(client);
        let Some(row) = claimed else {
            tracing::debug!(job_id, %message_id, attempt = job.attempt, "stale send job skipped: its attempt is not the next");
            return Ok(());
        };
        let row = MessageRow::from_row(&row)?;
        let number = previous + 1;
        let span = tracing::info_span!(
            "provider.send",
            channel = %row.channel,
            account = %row.channel_account_id,
            message_id = %row.id,
            attempt = number,
            provider_message_id = tracing::field::Empty,
        );
        let slot = cleared.call_slot().await;
        let started = Utc::now();
        let call = self.transport.send(&account, &row).instrument(span.clone()).await;
        drop(slot);
        let verdict = Verdict::of(call);
        if let Outcome::Sent { provider_message_id } = &verdict.outcome {
            span.record("provider_message_id", provider_message_id.as_str());
        }
        if let Some(wait) = verdict.account_pause() {
            cleared.pause_account(retry::bounded_wait(&self.config, wait));
        }
        self.metrics.attempt(&row.channel, verdict.label);
        // The attempt is claimed: its result must be recorded, so a passing database failure
        // is retried here rather than by redelivery (which would skip the claimed attempt).
        let mut backoff = Duration::from_millis(100);
        loop {
            match self
                .record(&row, number, started, &verdict)
                .instrument(span.clone())
                .await
            {
                Ok(()) => return Ok(()),
                Err(error) if error.is_retryable() && backoff < Duration::from_secs(30) => {
                    tracing::warn!(error = %error, message_id = %row.id, "recording a send failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The message of a job that names no recipient, if the job's attempt is still its next.
    async fn still_queued(
        &self,
        message_id: &MessageId,
        previous: i32,
    ) -> Result<Option<MessageRow>, DeliveryError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt_cached(&STILL_QUEUED_SQL, &[&message_id.as_str(), &previous])
            .await?;
        row.as_ref().map(MessageRow::from_row).transpose()
    }

    /// Leaves a broadcast in the database for `wait`: the scheduler queues it again when due,
    /// with the same attempt number, and this job is acked.
    async fn defer(
        &self,
        message_id: &MessageId,
        channel: &str,
        previous: i32,
        wait: Duration,
    ) -> Result<(), DeliveryError> {
        let wait = wait.as_secs_f64();
        let client = self.pool.get().await?;
        client
            .execute_cached(&DEFER_SQL, &[&message_id.as_str(), &previous, &wait])
            .await?;
        self.metrics.attempt(channel, AttemptLabel::Deferred);
        Ok(())
    }

    /// Records attempt `number`'s outcome and moves the message on.
    async fn record(
        &self,
        row: &MessageRow,
        number: i32,
        started: DateTime<Utc>,
        verdict: &Verdict,
    ) -> Result<(), DeliveryError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let outcome = &verdict.outcome;
        let empty = ProviderError::default();
        let shown = outcome.error().unwrap_or(&empty);
        let retry_after = outcome.retry_after();
        let retry_after_ms =
            retry_after.map_or(0, |wait| i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
        tx.execute_cached(
            "INSERT INTO delivery.attempts (message_id, number, started_at, outcome, provider_status,
                     error_code, error_title, error_message, error_details, retry_after_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            &[
                &row.id.as_str(),
                &number,
                &started,
                &outcome.as_str(),
                &i32::from(verdict.provider_status),
                &shown.code,
                &shown.title,
                &shown.message,
                &shown.details,
                &retry_after_ms,
            ],
        )
        .await?;
        match outcome {
            Outcome::Sent { provider_message_id } => {
                receipts::lock_provider_id(&tx, &row.channel_account_id, provider_message_id).await?;
                let update = StatusUpdate {
                    status: "sent",
                    source: "send",
                    provider_message_id: Some(provider_message_id),
                    ..StatusUpdate::default()
                };
                store::advance(&tx, &self.partitions, &row.id, &update).await?;
                receipts::apply_parked(
                    &tx,
                    &self.partitions,
                    &row.channel_account_id,
                    provider_message_id,
                    &row.id,
                )
                .await?;
            }
            Outcome::Retry { error, retry_after } => {
                let jitter: f64 = rand::random_range(0.5..1.0);
                let next = retry::next_attempt(
                    &self.config,
                    number,
                    *retry_after,
                    jitter,
                    Utc::now(),
                    row.created_at,
                );
                if let NextAttempt::At(next) = next {
                    tx.execute_cached(
                        "UPDATE delivery.messages SET status = 'queued', next_attempt_at = $2, error_code = $3,
                             error_title = $4, error_message = $5, error_details = $6, updated_at = now()
                         WHERE id = $1 AND status = 'sending'",
                        &[&row.id.as_str(), &next, &error.code, &error.title, &error.message, &error.details],
                    )
                    .await?;
                } else {
                    let update = StatusUpdate {
                        status: "failed",
                        source: "retry",
                        provider_status: "retries_exhausted",
                        error: Some(error),
                        provider_message_id: None,
                    };
                    store::advance(&tx, &self.partitions, &row.id, &update).await?;
                }
            }
            Outcome::Fail { error } => {
                let update = StatusUpdate {
                    status: "failed",
                    source: "send",
                    provider_status: "",
                    error: Some(error),
                    provider_message_id: None,
                };
                store::advance(&tx, &self.partitions, &row.id, &update).await?;
            }
            Outcome::Unknown { .. } => {
                tx.execute_cached(
                    "UPDATE delivery.messages SET outcome_unknown = true, updated_at = now() WHERE id = $1 AND status = 'sending'",
                    &[&row.id.as_str()],
                )
                .await?;
            }
        }
        tx.commit().await?;
        self.outbox_wake.notify_one();
        Ok(())
    }
}
