//! Which replicas of a component are alive, from leases in PostgreSQL, and each replica's
//! [`Seat`] among them: the partitions it consumes.
//!
//! Every replica renews a row in `membership.members` every heartbeat and deletes rows whose
//! lease lapsed. The live members, sorted by id, give each one an index; a replica holds
//! partition `p` when `p % members == index` ([`Seat::holds`]). Replicas see a change at their
//! next heartbeat, so for up to one heartbeat two of them may both think they hold a
//! partition: the partition queue's single-active-consumer keeps the second one waiting until
//! the first has drained and closed, so a partition never has two active consumers.
//!
//! A replica that stops gracefully deletes its row at once; one that is killed is noticed when
//! its lease lapses (at most `lease` plus one `heartbeat` later). A replica that cannot renew
//! its own lease for `lease` gives up its seat (holds nothing) until it can again.

mod metrics;

use std::time::{Duration, Instant};

use switchboard_messaging::{Seat, SeatWatch};
use switchboard_postgres::{CachedStatements as _, Migration, MigrationSet, Pool, StoreError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use metrics::MembershipMetrics;

/// The `membership` schema: one table of leases shared by every partitioned component.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    schema: "membership",
    migrations: &[Migration {
        version: 1,
        name: "members",
        sql: include_str!("../migrations/0001_members.sql"),
    }],
};

/// How often a replica renews its lease, and how long a lease lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// Time between two renewals.
    pub heartbeat: Duration,
    /// How long a renewal keeps a replica a member; a killed replica's partitions move after it.
    pub lease: Duration,
}

/// One replica's membership of one component: renews its lease and publishes its seat.
pub struct Membership {
    pool: Pool,
    component: &'static str,
    member_id: String,
    timing: LeaseTiming,
    seat: watch::Sender<Seat>,
    metrics: std::sync::Arc<MembershipMetrics>,
}

impl Membership {
    /// Membership of `component` as `member_id` (unique per process; see [`process_member_id`]).
    /// It holds no seat until [`run`](Self::run) has renewed its lease once.
    pub fn new(
        pool: Pool,
        component: &'static str,
        member_id: String,
        timing: LeaseTiming,
        metrics: std::sync::Arc<MembershipMetrics>,
    ) -> Self {
        Self {
            pool,
            component,
            member_id,
            timing,
            seat: watch::channel(Seat::NONE).0,
            metrics,
        }
    }

    /// This replica's seat, as it changes.
    pub fn seat(&self) -> SeatWatch {
        self.seat.subscribe()
    }

    /// Renews the lease every heartbeat until shutdown, then leaves (deletes the row), so the
    /// other replicas take the partitions over at their next heartbeat.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), StoreError> {
        let mut renewed_at: Option<Instant> = None;
        loop {
            let started = Instant::now();
            match self.renew().await {
                Ok(members) => {
                    renewed_at = Some(started);
                    self.take_seat(seat_among(&members, &self.member_id), members.len());
                }
                Err(error) => {
                    self.metrics.renewal_failed(self.component);
                    let lapsed = renewed_at.is_none_or(|at| at.elapsed() >= self.timing.lease);
                    tracing::warn!(component = self.component, error = %error, lapsed, "cannot renew the partition lease");
                    if lapsed {
                        // The others may count this replica gone by now: hold nothing.
                        self.take_seat(Seat::NONE, 0);
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.timing.heartbeat) => {}
            }
        }
        match tokio::time::timeout(Duration::from_secs(2), self.leave()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(component = self.component, error = %error, "cannot leave; the lease lapses instead")
            }
            Err(_) => tracing::warn!(
                component = self.component,
                "leaving timed out; the lease lapses instead"
            ),
        }
        Ok(())
    }

    /// Publishes `seat` when it changed, and logs the change.
    fn take_seat(&self, seat: Seat, members: usize) {
        self.metrics.members(self.component, members);
        let changed = self.seat.send_if_modified(|current| {
            let changed = *current != seat;
            *current = seat;
            changed
        });
        if changed {
            self.metrics.seat_changed(self.component);
            tracing::info!(
                component = self.component,
                member = %self.member_id,
                index = seat.index,
                members = seat.members,
                "partition seat changed"
            );
        }
    }

    /// Renews this replica's lease, deletes lapsed ones, and returns the live members' ids.
    async fn renew(&self) -> Result<Vec<String>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query_cached(
                "WITH lapsed AS (
                     DELETE FROM membership.members
                     WHERE component = $1 AND member_id <> $2 AND expires_at < now()
                 ), renewed AS (
                     INSERT INTO membership.members (component, member_id, expires_at)
                     VALUES ($1, $2, now() + make_interval(secs => $3))
                     ON CONFLICT (component, member_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
                     RETURNING member_id
                 )
                 SELECT member_id FROM membership.members
                 WHERE component = $1 AND member_id <> $2 AND expires_at >= now()
                 UNION ALL
                 SELECT member_id FROM renewed",
                &[&self.component, &self.member_id, &self.timing.lease.as_secs_f64()],
            )
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Deletes this replica's row.
    async fn leave(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute_cached(
                "DELETE FROM membership.members WHERE component = $1 AND member_id = $2",
                &[&self.component, &self.member_id],
            )
            .await?;
        Ok(())
    }
}

/// The seat of `member_id` among `members` (sorted by id); [`Seat::NONE`] when absent.
pub fn seat_among(members: &[String], member_id: &str) -> Seat {
    let mut sorted: Vec<&str> = members.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    match sorted.iter().position(|member| *member == member_id) {
        Some(index) => Seat {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            members: u32::try_from(sorted.len()).unwrap_or(u32::MAX),
        },
        None => Seat::NONE,
    }
}

/// A member id unique to this process: the host name (the pod's name on Kubernetes), the
/// process id and a random suffix, so a restarted pod is a new member.
pub fn process_member_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "switchboard".to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &suffix[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_sits_at_its_place_among_the_sorted_live_members() {
        let members = vec!["c".to_owned(), "a".to_owned(), "b".to_owned()];
        assert_eq!(seat_among(&members, "a"), Seat { index: 0, members: 3 });
        assert_eq!(seat_among(&members, "c"), Seat { index: 2, members: 3 });
        assert_eq!(seat_among(&members, "d"), Seat::NONE);
        assert_ne!(process_member_id(), process_member_id());
    }
}
