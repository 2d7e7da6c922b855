//! Running the `provider-sim` binary as its own process, so its arrival stamps never wait on
//! the caller's own load (benchmarks and rate tests measure at the simulator).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::SimulatorError;

/// How long a started `provider-sim` may take to answer `/_sim/health`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A `provider-sim` process on a free local port; killed when dropped.
pub struct SimulatorProcess {
    child: tokio::process::Child,
    base_url: String,
}

impl SimulatorProcess {
    /// Starts `binary` (a `provider-sim`) on a free port of 127.0.0.1 and waits until it
    /// answers its health check. Its log goes to this process's stderr.
    pub async fn start(binary: &Path) -> Result<Self, SimulatorError> {
        if !binary.exists() {
            return Err(SimulatorError::BinaryMissing(binary.to_owned()));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = tokio::process::Command::new(binary)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let base_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let healthy = http
                .get(format!("{base_url}/_sim/health"))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if healthy {
                return Ok(Self { child, base_url });
            }
            if Instant::now() >= deadline {
                return Err(SimulatorError::NotAnswering(base_url));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `provider-sim` built beside `sibling` (e.g. the `switchboard` binary).
    pub fn beside(sibling: &Path) -> PathBuf {
        sibling.with_file_name("provider-sim")
    }

    /// The simulator's base URL (`http://127.0.0.1:{port}`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stops the process and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
