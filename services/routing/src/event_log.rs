//! The ordered, per-workspace event log: every change to a conversation is written in the
//! transaction that makes it, and `WatchEvents` streams it to agent tools with resume.
//!
//! Order without gaps and without serializing writers: each row carries its transaction's id
//! (`tx`) and a sequence number; a workspace's events are ordered by (tx, seq), and readers
//! only read rows whose transaction is older than every transaction still running in this
//! database (the [`horizon`], taken in a statement before the read). Those rows are final, and
//! any row written later belongs to a transaction at or above the horizon, so it sorts after
//! everything already read: resuming after a [`Cursor`] misses nothing and repeats nothing. A
//! `NOTIFY` on [`NOTIFY_CHANNEL`] (delivered at commit) wakes the readers of every replica. The
//! cost: a long transaction in this database holds the stream back until it ends (readers poll
//! briefly while committed events wait behind one); other databases on the server do not.

use std::time::Duration;
use switchboard_messaging::Partitions;
use switchboard_postgres::CachedStatements as _;

use chrono::{DateTime, Utc};
use switchboard_postgres::{GenericClient, Transaction};
use tokio::sync::broadcast;
use tracing::Instrument as _;

use switchboard_domain::{ContactId, ConversationId, WorkspaceId};
use switchboard_proto::events::v1::{Envelope, RoutingEvent, envelope::Payload};

use crate::RoutingError;
use crate::outbox::OUTBOX;

/// A position in a workspace's log: after the event of transaction `tx` with number `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor {
    /// The writing transaction's id.
    pub tx: i64,
    /// The event's number.
    pub seq: i64,
}

impl Cursor {
    /// Parses a cursor as [`Cursor`]'s `Display` writes it (`<tx>.<seq>`), or `0` for the
    /// start of the log.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "0" {
            return Some(Self::default());
        }
        let (tx, seq) = text.split_once('.')?;
        let cursor = Self {
            tx: tx.parse().ok()?,
            seq: seq.parse().ok()?,
        };
        (cursor.tx >= 0 && cursor.seq >= 0).then_some(cursor)
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}.{}", self.tx, self.seq)
    }
}

/// The `NOTIFY` channel; the payload is the workspace id.
pub const NOTIFY_CHANNEL: &str = "switchboard_routing_events";

/// One change to record.
#[derive(Debug, Clone)]
pub struct Event {
    /// The conversation it concerns, when it concerns one.
    pub conversation_id: Option<ConversationId>,
    /// The contact it concerns, when known.
    pub contact_id: Option<ContactId>,
    /// `conversation.opened`, `message.added`, `conversation.assigned`, …
    pub event_type: &'static str,
    /// Event-specific fields.
    pub payload: serde_json::Value,
    /// The span of the work that made it: its bus event continues that trace (in a batch,
    /// each message's own).
    pub trace: tracing::Span,
}

impl Event {
    /// An event of `conversation_id` (of `contact_id`).
    pub fn conversation(
        conversation_id: &ConversationId,
        contact_id: &ContactId,
        event_type: &'static str,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            conversation_id: Some(conversation_id.clone()),
            contact_id: Some(contact_id.clone()),
            event_type,
            payload,
            trace: tracing::Span::current(),
        }
    }
}

/// Writes `events` of `workspace` in `tx`, and each as a `routing.<event_type>` bus event
/// (through the outbox, spread over `partitions` by conversation).
pub async fn append(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    events: &[Event],
    partitions: &Partitions,
) -> Result<(), RoutingError> {
    if events.is_empty() {
        return Ok(());
    }
    let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let numbered = tx
        .query(
            &tx.prepare_cached(
                "SELECT pg_current_xact_id()::text::bigint, nextval('routing.event_log_seq_seq')
                 FROM generate_series(1, $1::bigint)",
            )
            .await?,
            &[&count],
        )
        .await?;
    let cursors: Vec<Cursor> = numbered
        .iter()
        .map(|row| Cursor {
            tx: row.get(0),
            seq: row.get(1),
        })
        .collect();
    let seqs: Vec<i64> = cursors.iter().map(|cursor| cursor.seq).collect();
    let conversations: Vec<Option<&str>> = events
        .iter()
        .map(|event| event.conversation_id.as_ref().map(ConversationId::as_str))
        .collect();
    let contacts: Vec<Option<&str>> = events
        .iter()
        .map(|event| event.contact_id.as_ref().map(ContactId::as_str))
        .collect();
    let types: Vec<&str> = events.iter().map(|event| event.event_type).collect();
    let payloads: Vec<&serde_json::Value> = events.iter().map(|event| &event.payload).collect();
    let envelopes: Vec<Envelope> = events
        .iter()
        .zip(&cursors)
        .map(|(event, cursor)| {
            let conversation_id = event
                .conversation_id
                .as_ref()
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default();
            Envelope {
                event_id: switchboard_domain::EventId::generate().into_string(),
                event_type: format!("routing.{}", event.event_type),
                occurred_at: Some(switchboard_domain::time::to_timestamp(chrono::Utc::now())),
                workspace_id: workspace.as_str().to_owned(),
                correlation_id: String::new(),
                causation_id: String::new(),
                partition_key: conversation_id.clone(),
                payload: Some(Payload::RoutingEvent(RoutingEvent {
                    cursor: cursor.to_string(),
                    event_type: event.event_type.to_owned(),
                    conversation_id,
                    contact_id: event
                        .contact_id
                        .as_ref()
                        .map(|id| id.as_str().to_owned())
                        .unwrap_or_default(),
                    payload_json: event.payload.to_string(),
                })),
            }
        })
        .collect();
    // Independent statements, pipelined on the connection: one round trip instead of several.
    let workspace = workspace.as_str();
    let logged = async {
        let statement = tx
            .prepare_cached(
                "INSERT INTO routing.event_log (seq, workspace_id, conversation_id, contact_id, event_type, payload)
                 SELECT u.seq, $1::text, u.conversation_id, u.contact_id, u.event_type, u.payload
                 FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
                      AS u (seq, conversation_id, contact_id, event_type, payload)",
            )
            .await?;
        tx.execute(
            &statement,
            &[&workspace, &seqs, &conversations, &contacts, &types, &payloads],
        )
        .await
        .map_err(RoutingError::from)
    };
    let published =
        futures_util::future::try_join_all(envelopes.iter().zip(events).map(|(envelope, event)| {
            OUTBOX
                .record_optional(tx, envelope, partitions)
                .instrument(event.trace.clone())
        }));
    let notified = async {
        let statement = tx.prepare_cached("SELECT pg_notify($1, $2)").await?;
        tx.execute(&statement, &[&NOTIFY_CHANNEL, &workspace])
            .await
            .map_err(RoutingError::from)
    };
    futures_util::try_join!(
        logged,
        async { published.await.map_err(RoutingError::from) },
        notified
    )?;
    Ok(())
}

/// A logged event, as read back.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    /// Position in the workspace's log.
    pub cursor: Cursor,
    /// See [`Event::event_type`].
    pub event_type: String,
    /// See [`Event::conversation_id`].
    pub conversation_id: Option<String>,
    /// See [`Event::contact_id`].
    pub contact_id: Option<String>,
    /// See [`Event::payload`].
    pub payload: serde_json::Value,
    /// When the change was logged: the wall clock at its transaction's last statement,
    /// just before commit (not the transaction's start).
    pub created_at: DateTime<Utc>,
}

/// Where a workspace's log stands now.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogPosition {
    /// Everything before it is final: a watch "from now" starts here.
    pub now: Cursor,
    /// Events up to here were pruned.
    pub pruned_through: Cursor,
    /// The newest transaction id that exists (cursors beyond it are not from this log).
    pub newest_tx: i64,
}

/// The workspace's current position.
pub async fn position(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
) -> Result<LogPosition, RoutingError> {
    let (now, newest_tx) = horizon(client).await?;
    let row = client
        .query_one_cached(
            "SELECT (SELECT tx FROM routing.event_log_pruned WHERE workspace_id = $1),
                    (SELECT seq FROM routing.event_log_pruned WHERE workspace_id = $1)",
            &[&workspace.as_str()],
        )
        .await?;
    let pruned_through = match (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) {
        (Some(tx), Some(seq)) => Cursor { tx, seq },
        _ => Cursor::default(),
    };
    Ok(LogPosition {
        now: Cursor { tx: now, seq: 0 },
        pruned_through,
        newest_tx,
    })
}

/// The oldest transaction still running in this database (as a 64-bit id), or the next id to
/// be assigned when none runs; with that next id. Rows of transactions below it are final.
///
/// Only this database's backends count (`pg_stat_activity`, which shows the backends of the
/// reader's own role, the role that writes the log), so a long transaction elsewhere on the
/// server does not hold the stream back. Call it in a statement before the read: a transaction
/// running now cannot then commit rows below the horizon after the read's snapshot.
pub async fn horizon(client: &impl GenericClient) -> Result<(i64, i64), RoutingError> {
    let row = client
        .query_one_cached(
            "WITH next AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax),
                  running AS (
                      SELECT (next.xmax - next.xmax % 4294967296) + a.backend_xid::text::bigint AS xid, next.xmax
                      FROM pg_stat_activity a, next
                      WHERE a.datname = current_database() AND a.backend_xid IS NOT NULL
                  )
             SELECT coalesce(min(CASE WHEN xid > xmax THEN xid - 4294967296 ELSE xid END), (SELECT xmax FROM next)),
                    (SELECT xmax FROM next)
             FROM running",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// What a read found.
pub struct Read {
    /// Up to the limit of final events after the cursor, in order.
    pub events: Vec<LoggedEvent>,
    /// Committed events exist after them that wait for an older transaction to end.
    pub held_back: bool,
}

/// Up to `limit` final events of `workspace` after `after`, in order, optionally of one
/// conversation.
pub async fn read_after(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    after: Cursor,
    conversation_id: Option<&ConversationId>,
    limit: i64,
) -> Result<Read, RoutingError> {
    let workspace = workspace.as_str();
    let conversation_id = conversation_id.map(ConversationId::as_str);
    let (below, _) = horizon(client).await?;
    let rows = client
        .query_cached(
            "SELECT seq, tx, event_type, conversation_id, contact_id, payload, created_at
             FROM routing.event_log
             WHERE workspace_id = $1 AND (tx, seq) > ($2, $3) AND tx < $6
               AND ($4::text IS NULL OR conversation_id = $4)
             ORDER BY tx, seq LIMIT $5",
            &[
                &workspace,
                &after.tx,
                &after.seq,
                &conversation_id,
                &limit,
                &below,
            ],
        )
        .await?;
    let events: Vec<LoggedEvent> = rows
        .iter()
        .map(|row| LoggedEvent {
            cursor: Cursor {
                seq: row.get(0),
                tx: row.get(1),
            },
            event_type: row.get(2),
            conversation_id: row.get(3),
            contact_id: row.get(4),
            payload: row.get(5),
            created_at: row.get(6),
        })
        .collect();
    let held_back = if i64::try_from(events.len()).unwrap_or(i64::MAX) < limit {
        client
            .query_one_cached(
                "SELECT EXISTS (SELECT 1 FROM routing.event_log WHERE workspace_id = $1 AND tx >= $2)",
                &[&workspace, &below],
            )
            .await?
            .get(0)
    } else {
        false
    };
    Ok(Read { events, held_back })
}

/// Deletes events older than `retention`, remembering per workspace how far it pruned (so a
/// resume from before that is refused rather than silently skipping). Returns rows deleted.
pub async fn prune(client: &impl GenericClient, retention: Duration) -> Result<u64, RoutingError> {
    let seconds = retention.as_secs_f64();
    let rows = client
        .query_cached(
            "WITH gone AS (
                 DELETE FROM routing.event_log
                 WHERE created_at < now() - make_interval(secs => $1)
                 RETURNING workspace_id, tx, seq
             ), upto AS (
                 SELECT DISTINCT ON (workspace_id) workspace_id, tx, seq, count(*) OVER (PARTITION BY workspace_id) AS removed
                 FROM gone ORDER BY workspace_id, tx DESC, seq DESC
             ), marked AS (
                 INSERT INTO routing.event_log_pruned AS p (workspace_id, tx, seq)
                 SELECT workspace_id, tx, seq FROM upto
                 ON CONFLICT (workspace_id) DO UPDATE
                 SET tx = EXCLUDED.tx, seq = EXCLUDED.seq
                 WHERE (p.tx, p.seq) < (EXCLUDED.tx, EXCLUDED.seq)
             )
             SELECT coalesce(sum(removed), 0)::bigint FROM upto",
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
