//! Routing's automatic replies (away, at capacity) from `delivery.autoreply.pNN`, sent like any
//! message by the `workflow` author under the channel's policy. The request's event id is the
//! idempotency key, so a redelivered request sends nothing twice; a refusal (window closed,
//! blocked contact) drops the request with a log line.

use switchboard_domain::WorkspaceId;
use switchboard_messaging::{Handler, HandlerError, Incoming};
use switchboard_proto::common::v1::{ContentPart, TextPart, content_part::Part};
use switchboard_proto::delivery::v1::{AuthorKind, OutboundContent, Recipient, recipient::Target};
use switchboard_proto::events::v1::envelope::Payload;

use crate::DeliveryError;
use crate::accept::{Acceptor, SendOrder};

/// Sends automatic replies.
pub struct AutoReplies {
    /// Accepts the sends.
    pub acceptor: Acceptor,
}

impl Handler for AutoReplies {
    async fn handle(&self, incoming: &Incoming) -> Result<(), HandlerError> {
        let envelope = incoming.decode_envelope().map_err(HandlerError::permanent)?;
        let Some(Payload::AutoReplyRequested(request)) = envelope.payload else {
            return Ok(());
        };
        let workspace = WorkspaceId::parse(&envelope.workspace_id).map_err(HandlerError::permanent)?;
        let order = SendOrder {
            recipient: Recipient {
                target: Some(Target::ConversationId(request.conversation_id.clone())),
            },
            content: OutboundContent {
                parts: vec![ContentPart {
                    part: Some(Part::Text(TextPart {
                        body: request.text.clone(),
                        subject: String::new(),
                    })),
                }],
                ..OutboundContent::default()
            },
            author: AuthorKind::Workflow,
            author_id: format!("autoreply:{}", request.kind),
            idempotency_key: format!("autoreply:{}", envelope.event_id),
            reply_to_provider_message_id: String::new(),
            controller_version: 0,
            human_agent_tag: false,
            resend_of: None,
        };
        match self.acceptor.accept(&workspace, order).await {
            Ok((message, _)) => {
                tracing::info!(message_id = %message.id, kind = %request.kind, conversation_id = %request.conversation_id, "automatic reply accepted");
                Ok(())
            }
            Err(error) if error.is_retryable() => Err(HandlerError::classified(error.failure(), error)),
            Err(error @ (DeliveryError::Store(_) | DeliveryError::Corrupt(_))) => {
                Err(HandlerError::permanent(error))
            }
            Err(error) => {
                tracing::info!(error = %error, kind = %request.kind, conversation_id = %request.conversation_id, "automatic reply not sent");
                Ok(())
            }
        }
    }
}
