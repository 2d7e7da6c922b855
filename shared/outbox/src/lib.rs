//! The transactional outbox: a service writes each event in the transaction that makes the
//! change; the relay publishes pending events in `seq` order with confirms (one replica at a
//! time, under an advisory lock) and deletes only what the broker confirmed. A change is never
//! committed without its event, and no event leaves before its change commits.
//!
//! Ingress' spool is an outbox too (`ingress.spool`): events the broker did not confirm in
//! time, written by [`Outbox::record_outgoing`] and drained by the same [`Outbox::relay_batch`],
//! so the two cannot drift apart.
//!
//! Each service keeps its own `<schema>.outbox` table (or another name, [`Outbox::with_table`])
//! with these columns:
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

use switchboard_messaging::{Outgoing, Partitions, ProducerQueues, PublishError, Publisher};
use switchboard_postgres::{Pool, StoreError, Transaction};
use switchboard_proto::events::v1::Envelope;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Most events published per relay transaction.
const BATCH: i64 = 500;

/// One service's outbox table.
#[derive(Debug, Clone, Copy)]
pub struct Outbox {
    /// The schema holding the table.
    schema: &'static str,
    /// The table's name (`outbox` unless [`Outbox::with_table`] says otherwise).
    table: &'static str,
    /// Advisory lock key that lets one replica relay at a time.
    lock_key: i64,
}

/// What one [`Outbox::relay_batch`] did.
#[derive(Debug, Default)]
pub struct Relayed {
    /// False when another replica holds the relay lock (nothing was read).
    pub locked: bool,
    /// Events read, in `seq` order.
    pub selected: usize,
    /// The `event_type` of each event published and deleted, in order.
    pub published: Vec<String>,
    /// Why publishing stopped before the end of the batch, if it did.
    pub failure: Option<PublishError>,
}

impl Relayed {
    /// True when the batch was full and went out whole: more events may wait.
    pub fn more_may_wait(&self, batch: i64) -> bool {
        self.failure.is_none()
            && self.published.len() == self.selected
            && i64::try_from(self.selected).is_ok_and(|selected| selected >= batch)
    }
}

impl Outbox {
    /// The outbox in `schema`, relayed under advisory lock `lock_key` (unique per service).
    pub const fn new(schema: &'static str, lock_key: i64) -> Self {
        Self::with_table(schema, "outbox", lock_key)
    }

    /// An outbox-shaped table with another name (ingress' `spool`).
    pub const fn with_table(schema: &'static str, table: &'static str, lock_key: i64) -> Self {
        Self {
            schema,
            table,
            lock_key,
        }
    }

    /// Writes an already-built message in transaction `tx` (ingress' spool: an event whose
    /// publish the broker did not confirm), with the current trace context. Where the table
    /// holds each `event_id` once (a unique index), writing an id again is a no-op.
    pub async fn record_outgoing(
        &self,
        tx: &Transaction<'_>,
        outgoing: &Outgoing,
        mandatory: bool,
    ) -> Result<(), StoreError> {
        let mut carrier: HashMap<String, String> = HashMap::new();
        switchboard_telemetry::propagation::inject_span(&tracing::Span::current(), &mut carrier);
        let statement = tx
            .prepare_cached(&format!(
                "INSERT INTO {}.{} (event_id, routing_key, event_type, payload, traceparent, tracestate, mandatory)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                self.schema, self.table
            ))
            .await?;
        tx.execute(
            &statement,
            &[
                &outgoing.message_id,
                &outgoing.routing_key,
                &outgoing.message_type,
                &outgoing.payload,
                &carrier.remove("traceparent").unwrap_or_default(),
                &carrier.remove("tracestate").unwrap_or_default(),
                &mandatory,
            ],
        )
        .await?;
        Ok(())
    }

    /// How many events wait to be published.
    pub async fn waiting(&self, pool: &Pool) -> Result<i64, StoreError> {
        Ok(pool
            .get()
            .await?
            .query_one(
                &format!("SELECT count(*) FROM {}.{}", self.schema, self.table),
                &[],
            )
            .await?
            .get(0))
    }

    /// Writes `envelope` in the changing transaction `tx`, with the current trace context so
    /// the published event continues the change's trace. It is published `mandatory`: a queue
    /// must take it (the relay declares its target queues).
    pub async fn record(
        &self,
        tx: &Transaction<'_>,
        envelope: &Envelope,
        partitions: &Partitions,
    ) -> Result<(), StoreError> {
        self.write(tx, envelope, partitions, true).await
    }

    /// Writes several envelopes in transaction `tx` with one statement, in order, each
    /// published `mandatory` as [`Outbox::record`] does (one round trip instead of one each).
    pub async fn record_all(
        &self,
        tx: &Transaction<'_>,
        envelopes: &[&Envelope],
        partitions: &Partitions,
    ) -> Result<(), StoreError> {
        let mut carrier: HashMap<String, String> = HashMap::new();
        switchboard_telemetry::propagation::inject_span(&tracing::Span::current(), &mut carrier);
        let outgoing: Vec<Outgoing> = envelopes
            .iter()
            .map(|envelope| Outgoing::envelope(envelope, partitions))
            .collect();
        let ids: Vec<&str> = outgoing.iter().map(|one| one.message_id.as_str()).collect();
        let keys: Vec<&str> = outgoing.iter().map(|one| one.routing_key.as_str()).collect();
        let types: Vec<&str> = outgoing.iter().map(|one| one.message_type.as_str()).collect();
        let payloads: Vec<&[u8]> = outgoing.iter().map(|one| one.payload.as_slice()).collect();
        let statement = tx
            .prepare_cached(&format!(
                "INSERT INTO {}.{} (event_id, routing_key, event_type, payload, traceparent, tracestate, mandatory)
                 SELECT event_id, routing_key, event_type, payload, $5, $6, true
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])
                      WITH ORDINALITY AS e(event_id, routing_key, event_type, payload, position)
                 ORDER BY position",
                self.schema, self.table
            ))
            .await?;
        tx.execute(
            &statement,
            &[
                &ids,
                &keys,
                &types,
                &payloads,
                &carrier.remove("traceparent").unwrap_or_default(),
                &carrier.remove("tracestate").unwrap_or_default(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Like [`Outbox::record`], for a notification whose subscribers are optional: with no
    /// queue bound for it, the broker drops it (still confirmed, in order with the rest).
    pub async fn record_optional(
        &self,
        tx: &Transaction<'_>,
        envelope: &Envelope,
        partitions: &Partitions,
    ) -> Result<(), StoreError> {
        self.write(tx, envelope, partitions, false).await
    }

    /// Publishes up to `batch` waiting events in `seq` order, if this replica gets the relay
    /// lock: declares `queues` when they are not known to exist, publishes pipelined with
    /// confirms, and deletes exactly the rows confirmed, in one transaction.
    ///
    /// Exactly those rows, never `seq <= last`: a row whose transaction took a lower `seq`
    /// but committed after the SELECT was not published, and would be deleted unsent. It is
    /// published by the next batch.
    pub async fn relay_batch(
        &self,
        pool: &Pool,
        publisher: &Publisher,
        queues: &ProducerQueues,
        batch: i64,
    ) -> Result<Relayed, StoreError> {
        let (schema, table) = (self.schema, self.table);
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let locked: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&self.lock_key])
            .await?
            .get(0);
        if !locked {
            return Ok(Relayed::default());
        }
        let rows = tx
            .query(
                &format!(
                    "SELECT seq, event_id, routing_key, event_type, payload, traceparent, tracestate, mandatory
                     FROM {schema}.{table} ORDER BY seq LIMIT $1"
                ),
                &[&batch],
            )
            .await?;
        let mut relayed = Relayed {
            locked: true,
            selected: rows.len(),
            ..Relayed::default()
        };
        if rows.is_empty() {
            return Ok(relayed);
        }
        if !queues.is_declared()
            && let Err(error) = queues.declare().await
        {
            // Nothing published: the rows wait for the next batch.
            tracing::warn!(schema, table, error = %error, "relay paused: cannot declare its target queues");
            return Ok(relayed);
        }
        // Published in order without waiting between messages, then confirmed together: one
        // broker round trip per batch.
        let mut messages = Vec::with_capacity(rows.len());
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
            messages.push((outgoing, mandatory, span));
        }
        let (confirmed, failure) = publisher.publish_pipelined(messages).await;
        if let Some(error) = &failure {
            queues.note_publish_error(error);
        }
        relayed.failure = failure;
        let published: Vec<i64> = rows[..confirmed].iter().map(|row| row.get(0)).collect();
        relayed.published = rows[..confirmed].iter().map(|row| row.get(3)).collect();
        if !published.is_empty() {
            tx.execute(
                &format!("DELETE FROM {schema}.{table} WHERE seq = ANY($1)"),
                &[&published],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(relayed)
    }

    async fn write(
        &self,
        tx: &Transaction<'_>,
        envelope: &Envelope,
        partitions: &Partitions,
        mandatory: bool,
    ) -> Result<(), StoreError> {
        self.record_outgoing(tx, &Outgoing::envelope(envelope, partitions), mandatory)
            .await
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
        let relayed = self
            .outbox
            .relay_batch(&self.pool, &self.publisher, &self.queues, BATCH)
            .await?;
        if let Some(error) = &relayed.failure {
            tracing::warn!(schema = self.outbox.schema, error = %error, "outbox relay paused: the broker did not confirm");
        }
        Ok(relayed.more_may_wait(BATCH))
    }
}
