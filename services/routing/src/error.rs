use switchboard_domain::ErrorCode;
use switchboard_messaging::Failure;
use switchboard_postgres::StoreError;

/// A failure of the routing component.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// A request field is invalid; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// The addressed entity does not exist in the caller's workspace.
    #[error("{0} not found")]
    NotFound(String),
    /// An entity with the same unique name exists.
    #[error("{0} exists already")]
    AlreadyExists(String),
    /// The entity is not in a state that allows the call.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The call cannot go ahead for a reason the caller acts on: a failed precondition whose
    /// `reason` and `metadata` travel in the status's `ErrorInfo` (domain `routing.switchboard`).
    #[error("{message}")]
    Refused {
        /// The machine-readable reason (`CONTROLLER_CHANGED`, `MISSING_VARIABLE`, …).
        reason: &'static str,
        /// What a person reads.
        message: String,
        /// Details of the reason.
        metadata: std::collections::HashMap<String, String>,
    },
    /// A stored row or a bus event does not parse.
    #[error("inconsistent data: {0}")]
    Corrupt(String),
    /// PostgreSQL failed.
    #[error("routing store")]
    Store(#[from] StoreError),
}

impl RoutingError {
    /// Classifies the failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::InvalidArgument,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::AlreadyExists(_) => ErrorCode::AlreadyExists,
            Self::FailedPrecondition(_) | Self::Refused { .. } => ErrorCode::FailedPrecondition,
            Self::Corrupt(_) => ErrorCode::Internal,
            Self::Store(error) => error.code(),
        }
    }

    /// What retrying a consumed message that failed with this can do: wait out a database
    /// that is away, retry a race a few times, or give up.
    pub fn failure(&self) -> Failure {
        match self {
            Self::Store(error) if error.is_unavailable() => Failure::Unavailable,
            Self::Store(error) if error.is_retryable() => Failure::Retryable,
            _ => Failure::Permanent,
        }
    }

    /// True when trying again later can succeed (database down, deadlock, serialization).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(error) => error.is_retryable(),
            Self::Invalid(_)
            | Self::NotFound(_)
            | Self::AlreadyExists(_)
            | Self::FailedPrecondition(_)
            | Self::Refused { .. }
            | Self::Corrupt(_) => false,
        }
    }
}

impl From<tokio_postgres::Error> for RoutingError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Store(StoreError::Query(error))
    }
}

impl From<switchboard_postgres::PoolError> for RoutingError {
    fn from(error: switchboard_postgres::PoolError) -> Self {
        Self::Store(StoreError::Pool(error))
    }
}

/// The one place a routing failure becomes a gRPC status (handlers return [`RoutingError`]).
impl From<RoutingError> for tonic::Status {
    fn from(error: RoutingError) -> Self {
        match error {
            RoutingError::Refused {
                reason,
                message,
                metadata,
            } => <tonic::Status as tonic_types::StatusExt>::with_error_details(
                tonic::Code::FailedPrecondition,
                message,
                tonic_types::ErrorDetails::with_error_info(reason, "routing.switchboard", metadata),
            ),
            error => switchboard_server::status_from(error.code(), &error),
        }
    }
}

impl From<switchboard_server::paging::InvalidPageToken> for RoutingError {
    fn from(error: switchboard_server::paging::InvalidPageToken) -> Self {
        Self::Invalid(error.to_string())
    }
}

/// An id Switchboard wrote itself (a row, a consumed bus event), parsed: a malformed one is
/// corrupt data; `what` names it.
pub(crate) fn stored_id<T: std::str::FromStr<Err = switchboard_domain::InvalidId>>(
    what: &str,
    value: &str,
) -> Result<T, RoutingError> {
    value
        .parse()
        .map_err(|error| RoutingError::Corrupt(format!("{what}: {error}")))
}
