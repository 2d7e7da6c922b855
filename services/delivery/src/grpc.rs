//! `switchboard.delivery.v1.DeliveryService`.

use std::sync::Arc;
use switchboard_postgres::CachedStatements as _;

use chrono::Utc;
use switchboard_channels::outbound::{self, SendOutcome};
use switchboard_domain::{Channel, MessageId, WorkspaceId};
use switchboard_postgres::Pool;
use switchboard_proto::delivery::v1::delivery_service_server::{DeliveryService, DeliveryServiceServer};
use switchboard_proto::delivery::v1::{
    AuthorKind, CanSendRequest, CanSendResponse, DeleteRequest, DeleteResponse, GetMessageRequest,
    GetMessageResponse, Recipient, ResendRequest, ResendResponse, SendActionRequest, SendActionResponse,
    SendRequest, SendResponse, recipient::Target,
};
use tonic::{Request, Response, Status};

use crate::accept::{Acceptor, SendOrder, stored_channel};
use crate::transport::{CallOutcome, Transport};
use crate::{DeliveryError, store};

/// How long after sending a Telegram message may be deleted.
const TELEGRAM_DELETE_WINDOW: chrono::Duration = chrono::Duration::hours(48);

/// The `DeliveryService` implementation.
pub struct DeliveryApi {
    /// Accepts sends.
    pub acceptor: Acceptor,
    /// Makes provider calls (Delete, SendAction).
    pub transport: Arc<Transport>,
    /// The `delivery` schema.
    pub pool: Pool,
}

/// The tonic server of [`DeliveryApi`].
pub fn server(api: DeliveryApi, max_message_bytes: usize) -> DeliveryServiceServer<DeliveryApi> {
    DeliveryServiceServer::new(api)
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes)
}

fn workspace<T>(request: &Request<T>) -> Result<WorkspaceId, Status> {
    Ok(switchboard_server::auth::principal(request)?.workspace()?.clone())
}

/// A message id argument; one that does not parse names no message.
fn message_id(raw: &str) -> Result<MessageId, DeliveryError> {
    MessageId::parse(raw).map_err(|_| DeliveryError::NotFound(format!("message {raw}")))
}

#[tonic::async_trait]
impl DeliveryService for DeliveryApi {
    async fn send(&self, request: Request<SendRequest>) -> Result<Response<SendResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let author = AuthorKind::try_from(request.author_kind).unwrap_or(AuthorKind::Unspecified);
        let order = SendOrder {
            recipient: request.recipient.unwrap_or_default(),
            content: request
                .content
                .ok_or_else(|| DeliveryError::Invalid("content is required".to_owned()))?,
            author,
            author_id: request.author_id,
            idempotency_key: request.idempotency_key,
            reply_to_provider_message_id: request.reply_to_provider_message_id,
            controller_version: request.controller_version,
            human_agent_tag: request.human_agent_tag,
            resend_of: None,
        };
        let (row, replayed) = self.acceptor.accept(&workspace, order).await?;
        Ok(Response::new(SendResponse {
            message: Some(row.to_proto()),
            replayed,
        }))
    }

    async fn get_message(
        &self,
        request: Request<GetMessageRequest>,
    ) -> Result<Response<GetMessageResponse>, Status> {
        let workspace = workspace(&request)?;
        let client = self.pool.get().await.map_err(DeliveryError::from)?;
        let row = store::load(&client, &workspace, &message_id(&request.get_ref().id)?).await?;
        let message = store::load_details(&client, &row).await?;
        Ok(Response::new(GetMessageResponse {
            message: Some(message),
        }))
    }

    async fn resend(&self, request: Request<ResendRequest>) -> Result<Response<ResendResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let client = self.pool.get().await.map_err(DeliveryError::from)?;
        let original = store::load(&client, &workspace, &message_id(&request.id)?).await?;
        drop(client);
        if original.status != "failed" {
            return Err(DeliveryError::refused(
                "NOT_FAILED",
                format!(
                    "message {} is {}; only failed messages are resent",
                    original.id, original.status
                ),
            )
            .into());
        }
        let recipient = match &original.conversation_id {
            Some(conversation) => Target::ConversationId(conversation.to_string()),
            None => Target::Contact(switchboard_proto::delivery::v1::ContactOnAccount {
                contact_id: original.contact_id.to_string(),
                channel_account_id: original.channel_account_id.to_string(),
            }),
        };
        let order = SendOrder {
            recipient: Recipient {
                target: Some(recipient),
            },
            content: original.content.clone(),
            author: crate::author::from_stored(&original.author_kind),
            author_id: original.author_id.clone(),
            idempotency_key: request.idempotency_key,
            reply_to_provider_message_id: original.reply_to_provider_message_id.clone(),
            controller_version: 0,
            human_agent_tag: original.human_agent_tag,
            resend_of: Some(original.id.clone()),
        };
        if order.author == AuthorKind::Bot {
            return Err(DeliveryError::refused(
                "BOT_RESEND",
                "a bot's message is resent by the bot (it needs the current controller version)",
            )
            .into());
        }
        let (row, _) = self.acceptor.accept(&workspace, order).await?;
        Ok(Response::new(ResendResponse {
            message: Some(row.to_proto()),
        }))
    }

    async fn delete(&self, request: Request<DeleteRequest>) -> Result<Response<DeleteResponse>, Status> {
        let workspace = workspace(&request)?;
        let client = self.pool.get().await.map_err(DeliveryError::from)?;
        let row = store::load(&client, &workspace, &message_id(&request.get_ref().id)?).await?;
        drop(client);
        if row.deleted_at.is_some() {
            return Ok(Response::new(DeleteResponse {
                message: Some(row.to_proto()),
            }));
        }
        if stored_channel(&row)? != Channel::Telegram {
            return Err(DeliveryError::refused(
                "DELETE_UNSUPPORTED",
                format!("{} does not let a business delete a sent message", row.channel),
            )
            .into());
        }
        let (Some(provider_id), Some(sent_at)) = (&row.provider_message_id, row.sent_at) else {
            return Err(DeliveryError::refused(
                "NOT_SENT",
                "the message has not been sent; nothing to delete",
            )
            .into());
        };
        if Utc::now() - sent_at >= TELEGRAM_DELETE_WINDOW {
            return Err(DeliveryError::refused(
                "DELETE_WINDOW_PASSED",
                "Telegram deletes messages only within 48 hours of sending",
            )
            .into());
        }
        let account = self.acceptor.lookups.account(&row.channel_account_id).await?;
        let built = outbound::build_delete(&self.transport.provider_account(&account), provider_id)
            .map_err(|error| DeliveryError::refused("DELETE_UNSUPPORTED", error.to_string()))?;
        let channel = account.channel;
        let answer = self
            .transport
            .execute(built, |status, headers, body| {
                outbound::classify_delete(channel, provider_id, status, headers, body)
            })
            .await;
        match answer {
            CallOutcome::Answered {
                outcome: SendOutcome::Accepted { .. },
                ..
            } => {}
            CallOutcome::Answered {
                outcome: SendOutcome::Permanent { error },
                status,
            } => {
                return Err(DeliveryError::refused(
                    "PROVIDER_REFUSED_DELETE",
                    format!(
                        "the provider refused the delete (HTTP {status}, {}: {})",
                        error.code, error.message
                    ),
                )
                .into());
            }
            other => {
                return Err(Status::unavailable(format!(
                    "the provider could not delete it now; try again ({})",
                    describe(&other)
                )));
            }
        }
        let client = self.pool.get().await.map_err(DeliveryError::from)?;
        client
            .execute_cached(
                "UPDATE delivery.messages SET deleted_at = now(), updated_at = now() WHERE id = $1",
                &[&row.id.as_str()],
            )
            .await
            .map_err(DeliveryError::from)?;
        let row = store::load(&client, &workspace, &row.id).await?;
        let message = store::load_details(&client, &row).await?;
        Ok(Response::new(DeleteResponse {
            message: Some(message),
        }))
    }

    async fn send_action(
        &self,
        request: Request<SendActionRequest>,
    ) -> Result<Response<SendActionResponse>, Status> {
        let workspace = workspace(&request)?;
        crate::action::send_action(&self.acceptor, &self.transport, &workspace, request.into_inner()).await?;
        Ok(Response::new(SendActionResponse {}))
    }

    async fn can_send(&self, request: Request<CanSendRequest>) -> Result<Response<CanSendResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let author = AuthorKind::try_from(request.author_kind).unwrap_or(AuthorKind::Unspecified);
        if author == AuthorKind::Unspecified {
            return Err(Status::invalid_argument(
                "author_kind is required: agent, bot, workflow, broadcast or api",
            ));
        }
        let answer = self
            .acceptor
            .can_send(&workspace, &request.recipient.unwrap_or_default(), author)
            .await?;
        Ok(Response::new(answer))
    }
}

fn describe(outcome: &CallOutcome) -> String {
    match outcome {
        CallOutcome::Answered { status, .. } => format!("HTTP {status}"),
        CallOutcome::Unknown(why) | CallOutcome::NotSent(why) => why.clone(),
        CallOutcome::Unbuildable(error) => error.to_string(),
    }
}
