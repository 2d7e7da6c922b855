//! Prometheus metrics of contacts: identity resolutions per channel and outcome, and how
//! long they take. Labels are bounded words, never ids.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use switchboard_domain::Channel;

/// Labels of the resolution counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResolutionLabels {
    /// The event's channel.
    pub channel: &'static str,
    /// `existing`, `created`, `linked`, `replayed`, `blocked`, `quota_exceeded`,
    /// `unknown_sender`, `erased`, …
    pub outcome: &'static str,
}

/// Labels of per-channel metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    /// The event's channel.
    pub channel: &'static str,
}

/// Every contacts metric.
#[derive(Debug)]
pub struct ContactsMetrics {
    resolutions: Family<ResolutionLabels, Counter>,
    resolution_seconds: Family<ChannelLabels, Histogram>,
}

impl Default for ContactsMetrics {
    fn default() -> Self {
        Self {
            resolutions: Family::default(),
            resolution_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
            }),
        }
    }
}

impl ContactsMetrics {
    /// Registers every metric under `switchboard_contacts_*`.
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("contacts");
        registry.register(
            "resolutions",
            "Inbound events resolved to a contact, by channel and outcome (quota_exceeded = a new sender refused by the monthly quota)",
            self.resolutions.clone(),
        );
        registry.register(
            "resolution_duration_seconds",
            "Time to resolve one inbound event and pass it on",
            self.resolution_seconds.clone(),
        );
    }

    /// Counts one resolved event.
    pub(crate) fn resolved(&self, channel: Channel, outcome: &'static str, took: Duration) {
        let channel = channel.as_str();
        self.resolutions
            .get_or_create(&ResolutionLabels { channel, outcome })
            .inc();
        self.resolution_seconds
            .get_or_create(&ChannelLabels { channel })
            .observe(took.as_secs_f64());
    }

    /// How many events of `channel` ended with `outcome` (for tests).
    pub fn resolutions(&self, channel: Channel, outcome: &'static str) -> u64 {
        self.resolutions
            .get_or_create(&ResolutionLabels {
                channel: channel.as_str(),
                outcome,
            })
            .get()
    }
}
