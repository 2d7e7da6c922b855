//! A visitor's thread: appending messages (deduplicated by client id or delivery's id, with
//! their events in the outbox), reading it after a seq, and moving its watermarks.

use switchboard_domain::ChannelAccountId;
use switchboard_postgres::StoreError;
use switchboard_proto::events::v1::Envelope;

use super::{
    EventsOf, MESSAGE_COLUMNS, NewMessage, OUTBOX, Store, StoredMessage, VISITOR_COLUMNS, Visitor, Watermark,
};

impl Store {
    /// Appends `message` to the visitor's thread unless its client id (visitor messages) or
    /// outbound id (delivery's) is already there; returns the stored message and whether it is
    /// new. `events` are written to the outbox in the same transaction (new messages only).
    pub async fn append(
        &self,
        account: &ChannelAccountId,
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
        account: &ChannelAccountId,
        visitor: &str,
        client_id: &str,
    ) -> Result<Option<StoredMessage>, StoreError> {
        self.find_duplicate(account, visitor, Some(client_id), None).await
    }

    /// The message already stored with this client id (visitor) or outbound id (delivery).
    async fn find_duplicate(
        &self,
        account: &ChannelAccountId,
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
                        &[&account.as_str(), &visitor, &client_id],
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
                        &[&account.as_str(), &outbound_id],
                    )
                    .await?
            }
            (None, None) => None,
        };
        Ok(row.as_ref().map(StoredMessage::from_row))
    }

    async fn insert(
        &self,
        account: &ChannelAccountId,
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
                &[&account.as_str(), &visitor],
            )
            .await?
        else {
            return Ok(None);
        };
        let updated = Visitor::from_row(account, &row);
        let id = format!("wcm_{}", uuid::Uuid::now_v7().simple());
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO webchat.messages
                       (account_id, visitor_id, seq, id, author, author_name, client_id, outbound_id, body, attachments, buttons)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {MESSAGE_COLUMNS}"
                ),
                &[
                    &account.as_str(),
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
            OUTBOX.record(&tx, &envelope, &self.partitions).await?;
        }
        tx.commit().await?;
        Ok(Some(stored))
    }

    /// Messages after `after_seq`, oldest first, at most `limit`.
    pub async fn messages_after(
        &self,
        account: &ChannelAccountId,
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
                &[&account.as_str(), &visitor, &after_seq, &limit],
            )
            .await?;
        Ok(rows.iter().map(StoredMessage::from_row).collect())
    }

    /// Raises the visitor's delivered or read watermark to `up_to_seq` (never down, never past
    /// the thread) and writes a receipt for each outbound message it passes, built by
    /// `receipt(visitor, message)`. Returns the new watermark.
    pub async fn advance_visitor_watermark(
        &self,
        account: &ChannelAccountId,
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
                &[&account.as_str(), &visitor],
            )
            .await?
        else {
            return Ok(None);
        };
        let current = Visitor::from_row(account, &row);
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
        tx.execute(sql, &[&account.as_str(), &visitor, &target]).await?;
        let passed = tx
            .query(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM webchat.messages
                     WHERE account_id = $1 AND visitor_id = $2 AND seq > $3 AND seq <= $4
                       AND outbound_id IS NOT NULL ORDER BY seq"
                ),
                &[&account.as_str(), &visitor, &before, &target],
            )
            .await?;
        for row in &passed {
            let envelope = receipt(&current, &StoredMessage::from_row(row));
            OUTBOX.record(&tx, &envelope, &self.partitions).await?;
        }
        tx.commit().await?;
        Ok(Some(target))
    }

    /// Raises the agent's read watermark of the visitor's messages; returns the new one.
    pub async fn advance_agent_read(
        &self,
        account: &ChannelAccountId,
        visitor: &str,
        up_to_seq: i64,
    ) -> Result<Option<i64>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "UPDATE webchat.visitors SET agent_read_seq = GREATEST(agent_read_seq, LEAST($3, last_seq))
                 WHERE account_id = $1 AND visitor_id = $2 RETURNING agent_read_seq",
                &[&account.as_str(), &visitor, &up_to_seq],
            )
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// The seq of a message of the visitor's thread, by its id or delivery's id.
    pub async fn seq_of(
        &self,
        account: &ChannelAccountId,
        visitor: &str,
        id: &str,
    ) -> Result<Option<i64>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT seq FROM webchat.messages
                 WHERE account_id = $1 AND visitor_id = $2 AND (id = $3 OR outbound_id = $3)",
                &[&account.as_str(), &visitor, &id],
            )
            .await?;
        Ok(row.map(|row| row.get(0)))
    }
}
