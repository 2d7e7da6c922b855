//! Removing what a harness (tests, e2e tests, benches) created on the shared broker and
//! PostgreSQL server: every queue and exchange under its bus namespace and its database, when
//! its guard drops (also on panic or early return) and, for what an interrupted run left
//! behind, by a sweep of its own kind's stale names at start.
//!
//! Quorum queues are Raft clusters that cost the broker even idle; a few hundred left over make
//! a local RabbitMQ stop answering handshakes. The binary declares queues for every enabled
//! component, so a namespace is deleted by listing the broker's queues and exchanges under its
//! prefix (`rabbitmqctl` when the broker is local, as on CI and a Debian install; else the
//! management API, as in `deploy/compose.yaml`) and deleting them over AMQP.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;

use crate::broker_objects::{delete_objects, list_broker};
use crate::names::{Harness, Provenance, host_tag, unix_now};
use crate::sweep::{LegacySightings, is_stale, state_directory, sweep_bus, sweep_databases};

/// Tests sweep at most this often per machine (each nextest test is its own process).
const TEST_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// What a deletion removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// Queues deleted.
    pub queues: usize,
    /// Exchanges deleted.
    pub exchanges: usize,
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// The stale namespaces whose queues and exchanges were deleted.
    pub namespaces: Vec<String>,
    /// Their queues and exchanges.
    pub deleted: Deleted,
    /// The stale databases dropped.
    pub databases: Vec<String>,
}

/// Deletes bus `namespace` from the broker at `amqp_url`: `known_queues`, the namespace's two
/// exchanges and, when `namespace` is a harness namespace (see [`Harness`]), every queue and
/// exchange the broker lists under it. Blocks (on a private thread and runtime), so it works in
/// `Drop` and outside any runtime. When the broker cannot be listed, the known names are still
/// deleted and the error says so.
pub fn delete_bus_namespace(
    amqp_url: &str,
    namespace: &str,
    known_queues: Vec<String>,
) -> anyhow::Result<Deleted> {
    let (amqp_url, namespace) = (amqp_url.to_owned(), namespace.to_owned());
    block_on_private(async move {
        let mut queues: BTreeSet<String> = known_queues.into_iter().collect();
        let mut exchanges: BTreeSet<String> = ["switchboard.events", "switchboard.dlx"]
            .iter()
            .map(|exchange| format!("{namespace}{exchange}"))
            .collect();
        let listed = if is_harness_namespace(&namespace) {
            list_broker(&amqp_url).await.map(|listing| {
                queues.extend(
                    listing
                        .queues
                        .into_iter()
                        .filter_map(|queue| queue.name.starts_with(&namespace).then_some(queue.name)),
                );
                exchanges.extend(
                    listing
                        .exchanges
                        .into_iter()
                        .filter(|exchange| exchange.starts_with(&namespace)),
                );
            })
        } else {
            Ok(())
        };
        let deleted = delete_objects(&amqp_url, &queues, &exchanges).await?;
        listed.with_context(|| {
            format!("deleted only the known queues of {namespace}: cannot list the broker's queues")
        })?;
        Ok(deleted)
    })
}

/// Drops database `name` on `server_url` (`postgres://user@host:port`), disconnecting its
/// sessions. Blocks like [`delete_bus_namespace`].
pub fn drop_database(server_url: &str, name: &str) -> anyhow::Result<()> {
    let (server_url, name) = (server_url.to_owned(), name.to_owned());
    block_on_private(async move {
        let client = connect_postgres(&server_url).await?;
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .with_context(|| format!("drop database {name}"))
    })
}

/// Removes `harness`'s stale namespaces and databases (see [`crate::names`] for when a name is
/// stale): what runs that were killed, interrupted or that leaked left behind. Never touches a
/// live run's names nor another harness's. Databases are swept only given their server
/// (`postgres://user@host:port`). Blocks like [`delete_bus_namespace`].
pub fn sweep_stale(harness: Harness, amqp_url: &str, database_server: Option<&str>) -> anyhow::Result<Swept> {
    let (amqp_url, database_server) = (amqp_url.to_owned(), database_server.map(str::to_owned));
    block_on_private(async move {
        let mut legacy = LegacySightings::load(harness);
        let mut swept = Swept::default();
        let bus = sweep_bus(harness, &amqp_url, &mut legacy, &mut swept).await;
        let databases = match &database_server {
            Some(server) => sweep_databases(harness, server, &mut legacy, &mut swept).await,
            None => Ok(()),
        };
        legacy.save();
        bus.context("sweep the broker")?;
        databases.context("sweep the databases")?;
        Ok(swept)
    })
}

/// Everything under one of `harness`'s prefixes (old formats included) on the broker and, given
/// its server, among the databases, except a live run's: what its runs left behind. Names are
/// `queue …`, `exchange …` and `database …`.
pub fn leftovers(
    harness: Harness,
    amqp_url: &str,
    database_server: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let (amqp_url, database_server) = (amqp_url.to_owned(), database_server.map(str::to_owned));
    block_on_private(async move {
        let (now, here) = (unix_now(), host_tag());
        let live = |provenance: Option<Provenance>| matches!(provenance, Some(Provenance::Owned(owner)) if !is_stale(&owner, now, &here));
        let listing = list_broker(&amqp_url).await?;
        let objects = listing
            .queues
            .into_iter()
            .map(|queue| ("queue", queue.name))
            .chain(
                listing
                    .exchanges
                    .into_iter()
                    .map(|exchange| ("exchange", exchange)),
            );
        let mut left = Vec::new();
        for (kind, name) in objects {
            let ours = harness
                .all_bus_prefixes()
                .iter()
                .any(|prefix| name.starts_with(prefix));
            if ours && !live(harness.parse_bus_name(&name).map(|(_, provenance)| provenance)) {
                left.push(format!("{kind} {name}"));
            }
        }
        if let Some(server) = database_server {
            let client = connect_postgres(&server).await?;
            for row in client
                .query("SELECT datname::text FROM pg_database", &[])
                .await
                .context("list databases")?
            {
                let name: String = row.get(0);
                let ours = harness
                    .all_database_prefixes()
                    .iter()
                    .any(|prefix| name.starts_with(prefix));
                if ours && !live(harness.parse_database_name(&name)) {
                    left.push(format!("database {name}"));
                }
            }
        }
        Ok(left)
    })
}

/// The test sweep: at most once per process and once every minute per machine (nextest runs
/// every test in its own process), against the test services. Failures are printed, never
/// fatal: a sweep only tidies up.
pub fn sweep_stale_tests() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let stamp = state_directory().join("test-sweep.stamp");
        let recent = std::fs::metadata(&stamp)
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|elapsed| elapsed < TEST_SWEEP_INTERVAL);
        if recent {
            return;
        }
        let _ = std::fs::write(&stamp, b"");
        let database_server = crate::database_server_url();
        match sweep_stale(Harness::Test, &crate::amqp_url(), Some(&database_server)) {
            Ok(swept) if swept.namespaces.is_empty() && swept.databases.is_empty() => {}
            Ok(swept) => eprintln!("swept stale test leftovers: {swept:?}"),
            Err(error) => eprintln!("cannot sweep stale test leftovers: {error:#}"),
        }
    });
}

/// Deletes a bus namespace from the broker when dropped — also when the test or bench panics
/// or returns early — unless kept.
#[derive(Debug)]
pub struct NamespaceGuard {
    amqp_url: String,
    namespace: String,
    known_queues: Vec<String>,
    armed: bool,
}

impl NamespaceGuard {
    /// Guards `namespace` on the broker at `amqp_url`.
    pub fn new(amqp_url: &str, namespace: &str) -> Self {
        Self {
            amqp_url: amqp_url.to_owned(),
            namespace: namespace.to_owned(),
            known_queues: Vec::new(),
            armed: true,
        }
    }

    /// Also deletes `queues` by name, should the broker not be listable.
    pub fn with_known_queues(mut self, queues: Vec<String>) -> Self {
        self.known_queues = queues;
        self
    }

    /// The guarded namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Deletes the namespace now, returning the outcome (dropping only prints a failure).
    pub fn delete(mut self) -> anyhow::Result<Deleted> {
        self.armed = false;
        delete_bus_namespace(
            &self.amqp_url,
            &self.namespace,
            std::mem::take(&mut self.known_queues),
        )
    }

    /// Leaves the namespace on the broker (its next owner guards it).
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let known_queues = std::mem::take(&mut self.known_queues);
        if let Err(error) = delete_bus_namespace(&self.amqp_url, &self.namespace, known_queues) {
            eprintln!("cannot delete bus namespace {}: {error:#}", self.namespace);
        }
    }
}

/// A database created for one run and dropped when this value drops, unless kept.
#[derive(Debug)]
pub struct DatabaseGuard {
    server_url: String,
    name: String,
    armed: bool,
}

impl DatabaseGuard {
    /// Creates database `name` on `server_url` (`postgres://user@host:port`).
    pub async fn create(server_url: &str, name: &str) -> anyhow::Result<Self> {
        let client = connect_postgres(server_url).await?;
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .with_context(|| format!("create database {name}"))?;
        Ok(Self {
            server_url: server_url.to_owned(),
            name: name.to_owned(),
            armed: true,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its connection URL.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server_url, self.name)
    }

    /// Drops the database now, returning the outcome (dropping only prints a failure).
    pub fn drop_now(mut self) -> anyhow::Result<()> {
        self.armed = false;
        drop_database(&self.server_url, &self.name)
    }

    /// Leaves the database in place (to inspect it).
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for DatabaseGuard {
    fn drop(&mut self) {
        if self.armed
            && let Err(error) = drop_database(&self.server_url, &self.name)
        {
            eprintln!("cannot drop database {}: {error:#}", self.name);
        }
    }
}

/// Whether `namespace` is exactly a harness namespace (never a production one, never a bare
/// prefix that would match other runs).
fn is_harness_namespace(namespace: &str) -> bool {
    let probe = format!("{namespace}probe");
    [Harness::Test, Harness::Bench].into_iter().any(|harness| {
        harness
            .parse_bus_name(&probe)
            .is_some_and(|(parsed, _)| parsed == namespace)
    })
}

pub(crate) async fn connect_postgres(server_url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) =
        tokio_postgres::connect(&format!("{server_url}/postgres"), tokio_postgres::NoTls)
            .await
            .with_context(|| format!("connect to {server_url}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// Runs `future` to completion on a private thread and runtime: cleanup runs in `Drop`, inside
/// or outside a runtime, and must not depend on the caller's.
fn block_on_private<T: Send + 'static>(
    future: impl Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("build a cleanup runtime")?
            .block_on(future)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the cleanup thread panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_harness_namespaces_are_deleted_by_prefix() {
        let names = Harness::Test.fresh_names(std::process::id());
        assert!(is_harness_namespace(&names.namespace));
        assert!(is_harness_namespace(&Harness::Bench.fresh_names(1).namespace));
        assert!(is_harness_namespace("sbt-0123456789ab."));
        for not_ours in [
            "",
            "sbt-",
            "sbbench-",
            "switchboard.",
            "sbt-0123456789ab",
            "prod-0123456789ab.",
        ] {
            assert!(!is_harness_namespace(not_ours), "{not_ours:?}");
        }
    }
}
