//! The internal API delivery sends through (`/webchat/{account}/internal/…`, bearer: the
//! internal token): web chat's "provider API". A message is stored in the visitor's thread
//! once per delivery message id and pushed to the visitor's sockets on every replica.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;

use crate::hub::Signal;
use crate::store::NewMessage;
use crate::{ApiError, Webchat};

/// The internal routes.
pub(crate) fn router() -> Router<Arc<Webchat>> {
    Router::new()
        .route("/webchat/{account}/internal/messages", post(send_message))
        .route("/webchat/{account}/internal/typing", post(send_typing))
        .route("/webchat/{account}/internal/read", post(mark_read))
}

fn authorize(webchat: &Webchat, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = webchat.internal_token.expose_secret();
    if presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the internal API needs Authorization: Bearer <internal token>",
        ))
    }
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

/// The account and JSON body of an internal call, once its token is checked.
async fn internal_call<T: serde::de::DeserializeOwned>(
    webchat: &Webchat,
    account: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(crate::WebchatAccount, T), ApiError> {
    authorize(webchat, headers)?;
    let account = webchat.account(account).await?;
    Ok((account, crate::http::parse_json(body)?))
}

fn unknown_visitor(visitor: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_visitor",
        format!("no web chat visitor {visitor:?} on this account"),
    )
}

async fn send_message(
    State(webchat): State<Arc<Webchat>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (account, outbound): (_, OutboundBody) = internal_call(&webchat, &account, &headers, &body).await?;
    if outbound.message_id.is_empty() {
        return Err(ApiError::field(
            "invalid_request",
            "message_id",
            "message_id is required",
        ));
    }
    if outbound.text.trim().is_empty() && outbound.attachments.is_empty() {
        return Err(ApiError::field(
            "empty_message",
            "text",
            "the message has no text and no attachment",
        ));
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
        .ok_or_else(|| unknown_visitor(&outbound.recipient))?;
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
    Ok(Json(json!({"id": stored.id, "seq": stored.seq, "created": created})).into_response())
}

/// Agent typing.
#[derive(Debug, Deserialize)]
struct TypingBody {
    recipient: String,
    state: String,
}

async fn send_typing(
    State(webchat): State<Arc<Webchat>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (account, typing): (_, TypingBody) = internal_call(&webchat, &account, &headers, &body).await?;
    let on = crate::http::typing_state(&typing.state)?;
    webchat
        .hub
        .signal(account.id(), &typing.recipient, Signal::Typing { on });
    Ok(StatusCode::NO_CONTENT.into_response())
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

async fn mark_read(
    State(webchat): State<Arc<Webchat>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (account, read): (_, ReadBody) = internal_call(&webchat, &account, &headers, &body).await?;
    let up_to = match read.up_to_seq {
        Some(seq) => seq,
        None => webchat
            .store
            .seq_of(account.id(), &read.recipient, &read.up_to_message_id)
            .await?
            .ok_or_else(|| {
                ApiError::field(
                    "unknown_message",
                    "up_to_message_id",
                    format!("no message {:?} in this visitor's thread", read.up_to_message_id),
                )
            })?,
    };
    let seq = webchat
        .store
        .advance_agent_read(account.id(), &read.recipient, up_to)
        .await?
        .ok_or_else(|| unknown_visitor(&read.recipient))?;
    webchat
        .hub
        .signal(account.id(), &read.recipient, Signal::AgentRead { seq });
    Ok(Json(json!({"agent_read_seq": seq})).into_response())
}

/// Why a file is refused as executable (by its first bytes, its name or its declared type).
pub(crate) fn executable(content: &[u8], filename: &str, mime_type: &str) -> Option<&'static str> {
    use switchboard_channels::media::{executable_head, executable_name, executable_type};
    if executable_head(content) {
        Some("its first bytes are an executable's")
    } else if executable_name(filename) {
        Some("an executable file name")
    } else if executable_type(mime_type) {
        Some("an executable content type")
    } else {
        None
    }
}
