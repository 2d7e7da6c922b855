//! The PostgreSQL kit against the real server: database bootstrap, migrations, classification.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use secrecy::SecretString;
use switchboard_domain::ErrorCode;
use switchboard_postgres::{DatabaseConfig, Migration, MigrationSet, StoreError, connect, migrate};
use switchboard_testkit::TestDatabase;

const V1: Migration = Migration {
    version: 1,
    name: "things",
    sql: "CREATE TABLE things (id text PRIMARY KEY, size integer NOT NULL CHECK (size > 0));",
};
const V2: Migration = Migration {
    version: 2,
    name: "thing names",
    sql: "ALTER TABLE things ADD COLUMN name text NOT NULL DEFAULT '';",
};
const SET: MigrationSet = MigrationSet {
    schema: "kit_test",
    migrations: &[V1, V2],
};

#[tokio::test]
async fn migrations_apply_once_even_from_two_pools_at_once() {
    let database = TestDatabase::create().await.unwrap();
    let first = connect(&database.config()).await.unwrap();
    let second = connect(&database.config()).await.unwrap();
    let (a, b) = tokio::join!(migrate(&first, &SET), migrate(&second, &SET));
    let mut applied = [a.unwrap(), b.unwrap()];
    applied.sort();
    assert_eq!(applied, [vec![], vec![1, 2]], "exactly one of them applied both");
    assert_eq!(
        migrate(&first, &SET).await.unwrap(),
        Vec::<i32>::new(),
        "idempotent"
    );

    let client = first.get().await.unwrap();
    client
        .execute(
            "INSERT INTO kit_test.things (id, size, name) VALUES ('a', 1, 'x')",
            &[],
        )
        .await
        .unwrap();
    let duplicate = client
        .execute("INSERT INTO kit_test.things (id, size) VALUES ('a', 1)", &[])
        .await
        .map_err(StoreError::from)
        .unwrap_err();
    assert_eq!(duplicate.code(), ErrorCode::AlreadyExists);
    assert!(duplicate.is_unique_violation());
    let invalid = client
        .execute("INSERT INTO kit_test.things (id, size) VALUES ('b', -1)", &[])
        .await
        .map_err(StoreError::from)
        .unwrap_err();
    assert_eq!(invalid.code(), ErrorCode::InvalidArgument);
    assert!(!invalid.is_retryable());
}

#[tokio::test]
async fn an_edited_migration_and_a_newer_schema_are_refused() {
    let database = TestDatabase::create().await.unwrap();
    let pool = connect(&database.config()).await.unwrap();
    migrate(&pool, &SET).await.unwrap();

    const EDITED: MigrationSet = MigrationSet {
        schema: "kit_test",
        migrations: &[
            Migration {
                sql: "CREATE TABLE things (id text PRIMARY KEY);",
                ..V1
            },
            V2,
        ],
    };
    let error = migrate(&pool, &EDITED).await.unwrap_err();
    assert!(
        matches!(error, StoreError::MigrationChanged { version: 1, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("add a new migration"));

    const OLDER_BINARY: MigrationSet = MigrationSet {
        schema: "kit_test",
        migrations: &[V1],
    };
    let error = migrate(&pool, &OLDER_BINARY).await.unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::SchemaNewerThanBinary {
                applied: 2,
                known: 1,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_missing_database_is_created_and_an_unreachable_server_is_unavailable() {
    let name = format!("sbtest_{}", switchboard_testkit::unique_token());
    let config = DatabaseConfig {
        url: SecretString::from(format!("{}/{name}", switchboard_testkit::database_server_url())),
        ..DatabaseConfig::default()
    };
    let pool = connect(&config).await.unwrap();
    switchboard_postgres::check_reachable(&pool, std::time::Duration::from_secs(2))
        .await
        .unwrap();
    drop(pool);
    // Hand the new database to the test guard so it is dropped again.
    drop(TestDatabase {
        url: String::new(),
        name,
    });

    let unreachable = DatabaseConfig {
        url: SecretString::from("postgres://postgres@127.0.0.1:1/nowhere"),
        connect_timeout: std::time::Duration::from_millis(500),
        create_if_missing: false,
        ..DatabaseConfig::default()
    };
    let pool = connect(&unreachable).await.unwrap();
    let reason = switchboard_postgres::check_reachable(&pool, std::time::Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(reason.contains("no connection"), "{reason}");
    let error = pool.get().await.map_err(StoreError::from).unwrap_err();
    assert_eq!(error.code(), ErrorCode::Unavailable);
}

/// The error of a statement that fails with `sqlstate`.
async fn failing_with(pool: &switchboard_postgres::Pool, sqlstate: &str) -> StoreError {
    let client = pool.get().await.unwrap();
    let statement = format!("DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}'; END $$");
    StoreError::Query(client.batch_execute(&statement).await.expect_err(sqlstate))
}

#[tokio::test]
async fn a_database_that_restarts_or_refuses_connections_is_unavailable_not_a_bad_statement() {
    let database = TestDatabase::create().await.unwrap();
    let pool = connect(&database.config()).await.unwrap();
    // What a restart looks like from a busy connection: the server ends it (57P01), refuses
    // new work while shutting down or starting (57P03), or breaks the socket.
    for state in ["57P01", "57P02", "57P03", "53300", "08006", "08001"] {
        let error = failing_with(&pool, state).await;
        assert!(
            error.is_unavailable() && error.is_retryable(),
            "{state}: {error:?}"
        );
        assert_eq!(error.code(), ErrorCode::Unavailable, "{state}");
    }
    // Races are retried but are not an outage; a bad statement is neither.
    for state in ["40001", "40P01"] {
        let error = failing_with(&pool, state).await;
        assert!(error.is_retryable() && !error.is_unavailable(), "{state}");
    }
    for state in ["23505", "22001", "42P01", "XX000"] {
        let error = failing_with(&pool, state).await;
        assert!(!error.is_retryable() && !error.is_unavailable(), "{state}");
    }
    // Last: the ended connection goes back to the pool.
    let terminated = {
        let client = pool.get().await.unwrap();
        StoreError::Query(
            client
                .batch_execute("SELECT pg_terminate_backend(pg_backend_pid())")
                .await
                .expect_err("the server ends the connection"),
        )
    };
    assert!(terminated.is_unavailable(), "{terminated:?}");
}
