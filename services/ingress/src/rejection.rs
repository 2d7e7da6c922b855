//! Why a webhook ends without events: an error class from the shared map, a stable reason for
//! metrics and the sender, and a message a person can act on.

use axum::response::{IntoResponse, Response};
use switchboard_channels::VerifyError;
use switchboard_domain::ErrorCode;

/// A request that ends without events.
#[derive(Debug)]
pub(crate) struct Rejection {
    /// The error class; its HTTP status comes from the shared map.
    pub code: ErrorCode,
    /// A short, stable reason (the metrics outcome and the body's `reason`).
    pub outcome: &'static str,
    /// What the sender can do about it.
    pub message: String,
}

impl Rejection {
    /// A rejection of class `code`.
    pub fn new(code: ErrorCode, outcome: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            outcome,
            message: message.into(),
        }
    }

    /// The channel is not served here.
    pub fn unknown_channel(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, "unknown_channel", message)
    }

    /// No enabled account of this channel has the id.
    pub fn unknown_account() -> Self {
        Self::new(
            ErrorCode::NotFound,
            "unknown_account",
            "no enabled channel account with this id for this channel",
        )
    }

    /// The signature did not verify.
    pub fn unverified(error: &VerifyError) -> Self {
        // The sender learns only that it was not authenticated; the reason goes to metrics.
        Self::new(
            error.code(),
            error.reason(),
            "webhook signature missing or invalid",
        )
    }

    /// Neither the broker nor the database can take what was received.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, "unavailable", message)
    }

    /// True when the fault is on Switchboard's side (the sender should retry).
    pub fn is_server_error(&self) -> bool {
        !self.code.is_client_error()
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = switchboard_server::http_status(self.code);
        let body = serde_json::json!({ "error": { "reason": self.outcome, "message": self.message } });
        (status, axum::Json(body)).into_response()
    }
}
