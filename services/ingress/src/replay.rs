//! Remembers the replay keys of accepted webhooks (Mailgun's delivery token) for as long as a
//! provider's signature stays valid, so a replayed post within that time has no second effect.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many keys are kept before expired ones are dropped.
const PRUNE_ABOVE: usize = 100_000;

/// The replay keys accepted within `max_age`, per account.
pub(crate) struct ReplayGuard {
    max_age: Duration,
    seen: Mutex<HashMap<String, Instant>>,
}

impl ReplayGuard {
    /// A guard that remembers keys for `max_age`.
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// True when `key` of `account_id` was accepted within `max_age` (a replay).
    pub fn seen_recently(&self, account_id: &str, key: &str) -> bool {
        let key = format!("{account_id}:{key}");
        self.seen
            .lock()
            .is_ok_and(|seen| seen.get(&key).is_some_and(|at| at.elapsed() < self.max_age))
    }

    /// Remembers an accepted `key` of `account_id`.
    pub fn remember(&self, account_id: &str, key: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() > PRUNE_ABOVE {
                seen.retain(|_, at| at.elapsed() < self.max_age);
            }
            seen.insert(format!("{account_id}:{key}"), Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_a_replay_only_for_its_account_and_within_its_age() {
        let guard = ReplayGuard::new(Duration::from_secs(60));
        assert!(!guard.seen_recently("chacc_a", "token"));
        guard.remember("chacc_a", "token");
        assert!(guard.seen_recently("chacc_a", "token"));
        assert!(!guard.seen_recently("chacc_b", "token"));
        let expired = ReplayGuard::new(Duration::ZERO);
        expired.remember("chacc_a", "token");
        assert!(!expired.seen_recently("chacc_a", "token"));
    }
}
