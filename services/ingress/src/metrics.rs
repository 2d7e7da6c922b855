//! Prometheus metrics of ingress: webhooks per channel and outcome (RED), events published
//! or spooled, and the spool's depth. Labels are bounded words, never ids.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the webhook counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// The channel in the path.
    pub channel: &'static str,
    /// `accepted`, `spooled`, `ignored`, `dead_lettered`, `handshake`, or the rejection reason
    /// (`bad_signature`, `unknown_account`, `too_large`, `unavailable`, …).
    pub outcome: &'static str,
}

/// Labels of per-channel metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    /// The channel in the path.
    pub channel: &'static str,
}

/// Labels of the event counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// The channel.
    pub channel: &'static str,
    /// `published`, `spooled`, `relayed`.
    pub outcome: &'static str,
}

/// Every ingress metric.
#[derive(Debug)]
pub struct IngressMetrics {
    pub(crate) webhooks: Family<WebhookLabels, Counter>,
    pub(crate) webhook_seconds: Family<ChannelLabels, Histogram>,
    pub(crate) events: Family<EventLabels, Counter>,
    pub(crate) skipped: Family<ChannelLabels, Counter>,
    pub(crate) spool_depth: Gauge,
}

impl Default for IngressMetrics {
    fn default() -> Self {
        Self {
            webhooks: Family::default(),
            webhook_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
            }),
            events: Family::default(),
            skipped: Family::default(),
            spool_depth: Gauge::default(),
        }
    }
}

impl IngressMetrics {
    /// Registers every metric under `switchboard_ingress_…`.
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("ingress");
        registry.register(
            "webhooks",
            "Webhook requests by channel and outcome",
            self.webhooks.clone(),
        );
        registry.register(
            "webhook_duration_seconds",
            "Time from request to answer, by channel",
            self.webhook_seconds.clone(),
        );
        registry.register(
            "events",
            "Normalized events by channel and how they reached the bus",
            self.events.clone(),
        );
        registry.register(
            "skipped_items",
            "Payload items that produced no event (ignored types, other accounts)",
            self.skipped.clone(),
        );
        registry.register(
            "spool_depth",
            "Events waiting in the PostgreSQL spool for the broker",
            self.spool_depth.clone(),
        );
    }

    pub(crate) fn webhook(&self, channel: &'static str, outcome: &'static str, seconds: f64) {
        self.webhooks
            .get_or_create(&WebhookLabels { channel, outcome })
            .inc();
        self.webhook_seconds
            .get_or_create(&ChannelLabels { channel })
            .observe(seconds);
    }

    pub(crate) fn events(&self, channel: &'static str, outcome: &'static str, count: u64) {
        self.events
            .get_or_create(&EventLabels { channel, outcome })
            .inc_by(count);
    }
}

/// The `channel` label of a channel name (bounded: unknown names count as `other`).
pub(crate) fn channel_label(name: &str) -> &'static str {
    name.parse::<switchboard_domain::Channel>()
        .map_or("other", switchboard_domain::Channel::as_str)
}
