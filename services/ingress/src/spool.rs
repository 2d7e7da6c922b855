//! The durable spool: verified events the broker could not confirm wait in PostgreSQL and a
//! relay publishes them, oldest first, once the broker is back.
//!
//! The spool is an instance of the shared transactional outbox (`switchboard_outbox`, table
//! `ingress.spool`): the same columns, written by [`Outbox::record_outgoing`] and drained by
//! [`Outbox::relay_batch`], which deletes exactly the rows the broker confirmed. (A relay that
//! deleted `seq <= last published` lost events whose transaction took a lower `seq` but
//! committed after the relay read: webhooks already answered 2xx.)
//!
//! Order: while anything is spooled, this replica spools new events too instead of letting
//! them overtake the waiting ones; the relay runs under an advisory lock, so one replica drains
//! at a time. Other replicas notice a non-empty spool at their next relay tick.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use switchboard_messaging::{Outgoing, Publisher};
use switchboard_outbox::Outbox;
use switchboard_postgres::{Pool, StoreError};
use tokio_util::sync::CancellationToken;

use crate::metrics::IngressMetrics;

/// The spool table, relayed under its own advisory lock key ("SWBDSPOL", the key earlier
/// versions used, so old and new replicas never drain at once during an upgrade).
const SPOOL: Outbox = Outbox::with_table("ingress", "spool", 0x5357_4244_5350_4f4c);

/// The spool table and whether this replica knows it holds events.
pub struct Spool {
    pool: Pool,
    pending: AtomicBool,
    /// Spool transactions committed by this replica: the relay clears `pending` only when
    /// none committed while it drained.
    inserts: AtomicU64,
}

impl Spool {
    /// A spool in the `ingress` schema of `pool`.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            pending: AtomicBool::new(false),
            inserts: AtomicU64::new(0),
        }
    }

    /// True while events are known to wait: new events must queue behind them.
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Stores `events` in one transaction (all or none), in order, with the current span's
    /// trace context for their later publish. An event id already spooled is not stored twice.
    pub async fn insert(&self, events: &[Outgoing]) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        for event in events {
            SPOOL.record_outgoing(&transaction, event, true).await?;
        }
        transaction.commit().await?;
        self.inserts.fetch_add(1, Ordering::AcqRel);
        self.pending.store(true, Ordering::Release);
        Ok(())
    }

    /// Publishes up to `batch` spooled events in order, deleting exactly those the broker
    /// confirmed; stops at the first failure. Returns how many were relayed and how many are
    /// still waiting.
    pub async fn relay_once(
        &self,
        publisher: &Publisher,
        topology: &switchboard_inbound::InboundTopology,
        batch: u32,
        metrics: &IngressMetrics,
    ) -> Result<(u64, i64), StoreError> {
        let inserts_before = self.inserts.load(Ordering::Acquire);
        let batch = i64::from(batch);
        // With the broker away, only count: reading a batch would hold the relay lock while
        // each publish waits out its timeout.
        let relayed = if publisher.bus().is_connected() {
            SPOOL.relay_batch(&self.pool, publisher, topology, batch).await?
        } else {
            switchboard_outbox::Relayed::default()
        };
        for event_type in &relayed.published {
            metrics.events(channel_of(event_type), "relayed", 1);
        }
        if let Some(error) = &relayed.failure {
            tracing::warn!(error = %error, "spool relay paused: the broker did not confirm");
        }
        // A short batch that went out whole was the whole spool: no need to count it again.
        let drained = relayed.locked
            && relayed.failure.is_none()
            && relayed.published.len() == relayed.selected
            && i64::try_from(relayed.selected).is_ok_and(|selected| selected < batch);
        let waiting = if drained {
            0
        } else {
            SPOOL.waiting(&self.pool).await?
        };
        // An insert that committed meanwhile may not have been counted: keep it pending.
        if waiting > 0 || self.inserts.load(Ordering::Acquire) != inserts_before {
            self.pending.store(true, Ordering::Release);
        } else {
            self.pending.store(false, Ordering::Release);
        }
        Ok((relayed.published.len() as u64, waiting))
    }
}

/// The channel label of an inbound event type (`inbound.<channel>.<kind>`).
fn channel_of(event_type: &str) -> &'static str {
    crate::metrics::channel_label(event_type.split('.').nth(1).unwrap_or_default())
}

/// What the relay needs.
pub struct Relay {
    /// The spool to drain.
    pub spool: Arc<Spool>,
    /// Declared before relaying, when the broker was away at start.
    pub topology: Arc<switchboard_inbound::InboundTopology>,
    /// Publishes with confirms.
    pub publisher: Publisher,
    /// Pause between looks at the spool.
    pub interval: Duration,
    /// Most events per transaction.
    pub batch: u32,
    /// Spool metrics.
    pub metrics: Arc<IngressMetrics>,
    /// Stops the relay.
    pub shutdown: CancellationToken,
}

impl Relay {
    /// Drains the spool every `interval` (and straight away again while a full batch went
    /// out) until `shutdown`.
    pub async fn run(self) -> Result<(), switchboard_server::BoxError> {
        loop {
            let mut pause = self.interval;
            // Declare when the queues are not known to exist (broker away at start, or a
            // publish came back unroutable); declaring is idempotent.
            if !self.topology.is_declared()
                && self.publisher.bus().is_connected()
                && let Err(error) = self.topology.declare().await
            {
                tracing::warn!(error = %error, "cannot declare the inbound queues yet");
            }
            match self
                .spool
                .relay_once(&self.publisher, &self.topology, self.batch, &self.metrics)
                .await
            {
                Ok((relayed, waiting)) => {
                    self.metrics.spool_depth.set(waiting);
                    if relayed > 0 {
                        tracing::info!(relayed, waiting, "relayed spooled events to the bus");
                        if waiting > 0 {
                            pause = Duration::ZERO;
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "spool relay cannot reach postgres");
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_comes_from_the_event_type() {
        assert_eq!(channel_of("inbound.whatsapp.message"), "whatsapp");
        assert_eq!(channel_of("inbound.sms.status"), "sms");
        assert_eq!(channel_of("inbound"), "other");
        assert_eq!(channel_of("inbound.nope.message"), "other");
    }
}
