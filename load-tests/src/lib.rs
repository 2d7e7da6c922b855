//! Benchmarks and load generators for Switchboard. Every load here targets loopback only and
//! is bounded in count and time.
//!
//! The library holds what the benches share: the machine's floors measured in the same run,
//! starting the real binary, confirmed publishing of a backlog, the report, and a run's
//! database and bus namespace, removed at the end whatever happened (an error, a panic,
//! Ctrl-C) and, should the process be killed, by the next bench's sweep
//! (`switchboard_testkit::cleanup`).

pub mod chaos;
pub mod floors;
pub mod pipeline;
pub mod process;

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use switchboard_messaging::{Bus, Outgoing};
use switchboard_testkit::Harness;
use switchboard_testkit::cleanup::{self, DatabaseGuard, NamespaceGuard};
use switchboard_testkit::names::HarnessNames;

/// The command-line options every bench that runs the real binary shares (flattened into
/// each bench's own options).
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// The switchboard binary (a release build).
    #[arg(long, default_value = "target/release/switchboard")]
    pub binary: String,
    /// Publishes awaiting their confirm at once while filling the queues.
    #[arg(long, default_value_t = 256)]
    pub in_flight: usize,
    /// Single-row inserts of the PostgreSQL floor (over 16 connections).
    #[arg(long, default_value_t = 20_000)]
    pub inserts: u64,
    /// Leave the database in place at the end (to inspect it); it is printed.
    #[arg(long)]
    pub keep_database: bool,
    /// Broker (loopback only).
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    /// PostgreSQL server (loopback only); a fresh database is created on it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    pub database_server: String,
}

/// Parses `20m`, `90s` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration"))?;
    match unit {
        "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number * 60)),
        "h" => Ok(Duration::from_secs(number * 3600)),
        _ => Err(format!("{text:?}: use s, m or h")),
    }
}

/// The lines of a bench's final report.
pub struct Report {
    bench: &'static str,
    /// The lines so far.
    pub lines: Vec<String>,
}

impl Report {
    /// An empty report of `bench` (its name prefixes progress lines).
    pub fn new(bench: &'static str) -> Self {
        Self {
            bench,
            lines: Vec::new(),
        }
    }

    /// Adds a line and shows it on stderr as progress.
    pub fn line(&mut self, line: String) {
        eprintln!("{}: {line}", self.bench);
        self.lines.push(line);
    }
}

/// A timestamp for protobuf.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Publishes `count` messages with `in_flight` confirms awaited at once; returns the elapsed
/// time and how many failed.
pub async fn publish_all(
    bus: &Bus,
    count: u64,
    in_flight: usize,
    message: impl Fn(u64) -> Outgoing,
) -> (Duration, u64) {
    let publisher = bus.publisher();
    let started = Instant::now();
    let failed = futures_util::stream::iter(0..count)
        .map(|sequence| {
            let (publisher, outgoing) = (publisher.clone(), message(sequence));
            async move { publisher.publish(outgoing).await.is_err() }
        })
        .buffer_unordered(in_flight.max(1))
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    (started.elapsed(), failed as u64)
}

/// Removes what earlier bench runs that were killed left behind (see
/// `switchboard_testkit::cleanup::sweep_stale`), then returns fresh names owned by this
/// process. A failed sweep is reported, not fatal.
pub fn bench_names(amqp_url: &str, database_server: Option<&str>) -> HarnessNames {
    match cleanup::sweep_stale(Harness::Bench, amqp_url, database_server) {
        Ok(swept) if swept.namespaces.is_empty() && swept.databases.is_empty() => {}
        Ok(swept) => eprintln!(
            "swept what killed bench runs left: namespaces {:?} ({} queues, {} exchanges), databases {:?}",
            swept.namespaces, swept.deleted.queues, swept.deleted.exchanges, swept.databases
        ),
        Err(error) => eprintln!("cannot sweep what earlier bench runs left: {error:#}"),
    }
    Harness::Bench.fresh_names(std::process::id())
}

/// Runs `work` until it ends or the process is asked to stop (Ctrl-C, SIGTERM): then `work`
/// is dropped (its child processes are killed) and an error is returned, so the caller's guards
/// still clean up.
pub async fn until_interrupted<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted (SIGINT)"),
        _ = terminate.recv() => anyhow::bail!("terminated (SIGTERM)"),
    }
}

/// What one bench run creates (a database and a bus namespace with its queues), removed by
/// [`Run::cleanup`] or, when the run ends otherwise, when this value drops.
pub struct Run {
    /// A short unique token of this run (in event ids).
    pub token: String,
    /// The database's name.
    pub database: String,
    /// Its URL.
    pub database_url: String,
    /// The bus namespace.
    pub namespace: String,
    /// The bench's own bus connection.
    pub bus: Bus,
    /// Queues the bench declared in the namespace (the binary declares more; all go).
    pub queues: Vec<switchboard_messaging::QueueSpec>,
    /// Deletes every queue and exchange under the namespace (declared after `bus`, so it
    /// drops after it).
    namespace_guard: NamespaceGuard,
    /// Drops the database.
    database_guard: DatabaseGuard,
}

impl Run {
    /// Sweeps what killed bench runs left, creates the database on `database_server` and the
    /// bus namespace, and declares the queues `queues` returns for the run's bus.
    pub async fn prepare(
        bench: &str,
        database_server: &str,
        amqp_url: &str,
        queues: impl FnOnce(&Bus) -> Vec<switchboard_messaging::QueueSpec>,
    ) -> anyhow::Result<Self> {
        let names = bench_names(amqp_url, Some(database_server));
        let namespace_guard = NamespaceGuard::new(amqp_url, &names.namespace);
        let database_guard = DatabaseGuard::create(database_server, &names.database).await?;
        let bus = Bus::start(
            switchboard_messaging::BusConfig {
                url: secrecy::SecretString::from(amqp_url.to_owned()),
                namespace: names.namespace.clone(),
                connection_name: bench.to_owned(),
                ..switchboard_messaging::BusConfig::default()
            },
            std::sync::Arc::new(switchboard_messaging::metrics::MessagingMetrics::default()),
        );
        let queues = queues(&bus);
        let run = Self {
            token: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
            database_url: database_guard.url(),
            database: names.database,
            namespace: names.namespace,
            bus,
            queues,
            namespace_guard,
            database_guard,
        };
        let connection = run.bus.connection(Duration::from_secs(10)).await?;
        let channel = connection.create_channel().await?;
        for queue in &run.queues {
            queue.declare(&channel).await?;
        }
        let _ = channel.close(200, "declared".into()).await;
        Ok(run)
    }

    /// Removes every queue and exchange under the namespace and (unless `keep_database`) the
    /// database, reporting what failed. Stop the binary first, so nothing redeclares.
    pub async fn cleanup(self, keep_database: bool) -> anyhow::Result<()> {
        self.bus.close().await;
        let deleted = self.namespace_guard.delete();
        let dropped = if keep_database {
            eprintln!("database kept: {}", self.database_url);
            self.database_guard.keep();
            Ok(())
        } else {
            self.database_guard.drop_now()
        };
        let deleted = deleted?;
        eprintln!(
            "removed bus namespace {} ({} queues, {} exchanges){}",
            self.namespace,
            deleted.queues,
            deleted.exchanges,
            if keep_database { "" } else { " and its database" }
        );
        dropped
    }
}
