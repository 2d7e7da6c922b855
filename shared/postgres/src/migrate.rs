use sha2::{Digest, Sha256};

use crate::pool::quote_identifier;
use crate::{Pool, StoreError};

/// One versioned, forward-only schema migration (plain SQL, run in the service's schema).
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Strictly increasing version, starting at 1.
    pub version: i32,
    /// Short name for humans and the history table.
    pub name: &'static str,
    /// The SQL; unqualified names resolve in the set's schema.
    pub sql: &'static str,
}

/// The migrations of one service's schema.
#[derive(Debug, Clone, Copy)]
pub struct MigrationSet {
    /// The schema the service owns (e.g. `tenancy`).
    pub schema: &'static str,
    /// Its migrations in version order.
    pub migrations: &'static [Migration],
}

impl MigrationSet {
    fn checksum(migration: &Migration) -> String {
        hex::encode(Sha256::digest(migration.sql.as_bytes()))
    }

    fn lock_key(&self) -> i64 {
        // A stable 64-bit key per schema for pg_advisory_xact_lock.
        let digest = Sha256::digest(format!("switchboard-migrate:{}", self.schema).as_bytes());
        let mut bytes = [0_u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(bytes)
    }
}

/// Applies the pending migrations of `set`, all in one transaction under an advisory lock.
///
/// Safe to run from several processes at once: the second waits for the first and then finds
/// nothing to do. An applied migration whose SQL changed is refused, as is a database that is
/// ahead of this binary. Returns the versions applied now.
#[tracing::instrument(skip_all, fields(schema = set.schema))]
pub async fn migrate(pool: &Pool, set: &MigrationSet) -> Result<Vec<i32>, StoreError> {
    debug_assert!(
        set.migrations
            .windows(2)
            .all(|pair| pair[0].version < pair[1].version),
        "migrations must be in strictly increasing version order"
    );
    let schema = quote_identifier(set.schema);
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&set.lock_key()])
        .await?;
    transaction
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 checksum   text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );
             SET LOCAL search_path TO {schema};"
        ))
        .await?;
    let applied_rows = transaction
        .query(
            &format!("SELECT version, name, checksum FROM {schema}.schema_migrations ORDER BY version"),
            &[],
        )
        .await?;

    let known_max = set.migrations.last().map_or(0, |migration| migration.version);
    for row in &applied_rows {
        let version: i32 = row.get(0);
        let checksum: String = row.get(2);
        match set
            .migrations
            .iter()
            .find(|migration| migration.version == version)
        {
            Some(migration) if MigrationSet::checksum(migration) == checksum => {}
            Some(migration) => {
                return Err(StoreError::MigrationChanged {
                    schema: set.schema.to_owned(),
                    version,
                    name: migration.name.to_owned(),
                });
            }
            None => {
                return Err(StoreError::SchemaNewerThanBinary {
                    schema: set.schema.to_owned(),
                    applied: version,
                    known: known_max,
                });
            }
        }
    }

    let mut applied_now = Vec::new();
    for migration in set.migrations {
        let already = applied_rows
            .iter()
            .any(|row| row.get::<_, i32>(0) == migration.version);
        if already {
            continue;
        }
        transaction.batch_execute(migration.sql).await?;
        transaction
            .execute(
                &format!(
                    "INSERT INTO {schema}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"
                ),
                &[
                    &migration.version,
                    &migration.name,
                    &MigrationSet::checksum(migration),
                ],
            )
            .await?;
        applied_now.push(migration.version);
    }
    transaction.commit().await?;
    if !applied_now.is_empty() {
        tracing::info!(versions = ?applied_now, "applied migrations");
    }
    Ok(applied_now)
}

/// Applies every set in order, logging each schema's state.
pub async fn migrate_all(pool: &Pool, sets: &[MigrationSet]) -> Result<(), StoreError> {
    for set in sets {
        let applied = migrate(pool, set).await?;
        tracing::info!(schema = set.schema, applied = applied.len(), "schema up to date");
    }
    Ok(())
}
