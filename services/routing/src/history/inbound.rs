//! The steps of appending one inbound message, shared by the one-by-one path and batches:
//! parse it ([`NewMessage`]), store it in its conversation ([`store`]: the conversation opened
//! or touched, the message inserted unless it is a duplicate), then record what follows in the
//! same transaction ([`after_stored`]: routing of a new conversation, the event log entry, the
//! away message, the bot's turn).

use chrono::{DateTime, Utc};
use prost::Message as _;
use switchboard_domain::time::from_timestamp;
use switchboard_domain::{Channel, ConversationId, MessageId};
use switchboard_postgres::Transaction;
use switchboard_proto::events::v1::{
    BotTurn, ContactResolvedInbound, Envelope, InboundEvent, InboundMessage, inbound_event::Kind,
};

use super::snapshot::ContactSnapshot;
use super::{InboundIds, updates};
use crate::RoutingError;
use crate::assignment::{self, Dispatcher};
use crate::bot;
use crate::changes::{self, Changes};
use crate::error::stored_id;
use crate::policy::WorkspacePolicy;

/// What a resolved inbound event asks of the history.
pub(crate) enum Inbound<'a> {
    /// A new message to append.
    Message(NewMessage<'a>),
    /// A reaction, edit or delete of an earlier message.
    Update(&'a InboundEvent, updates::Update<'a>),
    /// Nothing routing keeps (echo, receipt, a message without provider id, …).
    Ignored,
}

impl<'a> Inbound<'a> {
    /// Reads `resolved` (the payload of `envelope`).
    pub(crate) fn of(
        envelope: &'a Envelope,
        resolved: &'a ContactResolvedInbound,
    ) -> Result<Self, RoutingError> {
        let Some(event) = &resolved.event else {
            return Err(RoutingError::Corrupt(
                "contact.inbound without its event".to_owned(),
            ));
        };
        let message = match &event.kind {
            Some(Kind::Message(message)) => message,
            Some(Kind::Reaction(reaction)) => {
                return Ok(Self::Update(event, updates::Update::Reaction(reaction)));
            }
            Some(Kind::Edit(edit)) => return Ok(Self::Update(event, updates::Update::Edit(edit))),
            Some(Kind::Delete(delete)) => return Ok(Self::Update(event, updates::Update::Delete(delete))),
            _ => return Ok(Self::Ignored),
        };
        if message.echo || message.provider_message_id.is_empty() {
            return Ok(Self::Ignored);
        }
        let channel =
            Channel::from_proto(event.channel).map_err(|error| RoutingError::Corrupt(error.to_string()))?;
        let at = event
            .provider_timestamp
            .as_ref()
            .or(event.received_at.as_ref())
            .and_then(from_timestamp)
            .unwrap_or_else(Utc::now);
        Ok(Self::Message(NewMessage {
            ids: InboundIds::parse(envelope, resolved, event)?,
            event,
            message,
            channel,
            at,
            provider_timestamp: event.provider_timestamp.as_ref().and_then(from_timestamp),
            snapshot: ContactSnapshot::of(resolved.contact.as_ref()),
        }))
    }
}

/// An inbound message to append, with its parsed ids and times.
pub(crate) struct NewMessage<'a> {
    /// Workspace, contact and channel account.
    pub(crate) ids: InboundIds,
    /// The event carrying it.
    pub(crate) event: &'a InboundEvent,
    /// The message.
    pub(crate) message: &'a InboundMessage,
    channel: Channel,
    /// When the customer sent it (the provider's time, else when it was received).
    at: DateTime<Utc>,
    provider_timestamp: Option<DateTime<Utc>>,
    snapshot: ContactSnapshot,
}

/// A message stored in its conversation.
pub(crate) struct Stored {
    /// The conversation as the message found it.
    pub(crate) conversation: OpenConversation,
    /// The new message's id.
    pub(crate) message_id: MessageId,
}

/// Opens or touches the message's conversation and inserts the message; `None` when the
/// message was inserted before (the caller rolls the transaction back: nothing of a duplicate
/// may remain).
pub(crate) async fn store(
    tx: &Transaction<'_>,
    new: &NewMessage<'_>,
    policy: &WorkspacePolicy,
) -> Result<Option<Stored>, RoutingError> {
    let conversation = open_conversation(tx, new, policy.bot_enabled).await?;
    let message_id = MessageId::generate();
    let inserted = insert_message(tx, new, &conversation.id, &message_id).await?;
    Ok(inserted.then_some(Stored {
        conversation,
        message_id,
    }))
}

/// Records what follows a stored message in its transaction: a new conversation's event and
/// routing, the message's event, the away message, the bot's turn.
pub(crate) async fn after_stored(
    tx: &Transaction<'_>,
    dispatcher: &Dispatcher,
    new: &NewMessage<'_>,
    stored: &Stored,
    policy: &WorkspacePolicy,
    changes: &mut Changes,
) -> Result<(), RoutingError> {
    let InboundIds {
        workspace,
        contact,
        account,
    } = &new.ids;
    let conversation_id = &stored.conversation.id;
    let conversation = changes::Locked {
        id: conversation_id.clone(),
        workspace_id: workspace.clone(),
        contact_id: contact.clone(),
        channel_account_id: account.clone(),
        open: true,
        assignee_id: None,
        team_id: None,
    };
    if stored.conversation.opened {
        changes.events.push(conversation.event(
            "conversation.opened",
            serde_json::json!({
                "channel": new.channel.as_str(),
                "channel_account_id": account,
            }),
        ));
        let now = dispatcher.clock().now();
        assignment::route_new(tx, dispatcher.partitions(), &conversation, policy, now, changes).await?;
    }
    changes.events.push(conversation.event(
        "message.added",
        serde_json::json!({
            "message_id": stored.message_id,
            "direction": "inbound",
        }),
    ));
    crate::auto_reply::after_inbound(
        tx,
        dispatcher.partitions(),
        &conversation,
        new.event.channel,
        dispatcher.clock().now(),
        policy,
        changes,
    )
    .await?;
    if stored.conversation.bot_takes(new.message) {
        let turn = BotTurn {
            conversation_id: conversation_id.to_string(),
            contact_id: contact.to_string(),
            channel_account_id: account.to_string(),
            channel: new.event.channel,
            controller_version: stored.conversation.controller_version,
            message_id: stored.message_id.to_string(),
            message: Some(new.message.clone()),
        };
        bot::hand_over(tx, dispatcher.partitions(), workspace, turn).await?;
        changes.published = true;
    }
    Ok(())
}

/// The contact's open conversation on the account, as the new message finds it.
pub(crate) struct OpenConversation {
    /// The conversation.
    pub(crate) id: ConversationId,
    /// Opened for this message.
    pub(crate) opened: bool,
    /// `bot` or `human`.
    controller: String,
    controller_version: i64,
    /// The bot is paused now.
    bot_paused: bool,
}

impl OpenConversation {
    /// Whether `message` goes to the bot: the bot controls the conversation and is not paused,
    /// or paused but the message is a button or list reply (not free text).
    fn bot_takes(&self, message: &InboundMessage) -> bool {
        let choice = message.parts.iter().any(|part| {
            matches!(
                part.part,
                Some(switchboard_proto::common::v1::content_part::Part::Choice(_))
            )
        });
        self.controller == "bot" && (!self.bot_paused || choice)
    }
}

/// The contact's open conversation on the account, opened now when there is none (under the
/// bot when the workspace enables it). The contact snapshot is refreshed and an archived
/// conversation comes back.
async fn open_conversation(
    tx: &Transaction<'_>,
    new: &NewMessage<'_>,
    bot_enabled: bool,
) -> Result<OpenConversation, RoutingError> {
    let candidate = ConversationId::generate();
    let row = tx
        .query_one(
            &tx.prepare_cached("INSERT INTO routing.conversations AS c
                 (id, workspace_id, contact_id, channel_account_id, channel, opened_at, last_inbound_at, last_message_at,
                  controller, contact_snapshot, search_text)
             VALUES ($1, $2, $3, $4, $5, now(), $6, $6,
                     CASE WHEN $9 THEN 'bot' ELSE 'human' END,
                     $7, $8)
             ON CONFLICT (contact_id, channel_account_id) WHERE status = 'open'
             DO UPDATE SET last_inbound_at = GREATEST(c.last_inbound_at, EXCLUDED.last_inbound_at),
                           last_message_at = GREATEST(c.last_message_at, EXCLUDED.last_message_at),
                           archived_at = NULL,
                           contact_snapshot = CASE WHEN EXCLUDED.search_text = '' THEN c.contact_snapshot
                                                   ELSE EXCLUDED.contact_snapshot END,
                           search_text = CASE WHEN EXCLUDED.search_text = '' THEN c.search_text
                                              ELSE EXCLUDED.search_text END,
                           revision = c.revision + 1
             RETURNING c.id, c.controller, c.controller_version,
                       coalesce(c.bot_paused_until > now(), false)").await?,
            &[
                &candidate.as_str(),
                &new.ids.workspace.as_str(),
                &new.ids.contact.as_str(),
                &new.ids.account.as_str(),
                &new.channel.as_str(),
                &new.at,
                &new.snapshot.json,
                &new.snapshot.search_text,
                &bot_enabled,
            ],
        )
        .await?;
    let id: ConversationId = stored_id("conversation id", row.get(0))?;
    Ok(OpenConversation {
        opened: id == candidate,
        id,
        controller: row.get(1),
        controller_version: row.get(2),
        bot_paused: row.get(3),
    })
}

/// Inserts the message into `conversation_id`; false when it is there already.
async fn insert_message(
    tx: &Transaction<'_>,
    new: &NewMessage<'_>,
    conversation_id: &ConversationId,
    message_id: &MessageId,
) -> Result<bool, RoutingError> {
    let inserted = tx
        .execute(
            &tx.prepare_cached(
                "INSERT INTO routing.messages
                 (id, workspace_id, conversation_id, contact_id, channel_account_id, provider_message_id,
                  direction, author_kind, body, reply_to_provider_message_id, provider_timestamp,
                  reply_to_message_id)
             VALUES ($1, $2, $3, $4, $5, $6, 'inbound', 'customer', $7, $8, $9,
                     (SELECT r.id FROM routing.messages r
                      WHERE r.channel_account_id = $5 AND r.provider_message_id = NULLIF($8, '')))
             ON CONFLICT (channel_account_id, provider_message_id) DO NOTHING",
            )
            .await?,
            &[
                &message_id.as_str(),
                &new.ids.workspace.as_str(),
                &conversation_id.as_str(),
                &new.ids.contact.as_str(),
                &new.ids.account.as_str(),
                &new.message.provider_message_id,
                &new.message.encode_to_vec(),
                &new.message.reply_to_provider_message_id,
                &new.provider_timestamp,
            ],
        )
        .await?;
    Ok(inserted == 1)
}
