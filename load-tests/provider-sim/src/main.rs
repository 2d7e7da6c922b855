//! `provider-sim`: serves the provider simulator until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use switchboard_provider_sim::{Simulator, SimulatorOptions, parse_accounts};
use tokio::net::TcpListener;

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "provider-sim",
    about = "Simulates the providers' send APIs for Switchboard tests and demos"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "PROVIDER_SIM_ADDR", default_value = "127.0.0.1:9900")]
    listen: SocketAddr,
    /// A JSON list of accounts to configure at start (as `PUT /_sim/accounts/...` bodies plus
    /// `provider` and `external_id`).
    #[arg(long, env = "PROVIDER_SIM_ACCOUNTS")]
    accounts: Option<PathBuf>,
    /// Address of the SMTP sink (plain SMTP, any AUTH credentials); off when not set.
    #[arg(long, env = "PROVIDER_SIM_SMTP_ADDR")]
    smtp_listen: Option<SocketAddr>,
    /// Calls kept in the call log.
    #[arg(long, default_value_t = 200_000)]
    max_calls: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let accounts = match &args.accounts {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading accounts file {}", path.display()))?;
            parse_accounts(&text).with_context(|| format!("parsing accounts file {}", path.display()))?
        }
        None => Vec::new(),
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let smtp_listener = match args.smtp_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the smtp sink on {addr}"))?,
        ),
        None => None,
    };
    let options = SimulatorOptions {
        max_calls: args.max_calls,
        ..SimulatorOptions::default()
    };
    let configured = accounts.len();
    let running = Simulator::start_with_listeners(listener, smtp_listener, options, accounts)
        .await
        .context("starting the simulator")?;
    tracing::info!(
        base_url = running.base_url(),
        smtp_addr = running.smtp_addr().map(|addr| addr.to_string()),
        accounts = configured,
        "provider simulator ready"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await.context("stopping the simulator")?;
    Ok(())
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
