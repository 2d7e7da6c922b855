//! Self-describing names of the bus namespaces and databases a harness creates, and when one is
//! stale.
//!
//! A name records its owner: `sbt-<pid>-<unix secs>-<host>-<token>.` (a test's namespace),
//! `sbtest_<pid>_<unix secs>_<host>_<token>` (its database), `sbbench-…` / `sbbench_…` (a
//! bench's). `<host>` tags the machine and PID namespace the pid belongs to, so a harness never
//! judges a pid it cannot see. A name is stale once its owner process is gone (or the pid now
//! belongs to a later process) or it is older than [`MAX_AGE`]; a live concurrent test's or
//! bench's name never is.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Names older than this are stale whoever owns them: no test or bench runs this long, and it
/// is the only rule for names of another machine or PID namespace sharing the broker.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// A process that started this many seconds after a name was made cannot be its owner (the
/// pid was reused). `/proc` gives whole seconds of boot time.
const START_SLACK_SECS: u64 = 2;

/// The clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, fixed at 100 in Linux's ABI).
const USER_HZ: u64 = 100;

/// Whose names: each harness sweeps only its own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Harness {
    /// Integration and end-to-end tests (`sbt-`, `sbtest_`).
    Test,
    /// Benchmarks (`sbbench-`, `sbbench_`).
    Bench,
}

impl Harness {
    /// The prefix of this harness's bus namespaces.
    pub fn bus_prefix(self) -> &'static str {
        match self {
            Self::Test => "sbt-",
            Self::Bench => "sbbench-",
        }
    }

    /// The prefix of this harness's databases.
    pub fn database_prefix(self) -> &'static str {
        match self {
            Self::Test => "sbtest_",
            Self::Bench => "sbbench_",
        }
    }

    /// Every prefix this harness's namespaces had, the current one first.
    pub(crate) fn all_bus_prefixes(self) -> Vec<&'static str> {
        let mut prefixes = vec![self.bus_prefix()];
        prefixes.extend(self.legacy_bus_prefixes());
        prefixes
    }

    /// Every prefix this harness's databases had, the current one first.
    pub(crate) fn all_database_prefixes(self) -> Vec<&'static str> {
        let mut prefixes = vec![self.database_prefix()];
        prefixes.extend(self.legacy_database_prefixes());
        prefixes
    }

    /// Prefixes of names from before names recorded their owner (`<prefix><hex>` only): tests
    /// used `sbt-` and `sbe-` (e2e), benches `sbbench-` and `bench-` (bench-publish,
    /// idle-rss).
    fn legacy_bus_prefixes(self) -> &'static [&'static str] {
        match self {
            Self::Test => &["sbt-", "sbe-"],
            Self::Bench => &["sbbench-", "bench-"],
        }
    }

    /// Database prefixes of the old format.
    fn legacy_database_prefixes(self) -> &'static [&'static str] {
        match self {
            Self::Test => &["sbtest_"],
            Self::Bench => &["sbbench_", "sb_bench_"],
        }
    }

    /// A fresh namespace and database name owned by process `pid`.
    pub fn fresh_names(self, pid: u32) -> HarnessNames {
        let created = unix_now();
        let host = host_tag();
        let token = &uuid::Uuid::new_v4().simple().to_string()[..6];
        HarnessNames {
            namespace: format!("{}{pid}-{created}-{host}-{token}.", self.bus_prefix()),
            database: format!("{}{pid}_{created}_{host}_{token}", self.database_prefix()),
        }
    }

    /// The namespace a queue or exchange name belongs to, if it is one of this harness's, and
    /// what its name says about its owner.
    pub fn parse_bus_name(self, object: &str) -> Option<(String, Provenance)> {
        if let Some(rest) = object.strip_prefix(self.bus_prefix())
            && let Some((head, _)) = rest.split_once('.')
            && let Some(owner) = Owner::parse(head, '-')
        {
            return Some((format!("{}{head}.", self.bus_prefix()), Provenance::Owned(owner)));
        }
        for prefix in self.legacy_bus_prefixes() {
            if let Some(rest) = object.strip_prefix(prefix)
                && let Some((head, _)) = rest.split_once('.')
                && is_legacy_token(head)
            {
                return Some((format!("{prefix}{head}."), Provenance::Legacy));
            }
        }
        None
    }

    /// What a database name says about its owner, if it is one of this harness's.
    pub fn parse_database_name(self, database: &str) -> Option<Provenance> {
        if let Some(rest) = database.strip_prefix(self.database_prefix())
            && let Some(owner) = Owner::parse(rest, '_')
        {
            return Some(Provenance::Owned(owner));
        }
        self.legacy_database_prefixes()
            .iter()
            .filter_map(|prefix| database.strip_prefix(prefix))
            .any(is_legacy_token)
            .then_some(Provenance::Legacy)
    }
}

/// A namespace and a database name of one harness run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarnessNames {
    /// The bus namespace (ends with `.`).
    pub namespace: String,
    /// The database name.
    pub database: String,
}

/// What a harness name says about who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// A name of the current format.
    Owned(Owner),
    /// An old-format name (`<prefix><hex>`), which does not say.
    Legacy,
}

/// The process that made a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Its pid.
    pub pid: u32,
    /// When the name was made (Unix seconds).
    pub created: u64,
    /// The machine and PID namespace of the pid ([`host_tag`]).
    pub host: String,
}

impl Owner {
    /// Parses `<pid>S<secs>S<host>S<token>` with separator `S`.
    fn parse(text: &str, separator: char) -> Option<Self> {
        let mut parts = text.split(separator);
        let (pid, created, host, token) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |part: &str, length: usize| {
            part.len() == length && part.bytes().all(|byte| byte.is_ascii_hexdigit())
        };
        if parts.next().is_some() || !hex(host, 8) || !hex(token, 6) {
            return None;
        }
        Some(Self {
            pid: pid.parse().ok()?,
            created: created.parse().ok()?,
            host: host.to_owned(),
        })
    }

    /// Whether the name is stale at `now`: older than [`MAX_AGE`], or made on this machine by a
    /// process that is gone (`process` tells what became of a pid here).
    pub fn is_stale(&self, now: u64, local_host: &str, process: impl Fn(u32) -> Process) -> bool {
        if now.saturating_sub(self.created) > MAX_AGE.as_secs() {
            return true;
        }
        if self.host != local_host {
            return false;
        }
        match process(self.pid) {
            Process::Gone => true,
            Process::StartedAt(started) => started > self.created + START_SLACK_SECS,
            Process::Unknown => false,
        }
    }
}

/// What became of a pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// No such process (or a zombie).
    Gone,
    /// A process that started at this Unix second holds the pid.
    StartedAt(u64),
    /// This system cannot tell (no `/proc`).
    Unknown,
}

/// What became of `pid` on this machine, from `/proc`.
pub fn process(pid: u32) -> Process {
    let Some(boot_time) = boot_time() else {
        return Process::Unknown;
    };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Process::Gone;
    };
    // `pid (comm) state … starttime(22nd field)`; comm may hold spaces and parentheses.
    let Some((_, fields)) = stat.rsplit_once(')') else {
        return Process::Unknown;
    };
    let mut fields = fields.split_whitespace();
    if fields.next() == Some("Z") {
        return Process::Gone;
    }
    match fields.nth(18).and_then(|ticks| ticks.parse::<u64>().ok()) {
        Some(ticks) => Process::StartedAt(boot_time + ticks / USER_HZ),
        None => Process::Unknown,
    }
}

/// The Unix second the machine booted (`btime` of `/proc/stat`).
fn boot_time() -> Option<u64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Eight hex digits naming this machine and PID namespace (hostname and `/proc/self/ns/pid`),
/// so that a pid in a name is only judged where it means the same process.
pub fn host_tag() -> String {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let pid_namespace = std::fs::read_link("/proc/self/ns/pid").unwrap_or_default();
    let text = format!("{}/{}", hostname.trim(), pid_namespace.display());
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let hash = text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

/// Now, in Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// An old-format token: 8 or more lowercase hex digits (12 from `unique_token`, 32 from a
/// whole UUID).
fn is_legacy_token(token: &str) -> bool {
    token.len() >= 8
        && token
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_names_parse_back_to_their_owner_in_both_harnesses() {
        for harness in [Harness::Test, Harness::Bench] {
            let names = harness.fresh_names(4242);
            let queue = format!("{}contacts.inbound.p00.dlq", names.namespace);
            let (namespace, provenance) = harness.parse_bus_name(&queue).unwrap();
            assert_eq!(namespace, names.namespace);
            let Provenance::Owned(owner) = provenance else {
                panic!("{queue} parsed as legacy");
            };
            assert_eq!((owner.pid, owner.host.as_str()), (4242, host_tag().as_str()));
            assert!(unix_now() - owner.created < 5);
            assert_eq!(
                harness.parse_database_name(&names.database),
                Some(Provenance::Owned(owner))
            );
            assert!(names.database.len() <= 63, "a PostgreSQL identifier");
        }
    }

    #[test]
    fn old_format_names_are_legacy_and_other_names_are_not_ours() {
        let legacy = |harness: Harness, name: &str| {
            harness.parse_bus_name(name).map(|(namespace, provenance)| {
                assert_eq!(provenance, Provenance::Legacy);
                namespace
            })
        };
        assert_eq!(
            legacy(Harness::Test, "sbt-0123456789ab.routing.contact.p03").as_deref(),
            Some("sbt-0123456789ab.")
        );
        assert_eq!(
            legacy(Harness::Test, "sbe-0123456789ab.switchboard.events").as_deref(),
            Some("sbe-0123456789ab.")
        );
        assert_eq!(
            legacy(
                Harness::Bench,
                "bench-0123456789abcdef0123456789abcdef.bench.inbound"
            )
            .as_deref(),
            Some("bench-0123456789abcdef0123456789abcdef.")
        );
        assert_eq!(
            legacy(Harness::Bench, "sbbench-0123456789ab.floor").as_deref(),
            Some("sbbench-0123456789ab.")
        );
        // Not a harness's: production namespaces, other kinds, a bench name seen by tests.
        assert_eq!(Harness::Test.parse_bus_name("switchboard.events"), None);
        assert_eq!(Harness::Test.parse_bus_name("sbt-orders.queue"), None);
        assert_eq!(Harness::Bench.parse_bus_name("sbt-0123456789ab.x"), None);
        let bench = Harness::Bench.fresh_names(1);
        assert_eq!(
            Harness::Test.parse_bus_name(&format!("{}x", bench.namespace)),
            None
        );
        assert_eq!(Harness::Test.parse_database_name(&bench.database), None);

        assert_eq!(
            Harness::Test.parse_database_name("sbtest_0123456789ab"),
            Some(Provenance::Legacy)
        );
        assert_eq!(
            Harness::Bench.parse_database_name("sb_bench_0123456789ab"),
            Some(Provenance::Legacy)
        );
        assert_eq!(Harness::Test.parse_database_name("sbtest_orders"), None);
        assert_eq!(Harness::Test.parse_database_name("postgres"), None);
    }

    #[test]
    fn a_name_is_stale_when_its_owner_is_gone_reused_or_too_old_and_never_while_it_lives() {
        let now = 1_800_000_000;
        let owner = Owner {
            pid: 77,
            created: now - 60,
            host: "0000abcd".to_owned(),
        };
        let here = "0000abcd";
        assert!(owner.is_stale(now, here, |_| Process::Gone));
        assert!(!owner.is_stale(now, here, |_| Process::StartedAt(now - 120)));
        // The pid now belongs to a process that started after the name was made.
        assert!(owner.is_stale(now, here, |_| Process::StartedAt(now - 10)));
        assert!(!owner.is_stale(now, here, |_| Process::Unknown));
        // Another machine's or PID namespace's pid is not judged here: only its age counts.
        assert!(!owner.is_stale(now, "ffffffff", |_| Process::Gone));
        let old = Owner {
            created: now - MAX_AGE.as_secs() - 1,
            ..owner
        };
        assert!(old.is_stale(now, "ffffffff", |_| Process::Unknown));
        assert!(old.is_stale(now, here, |_| Process::StartedAt(old.created - 5)));
    }

    #[test]
    fn this_process_is_alive_and_started_before_now() {
        let Process::StartedAt(started) = process(std::process::id()) else {
            panic!("this test runs on Linux with /proc");
        };
        assert!(started <= unix_now());
        assert_eq!(process(u32::MAX), Process::Gone);
    }
}
