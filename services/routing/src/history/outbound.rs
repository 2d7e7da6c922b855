//! Outbound messages from delivery's events join the conversation's history with their author
//! and status. An agent's message claims an unassigned conversation for that agent (the
//! conversation's row lock makes two racing agents agree on one; both messages are kept) and
//! pauses the bot. Statuses only move forward.

use prost::Message as _;
use switchboard_domain::{AgentId, ChannelAccountId, ContactId, ConversationId, MessageId, WorkspaceId};
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::Transaction;
use switchboard_proto::events::v1::{Envelope, InboundMessage, OutboundMessage, OutboundStatus};

use super::{Appended, History};
use crate::RoutingError;
use crate::assignment;
use crate::changes::{self, Changes};
use crate::error::stored_id;
use crate::event_log::Event;
use crate::policy::WorkspacePolicy;
use crate::{bot, delivery_status};

/// Author kinds delivery may report.
const AUTHOR_KINDS: [&str; 5] = ["agent", "bot", "workflow", "broadcast", "api"];

impl History {
    /// Adds an outbound message to its conversation's history.
    pub async fn record_outbound(
        &self,
        envelope: &Envelope,
        outbound: &OutboundMessage,
    ) -> Result<Appended, RoutingError> {
        let message_id = MessageId::parse(&outbound.message_id)
            .map_err(|error| RoutingError::Corrupt(format!("outbound message id: {error}")))?;
        if !AUTHOR_KINDS.contains(&outbound.author_kind.as_str()) {
            return Err(RoutingError::Corrupt(format!(
                "outbound author kind {:?}",
                outbound.author_kind
            )));
        }
        if outbound.contact_id.is_empty() || outbound.channel_account_id.is_empty() {
            return Err(RoutingError::Corrupt(
                "outbound message without contact or channel account".to_owned(),
            ));
        }
        let channel = switchboard_domain::Channel::from_proto(outbound.channel)
            .map_err(|error| RoutingError::Corrupt(error.to_string()))?;
        let workspace: WorkspaceId = stored_id("event workspace_id", &envelope.workspace_id)?;
        let contact: ContactId = stored_id("event contact_id", &outbound.contact_id)?;
        let account: ChannelAccountId = stored_id("event channel_account_id", &outbound.channel_account_id)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut changes = Changes::default();
        let conversation_id = if outbound.conversation_id.is_empty() {
            let candidate = ConversationId::generate();
            let id: ConversationId = stored_id(
                "conversation id",
                tx.query_one_cached(
                    "INSERT INTO routing.conversations AS c
                         (id, workspace_id, contact_id, channel_account_id, channel, opened_at, last_message_at)
                     VALUES ($1, $2, $3, $4, $5, now(), now())
                     ON CONFLICT (contact_id, channel_account_id) WHERE status = 'open'
                     DO UPDATE SET revision = c.revision + 1
                     RETURNING c.id",
                    &[
                        &candidate.as_str(),
                        &workspace.as_str(),
                        &contact.as_str(),
                        &account.as_str(),
                        &channel.as_str(),
                    ],
                )
                .await?
                .get(0),
            )?;
            if id == candidate {
                changes.events.push(Event::conversation(
                    &id,
                    &contact,
                    "conversation.opened",
                    serde_json::json!({
                        "channel": channel.as_str(),
                        "channel_account_id": outbound.channel_account_id,
                        "by": "outbound",
                    }),
                ));
            }
            id
        } else {
            // An id that does not parse names no conversation, as the lock below would find.
            ConversationId::parse(&outbound.conversation_id)
                .map_err(|_| RoutingError::NotFound(format!("conversation {}", outbound.conversation_id)))?
        };
        // The conversation's row lock: racing agents' replies are decided one after the other.
        let locked = changes::lock(&tx, &workspace, &conversation_id).await?;
        let body = InboundMessage {
            provider_message_id: outbound.provider_message_id.clone(),
            parts: outbound.parts.clone(),
            ..InboundMessage::default()
        };
        let reply_to =
            (!outbound.reply_to_message_id.is_empty()).then_some(outbound.reply_to_message_id.as_str());
        let provider_id =
            (!outbound.provider_message_id.is_empty()).then_some(outbound.provider_message_id.as_str());
        let author_id = (!outbound.author_id.is_empty()).then_some(outbound.author_id.as_str());
        let status = delivery_status::stored(outbound.status).unwrap_or("queued");
        let inserted = tx
            .execute_cached(
                "INSERT INTO routing.messages
                     (id, workspace_id, conversation_id, contact_id, channel_account_id, provider_message_id,
                      direction, author_kind, author_id, body, status, status_changed_at, reply_to_message_id)
                 VALUES ($1, $2, $3, $4, $5, $6, 'outbound', $7, $8, $9, $10, now(), $11)
                 ON CONFLICT DO NOTHING",
                &[
                    &message_id.as_str(),
                    &workspace.as_str(),
                    &conversation_id.as_str(),
                    &locked.contact_id.as_str(),
                    &locked.channel_account_id.as_str(),
                    &provider_id,
                    &outbound.author_kind,
                    &author_id,
                    &body.encode_to_vec(),
                    &status,
                    &reply_to,
                ],
            )
            .await?;
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(Appended::Duplicate);
        }
        tx.execute_cached(
            "UPDATE routing.conversations SET last_message_at = GREATEST(last_message_at, now()) WHERE id = $1",
            &[&conversation_id.as_str()],
        )
        .await?;
        changes.events.push(Event::conversation(
            &conversation_id,
            &locked.contact_id,
            "message.added",
            serde_json::json!({
                "message_id": message_id,
                "direction": "outbound",
                "author_kind": outbound.author_kind,
                "author_id": outbound.author_id,
            }),
        ));
        if outbound.author_kind == "agent"
            && let Some(agent) = author_id
        {
            self.agent_replied(&tx, &locked, agent, &mut changes).await?;
        }
        changes
            .commit(tx, &workspace, self.dispatcher.partitions())
            .await?;
        self.dispatcher.after_commit(&changes).await;
        Ok(Appended::Added {
            conversation_id,
            message_id,
            opened: false,
        })
    }

    /// An agent's reply: claims the conversation when nobody has it, and pauses the bot.
    async fn agent_replied(
        &self,
        tx: &switchboard_postgres::Transaction<'_>,
        locked: &changes::Locked,
        agent: &str,
        changes: &mut Changes,
    ) -> Result<(), RoutingError> {
        if locked.open && locked.assignee_id.is_none() {
            let assigned = match AgentId::parse(agent) {
                Ok(id) => {
                    assignment::assign(tx, self.dispatcher.partitions(), locked, &id, false, changes).await
                }
                // An author id that does not parse names no agent either.
                Err(_) => Err(RoutingError::NotFound(format!("agent {agent}"))),
            };
            match assigned {
                Ok(()) => {}
                // A reply from someone routing does not know as an agent claims nothing.
                Err(RoutingError::NotFound(what)) => {
                    tracing::warn!(agent, what, "a reply's author is not an agent of the workspace");
                }
                Err(error) => return Err(error),
            }
        }
        let policy = WorkspacePolicy::load(tx, &locked.workspace_id).await?;
        if let Some(until) = bot::pause_at_least(tx, &locked.id, policy.bot_pause_minutes).await? {
            changes.events.push(Event::conversation(
                &locked.id,
                &locked.contact_id,
                "conversation.bot_paused",
                serde_json::json!({ "until": until, "by": agent }),
            ));
        }
        Ok(())
    }

    /// Moves an outbound message's status forward (never back; failed is terminal).
    pub async fn record_status(
        &self,
        envelope: &Envelope,
        status: &OutboundStatus,
    ) -> Result<Appended, RoutingError> {
        let Some(change) = StatusChange::of(envelope, status)? else {
            return Ok(Appended::Duplicate);
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(event) = change.apply(&tx).await? else {
            // Unknown, or not a step forward (a late or repeated receipt).
            tx.rollback().await?;
            return Ok(Appended::Duplicate);
        };
        let changes = Changes {
            events: vec![event],
            ..Changes::default()
        };
        changes
            .commit(tx, &change.workspace, self.dispatcher.partitions())
            .await?;
        self.dispatcher.after_commit(&changes).await;
        Ok(Appended::Updated {
            message_id: change.message_id,
        })
    }
}

/// A status of an outbound message, parsed where it comes off the bus.
pub(crate) struct StatusChange<'a> {
    /// The message's workspace.
    pub(crate) workspace: WorkspaceId,
    /// The message.
    pub(crate) message_id: MessageId,
    /// The stored status name.
    name: &'static str,
    status: &'a OutboundStatus,
}

impl<'a> StatusChange<'a> {
    /// Reads `status` (the payload of `envelope`); `None` for a malformed id, which no stored
    /// message can match (like an unknown message).
    pub(crate) fn of(envelope: &Envelope, status: &'a OutboundStatus) -> Result<Option<Self>, RoutingError> {
        let Some(name) = delivery_status::stored(status.status) else {
            return Err(RoutingError::Corrupt(
                "outbound status without a status".to_owned(),
            ));
        };
        let ids = WorkspaceId::parse(&envelope.workspace_id)
            .and_then(|workspace| Ok((workspace, MessageId::parse(&status.message_id)?)));
        match ids {
            Ok((workspace, message_id)) => Ok(Some(Self {
                workspace,
                message_id,
                name,
                status,
            })),
            Err(error) => {
                tracing::debug!(error = %error, "outbound status with a malformed id; ignored");
                Ok(None)
            }
        }
    }

    /// Moves the message's status forward in `tx`; the event to log, or `None` when the
    /// message is unknown or this is not a step forward (a late or repeated receipt).
    pub(crate) async fn apply(&self, tx: &Transaction<'_>) -> Result<Option<Event>, RoutingError> {
        let provider_id =
            (!self.status.provider_message_id.is_empty()).then_some(self.status.provider_message_id.as_str());
        let row = tx
            .query_opt_cached(
                &format!(
                    "UPDATE routing.messages
                     SET status = $2, status_changed_at = now(),
                         provider_message_id = coalesce(provider_message_id, $3)
                     WHERE id = $1 AND workspace_id = $4 AND direction = 'outbound'
                       AND coalesce(status, '') <> 'failed' AND {} < {}
                     RETURNING conversation_id, contact_id",
                    delivery_status::rank_sql("coalesce(status, '')"),
                    delivery_status::rank_sql("$2")
                ),
                &[
                    &self.message_id.as_str(),
                    &self.name,
                    &provider_id,
                    &self.workspace.as_str(),
                ],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let conversation_id: ConversationId = stored_id("message conversation_id", row.get(0))?;
        let contact_id: ContactId = stored_id("message contact_id", row.get(1))?;
        Ok(Some(Event::conversation(
            &conversation_id,
            &contact_id,
            "message.status_changed",
            serde_json::json!({
                "message_id": self.status.message_id,
                "status": self.name,
                "error_code": self.status.error.as_ref().map(|error| error.code.clone()),
            }),
        )))
    }
}
