//! The `delivery` schema: messages with their idempotency keys, status history, attempts and
//! the forward-only status change that publishes `outbound.status` through the outbox.

use std::str::FromStr;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use prost::Message as _;
use switchboard_domain::time::to_timestamp;
use switchboard_domain::{ChannelAccountId, ContactId, ConversationId, InvalidId, MessageId, WorkspaceId};
use switchboard_messaging::Partitions;
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::{GenericClient, Transaction};
use switchboard_proto::common::v1::ProviderError;
use switchboard_proto::delivery::v1 as proto;
use switchboard_proto::events::v1::{
    Envelope, OutboundMessage, OutboundStatus, SendRequested, envelope::Payload,
};

use crate::DeliveryError;
use crate::status;

/// Delivery's transactional outbox (send jobs and the events routing consumes).
pub const OUTBOX: switchboard_outbox::Outbox =
    switchboard_outbox::Outbox::new("delivery", 0x6465_6c69_7665_7279);

/// The family of send jobs (`send.<channel>`, queues `delivery.send.pNN`).
pub const SEND_FAMILY: &str = "send";

/// The columns [`MessageRow::from_row`] reads, in order.
pub const MESSAGE_COLUMNS: &str = "id, workspace_id, channel_account_id, channel, contact_id, conversation_id, \
     recipient, author_kind, author_id, content, reply_to_provider_message_id, human_agent_tag, priority, status, \
     provider_message_id, error_code, error_title, error_message, error_details, attempts, next_attempt_at, \
     outcome_unknown, resend_of, created_at, sent_at, deleted_at, payload_hash";

/// One stored outbound message.
#[derive(Debug, Clone)]
pub struct MessageRow {
    /// `msg_…`.
    pub id: MessageId,
    /// The owning workspace.
    pub workspace_id: WorkspaceId,
    /// `chacc_…`.
    pub channel_account_id: ChannelAccountId,
    /// Stored channel name.
    pub channel: String,
    /// `ct_…`.
    pub contact_id: ContactId,
    /// `conv_…` when the send named a conversation.
    pub conversation_id: Option<ConversationId>,
    /// The channel user id the provider addresses.
    pub recipient: String,
    /// Stored author kind (`agent`, `bot`, …).
    pub author_kind: String,
    /// Who wrote it.
    pub author_id: String,
    /// What it says.
    pub content: proto::OutboundContent,
    /// The quoted provider message id, or empty.
    pub reply_to_provider_message_id: String,
    /// Messenger / Instagram HUMAN_AGENT tag.
    pub human_agent_tag: bool,
    /// 0 live, 1 broadcast.
    pub priority: i16,
    /// Stored status name.
    pub status: String,
    /// Known once accepted.
    pub provider_message_id: Option<String>,
    /// The last provider error.
    pub error: ProviderError,
    /// Attempts claimed so far.
    pub attempts: i32,
    /// Set while a retry waits.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// A timed-out call left the outcome unknown.
    pub outcome_unknown: bool,
    /// The failed message this one resends.
    pub resend_of: Option<String>,
    /// When Send accepted it.
    pub created_at: DateTime<Utc>,
    /// When the provider accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// When it was deleted at the provider.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Digest of the Send request, for idempotent replays.
    pub payload_hash: Option<Vec<u8>>,
}

impl MessageRow {
    /// Reads a row selected with [`MESSAGE_COLUMNS`].
    pub fn from_row(row: &tokio_postgres::Row) -> Result<Self, DeliveryError> {
        let content: Vec<u8> = row.try_get(9)?;
        let conversation_id: String = row.try_get(5)?;
        Ok(Self {
            id: id_column(row, 0)?,
            workspace_id: id_column(row, 1)?,
            channel_account_id: id_column(row, 2)?,
            channel: row.try_get(3)?,
            contact_id: id_column(row, 4)?,
            conversation_id: if conversation_id.is_empty() {
                None
            } else {
                Some(parse_stored(&conversation_id)?)
            },
            recipient: row.try_get(6)?,
            author_kind: row.try_get(7)?,
            author_id: row.try_get(8)?,
            content: proto::OutboundContent::decode(content.as_slice())
                .map_err(|error| DeliveryError::Corrupt(format!("stored content: {error}")))?,
            reply_to_provider_message_id: row.try_get(10)?,
            human_agent_tag: row.try_get(11)?,
            priority: row.try_get(12)?,
            status: row.try_get(13)?,
            provider_message_id: row.try_get(14)?,
            error: ProviderError {
                code: row.try_get(15)?,
                title: row.try_get(16)?,
                message: row.try_get(17)?,
                details: row.try_get(18)?,
            },
            attempts: row.try_get(19)?,
            next_attempt_at: row.try_get(20)?,
            outcome_unknown: row.try_get(21)?,
            resend_of: row.try_get(22)?,
            created_at: row.try_get(23)?,
            sent_at: row.try_get(24)?,
            deleted_at: row.try_get(25)?,
            payload_hash: row.try_get(26)?,
        })
    }

    /// The provider-neutral view of this message that the adapters take.
    pub fn outbound(&self) -> switchboard_channels::outbound::OutboundMessage<'_> {
        switchboard_channels::outbound::OutboundMessage {
            message_id: self.id.as_str(),
            recipient: &self.recipient,
            content: &self.content,
            reply_to_provider_message_id: (!self.reply_to_provider_message_id.is_empty())
                .then_some(self.reply_to_provider_message_id.as_str()),
            human_agent_tag: self.human_agent_tag,
            author_kind: &self.author_kind,
        }
    }

    /// The conversation id as the wire carries it (empty when none was named).
    pub fn conversation_string(&self) -> String {
        self.conversation_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// The proto channel value.
    pub fn channel_value(&self) -> i32 {
        switchboard_domain::Channel::proto_value_of(&self.channel)
    }

    /// The API's view (history and attempts are filled in by [`load_details`]).
    pub fn to_proto(&self) -> proto::Message {
        proto::Message {
            id: self.id.to_string(),
            conversation_id: self.conversation_string(),
            contact_id: self.contact_id.to_string(),
            channel_account_id: self.channel_account_id.to_string(),
            channel: self.channel_value(),
            author_kind: crate::author::from_stored(&self.author_kind) as i32,
            author_id: self.author_id.clone(),
            content: Some(self.content.clone()),
            status: status::from_stored(&self.status) as i32,
            provider_message_id: self.provider_message_id.clone().unwrap_or_default(),
            error: (!self.error.code.is_empty()).then(|| self.error.clone()),
            history: Vec::new(),
            attempts: Vec::new(),
            resend_of: self.resend_of.clone().unwrap_or_default(),
            outcome_unknown: self.outcome_unknown,
            reply_to_provider_message_id: self.reply_to_provider_message_id.clone(),
            created_at: Some(to_timestamp(self.created_at)),
            deleted_at: self.deleted_at.map(to_timestamp),
            next_attempt_at: self.next_attempt_at.map(to_timestamp),
        }
    }
}

/// Reads the id in column `index`: a stored id that does not parse is corrupt.
pub fn id_column<T>(row: &tokio_postgres::Row, index: usize) -> Result<T, DeliveryError>
where
    T: FromStr<Err = InvalidId>,
{
    let raw: String = row.try_get(index)?;
    parse_stored(&raw)
}

fn parse_stored<T: FromStr<Err = InvalidId>>(raw: &str) -> Result<T, DeliveryError> {
    raw.parse()
        .map_err(|error: InvalidId| DeliveryError::Corrupt(format!("stored id: {error}")))
}

/// The message `id` of `workspace`; NOT_FOUND for other workspaces' ids.
pub async fn load(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &MessageId,
) -> Result<MessageRow, DeliveryError> {
    let row = client
        .query_opt_cached(
            &format!("SELECT {MESSAGE_COLUMNS} FROM delivery.messages WHERE id = $1 AND workspace_id = $2"),
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?
        .ok_or_else(|| DeliveryError::NotFound(format!("message {id}")))?;
    MessageRow::from_row(&row)
}

/// The message with its status history and attempts, as the API returns it.
pub async fn load_details(
    client: &impl GenericClient,
    row: &MessageRow,
) -> Result<proto::Message, DeliveryError> {
    let mut message = row.to_proto();
    let history = client
        .query_cached(
            "SELECT status, at, source, provider_status FROM delivery.status_history
             WHERE message_id = $1 ORDER BY id",
            &[&row.id.as_str()],
        )
        .await?;
    for entry in history {
        let name: String = entry.try_get(0)?;
        message.history.push(proto::StatusChange {
            status: status::from_stored(&name) as i32,
            at: Some(to_timestamp(entry.try_get(1)?)),
            source: entry.try_get(2)?,
            provider_status: entry.try_get(3)?,
        });
    }
    let attempts = client
        .query_cached(
            "SELECT number, started_at, finished_at, outcome, provider_status, error_code, error_title,
                    error_message, error_details, retry_after_ms
             FROM delivery.attempts WHERE message_id = $1 ORDER BY number",
            &[&row.id.as_str()],
        )
        .await?;
    for attempt in attempts {
        let number: i32 = attempt.try_get(0)?;
        let provider_status: i32 = attempt.try_get(4)?;
        let retry_after_ms: i64 = attempt.try_get(9)?;
        let code: String = attempt.try_get(5)?;
        message.attempts.push(proto::Attempt {
            number: u32::try_from(number).unwrap_or_default(),
            started_at: Some(to_timestamp(attempt.try_get(1)?)),
            finished_at: Some(to_timestamp(attempt.try_get(2)?)),
            outcome: attempt.try_get(3)?,
            provider_status: u32::try_from(provider_status).unwrap_or_default(),
            error: (!code.is_empty())
                .then(|| -> Result<ProviderError, DeliveryError> {
                    Ok(ProviderError {
                        code: code.clone(),
                        title: attempt.try_get(6)?,
                        message: attempt.try_get(7)?,
                        details: attempt.try_get(8)?,
                    })
                })
                .transpose()?,
            retry_after_ms: u64::try_from(retry_after_ms).unwrap_or_default(),
        });
    }
    Ok(message)
}

/// A status change to apply forward only.
#[derive(Debug, Clone, Default)]
pub struct StatusUpdate<'a> {
    /// The target stored status.
    pub status: &'a str,
    /// `send`, `receipt`, `watermark`, `retry` or `policy`.
    pub source: &'a str,
    /// The provider's own word for it.
    pub provider_status: &'a str,
    /// For failures.
    pub error: Option<&'a ProviderError>,
    /// The provider's id of the message, stored if none is yet, whether or not the status
    /// moves (receipts find the message by it).
    pub provider_message_id: Option<&'a str>,
}

/// [`advance`]'s statement, built once: the status rank it compares is spelled out in SQL.
/// The history entry is written by the same statement, only when the status moved.
static ADVANCE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH moved AS (
             UPDATE delivery.messages SET status = $2, outcome_unknown = false, updated_at = now(),
                 sent_at = CASE WHEN $2 IN ('sent', 'delivered', 'read') THEN COALESCE(sent_at, now()) ELSE sent_at END,
                 next_attempt_at = CASE WHEN $2 = 'failed' THEN NULL ELSE next_attempt_at END,
                 error_code = CASE WHEN $2 = 'failed' THEN $3 ELSE error_code END,
                 error_title = CASE WHEN $2 = 'failed' THEN $4 ELSE error_title END,
                 error_message = CASE WHEN $2 = 'failed' THEN $5 ELSE error_message END,
                 error_details = CASE WHEN $2 = 'failed' THEN $6 ELSE error_details END,
                 provider_message_id = COALESCE(provider_message_id, $7)
             WHERE id = $1 AND {}
             RETURNING id, workspace_id, contact_id, provider_message_id
         ), recorded AS (
             INSERT INTO delivery.status_history (message_id, status, source, provider_status)
             SELECT id, $2, $8, $9 FROM moved
         )
         SELECT workspace_id, contact_id, provider_message_id FROM moved",
        status::advances_sql("status", "$2")
    )
});

/// Moves message `id` to `update.status` when that is forward (see [`status::advances`]),
/// records the history and publishes `outbound.status`; returns whether it moved. A provider
/// id in `update` is stored in the same statement (or on its own when the status stays).
pub async fn advance(
    tx: &Transaction<'_>,
    partitions: &Partitions,
    id: &MessageId,
    update: &StatusUpdate<'_>,
) -> Result<bool, DeliveryError> {
    let empty = ProviderError::default();
    let error = update.error.unwrap_or(&empty);
    let Some(row) = tx
        .query_opt_cached(
            &ADVANCE_SQL,
            &[
                &id.as_str(),
                &update.status,
                &error.code,
                &error.title,
                &error.message,
                &error.details,
                &update.provider_message_id,
                &update.source,
                &update.provider_status,
            ],
        )
        .await?
    else {
        if let Some(provider_id) = update.provider_message_id {
            tx.execute_cached(
                "UPDATE delivery.messages SET provider_message_id = $2 WHERE id = $1 AND provider_message_id IS NULL",
                &[&id.as_str(), &provider_id],
            )
            .await?;
        }
        return Ok(false);
    };
    let (workspace, contact, provider_id): (String, String, Option<String>) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    let envelope = envelope(
        &workspace,
        &contact,
        "outbound.status",
        Payload::OutboundStatus(OutboundStatus {
            message_id: id.to_string(),
            contact_id: contact.clone(),
            status: i32::from(status::from_stored(update.status)),
            provider_message_id: provider_id.unwrap_or_default(),
            error: update.error.cloned(),
        }),
    );
    OUTBOX.record(tx, &envelope, partitions).await?;
    Ok(true)
}

/// The `outbound.message` event of a newly accepted message (routing adds it to history).
pub fn accepted_event(row: &MessageRow) -> Envelope {
    let parts = if row.content.parts.is_empty() {
        crate::content::history_parts(&row.content)
    } else {
        row.content.parts.clone()
    };
    envelope(
        row.workspace_id.as_str(),
        row.contact_id.as_str(),
        "outbound.message",
        Payload::OutboundMessage(OutboundMessage {
            message_id: row.id.to_string(),
            conversation_id: row.conversation_string(),
            contact_id: row.contact_id.to_string(),
            channel_account_id: row.channel_account_id.to_string(),
            channel: row.channel_value(),
            author_kind: row.author_kind.clone(),
            author_id: row.author_id.clone(),
            parts,
            status: i32::from(status::from_stored(&row.status)),
            provider_message_id: row.provider_message_id.clone().unwrap_or_default(),
            reply_to_message_id: String::new(),
        }),
    )
}

/// The job of attempt `attempt` of `row`, for its account's partition.
pub fn send_job(row: &MessageRow, attempt: i32) -> Envelope {
    // Live replies and broadcasts share the account's partition, so its limiter lives in one
    // process; the lane there sends live replies first.
    let live = row.priority == 0;
    let mut envelope = envelope(
        row.workspace_id.as_str(),
        row.channel_account_id.as_str(),
        &format!("{SEND_FAMILY}.{}", row.channel),
        Payload::SendRequested(SendRequested {
            message_id: row.id.to_string(),
            attempt: u32::try_from(attempt).unwrap_or_default(),
            channel_account_id: row.channel_account_id.to_string(),
            order_key: if live {
                format!("{}/{}", row.channel_account_id, row.recipient)
            } else {
                String::new()
            },
            recipient: row.recipient.clone(),
            live,
        }),
    );
    envelope.correlation_id = row.id.to_string();
    envelope
}

/// Queues attempt `attempt` of `row` on its account's partition.
pub async fn queue_send(
    tx: &Transaction<'_>,
    partitions: &Partitions,
    row: &MessageRow,
    attempt: i32,
) -> Result<(), DeliveryError> {
    OUTBOX.record(tx, &send_job(row, attempt), partitions).await?;
    Ok(())
}

fn envelope(workspace: &str, partition_key: &str, event_type: &str, payload: Payload) -> Envelope {
    Envelope {
        event_id: switchboard_domain::EventId::generate().into_string(),
        event_type: event_type.to_owned(),
        occurred_at: Some(to_timestamp(Utc::now())),
        workspace_id: workspace.to_owned(),
        correlation_id: String::new(),
        causation_id: String::new(),
        partition_key: partition_key.to_owned(),
        payload: Some(payload),
    }
}
