//! The optional month-end reset: once a new calendar month (UTC) begins, a workspace that
//! set `quota_reset_tag` loses the contacts carrying that tag (erased, with tombstones), so
//! trial or one-off contacts do not pile up. Other contacts are never touched.

use chrono::{DateTime, NaiveDate, Utc};
use switchboard_domain::{ContactId, WorkspaceId};
use switchboard_messaging::Partitions;
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::Pool;
use switchboard_proto::events::v1::ContactChange;

use crate::error::stored_id;
use crate::outbox::{self, ChangeEvent};
use crate::resolve::month_of;
use crate::{ContactsError, merge};

/// Contacts erased per transaction.
const BATCH: i64 = 200;

/// Runs the reset of every workspace due at `now`; returns how many contacts were erased.
pub async fn month_end_reset(
    pool: &Pool,
    partitions: &Partitions,
    now: DateTime<Utc>,
) -> Result<u64, ContactsError> {
    let month = month_of(now);
    let mut erased = 0;
    let mut client = pool.get().await?;
    loop {
        let tx = client.transaction().await?;
        let due = tx
            .query_opt_cached(
                "SELECT workspace_id, quota_reset_tag, quota_reset_month FROM contacts.settings
                 WHERE quota_reset_tag <> '' AND (quota_reset_month IS NULL OR quota_reset_month < $1)
                 LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[&month],
            )
            .await?;
        let Some(due) = due else {
            return Ok(erased);
        };
        let workspace: WorkspaceId = stored_id("settings workspace id", due.get(0))?;
        let tag: String = due.get(1);
        let last: Option<NaiveDate> = due.get(2);
        // A workspace that just turned the reset on starts counting from this month.
        if last.is_some() {
            loop {
                let ids: Vec<ContactId> = tx
                    .query_cached(
                        "SELECT id FROM contacts.contacts
                         WHERE workspace_id = $1 AND merged_into IS NULL AND tags @> ARRAY[$2::text]
                         ORDER BY id LIMIT $3",
                        &[&workspace.as_str(), &tag, &BATCH],
                    )
                    .await?
                    .iter()
                    .map(|row| stored_id("contact id", row.get(0)))
                    .collect::<Result<_, _>>()?;
                for id in &ids {
                    for gone in merge::erase(&tx, &workspace, id).await? {
                        outbox::record(
                            &tx,
                            partitions,
                            ChangeEvent {
                                workspace_id: &workspace,
                                change: ContactChange::Erased,
                                contact_id: &gone,
                                contact: None,
                                source: "month_end_reset",
                                tags_added: Vec::new(),
                                tags_removed: Vec::new(),
                                other_contact_id: None,
                            },
                        )
                        .await?;
                        erased += 1;
                    }
                }
                if (ids.len() as i64) < BATCH {
                    break;
                }
            }
        }
        tx.execute_cached(
            "UPDATE contacts.settings SET quota_reset_month = $2 WHERE workspace_id = $1",
            &[&workspace.as_str(), &month],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(workspace_id = %workspace, month = %month, erased, "month-end reset done");
    }
}
