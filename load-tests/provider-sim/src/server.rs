//! Starting and stopping the simulator in-process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::client::SimulatorClient;
use crate::control;
use crate::error::SimulatorError;
use crate::model::AccountSeed;
use crate::providers;
use crate::smtp;
use crate::state::SimState;

/// Process-wide knobs of a simulator.
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    /// Calls kept in the call log; older ones are discarded (and counted).
    pub max_calls: usize,
    /// Timeout of one webhook post.
    pub webhook_timeout: Duration,
    /// Attempts per webhook (first try included).
    pub webhook_attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub webhook_backoff: Duration,
    /// How long a `drop_response` holds the connection when the fault sets no `hold_ms`.
    pub default_drop_hold: Duration,
    /// Largest message the SMTP sink accepts, in octets (advertised as `SIZE`).
    pub smtp_max_message_size: usize,
    /// SMTP messages kept in the log; older ones are discarded (and counted).
    pub max_smtp_messages: usize,
    /// How long an SMTP session may wait for a line before it is closed with `421`.
    pub smtp_idle_timeout: Duration,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            max_calls: 200_000,
            webhook_timeout: Duration::from_secs(5),
            webhook_attempts: 4,
            webhook_backoff: Duration::from_millis(100),
            default_drop_hold: Duration::from_secs(30),
            smtp_max_message_size: 30 * 1024 * 1024,
            max_smtp_messages: 10_000,
            smtp_idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Starts simulators.
#[derive(Debug, Clone, Copy)]
pub struct Simulator;

impl Simulator {
    /// Binds `bind_addr` (port 0 for any free port) and serves with default options.
    pub async fn start(bind_addr: impl ToSocketAddrs) -> Result<RunningSimulator, SimulatorError> {
        let listener = TcpListener::bind(bind_addr).await?;
        Self::start_with(listener, SimulatorOptions::default(), Vec::new()).await
    }

    /// Binds `http_addr` and `smtp_addr` (port 0 for any free port) and serves HTTP and the
    /// SMTP sink with default options.
    pub async fn start_with_smtp(
        http_addr: impl ToSocketAddrs,
        smtp_addr: impl ToSocketAddrs,
    ) -> Result<RunningSimulator, SimulatorError> {
        let listener = TcpListener::bind(http_addr).await?;
        let smtp_listener = TcpListener::bind(smtp_addr).await?;
        Self::start_with_listeners(
            listener,
            Some(smtp_listener),
            SimulatorOptions::default(),
            Vec::new(),
        )
        .await
    }

    /// Serves on `listener` with `options`, after configuring the `accounts` (no SMTP sink).
    pub async fn start_with(
        listener: TcpListener,
        options: SimulatorOptions,
        accounts: Vec<AccountSeed>,
    ) -> Result<RunningSimulator, SimulatorError> {
        Self::start_with_listeners(listener, None, options, accounts).await
    }

    /// Serves HTTP on `listener` and, when given, the SMTP sink on `smtp_listener`, with
    /// `options`, after configuring the `accounts`.
    pub async fn start_with_listeners(
        listener: TcpListener,
        smtp_listener: Option<TcpListener>,
        options: SimulatorOptions,
        accounts: Vec<AccountSeed>,
    ) -> Result<RunningSimulator, SimulatorError> {
        let addr = listener.local_addr()?;
        let smtp_addr = smtp_listener.as_ref().map(TcpListener::local_addr).transpose()?;
        let shutdown = CancellationToken::new();
        let state = Arc::new(SimState::new(options, shutdown.clone()));
        for seed in accounts {
            state
                .configure(seed.provider, &seed.external_id, seed.config)
                .map_err(|invalid| SimulatorError::InvalidAccount {
                    provider: seed.provider,
                    external_id: seed.external_id.clone(),
                    reason: invalid.to_string(),
                })?;
        }
        let smtp_task = smtp_listener
            .map(|smtp_listener| smtp::spawn(smtp_listener, Arc::clone(&state), shutdown.clone()));
        let app: Router = control::router().fallback(providers::handle).with_state(state);
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        tracing::info!(%addr, "provider simulator listening");
        if let Some(smtp_addr) = smtp_addr {
            tracing::info!(%smtp_addr, "provider simulator smtp sink listening");
        }
        Ok(RunningSimulator {
            addr,
            smtp_addr,
            base_url: format!("http://{addr}"),
            shutdown,
            task: Some(task),
            smtp_task,
        })
    }
}

/// A simulator serving in this process; stops when dropped or on [`RunningSimulator::shutdown`].
#[derive(Debug)]
pub struct RunningSimulator {
    addr: SocketAddr,
    smtp_addr: Option<SocketAddr>,
    base_url: String,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
    smtp_task: Option<JoinHandle<()>>,
}

impl RunningSimulator {
    /// `http://<ip>:<port>`, the base URL of every provider API and of `/_sim/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The SMTP sink's bound address, when it was started with one.
    pub fn smtp_addr(&self) -> Option<SocketAddr> {
        self.smtp_addr
    }

    /// A control API client for this simulator.
    pub fn client(&self) -> SimulatorClient {
        SimulatorClient::new(self.base_url.clone())
    }

    /// A token cancelled when the simulator stops (cancel it to stop it).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, ends held connections, SMTP sessions (with `421`) and pending
    /// receipts, and waits for the servers.
    pub async fn shutdown(mut self) -> Result<(), SimulatorError> {
        self.shutdown.cancel();
        if let Some(smtp_task) = self.smtp_task.take() {
            smtp_task.await?;
        }
        match self.task.take() {
            Some(task) => Ok(task.await??),
            None => Ok(()),
        }
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
