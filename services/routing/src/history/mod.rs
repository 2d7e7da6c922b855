//! The consumer of `routing.contact.pNN`: contacts' resolved inbound events become messages of
//! the contact's open conversation on that channel account (opening one when none is open),
//! exactly once; erasure tombstones purge the contact's history.
//!
//! Exactly once without a separate dedupe table: the message's unique key (channel account,
//! provider message id) decides. A duplicate's transaction is rolled back whole, so a replay
//! never touches or opens a conversation. At most one open conversation per contact and
//! account is a partial unique index, so concurrent first messages agree on one.

mod outbound;
mod snapshot;
mod updates;

use chrono::{DateTime, Utc};
use prost::Message as _;
use switchboard_domain::time::from_timestamp;
use switchboard_domain::{
    AgentId, Channel, ChannelAccountId, ContactId, ConversationId, MessageId, WorkspaceId,
};
use switchboard_messaging::{Handler, HandlerError, Incoming};
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::{Pool, Transaction};
use switchboard_proto::events::v1::{
    BotTurn, ContactChange, ContactResolvedInbound, Envelope, InboundMessage, envelope::Payload,
    inbound_event::Kind,
};

use crate::RoutingError;
use crate::assignment::{self, Dispatcher};
use crate::bot;
use crate::changes::{self, Changes};
use crate::error::stored_id;
use crate::event_log::Event;
use crate::policy::WorkspacePolicy;
use snapshot::ContactSnapshot;

/// The component consuming contacts' events, and their family.
pub const CONTACT_CONSUMER: &str = "routing";
/// The family of contacts' events (`contact.…`).
pub const CONTACT_FAMILY: &str = "contact";
/// The family of delivery's events about outbound messages (`outbound.…`), consumed from
/// `routing.outbound.pNN`.
pub const OUTBOUND_FAMILY: &str = "outbound";

/// What appending one inbound message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// A new message in `conversation_id`; `opened` when that conversation was opened for it.
    Added {
        /// The conversation.
        conversation_id: ConversationId,
        /// The message.
        message_id: MessageId,
        /// The conversation was opened by this message.
        opened: bool,
    },
    /// A reaction, edit or delete applied to `message_id`.
    Updated {
        /// The message changed.
        message_id: MessageId,
    },
    /// The same provider message was appended before: nothing changed.
    Duplicate,
    /// Not a message routing keeps (echo, receipt, reaction, …).
    Ignored,
}

/// The ids of a resolved inbound event, parsed where it comes off the bus.
pub(crate) struct InboundIds {
    /// The envelope's workspace.
    pub(crate) workspace: WorkspaceId,
    /// The resolved contact.
    pub(crate) contact: ContactId,
    /// The event's channel account.
    pub(crate) account: ChannelAccountId,
}

impl InboundIds {
    /// Parses the ids of `resolved` (whose event is `event`) in `envelope`.
    pub(crate) fn parse(
        envelope: &Envelope,
        resolved: &ContactResolvedInbound,
        event: &switchboard_proto::events::v1::InboundEvent,
    ) -> Result<Self, RoutingError> {
        Ok(Self {
            workspace: stored_id("event workspace_id", &envelope.workspace_id)?,
            contact: stored_id("event contact_id", &resolved.contact_id)?,
            account: stored_id("event channel_account_id", &event.channel_account_id)?,
        })
    }
}

/// Keeps conversation history from contacts' events.
pub struct History {
    pool: Pool,
    dispatcher: Dispatcher,
}

impl History {
    /// History stored in `pool`; new conversations are routed through `dispatcher`.
    pub fn new(pool: Pool, dispatcher: Dispatcher) -> Self {
        Self { pool, dispatcher }
    }

    /// Appends a resolved inbound event of `envelope`'s workspace: a message joins its
    /// conversation; a reaction, edit or delete changes its target message.
    pub async fn append(
        &self,
        envelope: &Envelope,
        resolved: &ContactResolvedInbound,
    ) -> Result<Appended, RoutingError> {
        let Some(event) = &resolved.event else {
            return Err(RoutingError::Corrupt(
                "contact.inbound without its event".to_owned(),
            ));
        };
        let message = match &event.kind {
            Some(Kind::Message(message)) => message,
            Some(Kind::Reaction(reaction)) => {
                return self
                    .update(envelope, resolved, event, updates::Update::Reaction(reaction))
                    .await;
            }
            Some(Kind::Edit(edit)) => {
                return self
                    .update(envelope, resolved, event, updates::Update::Edit(edit))
                    .await;
            }
            Some(Kind::Delete(delete)) => {
                return self
                    .update(envelope, resolved, event, updates::Update::Delete(delete))
                    .await;
            }
            _ => return Ok(Appended::Ignored),
        };
        if message.echo || message.provider_message_id.is_empty() {
            return Ok(Appended::Ignored);
        }
        let channel =
            Channel::from_proto(event.channel).map_err(|error| RoutingError::Corrupt(error.to_string()))?;
        let at = event
            .provider_timestamp
            .as_ref()
            .or(event.received_at.as_ref())
            .and_then(from_timestamp)
            .unwrap_or_else(Utc::now);
        let provider_timestamp = event.provider_timestamp.as_ref().and_then(from_timestamp);
        let InboundIds {
            workspace,
            contact,
            account,
        } = InboundIds::parse(envelope, resolved, event)?;
        let mut client = self.pool.get().await?;
        // A duplicate is found by the message insert below; its transaction is rolled back.
        let tx = client.transaction().await?;
        let policy = WorkspacePolicy::load(&tx, &workspace).await?;
        let snapshot = ContactSnapshot::of(resolved.contact.as_ref());
        let opened_conversation = open_conversation(
            &tx,
            &workspace,
            &contact,
            &account,
            channel,
            at,
            &snapshot,
            policy.bot_enabled,
        )
        .await?;
        let (conversation_id, opened) = (opened_conversation.id.clone(), opened_conversation.opened);
        let message_id = MessageId::generate();
        let inserted = insert_message(
            &tx,
            &workspace,
            &conversation_id,
            &contact,
            &account,
            &message_id,
            message,
            provider_timestamp,
        )
        .await?;
        if !inserted {
            // A concurrent copy won: nothing of this one may remain.
            tx.rollback().await?;
            return Ok(Appended::Duplicate);
        }
        let mut changes = Changes::default();
        let conversation = changes::Locked {
            id: conversation_id.clone(),
            workspace_id: workspace.clone(),
            contact_id: contact.clone(),
            channel_account_id: account.clone(),
            open: true,
            assignee_id: None,
            team_id: None,
        };
        if opened {
            changes.events.push(Event::conversation(
                &conversation_id,
                &contact,
                "conversation.opened",
                serde_json::json!({
                    "channel": channel.as_str(),
                    "channel_account_id": account,
                }),
            ));
            assignment::route_new(
                &tx,
                self.dispatcher.partitions(),
                &conversation,
                &policy,
                self.dispatcher.clock().now(),
                &mut changes,
            )
            .await?;
        }
        changes.events.push(Event::conversation(
            &conversation_id,
            &contact,
            "message.added",
            serde_json::json!({
                "message_id": message_id,
                "direction": "inbound",
            }),
        ));
        crate::auto_reply::after_inbound(
            &tx,
            self.dispatcher.partitions(),
            &conversation,
            event.channel,
            self.dispatcher.clock().now(),
            &policy,
            &mut changes,
        )
        .await?;
        if opened_conversation.bot_takes(message) {
            let turn = BotTurn {
                conversation_id: conversation_id.to_string(),
                contact_id: contact.to_string(),
                channel_account_id: account.to_string(),
                channel: event.channel,
                controller_version: opened_conversation.controller_version,
                message_id: message_id.to_string(),
                message: Some(message.clone()),
            };
            bot::hand_over(&tx, self.dispatcher.partitions(), &workspace, turn).await?;
            changes.published = true;
        }
        changes
            .commit(tx, &workspace, self.dispatcher.partitions())
            .await?;
        self.dispatcher.after_commit(&changes).await;
        Ok(Appended::Added {
            conversation_id,
            message_id,
            opened,
        })
    }

    /// Deletes every conversation and message of an erased contact.
    pub async fn purge(&self, workspace: &WorkspaceId, contact_id: &ContactId) -> Result<u64, RoutingError> {
        let (workspace, contact_id) = (workspace.as_str(), contact_id.as_str());
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Their open assigned conversations no longer count against the agents' capacity.
        let freed = tx
            .query_cached(
                "WITH counted AS (
                     SELECT assignee_id, count(*)::int AS n FROM routing.conversations
                     WHERE workspace_id = $1 AND contact_id = $2 AND status = 'open' AND assignee_id IS NOT NULL
                     GROUP BY assignee_id
                 )
                 UPDATE routing.agents a SET open_count = GREATEST(a.open_count - counted.n, 0)
                 FROM counted WHERE a.id = counted.assignee_id
                 RETURNING a.id",
                &[&workspace, &contact_id],
            )
            .await?;
        let removed = tx
            .execute_cached(
                "DELETE FROM routing.conversations WHERE workspace_id = $1 AND contact_id = $2",
                &[&workspace, &contact_id],
            )
            .await?;
        tx.execute_cached(
            "DELETE FROM routing.messages WHERE workspace_id = $1 AND contact_id = $2",
            &[&workspace, &contact_id],
        )
        .await?;
        tx.execute_cached(
            "DELETE FROM routing.event_log WHERE workspace_id = $1 AND contact_id = $2",
            &[&workspace, &contact_id],
        )
        .await?;
        tx.commit().await?;
        // Only a hint for the hand-out (the sweep covers a team it misses): a malformed id is
        // logged, not a failure of the committed purge.
        let freed_agents = freed
            .iter()
            .filter_map(|row| {
                stored_id::<AgentId>("agents id", row.get(0))
                    .inspect_err(|error| tracing::warn!(error = %error, "purge frees a malformed agent id"))
                    .ok()
            })
            .collect();
        let changes = Changes {
            freed_agents,
            ..Changes::default()
        };
        self.dispatcher.after_commit(&changes).await;
        Ok(removed)
    }
}

/// The contact's open conversation on the account, as the new message finds it.
struct OpenConversation {
    id: ConversationId,
    /// Opened for this message.
    opened: bool,
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
#[allow(clippy::too_many_arguments)]
async fn open_conversation(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    contact_id: &ContactId,
    account: &ChannelAccountId,
    channel: Channel,
    at: DateTime<Utc>,
    snapshot: &ContactSnapshot,
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
                &workspace.as_str(),
                &contact_id.as_str(),
                &account.as_str(),
                &channel.as_str(),
                &at,
                &snapshot.json,
                &snapshot.search_text,
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

#[allow(clippy::too_many_arguments)]
async fn insert_message(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    conversation_id: &ConversationId,
    contact_id: &ContactId,
    account: &ChannelAccountId,
    message_id: &MessageId,
    message: &InboundMessage,
    provider_timestamp: Option<DateTime<Utc>>,
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
                &workspace.as_str(),
                &conversation_id.as_str(),
                &contact_id.as_str(),
                &account.as_str(),
                &message.provider_message_id,
                &message.encode_to_vec(),
                &message.reply_to_provider_message_id,
                &provider_timestamp,
            ],
        )
        .await?;
    Ok(inserted == 1)
}

impl Handler for History {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let envelope = message.decode_envelope().map_err(HandlerError::permanent)?;
        let classify = |error: RoutingError| HandlerError::classified(error.failure(), error);
        match &envelope.payload {
            Some(Payload::ContactInbound(resolved)) => {
                let appended = self.append(&envelope, resolved).await.map_err(classify)?;
                tracing::debug!(event_id = %envelope.event_id, ?appended, "inbound event appended");
            }
            Some(Payload::OutboundMessage(outbound)) => {
                let recorded = self
                    .record_outbound(&envelope, outbound)
                    .await
                    .map_err(classify)?;
                tracing::debug!(event_id = %envelope.event_id, ?recorded, "outbound message recorded");
            }
            Some(Payload::OutboundStatus(status)) => {
                let recorded = self.record_status(&envelope, status).await.map_err(classify)?;
                tracing::debug!(event_id = %envelope.event_id, ?recorded, "outbound status recorded");
            }
            Some(Payload::ContactChanged(changed)) if changed.change == ContactChange::Erased as i32 => {
                let ids = WorkspaceId::parse(&envelope.workspace_id)
                    .and_then(|workspace| Ok((workspace, ContactId::parse(&changed.contact_id)?)));
                let (workspace, contact) = match ids {
                    Ok(ids) => ids,
                    // Nothing of it can be stored: there is no history to purge.
                    Err(error) => {
                        tracing::warn!(error = %error, contact_id = %changed.contact_id, "erasure with a malformed id; nothing to purge");
                        return Ok(());
                    }
                };
                let removed = self.purge(&workspace, &contact).await.map_err(classify)?;
                tracing::info!(contact_id = %changed.contact_id, conversations = removed, "erased contact's history purged");
            }
            // Other contact events (created, updated, merged, …) need no history change yet.
            _ => {}
        }
        Ok(())
    }
}
