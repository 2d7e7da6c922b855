//! The REST fallback of the socket: send a message, read (or long-poll) the thread, typing,
//! and the visitor's delivered and read marks.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Webchat;
use crate::error::ApiError;
use crate::extract::{JsonBody, VisitorSession};
use crate::frames::{VisitorSend, typing_state};
use crate::store::StoredMessage;

/// `POST messages`: 201 for a new message, 200 for a resend of an accepted one.
pub(super) async fn post_message(
    State(webchat): State<Arc<Webchat>>,
    VisitorSession { account, visitor }: VisitorSession,
    JsonBody(send): JsonBody<VisitorSend>,
) -> Result<impl IntoResponse, ApiError> {
    let (message, created) = webchat.accept(&account, &visitor, &send).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"message": message.to_wire()}))))
}

/// The query of `GET messages`.
#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    after_seq: i64,
    limit: Option<i64>,
    #[serde(default)]
    wait: u64,
}

/// `GET messages`: the thread after a seq, waiting up to `wait` seconds for one.
pub(super) async fn list_messages(
    State(webchat): State<Arc<Webchat>>,
    VisitorSession { account, visitor }: VisitorSession,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let wait = Duration::from_secs(query.wait).min(webchat.config.long_poll_max);
    // Subscribe before reading, so a message stored in between wakes the poll.
    let mut subscription = webchat.hub.subscribe(account.id(), &visitor.visitor_id);
    let mut deadline = tokio::time::Instant::now() + wait;
    loop {
        let mut messages = webchat
            .store
            .messages_after(account.id(), &visitor.visitor_id, query.after_seq, limit + 1)
            .await?;
        let has_more = messages.len() as i64 > limit;
        messages.truncate(limit as usize);
        let now = tokio::time::Instant::now();
        if !messages.is_empty() || now >= deadline {
            let current = webchat
                .store
                .visitor(account.id(), &visitor.visitor_id)
                .await?
                .unwrap_or(visitor);
            return Ok(Json(json!({
                "messages": messages.iter().map(StoredMessage::to_wire).collect::<Vec<_>>(),
                "last_seq": current.last_seq,
                "agent_read_seq": current.agent_read_seq,
                "has_more": has_more,
            })));
        }
        // Wake on any signal of this visitor, or poll every few seconds; answer at once when
        // the server shuts down.
        tokio::select! {
            () = webchat.shutdown.cancelled() => deadline = tokio::time::Instant::now(),
            _ = tokio::time::timeout((deadline - now).min(Duration::from_secs(3)), subscription.receiver.recv()) => {}
        }
    }
}

/// The body of `POST typing`.
#[derive(Debug, Deserialize)]
pub(super) struct TypingBody {
    state: String,
}

/// `POST typing`: the visitor started or stopped typing.
pub(super) async fn post_typing(
    State(webchat): State<Arc<Webchat>>,
    VisitorSession { account, visitor }: VisitorSession,
    JsonBody(typing): JsonBody<TypingBody>,
) -> Result<StatusCode, ApiError> {
    let on = typing_state(&typing.state)?;
    webchat.visitor_typing(&account, &visitor, on).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `POST read` and `POST delivered`.
#[derive(Debug, Deserialize)]
pub(super) struct MarkBody {
    up_to_seq: i64,
}

/// `POST read`: the visitor saw the thread up to a seq.
pub(super) async fn post_read(
    State(webchat): State<Arc<Webchat>>,
    session: VisitorSession,
    JsonBody(mark): JsonBody<MarkBody>,
) -> Result<StatusCode, ApiError> {
    post_mark(&webchat, &session, mark, true).await
}

/// `POST delivered`: the visitor's client received the thread up to a seq.
pub(super) async fn post_delivered(
    State(webchat): State<Arc<Webchat>>,
    session: VisitorSession,
    JsonBody(mark): JsonBody<MarkBody>,
) -> Result<StatusCode, ApiError> {
    post_mark(&webchat, &session, mark, false).await
}

async fn post_mark(
    webchat: &Webchat,
    VisitorSession { account, visitor }: &VisitorSession,
    mark: MarkBody,
    read: bool,
) -> Result<StatusCode, ApiError> {
    webchat.mark(account, visitor, read, mark.up_to_seq).await?;
    Ok(StatusCode::NO_CONTENT)
}
