//! The transactional outbox of API changes: each change writes its event in the same
//! transaction; the relay publishes pending events in `seq` order with confirms (one replica
//! at a time, under an advisory lock) and deletes only what the broker confirmed. A change is
//! never committed without its event, and no event leaves before its change commits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use switchboard_messaging::{Outgoing, Publisher};
use switchboard_postgres::{Pool, Transaction};
use switchboard_proto::events::v1::{self as events, ContactChange, Envelope, envelope::Payload};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::ContactsError;

/// Advisory lock key of the relay (one replica drains at a time).
const RELAY_LOCK: i64 = 0x636f_6e74_6f75_7462; // "contoutb"
/// Most events published per transaction.
const BATCH: i64 = 500;

/// A contact change to announce.
pub(crate) struct ChangeEvent<'a> {
    pub(crate) workspace_id: &'a str,
    pub(crate) change: ContactChange,
    pub(crate) contact_id: &'a str,
    pub(crate) contact: Option<switchboard_proto::contacts::v1::Contact>,
    pub(crate) source: &'a str,
    pub(crate) tags_added: Vec<String>,
    pub(crate) tags_removed: Vec<String>,
    pub(crate) other_contact_id: Option<&'a str>,
}

/// The `contact.<change>` event type.
fn event_type(change: ContactChange) -> &'static str {
    match change {
        ContactChange::Unspecified | ContactChange::Updated => "contact.updated",
        ContactChange::Created => "contact.created",
        ContactChange::TagsChanged => "contact.tags_changed",
        ContactChange::Merged => "contact.merged",
        ContactChange::Unmerged => "contact.unmerged",
        ContactChange::Erased => "contact.erased",
        ContactChange::Blocked => "contact.blocked",
        ContactChange::Unblocked => "contact.unblocked",
        ContactChange::ConsentChanged => "contact.consent_changed",
    }
}

/// Writes the event of a change in the changing transaction `tx`.
pub(crate) async fn record(
    tx: &Transaction<'_>,
    partitions: u16,
    event: ChangeEvent<'_>,
) -> Result<(), ContactsError> {
    let event_type = event_type(event.change);
    let envelope = Envelope {
        event_id: switchboard_domain::EventId::generate().into_string(),
        event_type: event_type.to_owned(),
        occurred_at: Some(crate::model::timestamp(chrono::Utc::now())),
        workspace_id: event.workspace_id.to_owned(),
        correlation_id: String::new(),
        causation_id: String::new(),
        partition_key: event.contact_id.to_owned(),
        payload: Some(Payload::ContactChanged(events::ContactChanged {
            change: event.change as i32,
            contact_id: event.contact_id.to_owned(),
            contact: event.contact,
            source: event.source.to_owned(),
            tags_added: event.tags_added,
            tags_removed: event.tags_removed,
            other_contact_id: event.other_contact_id.unwrap_or_default().to_owned(),
        })),
    };
    let outgoing = Outgoing::envelope(&envelope, partitions);
    let mut carrier: HashMap<String, String> = HashMap::new();
    switchboard_telemetry::propagation::inject_span(&tracing::Span::current(), &mut carrier);
    tx.execute(
        "INSERT INTO contacts.outbox (event_id, routing_key, event_type, payload, traceparent, tracestate)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &outgoing.message_id,
            &outgoing.routing_key,
            &outgoing.message_type,
            &envelope.encode_to_vec(),
            &carrier.remove("traceparent").unwrap_or_default(),
            &carrier.remove("tracestate").unwrap_or_default(),
        ],
    )
    .await?;
    Ok(())
}

/// Publishes the outbox: woken after each change, and every `interval` in case another
/// replica's wake-up was missed or the broker was away.
pub(crate) struct OutboxRelay {
    pub(crate) pool: Pool,
    pub(crate) publisher: Publisher,
    pub(crate) topology: Arc<switchboard_messaging::ProducerQueues>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) interval: Duration,
    pub(crate) shutdown: CancellationToken,
}

impl OutboxRelay {
    /// Runs until shutdown.
    pub(crate) async fn run(self) -> Result<(), switchboard_server::BoxError> {
        // Routing's queues exist from the start, so nothing contacts passes on is unroutable
        // even before routing first runs.
        let mut backoff = Duration::from_millis(200);
        while let Err(error) = self.topology.declare().await {
            tracing::warn!(error = %error, retry_in = ?backoff, "cannot declare the routing queues yet");
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
                        tracing::warn!(error = %error, "outbox relay paused");
                        break;
                    }
                }
            }
        }
    }

    /// Publishes one batch; true when the batch was full (more may wait).
    async fn drain_once(&self) -> Result<bool, ContactsError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let locked: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&RELAY_LOCK])
            .await?
            .get(0);
        if !locked {
            return Ok(false);
        }
        let rows = tx
            .query(
                "SELECT seq, event_id, routing_key, event_type, payload, traceparent, tracestate
                 FROM contacts.outbox ORDER BY seq LIMIT $1",
                &[&BATCH],
            )
            .await?;
        let mut last: Option<i64> = None;
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
            match self
                .topology
                .publish(&self.publisher, outgoing)
                .instrument(span)
                .await
            {
                Ok(()) => last = Some(row.get(0)),
                Err(error) => {
                    tracing::warn!(error = %error, "outbox relay paused: the broker did not confirm");
                    break;
                }
            }
        }
        if let Some(seq) = last {
            tx.execute("DELETE FROM contacts.outbox WHERE seq <= $1", &[&seq])
                .await?;
        }
        tx.commit().await?;
        Ok(last.is_some() && rows.len() == BATCH as usize)
    }
}
