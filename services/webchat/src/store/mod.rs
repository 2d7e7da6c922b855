//! The `webchat` schema: visitors, their threads (numbered by `seq`, in `thread`), uploaded
//! files (`attachments`), and the outbox that carries visitor messages and receipts to the bus
//! in the same transaction.

mod attachments;
mod thread;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use switchboard_domain::ChannelAccountId;
use switchboard_messaging::Partitions;
use switchboard_postgres::{Pool, StoreError};
use switchboard_proto::events::v1::Envelope;

pub use attachments::Attachment;

/// The outbox of the `webchat` schema.
pub const OUTBOX: switchboard_outbox::Outbox =
    switchboard_outbox::Outbox::new("webchat", 0x7765_6263_6f75_7462); // "webcoutb"

/// One visitor and the watermarks of their thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    /// The channel account.
    pub account_id: ChannelAccountId,
    /// `wcv_…`: the channel user id of this visitor.
    pub visitor_id: String,
    /// The account's workspace.
    pub workspace_id: String,
    /// The host site's verified user id.
    pub user_id: Option<String>,
    /// From the pre-chat form.
    pub name: String,
    /// From the pre-chat form.
    pub email: String,
    /// From the pre-chat form (E.164).
    pub phone: String,
    /// Highest seq of the thread.
    pub last_seq: i64,
    /// The visitor received agent messages up to this seq.
    pub delivered_seq: i64,
    /// The visitor read agent messages up to this seq.
    pub visitor_read_seq: i64,
    /// The agent read visitor messages up to this seq.
    pub agent_read_seq: i64,
}

const VISITOR_COLUMNS: &str = "visitor_id, workspace_id, user_id, name, email, phone, last_seq, delivered_seq, visitor_read_seq, agent_read_seq";

impl Visitor {
    /// A row of [`VISITOR_COLUMNS`] of `account`'s visitor.
    fn from_row(account: &ChannelAccountId, row: &tokio_postgres::Row) -> Self {
        Self {
            account_id: account.clone(),
            visitor_id: row.get(0),
            workspace_id: row.get(1),
            user_id: row.get(2),
            name: row.get(3),
            email: row.get(4),
            phone: row.get(5),
            last_seq: row.get(6),
            delivered_seq: row.get(7),
            visitor_read_seq: row.get(8),
            agent_read_seq: row.get(9),
        }
    }
}

/// A message of a thread, either side.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// `wcm_…`; the provider message id delivery records for outbound ones.
    pub id: String,
    /// Position in the thread (from 1, no gaps).
    pub seq: i64,
    /// `visitor`, `agent`, `bot` or `system`.
    pub author: String,
    /// Shown above agent messages when set.
    pub author_name: String,
    /// The visitor's client id (visitor messages only).
    pub client_id: Option<String>,
    /// Delivery's message id (outbound messages only).
    pub outbound_id: Option<String>,
    /// The text.
    pub body: String,
    /// `[{id?, url, mime_type, filename, size}]`.
    pub attachments: Value,
    /// `[{id, title}]` reply buttons of agent or bot messages.
    pub buttons: Value,
    /// When the server accepted it.
    pub created_at: DateTime<Utc>,
}

const MESSAGE_COLUMNS: &str =
    "id, seq, author, author_name, client_id, outbound_id, body, attachments, buttons, created_at";

impl StoredMessage {
    fn from_row(row: &tokio_postgres::Row) -> Self {
        Self {
            id: row.get(0),
            seq: row.get(1),
            author: row.get(2),
            author_name: row.get(3),
            client_id: row.get(4),
            outbound_id: row.get(5),
            body: row.get(6),
            attachments: row.get(7),
            buttons: row.get(8),
            created_at: row.get(9),
        }
    }

    /// The message as the widget receives it.
    pub fn to_wire(&self) -> Value {
        json!({
            "id": self.id,
            "seq": self.seq,
            "client_id": self.client_id,
            "author": self.author,
            "author_name": self.author_name,
            "text": self.body,
            "attachments": self.attachments,
            "buttons": self.buttons,
            "created_at": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
    }
}

/// A new message to append to a thread.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// `visitor`, `agent`, `bot` or `system`.
    pub author: &'static str,
    /// Shown above agent messages.
    pub author_name: String,
    /// Dedupe key of visitor messages.
    pub client_id: Option<String>,
    /// Dedupe key of outbound messages (delivery's id).
    pub outbound_id: Option<String>,
    /// The text.
    pub body: String,
    /// Attachment references.
    pub attachments: Value,
    /// Reply buttons.
    pub buttons: Value,
}

/// Builds the events a new visitor message publishes (given the visitor after the insert).
pub type EventsOf<'a> = &'a (dyn Fn(&Visitor, &StoredMessage) -> Vec<Envelope> + Send + Sync);

/// Where a watermark moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watermark {
    /// The visitor's client received agent messages.
    Delivered,
    /// The visitor saw agent messages.
    VisitorRead,
}

/// The web chat store.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    partitions: Partitions,
}

impl Store {
    /// The store on `pool`; outbox events are partitioned into `partitions`.
    pub fn new(pool: Pool, partitions: Partitions) -> Self {
        Self { pool, partitions }
    }

    /// Creates a visitor, or for a verified `user_id` returns that user's visitor (updating
    /// the profile fields that are given).
    pub async fn create_visitor(&self, visitor: &Visitor) -> Result<Visitor, StoreError> {
        let client = self.pool.get().await?;
        let sql = if visitor.user_id.is_some() {
            format!(
                "INSERT INTO webchat.visitors (account_id, visitor_id, workspace_id, user_id, name, email, phone)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (account_id, user_id) WHERE user_id IS NOT NULL DO UPDATE SET
                   name = COALESCE(NULLIF(excluded.name, ''), visitors.name),
                   email = COALESCE(NULLIF(excluded.email, ''), visitors.email),
                   phone = COALESCE(NULLIF(excluded.phone, ''), visitors.phone),
                   last_seen_at = now()
                 RETURNING {VISITOR_COLUMNS}"
            )
        } else {
            format!(
                "INSERT INTO webchat.visitors (account_id, visitor_id, workspace_id, user_id, name, email, phone)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {VISITOR_COLUMNS}"
            )
        };
        let row = client
            .query_one(
                &sql,
                &[
                    &visitor.account_id.as_str(),
                    &visitor.visitor_id,
                    &visitor.workspace_id,
                    &visitor.user_id,
                    &visitor.name,
                    &visitor.email,
                    &visitor.phone,
                ],
            )
            .await?;
        Ok(Visitor::from_row(&visitor.account_id, &row))
    }

    /// The visitor as stored (no write).
    pub async fn visitor(
        &self,
        account: &ChannelAccountId,
        visitor: &str,
    ) -> Result<Option<Visitor>, StoreError> {
        self.one_visitor(
            &format!(
                "SELECT {VISITOR_COLUMNS} FROM webchat.visitors WHERE account_id = $1 AND visitor_id = $2"
            ),
            account,
            visitor,
        )
        .await
    }

    /// The visitor, marking them seen now.
    pub async fn touch_visitor(
        &self,
        account: &ChannelAccountId,
        visitor: &str,
    ) -> Result<Option<Visitor>, StoreError> {
        self.one_visitor(
            &format!(
                "UPDATE webchat.visitors SET last_seen_at = now()
                 WHERE account_id = $1 AND visitor_id = $2 RETURNING {VISITOR_COLUMNS}"
            ),
            account,
            visitor,
        )
        .await
    }

    /// The visitor row `sql` (returning [`VISITOR_COLUMNS`]) gives for (`account`, `visitor`).
    async fn one_visitor(
        &self,
        sql: &str,
        account: &ChannelAccountId,
        visitor: &str,
    ) -> Result<Option<Visitor>, StoreError> {
        let client = self.pool.get().await?;
        let row = client.query_opt(sql, &[&account.as_str(), &visitor]).await?;
        Ok(row.map(|row| Visitor::from_row(account, &row)))
    }
}
