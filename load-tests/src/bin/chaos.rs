//! The fault suite at bench size (or CI size): runs scenarios against the real binary and the
//! local PostgreSQL and RabbitMQ, which it stops and starts. Prints what was injected, the load
//! and the stored outcome of each; exits non-zero when any promise broke.
//!
//! Usage: `chaos --binary target/release/switchboard [--scale bench] [--scenario NAME]...`
//! (see `make chaos`). Loopback only; run nothing else against the local services meanwhile.

use clap::Parser;
use switchboard_load_tests::chaos::{Scale, ScenarioReport, Setup, replicas, scenarios};
use switchboard_load_tests::until_interrupted;

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// The switchboard binary.
    #[arg(long, default_value = "target/release/switchboard")]
    binary: String,
    /// `bench` (the sizes) or `ci` (small).
    #[arg(long, default_value = "bench")]
    scale: String,
    /// Scenarios to run (default: all): broker-outage, process-killed, database-restart,
    /// graceful-shutdown, poison-message, duplicate-storm, replicas.
    #[arg(long)]
    scenario: Vec<String>,
    /// Broker (loopback only).
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// PostgreSQL server (loopback only); a fresh database is created per scenario.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    database_server: String,
}

/// Every scenario, by name.
const SCENARIOS: [&str; 7] = [
    "broker-outage",
    "process-killed",
    "database-restart",
    "graceful-shutdown",
    "poison-message",
    "duplicate-storm",
    "replicas",
];

async fn run(name: &str, setup: &Setup, scale: Scale) -> anyhow::Result<ScenarioReport> {
    match name {
        "broker-outage" => scenarios::broker_outage(setup, scale).await,
        "process-killed" => scenarios::process_killed(setup, scale).await,
        "database-restart" => scenarios::database_restart(setup, scale).await,
        "graceful-shutdown" => scenarios::graceful_shutdown(setup, scale).await,
        "poison-message" => scenarios::poison_message(setup, scale).await,
        "duplicate-storm" => scenarios::duplicate_storm(setup, scale).await,
        "replicas" => replicas::replicas_split(setup, scale).await,
        other => anyhow::bail!("unknown scenario {other:?}; known: {SCENARIOS:?}"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scale = match args.scale.as_str() {
        "bench" => Scale::Bench,
        "ci" => Scale::Ci,
        other => anyhow::bail!("--scale {other:?}: use bench or ci"),
    };
    let setup = Setup {
        binary: args.binary.clone(),
        amqp_url: args.amqp_url.clone(),
        database_server: args.database_server.clone(),
        extra_env: Vec::new(),
        provider: None,
    };
    let names: Vec<String> = if args.scenario.is_empty() {
        SCENARIOS.iter().map(|name| (*name).to_owned()).collect()
    } else {
        args.scenario.clone()
    };
    let mut failed = Vec::new();
    for name in &names {
        let report = until_interrupted(run(name, &setup, scale)).await?;
        println!("{}", report.text());
        if !report.failures.is_empty() {
            failed.push(name.clone());
        }
    }
    anyhow::ensure!(failed.is_empty(), "scenarios that broke a promise: {failed:?}");
    Ok(())
}
