use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_postgres::StoreError;

/// A refused web chat request: an HTTP status plus a code the widget switches on and a message
/// a person can act on. WebSocket `error` frames carry the same code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`session_invalid`, `rate_limited`, …).
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// The request field at fault.
    pub field: Option<&'static str>,
    /// Seconds to wait before retrying (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error without a field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// A 400 about `field`.
    pub fn field(code: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            ..Self::new(StatusCode::BAD_REQUEST, code, message)
        }
    }

    /// A 400 `invalid_frame` / `invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// The session token is missing, forged or expired.
    pub fn session_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "session_invalid", message)
    }

    /// Too many requests; retry after `seconds`.
    pub fn rate_limited(code: &'static str, message: impl Into<String>, seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    /// The account does not exist, is not a web chat account, or is disabled.
    pub fn unknown_account() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_account",
            "no enabled web chat account has this id; check the widget's script URL",
        )
    }

    /// PostgreSQL failed; nothing was accepted.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the chat service cannot store messages right now; retry in a moment",
        )
    }

    /// The `{error: …}` body.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        json!({ "error": error })
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::warn!(error = %error, "web chat storage failed");
        Self::unavailable()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
