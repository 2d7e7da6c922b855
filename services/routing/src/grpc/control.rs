//! Archive, follow-up, and bot/human control of one conversation.

use switchboard_proto::routing::v1 as proto;
use tonic::{Request, Status};

use super::{RoutingApi, change, conversation_id, settings, workspace};
use crate::event_log::Event;
use crate::{RoutingError, bot};

/// Requests addressed to one conversation by `id`.
pub(crate) trait ConversationRequest {
    /// The conversation's id as the caller gave it.
    fn id(&self) -> &str;
}

macro_rules! conversation_request {
    ($($request:ty),*) => {
        $(impl ConversationRequest for $request {
            fn id(&self) -> &str {
                &self.id
            }
        })*
    };
}

conversation_request!(
    proto::ArchiveConversationRequest,
    proto::UnarchiveConversationRequest,
    proto::TransferToHumanRequest,
    proto::TransferToBotRequest,
    proto::ResumeBotRequest
);

impl RoutingApi {
    /// Archives or unarchives.
    pub(crate) async fn set_archived<T: ConversationRequest>(
        &self,
        request: Request<T>,
        archived: bool,
    ) -> Result<proto::Conversation, Status> {
        let workspace = workspace(&request)?;
        let id = conversation_id("id", request.get_ref().id())?;
        let conversation = change(&self.pool, &self.dispatcher, &workspace, &id, |tx, _, locked, changes| {
            Box::pin(async move {
                let updated = tx
                    .execute(
                        "UPDATE routing.conversations
                         SET archived_at = CASE WHEN $2 THEN coalesce(archived_at, now()) END, revision = revision + 1
                         WHERE id = $1 AND (archived_at IS NOT NULL) <> $2",
                        &[&locked.id, &archived],
                    )
                    .await?;
                if updated == 1 {
                    let kind = if archived {
                        "conversation.archived"
                    } else {
                        "conversation.unarchived"
                    };
                    changes
                        .events
                        .push(Event::conversation(&locked.id, &locked.contact_id, kind, serde_json::json!({})));
                }
                Ok(())
            })
        })
        .await?;
        Ok(conversation)
    }

    /// Sets or clears the follow-up flag.
    pub(crate) async fn set_follow_up_rpc(
        &self,
        request: Request<proto::SetFollowUpRequest>,
    ) -> Result<proto::Conversation, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let id = conversation_id("id", &request.id)?;
        let flag = request.follow_up;
        let conversation = change(
            &self.pool,
            &self.dispatcher,
            &workspace,
            &id,
            |tx, _, locked, changes| {
                Box::pin(async move {
                    let updated = tx
                        .execute(
                            "UPDATE routing.conversations SET follow_up = $2, revision = revision + 1
                         WHERE id = $1 AND follow_up <> $2",
                            &[&locked.id, &flag],
                        )
                        .await?;
                    if updated == 1 {
                        changes.events.push(Event::conversation(
                            &locked.id,
                            &locked.contact_id,
                            "conversation.follow_up_changed",
                            serde_json::json!({ "follow_up": flag }),
                        ));
                    }
                    Ok(())
                })
            },
        )
        .await?;
        Ok(conversation)
    }

    /// Hands the conversation to `controller` (`bot` or `human`).
    pub(crate) async fn transfer<T: ConversationRequest>(
        &self,
        request: Request<T>,
        controller: &'static str,
    ) -> Result<proto::Conversation, Status> {
        let workspace = workspace(&request)?;
        let id = conversation_id("id", request.get_ref().id())?;
        let conversation = change(
            &self.pool,
            &self.dispatcher,
            &workspace,
            &id,
            |tx, _, locked, changes| {
                Box::pin(async move {
                    if !locked.open {
                        return Err(RoutingError::FailedPrecondition(format!(
                            "conversation {} is closed",
                            locked.id
                        )));
                    }
                    if bot::set_controller(tx, &locked.id, controller).await? {
                        changes.events.push(Event::conversation(
                            &locked.id,
                            &locked.contact_id,
                            "conversation.controller_changed",
                            serde_json::json!({ "controller": controller }),
                        ));
                    }
                    Ok(())
                })
            },
        )
        .await?;
        Ok(conversation)
    }

    /// Pauses the bot or extends the pause.
    pub(crate) async fn pause_bot_rpc(
        &self,
        request: Request<proto::PauseBotRequest>,
    ) -> Result<proto::Conversation, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let id = conversation_id("id", &request.id)?;
        let minutes = match request.minutes {
            0 => {
                let client = self.pool.get().await.map_err(RoutingError::from)?;
                settings(&client, &workspace).await?.bot_pause_minutes
            }
            minutes @ 1..=bot::MAX_PAUSE_MINUTES => minutes,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "minutes: 1 to {} (0 for the workspace's bot_pause_minutes)",
                    bot::MAX_PAUSE_MINUTES
                )));
            }
        };
        let conversation = change(
            &self.pool,
            &self.dispatcher,
            &workspace,
            &id,
            |tx, _, locked, changes| {
                Box::pin(async move {
                    bot::pause(tx, &locked.id, minutes).await?;
                    changes.events.push(Event::conversation(
                        &locked.id,
                        &locked.contact_id,
                        "conversation.bot_paused",
                        serde_json::json!({ "minutes": minutes }),
                    ));
                    Ok(())
                })
            },
        )
        .await?;
        Ok(conversation)
    }

    /// Ends a pause early.
    pub(crate) async fn resume_bot_rpc(
        &self,
        request: Request<proto::ResumeBotRequest>,
    ) -> Result<proto::Conversation, Status> {
        let workspace = workspace(&request)?;
        let id = conversation_id("id", request.get_ref().id())?;
        let conversation = change(
            &self.pool,
            &self.dispatcher,
            &workspace,
            &id,
            |tx, _, locked, changes| {
                Box::pin(async move {
                    bot::resume(tx, &locked.id).await?;
                    changes.events.push(Event::conversation(
                        &locked.id,
                        &locked.contact_id,
                        "conversation.bot_resumed",
                        serde_json::json!({}),
                    ));
                    Ok(())
                })
            },
        )
        .await?;
        Ok(conversation)
    }
}
