//! Archive, follow-up, and bot/human control of one conversation, and the bot-send fence.

use std::collections::HashMap;

use switchboard_domain::{ConversationId, WorkspaceId};
use switchboard_proto::routing::v1 as proto;

use super::{Apply, RoutingApi, change, parse_id};
use crate::changes::{Changes, Locked};
use crate::{RoutingError, bot, store};

impl RoutingApi {
    /// Applies `apply` to conversation `id` (as the caller gave it) in its own transaction;
    /// returns the conversation as committed.
    async fn change_conversation<F>(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        apply: F,
    ) -> Result<proto::Conversation, RoutingError>
    where
        F: for<'t, 'c> FnOnce(
            &'t switchboard_postgres::Transaction<'c>,
            &'t switchboard_messaging::Partitions,
            &'t Locked,
            &'t mut Changes,
        ) -> Apply<'t>,
    {
        let id: ConversationId = parse_id("id", id)?;
        change(&self.pool, &self.dispatcher, workspace, &id, apply).await
    }

    /// The bot-send fence: fails with the reason when the bot may not send in the
    /// conversation now. `workspace` is `None` for internal callers.
    pub(crate) async fn check_bot_send(
        &self,
        workspace: Option<&WorkspaceId>,
        request: proto::CheckBotSendRequest,
    ) -> Result<proto::CheckBotSendResponse, RoutingError> {
        let id: ConversationId = parse_id("conversation_id", &request.conversation_id)?;
        let client = self.pool.get().await?;
        let state = store::conversations::bot_send_state(&client, workspace, &id).await?;
        let refusal = if state.status != "open" {
            Some(("CONVERSATION_CLOSED", format!("conversation {id} is closed")))
        } else if state.controller != "bot" || state.controller_version != request.controller_version {
            Some((
                "CONTROLLER_CHANGED",
                format!(
                    "conversation {id} was handed over (now {}, version {}); the bot decided under version {}",
                    state.controller, state.controller_version, request.controller_version
                ),
            ))
        } else if state.paused {
            Some(("BOT_PAUSED", format!("the bot is paused on conversation {id}")))
        } else {
            None
        };
        match refusal {
            None => Ok(proto::CheckBotSendResponse {}),
            Some((reason, message)) => Err(RoutingError::Refused {
                reason,
                message,
                metadata: HashMap::new(),
            }),
        }
    }

    /// Archives a conversation.
    pub(crate) async fn archive_conversation(
        &self,
        workspace: &WorkspaceId,
        request: proto::ArchiveConversationRequest,
    ) -> Result<proto::ArchiveConversationResponse, RoutingError> {
        Ok(proto::ArchiveConversationResponse {
            conversation: Some(self.set_archived(workspace, &request.id, true).await?),
        })
    }

    /// Unarchives a conversation.
    pub(crate) async fn unarchive_conversation(
        &self,
        workspace: &WorkspaceId,
        request: proto::UnarchiveConversationRequest,
    ) -> Result<proto::UnarchiveConversationResponse, RoutingError> {
        Ok(proto::UnarchiveConversationResponse {
            conversation: Some(self.set_archived(workspace, &request.id, false).await?),
        })
    }

    /// Archives or unarchives.
    async fn set_archived(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        archived: bool,
    ) -> Result<proto::Conversation, RoutingError> {
        self.change_conversation(workspace, id, |tx, _, locked, changes| {
            Box::pin(async move {
                if store::conversations::set_archived(tx, locked, archived).await? {
                    let kind = if archived {
                        "conversation.archived"
                    } else {
                        "conversation.unarchived"
                    };
                    changes.events.push(locked.event(kind, serde_json::json!({})));
                }
                Ok(())
            })
        })
        .await
    }

    /// Sets or clears the follow-up flag.
    pub(crate) async fn set_follow_up(
        &self,
        workspace: &WorkspaceId,
        request: proto::SetFollowUpRequest,
    ) -> Result<proto::SetFollowUpResponse, RoutingError> {
        let flag = request.follow_up;
        let conversation = self
            .change_conversation(workspace, &request.id, |tx, _, locked, changes| {
                Box::pin(async move {
                    if store::conversations::set_follow_up(tx, locked, flag).await? {
                        changes.events.push(locked.event(
                            "conversation.follow_up_changed",
                            serde_json::json!({ "follow_up": flag }),
                        ));
                    }
                    Ok(())
                })
            })
            .await?;
        Ok(proto::SetFollowUpResponse {
            conversation: Some(conversation),
        })
    }

    /// Hands the conversation to a person.
    pub(crate) async fn transfer_to_human(
        &self,
        workspace: &WorkspaceId,
        request: proto::TransferToHumanRequest,
    ) -> Result<proto::TransferToHumanResponse, RoutingError> {
        Ok(proto::TransferToHumanResponse {
            conversation: Some(self.transfer(workspace, &request.id, "human").await?),
        })
    }

    /// Hands the conversation to the bot.
    pub(crate) async fn transfer_to_bot(
        &self,
        workspace: &WorkspaceId,
        request: proto::TransferToBotRequest,
    ) -> Result<proto::TransferToBotResponse, RoutingError> {
        Ok(proto::TransferToBotResponse {
            conversation: Some(self.transfer(workspace, &request.id, "bot").await?),
        })
    }

    /// Hands the conversation to `controller` (`bot` or `human`).
    async fn transfer(
        &self,
        workspace: &WorkspaceId,
        id: &str,
        controller: &'static str,
    ) -> Result<proto::Conversation, RoutingError> {
        self.change_conversation(workspace, id, |tx, _, locked, changes| {
            Box::pin(async move {
                if !locked.open {
                    return Err(RoutingError::FailedPrecondition(format!(
                        "conversation {} is closed",
                        locked.id
                    )));
                }
                if bot::set_controller(tx, &locked.id, controller).await? {
                    changes.events.push(locked.event(
                        "conversation.controller_changed",
                        serde_json::json!({ "controller": controller }),
                    ));
                }
                Ok(())
            })
        })
        .await
    }

    /// Pauses the bot or extends the pause.
    pub(crate) async fn pause_bot(
        &self,
        workspace: &WorkspaceId,
        request: proto::PauseBotRequest,
    ) -> Result<proto::PauseBotResponse, RoutingError> {
        let id: ConversationId = parse_id("id", &request.id)?;
        let minutes = match request.minutes {
            0 => {
                let client = self.pool.get().await?;
                store::settings::get(&client, workspace).await?.bot_pause_minutes
            }
            minutes @ 1..=bot::MAX_PAUSE_MINUTES => minutes,
            _ => {
                return Err(RoutingError::Invalid(format!(
                    "minutes: 1 to {} (0 for the workspace's bot_pause_minutes)",
                    bot::MAX_PAUSE_MINUTES
                )));
            }
        };
        let conversation = change(
            &self.pool,
            &self.dispatcher,
            workspace,
            &id,
            |tx, _, locked, changes| {
                Box::pin(async move {
                    bot::pause(tx, &locked.id, minutes).await?;
                    changes.events.push(locked.event(
                        "conversation.bot_paused",
                        serde_json::json!({ "minutes": minutes }),
                    ));
                    Ok(())
                })
            },
        )
        .await?;
        Ok(proto::PauseBotResponse {
            conversation: Some(conversation),
        })
    }

    /// Ends a pause early.
    pub(crate) async fn resume_bot(
        &self,
        workspace: &WorkspaceId,
        request: proto::ResumeBotRequest,
    ) -> Result<proto::ResumeBotResponse, RoutingError> {
        let conversation = self
            .change_conversation(workspace, &request.id, |tx, _, locked, changes| {
                Box::pin(async move {
                    bot::resume(tx, &locked.id).await?;
                    changes
                        .events
                        .push(locked.event("conversation.bot_resumed", serde_json::json!({})));
                    Ok(())
                })
            })
            .await?;
        Ok(proto::ResumeBotResponse {
            conversation: Some(conversation),
        })
    }
}
