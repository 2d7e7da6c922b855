use std::collections::HashMap;

use switchboard_domain::ErrorCode;
use switchboard_messaging::Failure;
use switchboard_postgres::StoreError;
use tonic_types::StatusExt as _;

/// A failure of the delivery component.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A request field is invalid; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// The content breaks a channel rule (INVALID_ARGUMENT with a reason).
    #[error("{message}")]
    Content {
        /// Machine-readable reason, e.g. `TEXT_TOO_LONG`.
        reason: &'static str,
        /// What a person can do about it.
        message: String,
    },
    /// The policy refuses the send now (FAILED_PRECONDITION with a reason).
    #[error("{message}")]
    Refused {
        /// Machine-readable reason, e.g. `WINDOW_CLOSED`.
        reason: String,
        /// What a person can do about it.
        message: String,
    },
    /// The addressed entity does not exist in the caller's workspace.
    #[error("{0} not found")]
    NotFound(String),
    /// The idempotency key was used with another payload.
    #[error("idempotency key {0:?} was already used with another payload")]
    KeyReused(String),
    /// The entity is not in a state that allows the call.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Another component (contacts, routing, tenancy) could not answer.
    #[error("{0}")]
    Unavailable(String),
    /// A stored row or a bus event does not parse.
    #[error("inconsistent data: {0}")]
    Corrupt(String),
    /// PostgreSQL failed.
    #[error("delivery store")]
    Store(#[from] StoreError),
}

impl DeliveryError {
    /// Classifies the failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) | Self::Content { .. } => ErrorCode::InvalidArgument,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::KeyReused(_) => ErrorCode::AlreadyExists,
            Self::Refused { .. } | Self::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Corrupt(_) => ErrorCode::Internal,
            Self::Store(error) => error.code(),
        }
    }

    /// What retrying a consumed message that failed with this can do: wait out a database or
    /// component that is away, retry a race a few times, or give up.
    pub fn failure(&self) -> Failure {
        match self {
            Self::Unavailable(_) => Failure::Unavailable,
            Self::Store(error) if error.is_unavailable() => Failure::Unavailable,
            Self::Store(error) if error.is_retryable() => Failure::Retryable,
            _ => Failure::Permanent,
        }
    }

    /// True when trying again later can succeed (database or a dependency down).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(error) => error.is_retryable(),
            Self::Unavailable(_) => true,
            _ => false,
        }
    }

    /// A policy refusal.
    pub fn refused(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Refused {
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A content-rule violation.
    pub fn content(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Content {
            reason,
            message: message.into(),
        }
    }
}

impl From<tokio_postgres::Error> for DeliveryError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Store(StoreError::Query(error))
    }
}

impl From<switchboard_postgres::PoolError> for DeliveryError {
    fn from(error: switchboard_postgres::PoolError) -> Self {
        Self::Store(StoreError::Pool(error))
    }
}

impl From<DeliveryError> for tonic::Status {
    fn from(error: DeliveryError) -> Self {
        let reason = match &error {
            DeliveryError::Refused { reason, .. } => Some(reason.clone()),
            DeliveryError::Content { reason, .. } => Some((*reason).to_owned()),
            DeliveryError::KeyReused(_) => Some("IDEMPOTENCY_KEY_REUSED".to_owned()),
            _ => None,
        };
        match reason {
            Some(reason) => {
                let code = match error.code() {
                    ErrorCode::InvalidArgument => tonic::Code::InvalidArgument,
                    ErrorCode::AlreadyExists => tonic::Code::AlreadyExists,
                    _ => tonic::Code::FailedPrecondition,
                };
                tonic::Status::with_error_details(
                    code,
                    error.to_string(),
                    tonic_types::ErrorDetails::with_error_info(
                        reason,
                        "delivery.switchboard",
                        HashMap::new(),
                    ),
                )
            }
            None => switchboard_server::status_from(error.code(), &error),
        }
    }
}
