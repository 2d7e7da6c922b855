//! Files a visitor uploads before sending them in a message.

use switchboard_domain::ChannelAccountId;
use switchboard_postgres::StoreError;

use super::Store;

const ATTACHMENT_COLUMNS: &str = "id, visitor_id, mime_type, filename, size_bytes, sha256";

impl Store {
    /// Stores an uploaded file.
    pub async fn insert_attachment(&self, attachment: &Attachment, content: &[u8]) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO webchat.attachments (id, account_id, visitor_id, mime_type, filename, size_bytes, sha256, content)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &attachment.id,
                    &attachment.account_id.as_str(),
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
        account: &ChannelAccountId,
        visitor: &str,
        ids: &[String],
    ) -> Result<Vec<Attachment>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {ATTACHMENT_COLUMNS} FROM webchat.attachments
                     WHERE account_id = $1 AND visitor_id = $2 AND id = ANY($3)"
                ),
                &[&account.as_str(), &visitor, &ids],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| Attachment::from_row(account, row))
            .collect())
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
        account: &ChannelAccountId,
        id: &str,
    ) -> Result<Option<(Attachment, Vec<u8>)>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {ATTACHMENT_COLUMNS}, content FROM webchat.attachments WHERE account_id = $1 AND id = $2"
                ),
                &[&account.as_str(), &id],
            )
            .await?;
        Ok(row.map(|row| (Attachment::from_row(account, &row), row.get(6))))
    }
}

/// An uploaded file's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// `att_…` (unguessable).
    pub id: String,
    /// The channel account.
    pub account_id: ChannelAccountId,
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
    /// A row of [`ATTACHMENT_COLUMNS`] of `account`.
    fn from_row(account: &ChannelAccountId, row: &tokio_postgres::Row) -> Self {
        Self {
            id: row.get(0),
            account_id: account.clone(),
            visitor_id: row.get(1),
            mime_type: row.get(2),
            filename: row.get(3),
            size_bytes: row.get(4),
            sha256: row.get(5),
        }
    }
}
