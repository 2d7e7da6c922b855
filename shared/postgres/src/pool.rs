use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::ExposeSecret;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::{DatabaseConfig, StoreError};

/// Builds the pool, creating the database first when it is missing and allowed.
///
/// The pool connects lazily; use [`check_reachable`] to see whether PostgreSQL answers.
pub async fn connect(config: &DatabaseConfig) -> Result<Pool, StoreError> {
    let mut pg_config: tokio_postgres::Config = config
        .url
        .expose_secret()
        .parse()
        .map_err(|error| StoreError::Config(format!("database url does not parse: {error}")))?;
    pg_config.connect_timeout(config.connect_timeout);
    pg_config.application_name("switchboard");
    if config.create_if_missing {
        create_database_if_missing(&pg_config).await?;
    }
    let manager = Manager::from_config(
        pg_config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.max_connections)
        .wait_timeout(Some(config.connect_timeout))
        .create_timeout(Some(config.connect_timeout))
        .recycle_timeout(Some(config.connect_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|error| StoreError::Config(format!("database pool: {error}")))
}

/// Answers whether PostgreSQL serves a trivial query within `timeout`.
pub async fn check_reachable(pool: &Pool, timeout: Duration) -> Result<(), String> {
    let probe = async {
        let client = pool
            .get()
            .await
            .map_err(|error| format!("no connection: {error}"))?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|error| format!("query failed: {error}"))?;
        Ok(())
    };
    match tokio::time::timeout(timeout, probe).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// Connects to the server's maintenance database and creates the target database if needed.
async fn create_database_if_missing(target: &tokio_postgres::Config) -> Result<(), StoreError> {
    let Some(dbname) = target.get_dbname().map(str::to_owned) else {
        return Err(StoreError::Config("database url names no database".to_owned()));
    };
    // A quick probe first: in the common case the database exists and we are done.
    if let Ok((client, connection)) = target.connect(NoTls).await {
        drop(client);
        drop(connection);
        return Ok(());
    }
    let mut maintenance = target.clone();
    maintenance.dbname("postgres");
    let (client, connection) = maintenance.connect(NoTls).await?;
    let connection_task = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname])
        .await?
        .is_some();
    if !exists {
        let statement = format!("CREATE DATABASE {}", quote_identifier(&dbname));
        match client.batch_execute(&statement).await {
            Ok(()) => tracing::info!(database = %dbname, "created database"),
            // Another process created it between our check and our CREATE.
            Err(error)
                if error.code() == Some(&SqlState::DUPLICATE_DATABASE)
                    || error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
            Err(error) => return Err(error.into()),
        }
    }
    drop(client);
    let _ = connection_task.await;
    Ok(())
}

/// Quotes an SQL identifier (doubling embedded quotes).
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_safely() {
        assert_eq!(quote_identifier("switchboard"), "\"switchboard\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }
}
