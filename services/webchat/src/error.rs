//! Why web chat refuses a request: one domain error, classified by [`ErrorCode`] and spelled
//! as an HTTP answer here, or as a WebSocket `error` frame or close code by the socket.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_directory::DirectoryError;
use switchboard_domain::ErrorCode;
use switchboard_postgres::StoreError;

use crate::frames::FrameError;
use crate::token::TokenError;

/// Why a session token does not stand for a visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No `Authorization: Bearer …` on a REST call.
    #[error("send the session token as Authorization: Bearer <token>")]
    Missing,
    /// Forged, or of another account.
    #[error("the session token is not valid; start a new session")]
    Invalid,
    /// Past its expiry.
    #[error("the session has expired; start a new session")]
    Expired,
    /// The visitor was deleted.
    #[error("this session's visitor no longer exists; start a new session")]
    VisitorGone,
    /// An anonymous request tried to resume a signed-in user's session.
    #[error("this session belongs to a signed-in user; sign in again")]
    SignedInUser,
}

impl From<TokenError> for SessionError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Invalid => Self::Invalid,
            TokenError::Expired => Self::Expired,
        }
    }
}

/// A refused web chat request. Each variant has a stable wire code the widget switches on
/// ([`ApiError::wire_code`]) and a message a person can act on (its `Display`).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The account does not exist, is not a web chat account, or is disabled.
    #[error("no enabled web chat account has this id; check the widget's script URL")]
    UnknownAccount,
    /// Tenancy's account directory could not be asked.
    #[error("the chat service cannot look up this account right now; retry in a moment")]
    DirectoryUnavailable(#[source] DirectoryError),
    /// The account has no `session_secret`.
    #[error("this web chat account has no session_secret; its administrator must set one")]
    NotConfigured,
    /// The browser's origin is not in the account's `allowed_origins`.
    #[error("{origin} may not embed this chat; add it to the account's allowed_origins")]
    OriginNotAllowed {
        /// The refused `Origin`.
        origin: String,
    },
    /// The account does not serve the demo page.
    #[error("this account has no demo page (setting demo_page=true turns it on)")]
    NoDemoPage,
    /// The session token is missing, forged or expired, or its visitor is gone.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// `user_hash` does not prove `user_id`.
    #[error("user_hash is not the HMAC-SHA256 of user_id under this account's identity_secret")]
    IdentityNotVerified,
    /// The internal API was called without the internal token.
    #[error("the internal API needs Authorization: Bearer <internal token>")]
    NotInternalCaller,
    /// A JSON body does not parse as the expected shape.
    #[error("the body is not the expected JSON: {0}")]
    BadJson(#[source] serde_json::Error),
    /// A WebSocket frame is malformed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The client id of a visitor message is empty or too long.
    #[error("client_id must be 1 to {max} characters (a UUID)")]
    ClientId {
        /// The longest client id.
        max: usize,
    },
    /// The message text is over the limit.
    #[error("the message has {chars} characters; the limit is {limit}")]
    MessageTooLarge {
        /// The message's characters.
        chars: usize,
        /// `webchat.max_message_chars`.
        limit: usize,
    },
    /// No text and no attachment.
    #[error("the message has no text and no attachment")]
    EmptyMessage,
    /// More attachments than a message carries.
    #[error("a message carries at most {max} attachments")]
    TooManyAttachments {
        /// The most attachments of one message.
        max: usize,
    },
    /// A message refers to an attachment this session did not upload.
    #[error("attachment {0:?} was not uploaded in this session; upload it first")]
    UnknownAttachment(String),
    /// A pre-chat field the account requires is empty.
    #[error("{0} is required")]
    FieldRequired(&'static str),
    /// A pre-chat field is over 200 characters.
    #[error("{0} is longer than 200 characters")]
    FieldTooLong(&'static str),
    /// The pre-chat e-mail is not an address.
    #[error("email is not an e-mail address")]
    InvalidEmail,
    /// The pre-chat phone is not an international number.
    #[error("phone must be an international number with country code, e.g. +14155550100")]
    InvalidPhone,
    /// The visitor sends messages faster than allowed.
    #[error("more than {per_second} messages per second; resend the same client_id later")]
    MessageRateLimited {
        /// `webchat.messages_per_second`.
        per_second: u32,
        /// Seconds until a message is accepted again.
        retry_after: u64,
    },
    /// The visitor uploads faster than allowed.
    #[error("more than {per_minute} uploads per minute; try again in a minute")]
    UploadRateLimited {
        /// `webchat.uploads_per_minute`.
        per_minute: u32,
    },
    /// An address opens sessions faster than allowed.
    #[error("more than {per_minute} new chat sessions per minute from this address; try again in a minute")]
    TooManySessions {
        /// `webchat.sessions_per_ip_per_minute`.
        per_minute: u32,
    },
    /// The upload body could not be read.
    #[error("the upload could not be read: {0}")]
    UploadUnreadable(#[source] axum::extract::rejection::BytesRejection),
    /// The upload is empty.
    #[error("the upload is empty")]
    EmptyUpload,
    /// The upload is over `webchat.max_attachment_bytes`.
    #[error("attachments may be at most {limit} bytes")]
    AttachmentTooLarge {
        /// `webchat.max_attachment_bytes`.
        limit: usize,
    },
    /// The upload looks executable.
    #[error("executable files are not accepted ({0})")]
    AttachmentRefused(&'static str),
    /// No attachment with this id on the account.
    #[error("no such attachment")]
    AttachmentNotFound,
    /// Delivery named a visitor this account does not have.
    #[error("no web chat visitor {0:?} on this account")]
    UnknownVisitor(String),
    /// Delivery sent a message without its id.
    #[error("message_id is required")]
    MessageIdRequired,
    /// Delivery's read mark names a message not in the thread.
    #[error("no message {0:?} in this visitor's thread")]
    UnknownMessage(String),
    /// PostgreSQL failed; nothing was accepted.
    #[error("the chat service cannot store messages right now; retry in a moment")]
    Storage(#[from] StoreError),
}

impl ApiError {
    /// The class of the failure, which decides the HTTP status.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnknownAccount | Self::NoDemoPage | Self::AttachmentNotFound | Self::UnknownVisitor(_) => {
                ErrorCode::NotFound
            }
            Self::DirectoryUnavailable(_) | Self::NotConfigured | Self::Storage(_) => ErrorCode::Unavailable,
            Self::OriginNotAllowed { .. } => ErrorCode::PermissionDenied,
            Self::Session(_) | Self::IdentityNotVerified | Self::NotInternalCaller => {
                ErrorCode::Unauthenticated
            }
            Self::MessageRateLimited { .. }
            | Self::UploadRateLimited { .. }
            | Self::TooManySessions { .. } => ErrorCode::RateLimited,
            Self::AttachmentTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::AttachmentRefused(_) => ErrorCode::UnsupportedMediaType,
            Self::BadJson(_)
            | Self::Frame(_)
            | Self::ClientId { .. }
            | Self::MessageTooLarge { .. }
            | Self::EmptyMessage
            | Self::TooManyAttachments { .. }
            | Self::UnknownAttachment(_)
            | Self::FieldRequired(_)
            | Self::FieldTooLong(_)
            | Self::InvalidEmail
            | Self::InvalidPhone
            | Self::UploadUnreadable(_)
            | Self::EmptyUpload
            | Self::MessageIdRequired
            | Self::UnknownMessage(_) => ErrorCode::InvalidArgument,
        }
    }

    /// The stable machine-readable code of the body and of socket `error` frames.
    pub fn wire_code(&self) -> &'static str {
        match self {
            Self::UnknownAccount => "unknown_account",
            Self::DirectoryUnavailable(_) | Self::Storage(_) => "unavailable",
            Self::NotConfigured => "account_not_configured",
            Self::OriginNotAllowed { .. } => "origin_not_allowed",
            Self::NoDemoPage => "no_demo_page",
            Self::Session(_) => "session_invalid",
            Self::IdentityNotVerified => "identity_not_verified",
            Self::NotInternalCaller => "unauthenticated",
            Self::BadJson(_) | Self::UploadUnreadable(_) | Self::EmptyUpload | Self::MessageIdRequired => {
                "invalid_request"
            }
            Self::Frame(_) | Self::ClientId { .. } => "invalid_frame",
            Self::MessageTooLarge { .. } => "message_too_large",
            Self::EmptyMessage => "empty_message",
            Self::TooManyAttachments { .. } => "too_many_attachments",
            Self::UnknownAttachment(_) | Self::AttachmentNotFound => "unknown_attachment",
            Self::FieldRequired(_) => "field_required",
            Self::FieldTooLong(_) | Self::InvalidEmail | Self::InvalidPhone => "invalid_field",
            Self::MessageRateLimited { .. } | Self::UploadRateLimited { .. } => "rate_limited",
            Self::TooManySessions { .. } => "too_many_sessions",
            Self::AttachmentTooLarge { .. } => "attachment_too_large",
            Self::AttachmentRefused(_) => "attachment_refused",
            Self::UnknownVisitor(_) => "unknown_visitor",
            Self::UnknownMessage(_) => "unknown_message",
        }
    }

    /// The request field at fault.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Frame(FrameError::TypingState(_)) => Some("state"),
            Self::ClientId { .. } => Some("client_id"),
            Self::MessageTooLarge { .. } | Self::EmptyMessage => Some("text"),
            Self::TooManyAttachments { .. } | Self::UnknownAttachment(_) => Some("attachment_ids"),
            Self::FieldRequired(field) | Self::FieldTooLong(field) => Some(field),
            Self::InvalidEmail => Some("email"),
            Self::InvalidPhone => Some("phone"),
            Self::MessageIdRequired => Some("message_id"),
            Self::UnknownMessage(_) => Some("up_to_message_id"),
            _ => None,
        }
    }

    /// Seconds to wait before retrying (rate limits).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::MessageRateLimited { retry_after, .. } => Some((*retry_after).max(1)),
            Self::UploadRateLimited { .. } | Self::TooManySessions { .. } => Some(60),
            _ => None,
        }
    }

    /// The HTTP status, from the shared [`ErrorCode`] mapping.
    pub fn status(&self) -> StatusCode {
        switchboard_server::http_status(self.code())
    }

    /// Logs a server-side failure once, with its cause chain (client errors are not logged).
    pub(crate) fn log(&self) {
        if self.code().is_client_error() {
            return;
        }
        let mut chain = String::new();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            if !chain.is_empty() {
                chain.push_str(": ");
            }
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::warn!(error.code = self.wire_code(), error.cause = %chain, "web chat request failed");
    }

    /// The `{error: …}` body.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({"code": self.wire_code(), "message": self.to_string()});
        if let Some(field) = self.field() {
            error["field"] = json!(field);
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let mut response = (self.status(), Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after()
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_come_from_the_shared_error_codes() {
        assert_eq!(ApiError::UnknownAccount.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            ApiError::Session(SessionError::Expired).status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            ApiError::OriginNotAllowed {
                origin: "https://evil.example".to_owned()
            }
            .status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(ApiError::NotConfigured.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ApiError::EmptyMessage.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            ApiError::AttachmentTooLarge { limit: 1 }.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            ApiError::AttachmentRefused("an executable file name").status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let limited = ApiError::MessageRateLimited {
            per_second: 5,
            retry_after: 0,
        };
        assert_eq!(
            (limited.status(), limited.retry_after()),
            (StatusCode::TOO_MANY_REQUESTS, Some(1))
        );
    }

    #[test]
    fn the_body_names_the_code_and_the_field() {
        let body = ApiError::FieldRequired("email").body();
        assert_eq!(
            body,
            json!({"error": {"code": "field_required", "message": "email is required", "field": "email"}})
        );
    }
}
