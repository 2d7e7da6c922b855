//! The ordered, per-workspace event log: every change to a conversation is written in the
//! transaction that makes it, and `WatchEvents` streams it to agent tools with resume.
//!
//! Order without gaps: a workspace's sequence numbers come from its `event_sequences` row,
//! which the writing transaction keeps locked until it commits, and the log is written as the
//! transaction's last statement. So events commit in `seq` order: a reader that has seen `n`
//! never later finds an event below `n`, and resuming after `n` misses nothing. A `NOTIFY`
//! on [`NOTIFY_CHANNEL`] (delivered at commit) wakes the readers of every replica.

use std::time::Duration;

use chrono::{DateTime, Utc};
use switchboard_postgres::{GenericClient, Transaction};
use tokio::sync::broadcast;

use switchboard_proto::events::v1::{Envelope, RoutingEvent, envelope::Payload};

use crate::RoutingError;
use crate::assignment::OUTBOX;

/// The `NOTIFY` channel; the payload is the workspace id.
pub const NOTIFY_CHANNEL: &str = "switchboard_routing_events";

/// One change to record.
#[derive(Debug, Clone)]
pub struct Event {
    /// The conversation it concerns, when it concerns one.
    pub conversation_id: Option<String>,
    /// The contact it concerns, when known.
    pub contact_id: Option<String>,
    /// `conversation.opened`, `message.added`, `conversation.assigned`, …
    pub event_type: &'static str,
    /// Event-specific fields.
    pub payload: serde_json::Value,
}

impl Event {
    /// An event of `conversation_id` (of `contact_id`).
    pub fn conversation(
        conversation_id: &str,
        contact_id: &str,
        event_type: &'static str,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            conversation_id: Some(conversation_id.to_owned()),
            contact_id: Some(contact_id.to_owned()),
            event_type,
            payload,
        }
    }
}

/// Writes `events` of `workspace` in `tx`, and each as a `routing.<event_type>` bus event
/// (through the outbox, spread over `partitions` by conversation); call it last before commit
/// (it holds the workspace's sequence row until then). Returns the last sequence number.
pub async fn append(
    tx: &Transaction<'_>,
    workspace: &str,
    events: &[Event],
    partitions: u16,
) -> Result<i64, RoutingError> {
    if events.is_empty() {
        return Ok(0);
    }
    let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let last: i64 = tx
        .query_one(
            "INSERT INTO routing.event_sequences AS s (workspace_id, last_seq) VALUES ($1, $2)
             ON CONFLICT (workspace_id) DO UPDATE SET last_seq = s.last_seq + EXCLUDED.last_seq
             RETURNING last_seq",
            &[&workspace, &count],
        )
        .await?
        .get(0);
    let first = last - count + 1;
    let seqs: Vec<i64> = (first..=last).collect();
    let conversations: Vec<Option<&str>> = events
        .iter()
        .map(|event| event.conversation_id.as_deref())
        .collect();
    let contacts: Vec<Option<&str>> = events.iter().map(|event| event.contact_id.as_deref()).collect();
    let types: Vec<&str> = events.iter().map(|event| event.event_type).collect();
    let payloads: Vec<&serde_json::Value> = events.iter().map(|event| &event.payload).collect();
    tx.execute(
        "INSERT INTO routing.event_log (workspace_id, seq, conversation_id, contact_id, event_type, payload)
         SELECT $1::text, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::jsonb[])",
        &[&workspace, &seqs, &conversations, &contacts, &types, &payloads],
    )
    .await?;
    for (event, seq) in events.iter().zip(first..=last) {
        let conversation_id = event.conversation_id.clone().unwrap_or_default();
        let envelope = Envelope {
            event_id: switchboard_domain::EventId::generate().into_string(),
            event_type: format!("routing.{}", event.event_type),
            occurred_at: Some(switchboard_domain::time::to_timestamp(chrono::Utc::now())),
            workspace_id: workspace.to_owned(),
            correlation_id: String::new(),
            causation_id: String::new(),
            partition_key: conversation_id.clone(),
            payload: Some(Payload::RoutingEvent(RoutingEvent {
                cursor: seq.to_string(),
                event_type: event.event_type.to_owned(),
                conversation_id,
                contact_id: event.contact_id.clone().unwrap_or_default(),
                payload_json: event.payload.to_string(),
            })),
        };
        OUTBOX.record_optional(tx, &envelope, partitions).await?;
    }
    tx.execute("SELECT pg_notify($1, $2)", &[&NOTIFY_CHANNEL, &workspace])
        .await?;
    Ok(last)
}

/// A logged event, as read back.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    /// Position in the workspace's log.
    pub seq: i64,
    /// See [`Event::event_type`].
    pub event_type: String,
    /// See [`Event::conversation_id`].
    pub conversation_id: Option<String>,
    /// See [`Event::contact_id`].
    pub contact_id: Option<String>,
    /// See [`Event::payload`].
    pub payload: serde_json::Value,
    /// Commit-side time of the change.
    pub created_at: DateTime<Utc>,
}

/// Where a workspace's log stands.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogPosition {
    /// The newest sequence number (0 when nothing was logged).
    pub last_seq: i64,
    /// Events up to here were pruned.
    pub pruned_through: i64,
}

/// The workspace's current position.
pub async fn position(client: &impl GenericClient, workspace: &str) -> Result<LogPosition, RoutingError> {
    let row = client
        .query_opt(
            "SELECT last_seq, pruned_through FROM routing.event_sequences WHERE workspace_id = $1",
            &[&workspace],
        )
        .await?;
    Ok(row.map_or_else(LogPosition::default, |row| LogPosition {
        last_seq: row.get(0),
        pruned_through: row.get(1),
    }))
}

/// Up to `limit` events of `workspace` after `after`, oldest first, optionally of one
/// conversation.
pub async fn read_after(
    client: &impl GenericClient,
    workspace: &str,
    after: i64,
    conversation_id: Option<&str>,
    limit: i64,
) -> Result<Vec<LoggedEvent>, RoutingError> {
    let rows = client
        .query(
            "SELECT seq, event_type, conversation_id, contact_id, payload, created_at
             FROM routing.event_log
             WHERE workspace_id = $1 AND seq > $2 AND ($3::text IS NULL OR conversation_id = $3)
             ORDER BY seq LIMIT $4",
            &[&workspace, &after, &conversation_id, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| LoggedEvent {
            seq: row.get(0),
            event_type: row.get(1),
            conversation_id: row.get(2),
            contact_id: row.get(3),
            payload: row.get(4),
            created_at: row.get(5),
        })
        .collect())
}

/// Deletes events older than `retention`, remembering per workspace how far it pruned (so a
/// resume from before that is refused rather than silently skipping). Returns rows deleted.
pub async fn prune(client: &impl GenericClient, retention: Duration) -> Result<u64, RoutingError> {
    let seconds = retention.as_secs_f64();
    let rows = client
        .query(
            "WITH gone AS (
                 DELETE FROM routing.event_log
                 WHERE created_at < now() - make_interval(secs => $1)
                 RETURNING workspace_id, seq
             ), upto AS (
                 SELECT workspace_id, max(seq) AS through, count(*) AS removed FROM gone GROUP BY workspace_id
             ), marked AS (
                 UPDATE routing.event_sequences s SET pruned_through = GREATEST(s.pruned_through, u.through)
                 FROM upto u WHERE s.workspace_id = u.workspace_id
                 RETURNING u.removed
             )
             SELECT coalesce(sum(removed), 0)::bigint FROM marked",
            &[&seconds],
        )
        .await?;
    let removed: i64 = rows.first().map_or(0, |row| row.get(0));
    Ok(u64::try_from(removed).unwrap_or(0))
}

/// Wakes `WatchEvents` readers: a broadcast of [`switchboard_postgres::Wakeup`]s fed by one
/// `LISTEN` connection per process.
#[derive(Clone)]
pub struct EventFeed {
    wakeups: broadcast::Sender<switchboard_postgres::Wakeup>,
}

impl EventFeed {
    /// A feed with room for `capacity` undelivered wakeups per reader (a reader that falls
    /// behind re-reads the log, so nothing is lost).
    pub fn new(capacity: usize) -> Self {
        let (wakeups, _) = broadcast::channel(capacity);
        Self { wakeups }
    }

    /// The sender the listener feeds.
    pub fn sender(&self) -> broadcast::Sender<switchboard_postgres::Wakeup> {
        self.wakeups.clone()
    }

    /// A new reader's receiver.
    pub fn subscribe(&self) -> broadcast::Receiver<switchboard_postgres::Wakeup> {
        self.wakeups.subscribe()
    }
}
