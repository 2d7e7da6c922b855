//! The transactional outbox: a service writes each event in the transaction that makes the
//! change; the relay publishes pending events in `seq` order with confirms (one replica at a
//! time, under an advisory lock) and deletes only what the broker confirmed. A change is never
//! committed without its event, and no event leaves before its change commits.
//!
//! Each service keeps its own `<schema>.outbox` table with these columns:
//!
//! ```sql
//! CREATE TABLE outbox (
//!     seq          bigserial PRIMARY KEY,
//!     event_id     text NOT NULL,
//!     routing_key  text NOT NULL,
//!     event_type   text NOT NULL,
//!     payload      bytea NOT NULL,
//!     traceparent  text NOT NULL DEFAULT '',
//!     tracestate   text NOT NULL DEFAULT '',
//!     created_at   timestamptz NOT NULL DEFAULT now(),
//!     mandatory    boolean NOT NULL DEFAULT true
//! );
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use switchboard_messaging::{Outgoing, ProducerQueues, Publisher};
use switchboard_postgres::{Pool, StoreError, Transaction};
use switchboard_proto::events::v1::Envelope;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Most events published per relay transaction.
const BATCH: i64 = 500;

/// One service's outbox table.
#[derive(Debug, Clone, Copy)]
pub struct Outbox {
    /// The schema holding the `outbox` table.
    schema: &'static str,
    /// Advisory lock key that lets one replica relay at a time.
    lock_key: i64,
}

impl Outbox {
    /// The outbox in `schema`, relayed under advisory lock `lock_key` (unique per service).
    pub const fn new(schema: &'static str, lock_key: i64) -> Self {
        Self { schema, lock_key }
    }

    /// Writes `envelope` in the changing transaction `tx`, with the current trace context so
    /// the published event continues the change's trace. It is published `mandatory`: a queue
    /// must take it (the relay declares its target queues).
    pub async fn record(
        &self,
        tx: &Transaction<'_>,
        envelope: &Envelope,
        partitions: u16,
    ) -> Result<(), StoreError> {
        self.write(tx, envelope, partitions, true).await
    }

    /// Like [`Outbox::record`], for a notification whose subscribers are optional: with no
    /// queue bound for it, the broker drops it (still confirmed, in order with the rest).
    pub async fn record_optional(
        &self,
        tx: &Transaction<'_>,
        envelope: &Envelope,
        partitions: u16,
    ) -> Result<(), StoreError> {
        self.write(tx, envelope, partitions, false).await
    }

    async fn write(
        &self,
        tx: &Transaction<'_>,
        envelope: &Envelope,
        partitions: u16,
        mandatory: bool,
    ) -> Result<(), StoreError> {
        let outgoing = Outgoing::envelope(envelope, partitions);
        let mut carrier: HashMap<String, String> = HashMap::new();
        switchboard_telemetry::propagation::inject_span(&tracing::Span::current(), &mut carrier);
        let statement = tx
            .prepare_cached(&format!(
                "INSERT INTO {}.outbox (event_id, routing_key, event_type, payload, traceparent, tracestate, mandatory)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                self.schema
            ))
            .await?;
        tx.execute(
            &statement,
            &[
                &outgoing.message_id,
                &outgoing.routing_key,
                &outgoing.message_type,
                &envelope.encode_to_vec(),
                &carrier.remove("traceparent").unwrap_or_default(),
                &carrier.remove("tracestate").unwrap_or_default(),
                &mandatory,
            ],
        )
        .await?;
        Ok(())
    }
}

/// Publishes an outbox: woken after each change, and every `interval` in case another
/// replica's wake-up was missed or the broker was away.
pub struct OutboxRelay {
    /// The table relayed.
    pub outbox: Outbox,
    /// Where it lives.
    pub pool: Pool,
    /// Confirming publisher.
    pub publisher: Publisher,
    /// The queues the events go to, declared before the first publish.
    pub queues: Arc<ProducerQueues>,
    /// Notified after a commit that wrote events.
    pub wake: Arc<Notify>,
    /// Longest pause between drains.
    pub interval: Duration,
    /// Stops the relay.
    pub shutdown: CancellationToken,
}

impl OutboxRelay {
    /// Runs until shutdown.
    pub async fn run(self) -> Result<(), switchboard_server::BoxError> {
        // The target queues exist from the start, so nothing relayed is unroutable even before
        // their consumer first runs.
        let mut backoff = Duration::from_millis(200);
        while let Err(error) = self.queues.declare().await {
            tracing::warn!(schema = self.outbox.schema, error = %error, retry_in = ?backoff, "cannot declare the outbox's target queues yet");
            tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.interval) => {}
            }
            loop {
                match self.drain_once().await {
                    Ok(full) if full => continue,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(schema = self.outbox.schema, error = %error, "outbox relay paused");
                        break;
                    }
                }
            }
        }
    }

    /// Publishes one batch; true when the batch was full (more may wait).
    async fn drain_once(&self) -> Result<bool, StoreError> {
        let schema = self.outbox.schema;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let locked: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&self.outbox.lock_key])
            .await?
            .get(0);
        if !locked {
            return Ok(false);
        }
        let rows = tx
            .query(
                &format!(
                    "SELECT seq, event_id, routing_key, event_type, payload, traceparent, tracestate, mandatory
                     FROM {schema}.outbox ORDER BY seq LIMIT $1"
                ),
                &[&BATCH],
            )
            .await?;
        if !self.queues.is_declared()
            && let Err(error) = self.queues.declare().await
        {
            tracing::warn!(schema, error = %error, "outbox relay paused: cannot declare its target queues");
            return Ok(false);
        }
        // Published in order without waiting between messages, then confirmed together: one
        // broker round trip per batch. Rows are deleted up to the last one confirmed in order.
        let mut batch = Vec::with_capacity(rows.len());
        for row in &rows {
            let event_id: String = row.get(1);
            let outgoing = Outgoing {
                routing_key: row.get(2),
                payload: row.get(4),
                message_id: event_id.clone(),
                message_type: row.get(3),
                headers: Default::default(),
            };
            let span = tracing::info_span!("outbox relay", otel.kind = "internal", event_id = %event_id);
            let carrier: HashMap<String, String> = [
                ("traceparent".to_owned(), row.get::<_, String>(5)),
                ("tracestate".to_owned(), row.get::<_, String>(6)),
            ]
            .into_iter()
            .collect();
            switchboard_telemetry::propagation::set_remote_parent(&span, &carrier);
            let mandatory: bool = row.get(7);
            batch.push((outgoing, mandatory, span));
        }
        let (confirmed, failure) = self.publisher.publish_pipelined(batch).await;
        if let Some(error) = failure {
            self.queues.note_publish_error(&error);
            tracing::warn!(schema, error = %error, "outbox relay paused: the broker did not confirm");
        }
        // Exactly the rows published: a row with a lower seq whose transaction committed
        // after the SELECT was not published, and `seq <= last` would delete it unsent.
        let published: Vec<i64> = rows[..confirmed].iter().map(|row| row.get(0)).collect();
        if !published.is_empty() {
            tx.execute(
                &format!("DELETE FROM {schema}.outbox WHERE seq = ANY($1)"),
                &[&published],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(confirmed == rows.len() && rows.len() == BATCH as usize)
    }
}
