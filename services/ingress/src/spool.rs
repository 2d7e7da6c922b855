//! The durable spool: verified events the broker could not confirm wait in PostgreSQL and a
//! relay publishes them, oldest first, once the broker is back.
//!
//! Order: while anything is spooled, this replica spools new events too instead of letting
//! them overtake the waiting ones; the relay runs under an advisory lock, so one replica drains
//! at a time. Other replicas notice a non-empty spool at their next relay tick.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use switchboard_messaging::{Outgoing, Publisher};
use switchboard_postgres::{Pool, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::metrics::IngressMetrics;

/// Advisory lock key of the relay (one draining replica at a time keeps the order).
const RELAY_LOCK: i64 = 0x5357_4244_5350_4f4c; // "SWBDSPOL"

/// One event as it waits in the spool: everything needed to publish it later.
#[derive(Debug, Clone)]
pub struct SpooledEvent {
    /// The envelope's event id (unique; a second insert of it is a no-op).
    pub event_id: String,
    /// Channel name (for metrics).
    pub channel: &'static str,
    /// Routing key including the partition suffix.
    pub routing_key: String,
    /// The event type (AMQP `type`).
    pub event_type: String,
    /// The encoded envelope.
    pub payload: Vec<u8>,
    /// W3C `traceparent` of the request that produced it.
    pub traceparent: String,
    /// W3C `tracestate`.
    pub tracestate: String,
}

impl SpooledEvent {
    /// The spool row of an event the broker did not confirm, carrying the current span's
    /// trace context for the later publish.
    pub fn from_outgoing(channel: &'static str, outgoing: Outgoing) -> Self {
        let mut carrier: HashMap<String, String> = HashMap::new();
        switchboard_telemetry::propagation::inject_span(&tracing::Span::current(), &mut carrier);
        Self {
            event_id: outgoing.message_id,
            channel,
            routing_key: outgoing.routing_key,
            event_type: outgoing.message_type,
            payload: outgoing.payload,
            traceparent: carrier.remove("traceparent").unwrap_or_default(),
            tracestate: carrier.remove("tracestate").unwrap_or_default(),
        }
    }
}

/// The spool table and whether this replica knows it holds events.
pub struct Spool {
    pool: Pool,
    pending: AtomicBool,
}

impl Spool {
    /// A spool in the `ingress` schema of `pool`.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            pending: AtomicBool::new(false),
        }
    }

    /// True while events are known to wait: new events must queue behind them.
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Stores `events` in one transaction (all or none), in order.
    pub async fn insert(&self, events: &[SpooledEvent]) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let statement = transaction
            .prepare_cached(
                "INSERT INTO ingress.spool
                     (event_id, channel, routing_key, event_type, payload, traceparent, tracestate)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .await?;
        for event in events {
            transaction
                .execute(
                    &statement,
                    &[
                        &event.event_id,
                        &event.channel,
                        &event.routing_key,
                        &event.event_type,
                        &event.payload,
                        &event.traceparent,
                        &event.tracestate,
                    ],
                )
                .await?;
        }
        transaction.commit().await?;
        self.pending.store(true, Ordering::Release);
        Ok(())
    }

    /// Publishes up to `batch` spooled events in order, deleting each batch only after all of
    /// its publishes are confirmed; stops at the first failure. Returns how many were relayed
    /// and how many are still waiting.
    pub async fn relay_once(
        &self,
        publisher: &Publisher,
        topology: &crate::InboundTopology,
        batch: u32,
        metrics: &IngressMetrics,
    ) -> Result<(u64, i64), StoreError> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let locked: bool = transaction
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&RELAY_LOCK])
            .await?
            .get(0);
        if !locked {
            // Another replica drains; learn whether anything waits.
            let waiting = count(&transaction).await?;
            self.pending.store(waiting > 0, Ordering::Release);
            return Ok((0, waiting));
        }
        let fetched = publisher.bus().is_connected();
        let rows = if fetched {
            transaction
                .query(
                    "SELECT seq, event_id, channel, routing_key, event_type, payload, traceparent, tracestate
                     FROM ingress.spool ORDER BY seq LIMIT $1",
                    &[&i64::from(batch)],
                )
                .await?
        } else {
            Vec::new()
        };
        let mut last_relayed: Option<i64> = None;
        let mut relayed = 0u64;
        for row in &rows {
            let seq: i64 = row.get(0);
            let event_id: String = row.get(1);
            let channel: String = row.get(2);
            let traceparent: String = row.get(6);
            let tracestate: String = row.get(7);
            let outgoing = Outgoing {
                routing_key: row.get(3),
                payload: row.get(5),
                message_id: event_id.clone(),
                message_type: row.get(4),
                headers: Default::default(),
            };
            let span = tracing::info_span!("spool relay", otel.kind = "internal", event_id = %event_id);
            let carrier: HashMap<String, String> = [
                ("traceparent".to_owned(), traceparent),
                ("tracestate".to_owned(), tracestate),
            ]
            .into_iter()
            .collect();
            switchboard_telemetry::propagation::set_remote_parent(&span, &carrier);
            match publisher.publish(outgoing).instrument(span).await {
                Ok(()) => {
                    last_relayed = Some(seq);
                    relayed += 1;
                    metrics.events(crate::webhook::channel_label(&channel), "relayed", 1);
                }
                Err(error) => {
                    tracing::warn!(error = %error, "spool relay paused: the broker did not confirm");
                    topology.note_publish_error(&error);
                    break;
                }
            }
        }
        if let Some(seq) = last_relayed {
            transaction
                .execute("DELETE FROM ingress.spool WHERE seq <= $1", &[&seq])
                .await?;
        }
        // A short batch that went out whole was the whole spool: no need to count it again.
        let drained = fetched && rows.len() < batch as usize && relayed == rows.len() as u64;
        let waiting = if drained { 0 } else { count(&transaction).await? };
        transaction.commit().await?;
        self.pending.store(waiting > 0, Ordering::Release);
        Ok((relayed, waiting))
    }
}

async fn count(transaction: &switchboard_postgres::Transaction<'_>) -> Result<i64, StoreError> {
    Ok(transaction
        .query_one("SELECT count(*) FROM ingress.spool", &[])
        .await?
        .get(0))
}

/// What the relay needs.
pub struct Relay {
    /// The spool to drain.
    pub spool: Arc<Spool>,
    /// Declared before relaying, when the broker was away at start.
    pub topology: Arc<crate::InboundTopology>,
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
