//! The real `switchboard` binary, started on a bench's database and bus namespace.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::AsyncBufReadExt as _;

/// How often readiness is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Where a bench runs the binary.
pub struct Launch<'a> {
    /// The binary (a release build).
    pub binary: &'a str,
    /// `DATABASE_URL`.
    pub database_url: &'a str,
    /// `AMQP_URL`.
    pub amqp_url: &'a str,
    /// The bus namespace.
    pub namespace: &'a str,
    /// The platform-admin bootstrap token.
    pub bootstrap_token: &'a str,
    /// More `KEY=value` settings.
    pub extra_env: &'a [(&'a str, &'a str)],
}

/// A running `switchboard`; killed when dropped.
pub struct Switchboard {
    child: tokio::process::Child,
    /// Base URL of the admin listener (`/readyz`, `/metrics`).
    pub admin: String,
    /// Base URL of the gRPC listener.
    pub grpc: String,
    /// Base URL of the HTTP listener (webhooks).
    pub http: String,
}

/// Three distinct free loopback ports (bound together, then released for the child).
fn free_ports() -> anyhow::Result<[u16; 3]> {
    let listeners = [
        std::net::TcpListener::bind("127.0.0.1:0")?,
        std::net::TcpListener::bind("127.0.0.1:0")?,
        std::net::TcpListener::bind("127.0.0.1:0")?,
    ];
    Ok([
        listeners[0].local_addr()?.port(),
        listeners[1].local_addr()?.port(),
        listeners[2].local_addr()?.port(),
    ])
}

/// A command running `binary` that gets SIGTERM should this process die without killing it
/// (SIGKILL runs no destructor): through util-linux's `setpriv --pdeathsig` where installed.
/// Otherwise the binary would outlive the run and redeclare the queues the next bench's sweep
/// removes. Linux signals the child when the spawning *thread* ends: spawn from the bench's
/// main future, not from a blocking-pool thread.
pub fn command(binary: &str) -> tokio::process::Command {
    let setpriv = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("setpriv").is_file()));
    if !setpriv {
        return tokio::process::Command::new(binary);
    }
    let mut command = tokio::process::Command::new("setpriv");
    command.args(["--pdeathsig", "TERM", "--", binary]);
    command
}

impl Switchboard {
    /// Starts the binary with `targets`. Its log lines (JSON, warnings and errors only) go to
    /// stderr.
    pub fn start(launch: &Launch<'_>, targets: &str) -> anyhow::Result<Self> {
        let [http, grpc, admin] = free_ports()?;
        let mut command = command(launch.binary);
        command
            .args(["--target", targets])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", launch.database_url)
            .env("AMQP_URL", launch.amqp_url)
            .env("SWITCHBOARD_HTTP_ADDR", format!("127.0.0.1:{http}"))
            .env("SWITCHBOARD_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
            .env("SWITCHBOARD_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
            .env("SWITCHBOARD_SMTP_ADDR", "127.0.0.1:0")
            .env("SWITCHBOARD_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .env("SWITCHBOARD_BOOTSTRAP_TOKEN", launch.bootstrap_token)
            .env("SWITCHBOARD__BUS__NAMESPACE", launch.namespace)
            .env("SWITCHBOARD__DATABASE__MIGRATE_ON_START", "true");
        for (key, value) in launch.extra_env {
            command.env(key, value);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (build it with `cargo build --release`)",
                    launch.binary
                )
            })?;
        let stdout = child.stdout.take().context("stdout")?;
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("switchboard: {line}");
            }
        });
        Ok(Self {
            child,
            admin: format!("http://127.0.0.1:{admin}"),
            grpc: format!("http://127.0.0.1:{grpc}"),
            http: format!("http://127.0.0.1:{http}"),
        })
    }

    /// Fails when the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!("switchboard exited early with {status}");
        }
        Ok(())
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&mut self, http: &reqwest::Client, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_running()?;
            let ready = http
                .get(format!("{}/readyz", self.admin))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "switchboard not ready within {timeout:?}"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The sums of counter `metric` per value of `label` (empty while the admin listener is
    /// not up).
    pub async fn counter_by_label(
        &self,
        http: &reqwest::Client,
        metric: &str,
        label: &str,
    ) -> BTreeMap<String, u64> {
        let mut totals = BTreeMap::new();
        let Ok(response) = http.get(format!("{}/metrics", self.admin)).send().await else {
            return totals;
        };
        let Ok(text) = response.text().await else {
            return totals;
        };
        let prefix = format!("{metric}{{");
        let label_prefix = format!("{label}=\"");
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(&prefix) else {
                continue;
            };
            let Some((labels, value)) = rest.split_once('}') else {
                continue;
            };
            let key = labels
                .split(',')
                .find_map(|pair| pair.strip_prefix(&label_prefix))
                .map_or("?", |value| value.trim_end_matches('"'));
            let count = value
                .split_whitespace()
                .next()
                .and_then(|value| value.parse::<f64>().ok())
                .unwrap_or(0.0);
            *totals.entry(key.to_owned()).or_insert(0) += count as u64;
        }
        totals
    }

    /// The sums of `{histogram}_sum` and `{histogram}_count` over all label sets.
    pub async fn histogram_totals(&self, http: &reqwest::Client, histogram: &str) -> (f64, f64) {
        let Ok(response) = http.get(format!("{}/metrics", self.admin)).send().await else {
            return (0.0, 0.0);
        };
        let text = response.text().await.unwrap_or_default();
        let (mut sum, mut count) = (0.0, 0.0);
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(histogram) else {
                continue;
            };
            let value = line
                .rsplit(' ')
                .next()
                .and_then(|value| value.parse::<f64>().ok())
                .unwrap_or(0.0);
            if rest.starts_with("_sum") {
                sum += value;
            } else if rest.starts_with("_count") {
                count += value;
            }
        }
        (sum, count)
    }

    /// Kills the process and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// Sends SIGTERM: the process drains and stops on its own.
    pub fn terminate(&self) -> anyhow::Result<()> {
        let pid = self.child.id().context("the process has already exited")?;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .context("run kill")?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
        Ok(())
    }

    /// Sends SIGKILL: the process dies at once, without any shutdown.
    pub fn kill_now(&mut self) -> anyhow::Result<()> {
        self.child.start_kill().context("send SIGKILL")
    }

    /// Waits up to `timeout` for the process to exit and returns how it exited.
    pub async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .with_context(|| format!("still running after {timeout:?}"))?
            .context("wait for the process")
    }
}
