//! A bench run's bus namespace and database for scripts (`scripts/idle-rss.sh`), and the check
//! that bench runs left nothing behind (`make bench-smoke`).
//!
//! - `bench-namespace open --owner-pid PID` sweeps what killed bench runs left, then prints a
//!   fresh namespace and database name owned by process `PID` (the script), space-separated;
//! - `bench-namespace close --namespace NS [--database DB]` deletes every queue and exchange
//!   under `NS` and drops `DB`;
//! - `bench-namespace check` fails, listing them, when queues, exchanges or databases of bench
//!   runs remain whose owner is gone (a live bench's are not leftovers);
//! - `bench-namespace sweep` removes what killed bench runs left (every bench does at start).

use clap::{Parser, Subcommand};
use switchboard_testkit::Harness;
use switchboard_testkit::cleanup;

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// Broker (loopback only).
    #[arg(
        long,
        global = true,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// PostgreSQL server (loopback only).
    #[arg(long, global = true, default_value = "postgres://postgres@127.0.0.1:5432")]
    database_server: String,
}

/// Leftovers `check` names (then it counts).
const SHOWN: usize = 12;

#[derive(Debug, Subcommand)]
enum Command {
    /// Sweeps, then prints `NAMESPACE DATABASE` owned by `--owner-pid`.
    Open {
        /// The process that owns the names (a script's `$$`).
        #[arg(long)]
        owner_pid: u32,
    },
    /// Deletes a bench namespace and drops its database.
    Close {
        /// The namespace `open` printed.
        #[arg(long)]
        namespace: String,
        /// The database `open` printed.
        #[arg(long)]
        database: Option<String>,
    },
    /// Fails when bench runs left queues, exchanges or databases behind.
    Check,
    /// Removes what killed bench runs left.
    Sweep,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.amqp_url.contains("127.0.0.1") || args.amqp_url.contains("localhost"),
        "benchmarks only target a broker on loopback"
    );
    match args.command {
        Command::Open { owner_pid } => {
            switchboard_load_tests::bench_names(&args.amqp_url, Some(&args.database_server));
            let names = Harness::Bench.fresh_names(owner_pid);
            println!("{} {}", names.namespace, names.database);
        }
        Command::Close { namespace, database } => {
            anyhow::ensure!(
                Harness::Bench
                    .parse_bus_name(&format!("{namespace}x"))
                    .is_some_and(|(parsed, _)| parsed == namespace),
                "{namespace:?} is not a bench namespace"
            );
            let deleted = cleanup::delete_bus_namespace(&args.amqp_url, &namespace, Vec::new());
            if let Some(database) = &database {
                anyhow::ensure!(
                    Harness::Bench.parse_database_name(database).is_some(),
                    "{database:?} is not a bench database"
                );
                cleanup::drop_database(&args.database_server, database)?;
            }
            let deleted = deleted?;
            eprintln!(
                "removed bus namespace {namespace} ({} queues, {} exchanges){}",
                deleted.queues,
                deleted.exchanges,
                if database.is_some() {
                    " and its database"
                } else {
                    ""
                }
            );
        }
        Command::Check => {
            let mut left = cleanup::leftovers(Harness::Bench, &args.amqp_url, Some(&args.database_server))?;
            let count = left.len();
            if count > SHOWN {
                left.truncate(SHOWN);
                left.push(format!("… and {} more", count - SHOWN));
            }
            anyhow::ensure!(
                count == 0,
                "bench runs left {count} queues, exchanges or databases behind (`bench-namespace sweep` removes those of killed runs):\n  {}",
                left.join("\n  ")
            );
            eprintln!("no queue, exchange or database of a finished bench run remains");
        }
        Command::Sweep => {
            switchboard_load_tests::bench_names(&args.amqp_url, Some(&args.database_server));
        }
    }
    Ok(())
}
