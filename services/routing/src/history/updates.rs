//! Reactions, edits and deletes from the customer: applied to their target message, with the
//! earlier content kept as a revision. Replays are no-ops (the same reaction, the same edited
//! content, a second delete). An update whose target is not in the history (never seen, or
//! purged) is ignored.

use prost::Message as _;
use switchboard_domain::{ConversationId, MessageId};
use switchboard_postgres::CachedStatements as _;
use switchboard_proto::events::v1::{
    ContactResolvedInbound, Envelope, InboundEvent, InboundMessage, MessageDelete, MessageEdit, Reaction,
};

use super::{Appended, History, InboundIds};
use crate::RoutingError;
use crate::changes::Changes;
use crate::error::stored_id;
use crate::event_log::Event;

/// One change to an existing message.
pub(crate) enum Update<'a> {
    /// Added or removed a reaction (one per customer and message on these channels).
    Reaction(&'a Reaction),
    /// New content.
    Edit(&'a MessageEdit),
    /// Revoked.
    Delete(&'a MessageDelete),
}

impl Update<'_> {
    fn target(&self) -> &str {
        match self {
            Self::Reaction(reaction) => &reaction.target_provider_message_id,
            Self::Edit(edit) => &edit.target_provider_message_id,
            Self::Delete(delete) => &delete.target_provider_message_id,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Reaction(_) => "reaction",
            Self::Edit(_) => "edit",
            Self::Delete(_) => "delete",
        }
    }
}

impl History {
    /// Applies `update` to its target message.
    pub(crate) async fn update(
        &self,
        envelope: &Envelope,
        resolved: &ContactResolvedInbound,
        event: &InboundEvent,
        update: Update<'_>,
    ) -> Result<Appended, RoutingError> {
        if update.target().is_empty() {
            return Ok(Appended::Ignored);
        }
        let ids = match InboundIds::parse(envelope, resolved, event) {
            Ok(ids) => ids,
            // No stored message can match it: like a target not in the history.
            Err(error) => {
                tracing::warn!(error = %error, kind = update.kind(), "update with a malformed id; ignored");
                return Ok(Appended::Ignored);
            }
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt_cached(
                "SELECT id, conversation_id, body, reactions, deleted_at IS NOT NULL FROM routing.messages
                 WHERE channel_account_id = $1 AND provider_message_id = $2 AND workspace_id = $3
                 FOR UPDATE",
                &[&ids.account.as_str(), &update.target(), &ids.workspace.as_str()],
            )
            .await?
        else {
            tracing::debug!(
                target = update.target(),
                kind = update.kind(),
                "update for a message not in the history; ignored"
            );
            return Ok(Appended::Ignored);
        };
        let message_id: MessageId = stored_id("message id", row.get(0))?;
        let conversation_id: ConversationId = stored_id("message conversation_id", row.get(1))?;
        let body: Vec<u8> = row.get(2);
        let reactions: serde_json::Value = row.get(3);
        let deleted: bool = row.get(4);
        let changed = match update {
            Update::Reaction(reaction) => {
                let next = if reaction.removed || reaction.emoji.is_empty() {
                    serde_json::json!([])
                } else {
                    serde_json::json!([{ "emoji": reaction.emoji, "at": chrono::Utc::now() }])
                };
                let same = current_emojis(&reactions) == current_emojis(&next);
                if !same {
                    tx.execute_cached(
                        "UPDATE routing.messages SET reactions = $2 WHERE id = $1",
                        &[&message_id.as_str(), &next],
                    )
                    .await?;
                }
                !same
            }
            Update::Edit(edit) => {
                let current = InboundMessage::decode(body.as_slice())
                    .map_err(|error| RoutingError::Corrupt(format!("message body: {error}")))?;
                if deleted || current.parts == edit.parts {
                    false
                } else {
                    let next = InboundMessage {
                        parts: edit.parts.clone(),
                        ..current
                    };
                    keep_revision(&tx, &message_id, &body).await?;
                    tx.execute_cached(
                        "UPDATE routing.messages SET body = $2, edited_at = now() WHERE id = $1",
                        &[&message_id.as_str(), &next.encode_to_vec()],
                    )
                    .await?;
                    true
                }
            }
            Update::Delete(_) => {
                if deleted {
                    false
                } else {
                    let current = InboundMessage::decode(body.as_slice())
                        .map_err(|error| RoutingError::Corrupt(format!("message body: {error}")))?;
                    let emptied = InboundMessage {
                        provider_message_id: current.provider_message_id,
                        reply_to_provider_message_id: current.reply_to_provider_message_id,
                        ..InboundMessage::default()
                    };
                    keep_revision(&tx, &message_id, &body).await?;
                    tx.execute_cached(
                        "UPDATE routing.messages SET body = $2, deleted_at = now() WHERE id = $1",
                        &[&message_id.as_str(), &emptied.encode_to_vec()],
                    )
                    .await?;
                    true
                }
            }
        };
        if !changed {
            tx.rollback().await?;
            return Ok(Appended::Duplicate);
        }
        let changes = Changes {
            events: vec![Event::conversation(
                &conversation_id,
                &ids.contact,
                "message.updated",
                serde_json::json!({ "message_id": message_id, "change": update.kind() }),
            )],
            ..Changes::default()
        };
        changes
            .commit(tx, &ids.workspace, self.dispatcher.partitions())
            .await?;
        self.dispatcher.after_commit(&changes).await;
        Ok(Appended::Updated { message_id })
    }
}

/// The emojis of a stored reactions array.
fn current_emojis(reactions: &serde_json::Value) -> Vec<String> {
    reactions
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.get("emoji").and_then(serde_json::Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Stores `body` as the message's next revision.
async fn keep_revision(
    tx: &switchboard_postgres::Transaction<'_>,
    message_id: &MessageId,
    body: &[u8],
) -> Result<(), RoutingError> {
    tx.execute_cached(
        "INSERT INTO routing.message_revisions (message_id, revision, body)
         SELECT $1, coalesce(max(revision), 0) + 1, $2 FROM routing.message_revisions WHERE message_id = $1",
        &[&message_id.as_str(), &body],
    )
    .await?;
    Ok(())
}
