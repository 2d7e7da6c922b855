//! Archive, follow-up, and bot/human control of one conversation.

use switchboard_postgres::CachedStatements as _;
use switchboard_proto::routing::v1 as proto;
use switchboard_server::auth::principal;
use tonic::{Request, Status};
use tonic_types::StatusExt as _;

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
    /// The bot-send fence.
    pub(crate) async fn check_bot_send_rpc(
        &self,
        request: Request<proto::CheckBotSendRequest>,
    ) -> Result<(), Status> {
        let caller = principal(&request)?;
        // Delivery (internal) acts in the conversation's workspace; api keys in their own.
        let workspace = match caller.require_internal() {
            Ok(()) => None,
            Err(_) => Some(caller.workspace()?.as_str().to_owned()),
        };
        let request = request.into_inner();
        let id = conversation_id("conversation_id", &request.conversation_id)?;
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let row = client
            .query_opt_cached(
                "SELECT status, controller, controller_version, coalesce(bot_paused_until > now(), false)
                 FROM routing.conversations WHERE id = $1 AND ($2::text IS NULL OR workspace_id = $2)",
                &[&id, &workspace],
            )
            .await
            .map_err(RoutingError::from)?
            .ok_or_else(|| RoutingError::NotFound(format!("conversation {id}")))?;
        let (status, controller, version, paused): (String, String, i64, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let refusal = if status != "open" {
            Some(("CONVERSATION_CLOSED", format!("conversation {id} is closed")))
        } else if controller != "bot" || version != request.controller_version {
            Some((
                "CONTROLLER_CHANGED",
                format!(
                    "conversation {id} was handed over (now {controller}, version {version}); the bot decided under version {}",
                    request.controller_version
                ),
            ))
        } else if paused {
            Some(("BOT_PAUSED", format!("the bot is paused on conversation {id}")))
        } else {
            None
        };
        match refusal {
            None => Ok(()),
            Some((reason, message)) => Err(Status::with_error_details(
                tonic::Code::FailedPrecondition,
                message,
                tonic_types::ErrorDetails::with_error_info(
                    reason,
                    "routing.switchboard",
                    std::collections::HashMap::new(),
                ),
            )),
        }
    }

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
                    .execute_cached(
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
                        .execute_cached(
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
