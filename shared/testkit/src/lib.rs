//! Test-only helpers: a fresh PostgreSQL database and a fresh RabbitMQ namespace per test, the
//! guards and the sweep that remove them again ([`cleanup`]), an `eventually` poller, and test
//! tracing.
//!
//! No shipped crate depends on this one: service crates take it as a dev-dependency; the two
//! harness crates (`tests/`, the end-to-end harness, and `load-tests/`, the benches) take it as
//! a normal one, being test code themselves.
//!
//! Tests read `SWITCHBOARD_TEST_DATABASE_URL` and `SWITCHBOARD_TEST_AMQP_URL`, defaulting to the
//! local services (`postgres://postgres@127.0.0.1:5432`, `amqp://guest:guest@127.0.0.1:5672/%2f`).

mod broker_objects;
pub mod cleanup;
pub mod names;
mod sweep;

use std::future::Future;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use switchboard_messaging::BusConfig;
use switchboard_postgres::DatabaseConfig;

pub use crate::cleanup::{DatabaseGuard, NamespaceGuard, sweep_stale_tests};
pub use crate::names::Harness;

/// Base URL (without database) of the PostgreSQL server tests use.
pub fn database_server_url() -> String {
    std::env::var("SWITCHBOARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// AMQP URL of the broker tests use.
pub fn amqp_url() -> String {
    std::env::var("SWITCHBOARD_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A short unique token for names (`[a-z0-9]`, 12 characters).
pub fn unique_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A fresh namespace and database name for a test of this process (the first call also sweeps
/// what earlier, interrupted test runs left behind).
pub fn test_names() -> names::HarnessNames {
    sweep_stale_tests();
    Harness::Test.fresh_names(std::process::id())
}

/// A database created for one test and dropped (forcibly) when this value is dropped.
pub struct TestDatabase {
    /// The database's name.
    pub name: String,
    /// Its full connection URL.
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database with a unique name (see [`test_names`]).
    pub async fn create() -> anyhow::Result<Self> {
        let name = test_names().database;
        let (client, connection) = tokio_postgres::connect(
            &format!("{}/postgres", database_server_url()),
            tokio_postgres::NoTls,
        )
        .await?;
        let task = tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        drop(client);
        let _ = task.await;
        Ok(Self {
            url: format!("{}/{name}", database_server_url()),
            name,
        })
    }

    /// A plain connection to this database (its driver task spawned), for assertions.
    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("test database reachable");
        tokio::spawn(connection);
        client
    }

    /// The single `bigint` a counting query (`SELECT count(*) …`) returns.
    pub async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
        client.query_one(sql, &[]).await.expect("count query").get(0)
    }

    /// A database config section pointing at this database.
    pub fn config(&self) -> DatabaseConfig {
        DatabaseConfig {
            url: SecretString::from(self.url.clone()),
            max_connections: 8,
            ..DatabaseConfig::default()
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Failures are ignored: what is left is swept once its test process is gone.
        let _ = cleanup::drop_database(&database_server_url(), &self.name);
    }
}

/// A bus config with a unique namespace (see [`test_names`]), fast retries and small partitions
/// for tests. Delete the namespace at the end ([`delete_bus_objects`], or hold a
/// [`NamespaceGuard`]); a test that panics first leaves it to the next test run's sweep.
pub fn bus_config() -> BusConfig {
    BusConfig {
        url: SecretString::from(amqp_url()),
        namespace: test_names().namespace,
        connection_name: "switchboard-test".to_owned(),
        confirm_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        reconnect_max_backoff: Duration::from_secs(1),
        recovery_timeout: Duration::from_secs(10),
        partitions: 4,
        prefetch: 8,
        max_attempts: 3,
        retry_initial_backoff: Duration::from_millis(20),
        retry_max_backoff: Duration::from_millis(100),
        ..BusConfig::default()
    }
}

/// Polls `check` until it returns `Some` or `timeout` passes; panics with `what` on timeout.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Installs test tracing once (printed only with `TEST_LOG=1`).
pub fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
                )
                .with_test_writer()
                .try_init();
        }
    });
}

/// Stopping and starting the shared local RabbitMQ (tests named `chaos_…`, run serially).
pub mod broker {
    use std::process::Command;

    /// Runs `rabbitmqctl` with `arguments`, panicking with its stderr on failure.
    pub fn rabbitmqctl(arguments: &[&str]) {
        let output = Command::new("rabbitmqctl")
            .args(arguments)
            .output()
            .expect("rabbitmqctl runs");
        assert!(
            output.status.success(),
            "rabbitmqctl {arguments:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Stops the broker's application (connections drop, port 5672 closes) and returns a guard
    /// that starts it again when dropped, also when the test panics.
    pub fn stop_broker() -> BrokerRestartGuard {
        rabbitmqctl(&["stop_app"]);
        BrokerRestartGuard { restarted: false }
    }

    /// Starts the broker again when dropped, unless [`BrokerRestartGuard::start`] did already.
    pub struct BrokerRestartGuard {
        restarted: bool,
    }

    impl BrokerRestartGuard {
        /// Starts the broker now and waits until it accepts connections.
        pub fn start(mut self) {
            rabbitmqctl(&["start_app"]);
            rabbitmqctl(&["await_startup", "--timeout", "60"]);
            self.restarted = true;
        }
    }

    impl Drop for BrokerRestartGuard {
        fn drop(&mut self) {
            if !self.restarted {
                let _ = Command::new("rabbitmqctl").arg("start_app").output();
                let _ = Command::new("rabbitmqctl")
                    .args(["await_startup", "--timeout", "60"])
                    .output();
            }
        }
    }
}

/// Stopping and starting the shared local PostgreSQL cluster (tests named `chaos_…`, run
/// serially). Uses `pg_ctlcluster` on the Debian cluster `main` of the installed version.
pub mod database_server {
    use std::process::Command;

    fn pg_ctlcluster(action: &str) -> std::process::Output {
        let version = std::fs::read_dir("/etc/postgresql")
            .ok()
            .and_then(|entries| entries.filter_map(Result::ok).next())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .unwrap_or_else(|| "15".to_owned());
        Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &version, "main", action])
            .output()
            .expect("pg_ctlcluster runs")
    }

    /// Stops PostgreSQL (fast shutdown: connections drop) and returns a guard that starts it
    /// again when dropped, also when the test panics.
    pub fn stop_database() -> DatabaseRestartGuard {
        let output = pg_ctlcluster("stop");
        assert!(
            output.status.success(),
            "pg_ctlcluster stop: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        DatabaseRestartGuard { restarted: false }
    }

    /// Starts PostgreSQL again when dropped, unless [`DatabaseRestartGuard::start`] did already.
    pub struct DatabaseRestartGuard {
        restarted: bool,
    }

    impl DatabaseRestartGuard {
        /// Starts PostgreSQL now (returns once it accepts connections).
        pub fn start(mut self) {
            let output = pg_ctlcluster("start");
            assert!(
                output.status.success(),
                "pg_ctlcluster start: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            self.restarted = true;
        }
    }

    impl Drop for DatabaseRestartGuard {
        fn drop(&mut self) {
            if !self.restarted {
                let _ = pg_ctlcluster("start");
            }
        }
    }
}

/// Deletes bus `namespace`: `queues` (full names), its exchanges, and every other queue and
/// exchange the broker lists under it, from synchronous code such as `Drop` (a private thread
/// and runtime). Failures are ignored: this is cleanup, and the next sweep catches leftovers.
pub fn delete_bus_objects(namespace: &str, queues: Vec<String>) {
    let _ = cleanup::delete_bus_namespace(&amqp_url(), namespace, queues);
}
