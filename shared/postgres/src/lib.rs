//! PostgreSQL kit: a deadpool pool built from config, the database created when missing,
//! versioned per-service migrations under an advisory lock, and SQLSTATE classification into
//! the shared [`ErrorCode`](switchboard_domain::ErrorCode).
//!
//! Each service owns one schema and its migrations; this crate only runs them. It depends on
//! no service and on no transport.

mod cached;
mod config;
mod error;
mod listen;
mod migrate;
mod pool;

pub use cached::CachedStatements;
pub use config::DatabaseConfig;
pub use error::{StoreError, classify_db_error};
pub use listen::{Wakeup, run_listener};
pub use migrate::{Migration, MigrationSet, migrate, migrate_all};
pub use pool::{check_reachable, connect};

/// Re-exported so services name one version of the pool types.
pub use deadpool_postgres::{GenericClient, Object as PooledClient, Pool, PoolError, Transaction};
/// Re-exported so services name one version of the driver types.
pub use tokio_postgres;
