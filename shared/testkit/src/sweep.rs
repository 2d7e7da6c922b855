//! The sweep's decisions: which of a harness's namespaces and databases are stale, and when
//! old-format names were first seen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::broker_objects::{delete_objects, list_broker};
use crate::cleanup::{Swept, connect_postgres};
use crate::names::{Harness, Owner, Provenance, host_tag, process, unix_now};

/// An old-format name is removed only once an earlier sweep saw it this long ago and nothing
/// uses it now (no consumer on its queues, no session on the database): old-format names do
/// not say who owns them or when they were made, and an older checkout may still make them.
const LEGACY_GRACE: Duration = Duration::from_secs(3600);

/// One of a harness's namespaces as the broker lists it.
struct Found {
    provenance: Provenance,
    /// Whether one of its queues has a consumer.
    consumed: bool,
    queues: BTreeSet<String>,
    exchanges: BTreeSet<String>,
}

impl Found {
    fn new(provenance: Provenance) -> Self {
        Self {
            provenance,
            consumed: false,
            queues: BTreeSet::new(),
            exchanges: BTreeSet::new(),
        }
    }
}

/// Deletes `harness`'s stale namespaces from the broker.
pub(crate) async fn sweep_bus(
    harness: Harness,
    amqp_url: &str,
    legacy: &mut LegacySightings,
    swept: &mut Swept,
) -> anyhow::Result<()> {
    let listing = list_broker(amqp_url).await?;
    let mut namespaces: BTreeMap<String, Found> = BTreeMap::new();
    for queue in listing.queues {
        if let Some((namespace, provenance)) = harness.parse_bus_name(&queue.name) {
            let found = namespaces
                .entry(namespace)
                .or_insert_with(|| Found::new(provenance));
            found.consumed |= queue.consumers > 0;
            found.queues.insert(queue.name);
        }
    }
    for exchange in listing.exchanges {
        if let Some((namespace, provenance)) = harness.parse_bus_name(&exchange) {
            let found = namespaces
                .entry(namespace)
                .or_insert_with(|| Found::new(provenance));
            found.exchanges.insert(exchange);
        }
    }
    let (now, here) = (unix_now(), host_tag());
    let (mut queues, mut exchanges) = (BTreeSet::new(), BTreeSet::new());
    for (namespace, found) in namespaces {
        let stale = match found.provenance {
            Provenance::Owned(owner) => is_stale(&owner, now, &here),
            Provenance::Legacy => {
                legacy.unused_since_grace(&format!("bus {namespace}"), now, !found.consumed)
            }
        };
        if stale {
            queues.extend(found.queues);
            exchanges.extend(found.exchanges);
            swept.namespaces.push(namespace);
        }
    }
    if !queues.is_empty() || !exchanges.is_empty() {
        swept.deleted = delete_objects(amqp_url, &queues, &exchanges).await?;
    }
    Ok(())
}

/// Drops `harness`'s stale databases.
pub(crate) async fn sweep_databases(
    harness: Harness,
    database_server: &str,
    legacy: &mut LegacySightings,
    swept: &mut Swept,
) -> anyhow::Result<()> {
    let client = connect_postgres(database_server).await?;
    let rows = client
        .query(
            "SELECT d.datname::text,
                    (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname)
             FROM pg_database d",
            &[],
        )
        .await
        .context("list databases")?;
    let (now, here) = (unix_now(), host_tag());
    for row in rows {
        let (name, sessions): (String, i64) = (row.get(0), row.get(1));
        let stale = match harness.parse_database_name(&name) {
            None => false,
            Some(Provenance::Owned(owner)) => is_stale(&owner, now, &here),
            Some(Provenance::Legacy) => {
                legacy.unused_since_grace(&format!("database {name}"), now, sessions == 0)
            }
        };
        if stale {
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await
                .with_context(|| format!("drop database {name}"))?;
            swept.databases.push(name);
        }
    }
    Ok(())
}

/// Whether an owned name is stale on this machine now.
pub(crate) fn is_stale(owner: &Owner, now: u64, here: &str) -> bool {
    owner.is_stale(now, here, process)
}

/// When sweeps first saw each old-format name still present (a file per harness kind in the
/// temporary directory), so that one is removed only after [`LEGACY_GRACE`].
pub(crate) struct LegacySightings {
    path: PathBuf,
    first_seen: BTreeMap<String, u64>,
    present: BTreeSet<String>,
}

impl LegacySightings {
    pub(crate) fn load(harness: Harness) -> Self {
        Self::load_from(state_directory().join(format!("{harness:?}-legacy-names").to_lowercase()))
    }

    fn load_from(path: PathBuf) -> Self {
        let first_seen = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let (seen, name) = line.split_once(' ')?;
                Some((name.to_owned(), seen.parse().ok()?))
            })
            .collect();
        Self {
            path,
            first_seen,
            present: BTreeSet::new(),
        }
    }

    /// Records `key` as present; true when an earlier sweep saw it at least [`LEGACY_GRACE`]
    /// ago and it is `unused` now (it is then forgotten, being removed).
    pub(crate) fn unused_since_grace(&mut self, key: &str, now: u64, unused: bool) -> bool {
        let first_seen = *self.first_seen.entry(key.to_owned()).or_insert(now);
        let stale = unused && now.saturating_sub(first_seen) >= LEGACY_GRACE.as_secs();
        if stale {
            self.present.remove(key);
        } else {
            self.present.insert(key.to_owned());
        }
        stale
    }

    /// Keeps the sightings of names still present (written whole, then renamed into place).
    pub(crate) fn save(self) {
        let text: String = self
            .first_seen
            .iter()
            .filter(|(key, _)| self.present.contains(*key))
            .map(|(key, seen)| format!("{seen} {key}\n"))
            .collect();
        let temporary = self.path.with_extension(format!("{}.tmp", std::process::id()));
        if std::fs::write(&temporary, text).is_ok() {
            let _ = std::fs::rename(&temporary, &self.path);
        }
    }
}

/// Where sweeps keep their state (created on first use).
pub(crate) fn state_directory() -> PathBuf {
    let directory = std::env::temp_dir().join("switchboard-harness-sweep");
    let _ = std::fs::create_dir_all(&directory);
    directory
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_format_name_goes_once_an_earlier_sweep_saw_it_an_hour_ago_and_nothing_uses_it() {
        let path = std::env::temp_dir().join(format!("switchboard-legacy-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let (queue, database, now) = (
            "bus sbt-0123456789ab.",
            "database sbtest_0123456789ab",
            1_800_000_000,
        );
        let mut sightings = LegacySightings::load_from(path.clone());
        assert!(!sightings.unused_since_grace(queue, now, true), "first sighting");
        assert!(!sightings.unused_since_grace(database, now - 10, true));
        sightings.save();

        let mut sightings = LegacySightings::load_from(path.clone());
        assert!(
            !sightings.unused_since_grace(queue, now + 3599, true),
            "within the grace"
        );
        assert!(!sightings.unused_since_grace(queue, now + 3600, false), "in use");
        assert!(sightings.unused_since_grace(queue, now + 3600, true));
        // The database is gone meanwhile (not seen this time): forgotten too.
        sightings.save();

        let sightings = LegacySightings::load_from(path.clone());
        assert!(sightings.first_seen.is_empty(), "{:?}", sightings.first_seen);
        let _ = std::fs::remove_file(&path);
    }
}
