//! The periodic work of delivery: re-queues messages whose retry is due (through the outbox,
//! so a crash re-queues nothing twice and loses nothing), expires parked receipts, and marks
//! sends that were claimed but never recorded (a process died mid-call) as unknown.

use std::sync::Arc;
use std::time::Duration;
use switchboard_messaging::Partitions;
use switchboard_postgres::CachedStatements as _;

use switchboard_postgres::Pool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::DeliveryMetrics;
use crate::store::{self, MESSAGE_COLUMNS, MessageRow};
use crate::{DeliveryConfig, DeliveryError};

/// Most retries re-queued per round.
const BATCH: i64 = 500;

/// Runs the periodic work until shutdown.
pub struct Scheduler {
    /// The `delivery` schema.
    pub pool: Pool,
    /// The `[delivery]` section.
    pub config: Arc<DeliveryConfig>,
    /// Bus partitions.
    pub partitions: Partitions,
    /// Wakes the outbox relay.
    pub outbox_wake: Arc<Notify>,
    /// Counters.
    pub metrics: Arc<DeliveryMetrics>,
}

impl Scheduler {
    /// Loops every `scheduler_interval` until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), switchboard_server::BoxError> {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.config.scheduler_interval) => {}
            }
            if let Err(error) = self.round().await {
                tracing::warn!(error = %error, "delivery scheduler round failed");
            }
        }
    }

    /// One round: due retries, expired receipts, stuck sends.
    pub async fn round(&self) -> Result<(), DeliveryError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let due = tx
            .query_cached(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM delivery.messages
                     WHERE next_attempt_at <= now() ORDER BY next_attempt_at LIMIT {BATCH} FOR UPDATE SKIP LOCKED"
                ),
                &[],
            )
            .await?;
        for row in &due {
            let row = MessageRow::from_row(row)?;
            tx.execute_cached(
                "UPDATE delivery.messages SET next_attempt_at = NULL, updated_at = now() WHERE id = $1",
                &[&row.id.as_str()],
            )
            .await?;
            store::queue_send(&tx, &self.partitions, &row, row.attempts + 1).await?;
        }
        let after = self.config.requeue_after.as_secs_f64();
        let orphans = tx
            .query_cached(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM delivery.messages
                     WHERE status = 'queued' AND next_attempt_at IS NULL AND deleted_at IS NULL
                       AND updated_at < now() - make_interval(secs => $1)
                     ORDER BY updated_at LIMIT {BATCH} FOR UPDATE SKIP LOCKED"
                ),
                &[&after],
            )
            .await?;
        for row in &orphans {
            let row = MessageRow::from_row(row)?;
            tx.execute_cached(
                "UPDATE delivery.messages SET updated_at = now() WHERE id = $1",
                &[&row.id.as_str()],
            )
            .await?;
            store::queue_send(&tx, &self.partitions, &row, row.attempts + 1).await?;
        }
        if !orphans.is_empty() {
            tracing::warn!(
                count = orphans.len(),
                "queued messages without an attempt were queued again"
            );
        }
        tx.commit().await?;
        if !due.is_empty() || !orphans.is_empty() {
            self.outbox_wake.notify_one();
        }
        let ttl = self.config.parked_receipt_ttl.as_secs_f64();
        let expired = client
            .execute_cached(
                "DELETE FROM delivery.parked_receipts WHERE parked_at < now() - make_interval(secs => $1)",
                &[&ttl],
            )
            .await?;
        if expired > 0 {
            tracing::info!(expired, "parked receipts for unknown provider ids expired");
            self.metrics.receipts_expired(expired);
        }
        let stuck_after = (self.config.send_timeout * 2 + Duration::from_secs(30)).as_secs_f64();
        client
            .execute_cached(
                "UPDATE delivery.messages SET outcome_unknown = true
                 WHERE status = 'sending' AND NOT outcome_unknown AND updated_at < now() - make_interval(secs => $1)",
                &[&stuck_after],
            )
            .await?;
        Ok(())
    }
}
