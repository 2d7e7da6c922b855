//! Benchmarks and load generators for Switchboard. Every load here targets loopback only and
//! is bounded in count and time.
//!
//! The library holds what the benches share: the machine's floors measured in the same run,
//! starting the real binary, confirmed publishing of a backlog, and the report.

pub mod floors;
pub mod process;

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use switchboard_messaging::{Bus, Outgoing};

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

/// What one bench run creates (a database and a bus namespace with its queues), removed at
/// the end whatever happened.
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
    /// Queues declared (by the bench or by the binary) in the namespace.
    pub queues: Vec<switchboard_messaging::QueueSpec>,
    database_server: String,
}

impl Run {
    /// Creates the database on `database_server` and the bus namespace, and declares the
    /// queues `queues` returns for the run's bus.
    pub async fn prepare(
        bench: &str,
        database_server: &str,
        amqp_url: &str,
        queues: impl FnOnce(&Bus) -> Vec<switchboard_messaging::QueueSpec>,
    ) -> anyhow::Result<Self> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("sb_bench_{}", &token[..12]);
        let namespace = format!("sbbench-{}.", &token[..12]);
        let (client, connection) =
            tokio_postgres::connect(&format!("{database_server}/postgres"), tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await?;
        let bus = Bus::start(
            switchboard_messaging::BusConfig {
                url: secrecy::SecretString::from(amqp_url.to_owned()),
                namespace: namespace.clone(),
                connection_name: bench.to_owned(),
                ..switchboard_messaging::BusConfig::default()
            },
            std::sync::Arc::new(switchboard_messaging::metrics::MessagingMetrics::default()),
        );
        let queues = queues(&bus);
        let run = Self {
            token: token[..8].to_owned(),
            database_url: format!("{database_server}/{database}"),
            database,
            namespace,
            bus,
            queues,
            database_server: database_server.to_owned(),
        };
        let connection = run.bus.connection(Duration::from_secs(10)).await?;
        let channel = connection.create_channel().await?;
        for queue in &run.queues {
            queue.declare(&channel).await?;
        }
        let _ = channel.close(200, "declared".into()).await;
        Ok(run)
    }

    /// Removes the queues, the exchanges and (unless `keep_database`) the database.
    pub async fn cleanup(&self, keep_database: bool) -> anyhow::Result<()> {
        let connection = self.bus.connection(Duration::from_secs(10)).await?;
        let channel = connection.create_channel().await?;
        for queue in &self.queues {
            if let Err(error) = queue.delete(&channel).await {
                eprintln!("cannot delete {}: {error}", queue.name);
            }
        }
        let _ = channel.close(200, "cleaned up".into()).await;
        self.bus.delete_exchanges().await?;
        self.bus.close().await;
        if keep_database {
            eprintln!("database kept: {}", self.database_url);
            return Ok(());
        }
        let (client, connection) = tokio_postgres::connect(
            &format!("{}/postgres", self.database_server),
            tokio_postgres::NoTls,
        )
        .await?;
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database))
            .await?;
        Ok(())
    }
}
