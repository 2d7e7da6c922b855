use switchboard_domain::ErrorCode;
use switchboard_postgres::StoreError;

/// A failure of the tenancy component.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// A request field is invalid; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// The addressed entity does not exist in the caller's scope.
    #[error("{0} not found")]
    NotFound(String),
    /// The entity exists already.
    #[error("{0}")]
    Conflict(String),
    /// The channels file cannot be used.
    #[error("channels file {path}: {reason}")]
    ChannelsFile {
        /// The file.
        path: String,
        /// What is wrong, with the entry it concerns.
        reason: String,
    },
    /// A stored row does not parse (a bug or a manual edit).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// PostgreSQL failed.
    #[error("tenancy store")]
    Store(#[from] StoreError),
}

impl TenancyError {
    /// Classifies the failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) | Self::ChannelsFile { .. } => ErrorCode::InvalidArgument,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::AlreadyExists,
            Self::Corrupt(_) => ErrorCode::Internal,
            Self::Store(error) => error.code(),
        }
    }
}

impl From<tokio_postgres::Error> for TenancyError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Store(StoreError::Query(error))
    }
}

impl From<switchboard_postgres::PoolError> for TenancyError {
    fn from(error: switchboard_postgres::PoolError) -> Self {
        Self::Store(StoreError::Pool(error))
    }
}

impl From<TenancyError> for tonic::Status {
    fn from(error: TenancyError) -> Self {
        switchboard_server::status_from(error.code(), &error)
    }
}
