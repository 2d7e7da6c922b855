//! The `webchat` schema: visitors, their threads (numbered by `seq`), uploaded files, and the
//! outbox that carries visitor messages and receipts to the bus in the same transaction.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use switchboard_postgres::{Pool, StoreError};
use switchboard_proto::events::v1::Envelope;

/// The outbox of the `webchat` schema.
pub const OUTBOX: switchboard_outbox::Outbox =
    switchboard_outbox::Outbox::new("webchat", 0x7765_6263_6f75_7462); // "webcoutb"

/// One visitor and the watermarks of their thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    /// The channel account.
    pub account_id: String,
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

const VISITOR_COLUMNS: &str = "account_id, visitor_id, workspace_id, user_id, name, email, phone, last_seq, delivered_seq, visitor_read_seq, agent_read_seq";

impl Visitor {
    fn from_row(row: &tokio_postgres::Row) -> Self {
        Self {
            account_id: row.get(0),
            visitor_id: row.get(1),
            workspace_id: row.get(2),
            user_id: row.get(3),
            name: row.get(4),
            email: row.get(5),
            phone: row.get(6),
            last_seq: row.get(7),
            delivered_seq: row.get(8),
            visitor_read_seq: row.get(9),
            agent_read_seq: row.get(10),
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
    partitions: u16,
}

impl Store {
    /// The store on `pool`; outbox events are partitioned into `partitions`.
    pub fn new(pool: Pool, partitions: u16) -> Self {
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
                    &visitor.account_id,
                    &visitor.visitor_id,
                    &visitor.workspace_id,
                    &visitor.user_id,
                    &visitor.name,
                    &visitor.email,
                    &visitor.phone,
                ],
            )
            .await?;
        Ok(Visitor::from_row(&row))
    }

    /// The visitor as stored (no write).
    pub async fn visitor(&self, account: &str, visitor: &str) -> Result<Option<Visitor>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {VISITOR_COLUMNS} FROM webchat.visitors WHERE account_id = $1 AND visitor_id = $2"
                ),
                &[&account, &visitor],
            )
            .await?;
        Ok(row.as_ref().map(Visitor::from_row))
    }

    /// The visitor, marking them seen now.
    pub async fn touch_visitor(&self, account: &str, visitor: &str) -> Result<Option<Visitor>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE webchat.visitors SET last_seen_at = now()
                     WHERE account_id = $1 AND visitor_id = $2 RETURNING {VISITOR_COLUMNS}"
                ),
                &[&account, &visitor],
            )
            .await?;
        Ok(row.as_ref().map(Visitor::from_row))
    }

    /// Appends `message` to the visitor's thread unless its client id (visitor messages) or
    /// outbound id (delivery's) is already there; returns the stored message and whether it is
    /// new. `events` are written to the outbox in the same transaction (new messages only).
    pub async fn append(
        &self,
        account: &str,
        visitor: &str,
        message: &NewMessage,
        events: EventsOf<'_>,
    ) -> Result<Option<(StoredMessage, bool)>, StoreError> {
        let (client_id, outbound_id) = (message.client_id.as_deref(), message.outbound_id.as_deref());
        match self.insert(account, visitor, message, events).await {
            Ok(inserted) => Ok(inserted.map(|stored| (stored, true))),
            // Stored before (a resend), or by another replica at the same moment.
            Err(error) if error.is_unique_violation() => Ok(self
                .find_duplicate(account, visitor, client_id, outbound_id)
                .await?
                .map(|existing| (existing, false))),
            Err(error) => Err(error),
        }
    }

    /// The visitor's message with this client id, if one was accepted.
    pub async fn by_client_id(
        &self,
        account: &str,
        visitor: &str,
        client_id: &str,
    ) -> Result<Option<StoredMessage>, StoreError> {
        self.find_duplicate(account, visitor, Some(client_id), None).await
    }

    /// The message already stored with this client id (visitor) or outbound id (delivery).
    async fn find_duplicate(
        &self,
        account: &str,
        visitor: &str,
        client_id: Option<&str>,
        outbound_id: Option<&str>,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let client = self.pool.get().await?;
        let row = match (client_id, outbound_id) {
            (Some(client_id), _) => {
                client
                    .query_opt(
                        &format!(
                            "SELECT {MESSAGE_COLUMNS} FROM webchat.messages
                             WHERE account_id = $1 AND visitor_id = $2 AND client_id = $3"
                        ),
                        &[&account, &visitor, &client_id],
                    )
                    .await?
            }
            (None, Some(outbound_id)) => {
                client
                    .query_opt(
                        &format!(
                            "SELECT {MESSAGE_COLUMNS} FROM webchat.messages
                             WHERE account_id = $1 AND outbound_id = $2"
                        ),
                        &[&account, &outbound_id],
                    )
                    .await?
            }
            (None, None) => None,
        };
        Ok(row.as_ref().map(StoredMessage::from_row))
    }

    async fn insert(
        &self,
        account: &str,
        visitor: &str,
        message: &NewMessage,
        events: EventsOf<'_>,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // The row lock orders concurrent appends of one thread; seq has no gaps.
        let Some(row) = tx
            .query_opt(
                &format!(
                    "UPDATE webchat.visitors SET last_seq = last_seq + 1, last_seen_at = now()
                     WHERE account_id = $1 AND visitor_id = $2 RETURNING {VISITOR_COLUMNS}"
                ),
                &[&account, &visitor],
            )
            .await?
        else {
            return Ok(None);
        };
        let updated = Visitor::from_row(&row);
        let id = format!("wcm_{}", uuid::Uuid::now_v7().simple());
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO webchat.messages
                       (account_id, visitor_id, seq, id, author, author_name, client_id, outbound_id, body, attachments, buttons)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {MESSAGE_COLUMNS}"
                ),
                &[
                    &account,
                    &visitor,
                    &updated.last_seq,
                    &id,
                    &message.author,
                    &message.author_name,
                    &message.client_id,
                    &message.outbound_id,
                    &message.body,
                    &message.attachments,
                    &message.buttons,
                ],
            )
            .await?;
        let stored = StoredMessage::from_row(&row);
        for envelope in events(&updated, &stored) {
            OUTBOX.record(&tx, &envelope, self.partitions).await?;
        }
        tx.commit().await?;
        Ok(Some(stored))
    }

    /// Messages after `after_seq`, oldest first, at most `limit`.
    pub async fn messages_after(
        &self,
        account: &str,
        visitor: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM webchat.messages
                     WHERE account_id = $1 AND visitor_id = $2 AND seq > $3 ORDER BY seq LIMIT $4"
                ),
                &[&account, &visitor, &after_seq, &limit],
            )
            .await?;
        Ok(rows.iter().map(StoredMessage::from_row).collect())
    }

    /// Raises the visitor's delivered or read watermark to `up_to_seq` (never down, never past
    /// the thread) and writes a receipt for each outbound message it passes, built by
    /// `receipt(visitor, message)`. Returns the new watermark.
    pub async fn advance_visitor_watermark(
        &self,
        account: &str,
        visitor: &str,
        watermark: Watermark,
        up_to_seq: i64,
        receipt: &(dyn Fn(&Visitor, &StoredMessage) -> Envelope + Send + Sync),
    ) -> Result<Option<i64>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                &format!(
                    "SELECT {VISITOR_COLUMNS} FROM webchat.visitors
                     WHERE account_id = $1 AND visitor_id = $2 FOR UPDATE"
                ),
                &[&account, &visitor],
            )
            .await?
        else {
            return Ok(None);
        };
        let current = Visitor::from_row(&row);
        let before = match watermark {
            Watermark::Delivered => current.delivered_seq,
            Watermark::VisitorRead => current.visitor_read_seq,
        };
        let target = up_to_seq.min(current.last_seq);
        if target <= before {
            return Ok(Some(before));
        }
        let sql = match watermark {
            Watermark::Delivered => {
                "UPDATE webchat.visitors SET delivered_seq = $3 WHERE account_id = $1 AND visitor_id = $2"
            }
            // Read implies received.
            Watermark::VisitorRead => {
                "UPDATE webchat.visitors SET visitor_read_seq = $3, delivered_seq = GREATEST(delivered_seq, $3) WHERE account_id = $1 AND visitor_id = $2"
            }
        };
        tx.execute(sql, &[&account, &visitor, &target]).await?;
        let passed = tx
            .query(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM webchat.messages
                     WHERE account_id = $1 AND visitor_id = $2 AND seq > $3 AND seq <= $4
                       AND outbound_id IS NOT NULL ORDER BY seq"
                ),
                &[&account, &visitor, &before, &target],
            )
            .await?;
        for row in &passed {
            let envelope = receipt(&current, &StoredMessage::from_row(row));
            OUTBOX.record(&tx, &envelope, self.partitions).await?;
        }
        tx.commit().await?;
        Ok(Some(target))
    }

    /// Raises the agent's read watermark of the visitor's messages; returns the new one.
    pub async fn advance_agent_read(
        &self,
        account: &str,
        visitor: &str,
        up_to_seq: i64,
    ) -> Result<Option<i64>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "UPDATE webchat.visitors SET agent_read_seq = GREATEST(agent_read_seq, LEAST($3, last_seq))
                 WHERE account_id = $1 AND visitor_id = $2 RETURNING agent_read_seq",
                &[&account, &visitor, &up_to_seq],
            )
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// The seq of a message of the visitor's thread, by its id or delivery's id.
    pub async fn seq_of(&self, account: &str, visitor: &str, id: &str) -> Result<Option<i64>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT seq FROM webchat.messages
                 WHERE account_id = $1 AND visitor_id = $2 AND (id = $3 OR outbound_id = $3)",
                &[&account, &visitor, &id],
            )
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Stores an uploaded file.
    pub async fn insert_attachment(&self, attachment: &Attachment, content: &[u8]) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO webchat.attachments (id, account_id, visitor_id, mime_type, filename, size_bytes, sha256, content)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &attachment.id,
                    &attachment.account_id,
                    &attachment.visitor_id,
                    &attachment.mime_type,
                    &attachment.filename,
                    &attachment.size_bytes,
                    &attachment.sha256,
                    &content,
                ],
            )
            .await?;
        Ok(())
    }

    /// The visitor's attachments with these ids (others' ids are not found).
    pub async fn attachments_of(
        &self,
        account: &str,
        visitor: &str,
        ids: &[String],
    ) -> Result<Vec<Attachment>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, account_id, visitor_id, mime_type, filename, size_bytes, sha256 FROM webchat.attachments
                 WHERE account_id = $1 AND visitor_id = $2 AND id = ANY($3)",
                &[&account, &visitor, &ids],
            )
            .await?;
        Ok(rows.iter().map(Attachment::from_row).collect())
    }

    /// Deletes uploads older than `ttl` that no message of their visitor refers to; returns
    /// how many.
    pub async fn delete_unsent_attachments(&self, ttl: std::time::Duration) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        let deleted = client
            .execute(
                "DELETE FROM webchat.attachments a
                 WHERE a.created_at < now() - make_interval(secs => $1)
                   AND NOT EXISTS (SELECT 1 FROM webchat.messages m
                                   WHERE m.account_id = a.account_id AND m.visitor_id = a.visitor_id
                                     AND m.attachments @> jsonb_build_array(jsonb_build_object('id', a.id)))",
                &[&ttl.as_secs_f64()],
            )
            .await?;
        Ok(deleted)
    }

    /// One attachment with its bytes.
    pub async fn attachment(
        &self,
        account: &str,
        id: &str,
    ) -> Result<Option<(Attachment, Vec<u8>)>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT id, account_id, visitor_id, mime_type, filename, size_bytes, sha256, content
                 FROM webchat.attachments WHERE account_id = $1 AND id = $2",
                &[&account, &id],
            )
            .await?;
        Ok(row.map(|row| (Attachment::from_row(&row), row.get(7))))
    }
}

/// An uploaded file's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// `att_…` (unguessable).
    pub id: String,
    /// The channel account.
    pub account_id: String,
    /// The visitor who uploaded it.
    pub visitor_id: String,
    /// Its content type.
    pub mime_type: String,
    /// Its name as uploaded (sanitized).
    pub filename: String,
    /// Its size.
    pub size_bytes: i64,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
}

impl Attachment {
    fn from_row(row: &tokio_postgres::Row) -> Self {
        Self {
            id: row.get(0),
            account_id: row.get(1),
            visitor_id: row.get(2),
            mime_type: row.get(3),
            filename: row.get(4),
            size_bytes: row.get(5),
            sha256: row.get(6),
        }
    }
}
