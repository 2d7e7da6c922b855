//! Prometheus metrics of delivery: provider attempts by channel and outcome, and receipts by
//! what became of them (applied, parked, expired). Labels are bounded words, never ids.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels of the attempt counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// The message's channel.
    pub channel: String,
    /// `accepted`, `retryable`, `permanent`, `unknown`, `not_sent`, `unbuildable`, or
    /// `deferred` (a broadcast left in the database while the lane holds enough).
    pub outcome: &'static str,
}

/// Labels of the receipt counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiptLabels {
    /// `applied`, `parked`, `watermark`, `watermark_none`, `unidentified`, `expired`.
    pub outcome: &'static str,
}

/// Every delivery metric.
#[derive(Debug, Default)]
pub struct DeliveryMetrics {
    attempts: Family<AttemptLabels, Counter>,
    receipts: Family<ReceiptLabels, Counter>,
}

impl DeliveryMetrics {
    /// Registers every metric under `switchboard_delivery_*`.
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("delivery");
        registry.register(
            "provider_attempts",
            "Provider send calls by channel and outcome",
            self.attempts.clone(),
        );
        registry.register(
            "receipts",
            "Status receipts by what became of them (expired = parked for an unknown provider id until the TTL)",
            self.receipts.clone(),
        );
    }

    /// Counts one provider call.
    pub fn attempt(&self, channel: &str, outcome: &'static str) {
        self.attempts
            .get_or_create(&AttemptLabels {
                channel: channel.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Counts one receipt.
    pub fn receipt(&self, outcome: &'static str) {
        self.receipts.get_or_create(&ReceiptLabels { outcome }).inc();
    }

    /// Counts receipts that expired unapplied.
    pub fn receipts_expired(&self, count: u64) {
        self.receipts
            .get_or_create(&ReceiptLabels { outcome: "expired" })
            .inc_by(count);
    }
}
