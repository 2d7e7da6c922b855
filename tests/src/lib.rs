//! End-to-end harness: runs the real `switchboard` binary as a child process against the
//! local PostgreSQL and RabbitMQ, each test with its own database and bus namespace.
//!
//! The binary is found at `$SWITCHBOARD_BIN`, else `<target dir>/debug/switchboard`
//! (`make test` builds it first).
//!
//! A process's bus namespace is deleted from the broker when its [`Switchboard`] drops, also
//! when the test panics; what a killed test process leaves behind is swept by a later test
//! (see `switchboard_testkit::cleanup`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod webhooks;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_testkit::{NamespaceGuard, TestDatabase};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Path of the binary under test.
pub fn binary_path() -> PathBuf {
    if let Ok(path) = std::env::var("SWITCHBOARD_BIN") {
        return PathBuf::from(path);
    }
    let target_dir = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target_dir.join("debug/switchboard");
    assert!(
        path.exists(),
        "{} not found: run `cargo build -p switchboard` first (make test does), or set SWITCHBOARD_BIN",
        path.display()
    );
    path
}

/// A bootstrap token valid for tests.
pub const BOOTSTRAP_TOKEN: &str = "test-bootstrap-token-0123456789abcdef0123456789";

/// The internal (component-to-component) token of test installations.
pub const INTERNAL_TOKEN: &str = "test-internal-token-abcdef0123456789abcdef012345";

/// The environment for one isolated Switchboard: its own database, bus namespace (a test
/// namespace of this process, see `switchboard_testkit::test_names`) and ephemeral ports, JSON
/// logs, short drain.
pub fn isolated_env(database: &TestDatabase) -> Vec<(String, String)> {
    let namespace = switchboard_testkit::test_names().namespace;
    [
        ("DATABASE_URL", database.url.as_str()),
        ("AMQP_URL", &switchboard_testkit::amqp_url()),
        ("SWITCHBOARD_HTTP_ADDR", "127.0.0.1:0"),
        ("SWITCHBOARD_GRPC_ADDR", "127.0.0.1:0"),
        ("SWITCHBOARD_ADMIN_ADDR", "127.0.0.1:0"),
        ("SWITCHBOARD_SMTP_ADDR", "127.0.0.1:0"),
        ("SWITCHBOARD_LOG_FORMAT", "json"),
        ("SWITCHBOARD_BOOTSTRAP_TOKEN", BOOTSTRAP_TOKEN),
        ("SWITCHBOARD_INTERNAL_TOKEN", INTERNAL_TOKEN),
        ("SWITCHBOARD__BUS__NAMESPACE", namespace.as_str()),
        // One partition per family keeps each test's broker footprint small.
        ("SWITCHBOARD__BUS__PARTITIONS", "1"),
        ("SWITCHBOARD__SHUTDOWN__DRAIN_DELAY", "1s"),
        ("SWITCHBOARD__SHUTDOWN__GRACE_PERIOD", "10s"),
        ("SWITCHBOARD__SERVER__READINESS_INTERVAL", "200ms"),
        ("SWITCHBOARD__AUTH__KEY_CACHE_TTL", "0s"),
        ("RUST_LOG", "info"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect()
}

/// A running `switchboard` process; killed when dropped.
pub struct Switchboard {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    /// Deletes the bus namespace (every queue and exchange under it) once the process is
    /// killed.
    bus: Option<NamespaceGuard>,
    /// Admin base URL (`http://127.0.0.1:port`).
    pub admin: String,
    /// HTTP base URL.
    pub http: String,
    /// gRPC endpoint URL.
    pub grpc: String,
}

/// Runs the binary to completion and returns its status and stderr.
pub fn run_to_end(args: &[&str], env: &[(String, String)]) -> (ExitStatus, String, String) {
    let output = Command::new(binary_path())
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(key, value)| (key.as_str(), value.as_str())))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("binary runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

impl Switchboard {
    /// Starts the binary with `args` and `env` and waits until its three listeners are bound.
    pub fn start(args: &[&str], env: &[(String, String)]) -> Self {
        let mut child = Command::new(binary_path())
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(key, value)| (key.as_str(), value.as_str())))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if std::env::var_os("TEST_LOG").is_some() {
                        eprintln!("switchboard: {line}");
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut addresses = std::collections::HashMap::new();
        // Wait for these three by name: an SMTP listener also logs "listening".
        while !["admin", "http", "grpc"]
            .iter()
            .all(|name| addresses.contains_key(*name))
        {
            assert!(
                Instant::now() < deadline,
                "listeners not bound in time; logs:\n{}",
                logs.lock().unwrap().join("\n")
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "switchboard exited early with {status}; logs:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
            for line in logs.lock().unwrap().iter() {
                let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if value["message"] == "listening"
                    && let (Some(listener), Some(addr)) = (value["listener"].as_str(), value["addr"].as_str())
                {
                    addresses.insert(listener.to_owned(), format!("http://{addr}"));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let setting = |name: &str| {
            env.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let bus = setting("SWITCHBOARD__BUS__NAMESPACE").map(|namespace| {
            // Every family's queues up to the largest count any family has.
            let partitions = env
                .iter()
                .filter(|(key, _)| {
                    key == "SWITCHBOARD__BUS__PARTITIONS"
                        || key.starts_with("SWITCHBOARD__BUS__FAMILY_PARTITIONS__")
                })
                .filter_map(|(_, value)| value.parse().ok())
                .max()
                .unwrap_or(8);
            let amqp_url = setting("AMQP_URL").unwrap_or_else(switchboard_testkit::amqp_url);
            NamespaceGuard::new(&amqp_url, &namespace)
                .with_known_queues(declared_queues(&namespace, partitions))
        });
        Self {
            child,
            logs,
            bus,
            admin: addresses["admin"].clone(),
            http: addresses["http"].clone(),
            grpc: addresses["grpc"].clone(),
        }
    }

    /// The address of listener `name` (e.g. `smtp`) as `host:port`, once it is logged.
    pub fn listener(&self, name: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for line in self.logs.lock().unwrap().iter() {
                let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if value["message"] == "listening"
                    && value["listener"] == name
                    && let Some(addr) = value["addr"].as_str()
                {
                    return addr.to_owned();
                }
            }
            assert!(Instant::now() < deadline, "listener {name} never logged");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit (asynchronously, so the test's own clients keep running).
    pub async fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "switchboard did not exit in time; logs:\n{}",
                self.logs().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Status code of `GET admin + path`.
    pub async fn admin_status(&self, path: &str) -> u16 {
        match reqwest::get(format!("{}{path}", self.admin)).await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// The body of `GET admin + path` (e.g. `/readyz`, `/metrics`).
    pub async fn admin_text(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.admin))
            .await
            .expect("admin listener answers")
            .text()
            .await
            .expect("admin body is text")
    }

    /// The gRPC health of `service` (`""` = the whole server); `Unknown` when the call fails.
    pub async fn grpc_health(&self, service: &str) -> ServingStatus {
        let mut client = HealthClient::new(self.channel().await);
        client
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map(|response| response.into_inner().status())
            .unwrap_or(ServingStatus::Unknown)
    }

    /// Waits until the gRPC health of `service` is `expected`.
    pub async fn wait_grpc_health(&self, service: &str, expected: ServingStatus, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.grpc_health(service).await != expected {
            assert!(
                Instant::now() < deadline,
                "gRPC health of {service:?} never became {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `/readyz` answers `status`.
    pub async fn wait_ready_status(&self, status: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.admin_status("/readyz").await != status {
            assert!(Instant::now() < deadline, "/readyz never answered {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A gRPC channel to the process.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.grpc.clone())
            .unwrap()
            .connect()
            .await
            .expect("grpc connects")
    }
}

/// The queues a Switchboard with bus `namespace` and `partitions` declares (ingress's inbound
/// queues, routing's and contacts' queues, the bot runtime's queues, and their dead-letter
/// queues). The namespace guard deletes whatever the broker lists under the namespace; these
/// names are deleted even when the broker cannot be listed.
pub fn declared_queues(namespace: &str, partitions: u16) -> Vec<String> {
    [
        "contacts.inbound",
        "routing.contact",
        "routing.outbound",
        "contacts.assignment",
        "bots.bot",
        "delivery.autoreply",
        "delivery.send",
        "delivery.receipts",
    ]
    .into_iter()
    .flat_map(|family| {
        (0..partitions).flat_map(move |partition| {
            let queue = format!("{namespace}{family}.p{partition:02}");
            [format!("{queue}.dlq"), queue]
        })
    })
    .collect()
}

impl Drop for Switchboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Quorum queues are heavy for a shared broker: remove everything in the namespace, now
        // that nothing redeclares it.
        drop(self.bus.take());
    }
}

/// Adds `authorization: Bearer token` to a request.
pub fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}
