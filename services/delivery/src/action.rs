//! `SendAction`: typing indicators and read marks to a customer, where the channel has them
//! (web chat, through its internal API). Not stored and not retried: a missed one passes.

use switchboard_channels::outbound::{BuildError, SendOutcome};
use switchboard_domain::{Channel, WorkspaceId};
use switchboard_proto::delivery::v1::{ConversationAction, SendActionRequest};
use tonic::Status;

use crate::DeliveryError;
use crate::accept::Acceptor;
use crate::transport::{CallOutcome, Transport};

/// Sends one action to the recipient of `request` in `workspace`.
pub async fn send_action(
    acceptor: &Acceptor,
    transport: &Transport,
    workspace: &WorkspaceId,
    request: SendActionRequest,
) -> Result<(), Status> {
    let action = ConversationAction::try_from(request.action).unwrap_or(ConversationAction::Unspecified);
    if action == ConversationAction::Unspecified {
        return Err(DeliveryError::Invalid(
            "action is required (TYPING_ON, TYPING_OFF or MARK_READ)".to_owned(),
        )
        .into());
    }
    if action == ConversationAction::MarkRead && request.up_to_provider_message_id.is_empty() {
        return Err(DeliveryError::Invalid("MARK_READ needs up_to_provider_message_id".to_owned()).into());
    }
    let resolved = acceptor
        .resolve(workspace, &request.recipient.unwrap_or_default())
        .await?;
    if resolved.account.channel != Channel::Webchat {
        return Err(DeliveryError::refused(
            "ACTION_UNSUPPORTED",
            format!(
                "typing and read actions are sent on web chat only, not on {}",
                resolved.account.channel
            ),
        )
        .into());
    }
    let recipient = resolved.channel_user_id.ok_or_else(|| {
        DeliveryError::refused(
            "NO_CHANNEL_IDENTITY",
            "the contact has no identity on this channel account",
        )
    })?;
    let provider_account = transport.provider_account(&resolved.account);
    let built = match action {
        ConversationAction::MarkRead => switchboard_channels::webchat::build_read(
            &provider_account,
            &recipient,
            &request.up_to_provider_message_id,
        ),
        typing => switchboard_channels::webchat::build_typing(
            &provider_account,
            &recipient,
            typing == ConversationAction::TypingOn,
        ),
    }
    .map_err(|error: BuildError| Status::internal(format!("cannot build the action: {error}")))?;
    let answer = transport
        .execute(built, switchboard_channels::webchat::classify_action)
        .await;
    match answer {
        CallOutcome::Answered {
            outcome: SendOutcome::Accepted { .. },
            ..
        } => Ok(()),
        CallOutcome::Answered {
            outcome: SendOutcome::Permanent { error },
            ..
        } => Err(DeliveryError::refused(
            "PROVIDER_REFUSED_ACTION",
            format!("{}: {}", error.code, error.message),
        )
        .into()),
        _ => Err(Status::unavailable("web chat did not take the action; try again")),
    }
}
