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
    /// [`AttemptLabel::as_str`].
    pub outcome: &'static str,
}

/// What a provider attempt came to, as the attempt counter labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptLabel {
    /// The provider took it.
    Accepted,
    /// The provider asked to retry.
    Retryable,
    /// The provider refused it for good.
    Permanent,
    /// No answer came in time after the request went out.
    Unknown,
    /// The request never reached the provider.
    NotSent,
    /// The message cannot be sent on its channel as it is.
    Unbuildable,
    /// A broadcast left in the database while the lane holds enough (no call made).
    Deferred,
}

impl AttemptLabel {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Retryable => "retryable",
            Self::Permanent => "permanent",
            Self::Unknown => "unknown",
            Self::NotSent => "not_sent",
            Self::Unbuildable => "unbuildable",
            Self::Deferred => "deferred",
        }
    }
}

/// What became of a status receipt, as the receipt counter labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// It moved its message (or found it already further on).
    Applied,
    /// Its provider id is not known yet: kept until the send records it.
    Parked,
    /// A watermark that raised at least one message.
    Watermark,
    /// A watermark that raised nothing.
    WatermarkNone,
    /// Neither our id nor a provider id.
    Unidentified,
    /// Parked until the TTL and never applied.
    Expired,
}

impl ReceiptOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Parked => "parked",
            Self::Watermark => "watermark",
            Self::WatermarkNone => "watermark_none",
            Self::Unidentified => "unidentified",
            Self::Expired => "expired",
        }
    }
}

/// Labels of the receipt counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiptLabels {
    /// [`ReceiptOutcome::as_str`].
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
    pub fn attempt(&self, channel: &str, outcome: AttemptLabel) {
        self.attempts
            .get_or_create(&AttemptLabels {
                channel: channel.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Counts one receipt.
    pub fn receipt(&self, outcome: ReceiptOutcome) {
        self.receipts
            .get_or_create(&ReceiptLabels {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Counts receipts that expired unapplied.
    pub fn receipts_expired(&self, count: u64) {
        self.receipts
            .get_or_create(&ReceiptLabels {
                outcome: ReceiptOutcome::Expired.as_str(),
            })
            .inc_by(count);
    }
}
