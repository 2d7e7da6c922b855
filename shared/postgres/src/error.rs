use switchboard_domain::ErrorCode;
use tokio_postgres::error::SqlState;

/// A failure talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be had from the pool in time (or the pool is closed).
    #[error("no database connection available")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A statement failed.
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
    /// The connection settings are unusable.
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// A migration already applied was changed afterwards.
    #[error(
        "migration {version} ({name}) of schema {schema} changed after it was applied; add a new migration instead"
    )]
    MigrationChanged {
        /// Schema the migration belongs to.
        schema: String,
        /// Migration version.
        version: i32,
        /// Migration name.
        name: String,
    },
    /// The database has migrations this binary does not know (it is older than the schema).
    #[error("schema {schema} is at version {applied}, newer than this binary's {known}; upgrade the binary")]
    SchemaNewerThanBinary {
        /// Schema name.
        schema: String,
        /// Highest applied version.
        applied: i32,
        /// Highest version this binary knows.
        known: i32,
    },
}

impl StoreError {
    /// Classifies the failure for callers and transports.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Pool(_) => ErrorCode::Unavailable,
            Self::Query(error) => classify_db_error(error),
            Self::Config(_) | Self::MigrationChanged { .. } | Self::SchemaNewerThanBinary { .. } => {
                ErrorCode::FailedPrecondition
            }
        }
    }

    /// Returns true when running the same transaction again may succeed: the database is
    /// unavailable ([`StoreError::is_unavailable`]), or the transaction lost a serialization
    /// race or a deadlock.
    pub fn is_retryable(&self) -> bool {
        self.is_unavailable()
            || self.sql_state().is_some_and(|state| {
                *state == SqlState::T_R_SERIALIZATION_FAILURE || *state == SqlState::T_R_DEADLOCK_DETECTED
            })
    }

    /// Returns true when the database itself is away, not the statement at fault: no
    /// connection from the pool, a connection that broke, or the server refusing work while it
    /// shuts down, restarts or runs out of connections (SQLSTATE classes 08 and 57P, 53300).
    /// Waiting for it, however long, is right; giving up on the work is not.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Pool(_) => true,
            Self::Query(error) => match error.code() {
                Some(state) => state_is_unavailable(state),
                None => error.is_closed(),
            },
            Self::Config(_) | Self::MigrationChanged { .. } | Self::SchemaNewerThanBinary { .. } => false,
        }
    }

    /// Returns the SQLSTATE of a failed statement, if the server sent one.
    pub fn sql_state(&self) -> Option<&SqlState> {
        match self {
            Self::Query(error) => error.code(),
            Self::Pool(_)
            | Self::Config(_)
            | Self::MigrationChanged { .. }
            | Self::SchemaNewerThanBinary { .. } => None,
        }
    }

    /// Returns true when the statement broke a unique constraint.
    pub fn is_unique_violation(&self) -> bool {
        self.sql_state() == Some(&SqlState::UNIQUE_VIOLATION)
    }
}

/// SQLSTATEs of a server that cannot take work right now: connection exceptions (class 08),
/// administrator or crash shutdown and "cannot connect now" while starting (57P01-57P03), and
/// too many connections (53300).
fn state_is_unavailable(state: &SqlState) -> bool {
    state.code().starts_with("08")
        || *state == SqlState::ADMIN_SHUTDOWN
        || *state == SqlState::CRASH_SHUTDOWN
        || *state == SqlState::CANNOT_CONNECT_NOW
        || *state == SqlState::TOO_MANY_CONNECTIONS
}

/// Maps a driver error onto the shared error code, by SQLSTATE class.
///
/// See <https://www.postgresql.org/docs/current/errcodes-appendix.html>.
pub fn classify_db_error(error: &tokio_postgres::Error) -> ErrorCode {
    let Some(state) = error.code() else {
        // No SQLSTATE: the connection broke or the client failed before the server answered.
        return ErrorCode::Unavailable;
    };
    let code = state.code();
    if *state == SqlState::UNIQUE_VIOLATION || *state == SqlState::EXCLUSION_VIOLATION {
        return ErrorCode::AlreadyExists;
    }
    if *state == SqlState::QUERY_CANCELED || *state == SqlState::LOCK_NOT_AVAILABLE {
        return ErrorCode::Timeout;
    }
    if *state == SqlState::T_R_SERIALIZATION_FAILURE || *state == SqlState::T_R_DEADLOCK_DETECTED {
        return ErrorCode::Unavailable;
    }
    match &code[..2] {
        // integrity constraint violations (not null, foreign key, check) and data exceptions
        "23" | "22" => ErrorCode::InvalidArgument,
        // connection exceptions, insufficient resources, operator intervention (shutdown)
        "08" | "53" | "57" => ErrorCode::Unavailable,
        // invalid authorization
        "28" => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    }
}
