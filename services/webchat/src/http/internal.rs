//! The internal API delivery sends through (`/webchat/{account}/internal/…`, bearer: the
//! internal token): web chat's "provider API". A message is stored in the visitor's thread
//! once per delivery message id and pushed to the visitor's sockets on every replica.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Webchat;
use crate::error::ApiError;
use crate::extract::{InternalCaller, JsonBody};
use crate::frames::typing_state;
use crate::hub::Signal;
use crate::store::NewMessage;

/// The internal routes.
pub(super) fn router() -> Router<Arc<Webchat>> {
    Router::new()
        .route("/webchat/{account}/internal/messages", post(send_message))
        .route("/webchat/{account}/internal/typing", post(send_typing))
        .route("/webchat/{account}/internal/read", post(mark_read))
}

/// An outbound message from delivery.
#[derive(Debug, Deserialize)]
struct OutboundBody {
    recipient: String,
    message_id: String,
    #[serde(default)]
    author: String,
    #[serde(default)]
    author_name: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    attachments: Vec<Value>,
    #[serde(default)]
    buttons: Vec<Value>,
}

/// `POST internal/messages`: stores delivery's message once and wakes the visitor's sockets.
async fn send_message(
    State(webchat): State<Arc<Webchat>>,
    InternalCaller(account): InternalCaller,
    JsonBody(outbound): JsonBody<OutboundBody>,
) -> Result<Json<Value>, ApiError> {
    if outbound.message_id.is_empty() {
        return Err(ApiError::MessageIdRequired);
    }
    if outbound.text.trim().is_empty() && outbound.attachments.is_empty() {
        return Err(ApiError::EmptyMessage);
    }
    let author = match outbound.author.as_str() {
        "bot" => "bot",
        "system" => "system",
        _ => "agent",
    };
    let message = NewMessage {
        author,
        author_name: outbound.author_name,
        client_id: None,
        outbound_id: Some(outbound.message_id),
        body: outbound.text,
        attachments: Value::Array(outbound.attachments),
        buttons: Value::Array(outbound.buttons),
    };
    let (stored, created) = webchat
        .store
        .append(account.id(), &outbound.recipient, &message, &|_, _| Vec::new())
        .await?
        .ok_or_else(|| ApiError::UnknownVisitor(outbound.recipient.clone()))?;
    webchat
        .metrics
        .message("outbound", if created { "accepted" } else { "duplicate" });
    if created {
        webchat.hub.signal(
            account.id(),
            &outbound.recipient,
            Signal::Message { seq: stored.seq },
        );
    }
    Ok(Json(
        json!({"id": stored.id, "seq": stored.seq, "created": created}),
    ))
}

/// Agent typing.
#[derive(Debug, Deserialize)]
struct TypingBody {
    recipient: String,
    state: String,
}

/// `POST internal/typing`: agent typing, to the visitor's sockets.
async fn send_typing(
    State(webchat): State<Arc<Webchat>>,
    InternalCaller(account): InternalCaller,
    JsonBody(typing): JsonBody<TypingBody>,
) -> Result<StatusCode, ApiError> {
    let on = typing_state(&typing.state)?;
    webchat
        .hub
        .signal(account.id(), &typing.recipient, Signal::Typing { on });
    Ok(StatusCode::NO_CONTENT)
}

/// The agent read the visitor's messages up to one of them.
#[derive(Debug, Deserialize)]
struct ReadBody {
    recipient: String,
    #[serde(default)]
    up_to_message_id: String,
    #[serde(default)]
    up_to_seq: Option<i64>,
}

/// `POST internal/read`: the agent's read mark, by seq or message id.
async fn mark_read(
    State(webchat): State<Arc<Webchat>>,
    InternalCaller(account): InternalCaller,
    JsonBody(read): JsonBody<ReadBody>,
) -> Result<Json<Value>, ApiError> {
    let up_to = match read.up_to_seq {
        Some(seq) => seq,
        None => webchat
            .store
            .seq_of(account.id(), &read.recipient, &read.up_to_message_id)
            .await?
            .ok_or_else(|| ApiError::UnknownMessage(read.up_to_message_id.clone()))?,
    };
    let seq = webchat
        .store
        .advance_agent_read(account.id(), &read.recipient, up_to)
        .await?
        .ok_or_else(|| ApiError::UnknownVisitor(read.recipient.clone()))?;
    webchat
        .hub
        .signal(account.id(), &read.recipient, Signal::AgentRead { seq });
    Ok(Json(json!({"agent_read_seq": seq})))
}
