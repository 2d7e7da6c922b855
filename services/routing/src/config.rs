use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The `[routing]` config section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// How long the event log keeps changes for `WatchEvents` resume; a client further behind
    /// gets CURSOR_EXPIRED and re-reads the state.
    #[serde(with = "humantime_serde")]
    pub event_retention: Duration,
    /// How often old events are pruned.
    #[serde(with = "humantime_serde")]
    pub prune_interval: Duration,
    /// How often every team's queue is checked for conversations an eligible agent could take
    /// (hand-outs normally happen at once; this covers a crash between a change and its
    /// hand-out).
    #[serde(with = "humantime_serde")]
    pub assignment_sweep_interval: Duration,
    /// For tests only: the instant (RFC 3339) the business-hours clock reads when the component
    /// starts; it runs on from there at the normal pace. Unset (the default, and the only right
    /// value in production): the system clock. It lets a test pin the time of day the away and
    /// at-capacity replies are decided at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_start: Option<DateTime<Utc>>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            event_retention: Duration::from_secs(7 * 24 * 3600),
            prune_interval: Duration::from_secs(600),
            assignment_sweep_interval: Duration::from_secs(2),
            clock_start: None,
        }
    }
}

impl RoutingConfig {
    /// Checks the values a person can get wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.event_retention < Duration::from_secs(3600) {
            return Err("routing.event_retention must be at least 1h: clients resume from it".to_owned());
        }
        if self.prune_interval.is_zero() || self.assignment_sweep_interval.is_zero() {
            return Err(
                "routing.prune_interval and routing.assignment_sweep_interval must be positive".to_owned(),
            );
        }
        Ok(())
    }
}
