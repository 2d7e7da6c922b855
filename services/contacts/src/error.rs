use switchboard_domain::ErrorCode;
use switchboard_messaging::Failure;
use switchboard_postgres::StoreError;
use tonic_types::{ErrorDetails, StatusExt};

/// A failure of the contacts component.
#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    /// A request field is invalid; `reason` is the machine-readable kind
    /// (`INVALID_ARGUMENT`, `FIELD_TYPE_MISMATCH`, `FIELD_OUTSIDE_MASK`, `UNKNOWN_FIELD`,
    /// `INVALID_PHONE`, `INVALID_EMAIL`, `INVALID_FILTER`).
    #[error("{message}")]
    Invalid {
        /// Machine-readable kind.
        reason: &'static str,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The addressed entity does not exist in the caller's workspace.
    #[error("{0} not found")]
    NotFound(String),
    /// The entity exists already.
    #[error("{0}")]
    Conflict(String),
    /// The entity changed since the caller read it.
    #[error("{0}")]
    Aborted(String),
    /// The caller's key may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// A stored row does not parse (a bug or a manual edit).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// PostgreSQL failed.
    #[error("contacts store")]
    Store(#[from] StoreError),
}

impl ContactsError {
    /// An invalid argument of kind `INVALID_ARGUMENT`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            reason: "INVALID_ARGUMENT",
            message: message.into(),
        }
    }

    /// An invalid argument of a specific kind.
    pub fn invalid_as(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            reason,
            message: message.into(),
        }
    }

    /// Classifies the failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid { .. } => ErrorCode::InvalidArgument,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::AlreadyExists,
            Self::Aborted(_) => ErrorCode::FailedPrecondition,
            Self::PermissionDenied(_) => ErrorCode::PermissionDenied,
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
            _ => false,
        }
    }
}

impl From<tokio_postgres::Error> for ContactsError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Store(StoreError::Query(error))
    }
}

impl From<switchboard_postgres::PoolError> for ContactsError {
    fn from(error: switchboard_postgres::PoolError) -> Self {
        Self::Store(StoreError::Pool(error))
    }
}

/// The `google.rpc.ErrorInfo` domain of contacts errors.
const ERROR_DOMAIN: &str = "contacts.switchboard";

impl From<ContactsError> for tonic::Status {
    fn from(error: ContactsError) -> Self {
        match &error {
            ContactsError::Invalid { reason, message } => tonic::Status::with_error_details(
                tonic::Code::InvalidArgument,
                message.clone(),
                ErrorDetails::with_error_info(*reason, ERROR_DOMAIN, std::collections::HashMap::new()),
            ),
            ContactsError::Aborted(message) => tonic::Status::aborted(message.clone()),
            _ => switchboard_server::status_from(error.code(), &error),
        }
    }
}

impl From<switchboard_server::paging::InvalidPageToken> for ContactsError {
    fn from(error: switchboard_server::paging::InvalidPageToken) -> Self {
        Self::invalid(error.to_string())
    }
}

/// An id read back from a row, parsed (a malformed one is corrupt data; `what` names it).
pub(crate) fn stored_id<T: std::str::FromStr<Err = switchboard_domain::InvalidId>>(
    what: &str,
    value: &str,
) -> Result<T, ContactsError> {
    value
        .parse()
        .map_err(|error| ContactsError::Corrupt(format!("{what}: {error}")))
}
