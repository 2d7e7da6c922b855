use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[contacts]` config section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContactsConfig {
    /// How long resolved inbound event ids are remembered, so a provider retrying an old
    /// webhook (Meta retries for days) has no second effect and does not resurrect an erased
    /// contact.
    #[serde(with = "humantime_serde")]
    pub dedupe_retention: Duration,
    /// How often old processed-event ids are pruned.
    #[serde(with = "humantime_serde")]
    pub prune_interval: Duration,
    /// How often the month-end reset looks for workspaces whose month ended.
    #[serde(with = "humantime_serde")]
    pub reset_interval: Duration,
}

impl Default for ContactsConfig {
    fn default() -> Self {
        Self {
            dedupe_retention: Duration::from_secs(30 * 24 * 3600),
            prune_interval: Duration::from_secs(3600),
            reset_interval: Duration::from_secs(600),
        }
    }
}

impl ContactsConfig {
    /// Checks the values a person can get wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.dedupe_retention < Duration::from_secs(7 * 24 * 3600) {
            return Err(
                "contacts.dedupe_retention must be at least 7 days: providers retry webhooks for days"
                    .to_owned(),
            );
        }
        if self.prune_interval.is_zero() || self.reset_interval.is_zero() {
            return Err("contacts.prune_interval and contacts.reset_interval must be positive".to_owned());
        }
        Ok(())
    }
}
