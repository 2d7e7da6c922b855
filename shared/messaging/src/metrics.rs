//! Prometheus metrics of the messaging kit. Labels are bounded: outcome words and queue
//! group names (a partitioned family counts as one group), never message ids.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of publish metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PublishLabels {
    /// `confirmed`, `nacked`, `unroutable`, `timeout`, `not_connected`, `channel_error`.
    pub outcome: &'static str,
}

/// Labels of consume metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumeLabels {
    /// Queue group (partition suffix removed).
    pub queue: String,
    /// `acked`, `retried`, `dependency_unavailable` (a wait for the database or another
    /// component, not counted against the message), `dead_lettered`, `requeued`,
    /// `batch_failed` (a batch handed back to be handled one by one; counted once per batch).
    pub outcome: &'static str,
}

/// Labels of the handler duration histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// Queue group (partition suffix removed).
    pub queue: String,
}

/// Labels of partition hand-over counts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandoverLabels {
    /// Queue group (partition suffix removed).
    pub queue: String,
    /// `acquired` (this replica started consuming a partition) or `released` (it drained and
    /// closed one).
    pub change: &'static str,
}

/// Every messaging metric, registered once per process.
#[derive(Debug)]
pub struct MessagingMetrics {
    pub(crate) publishes: Family<PublishLabels, Counter>,
    pub(crate) publish_seconds: Histogram,
    pub(crate) consumed: Family<ConsumeLabels, Counter>,
    pub(crate) handler_seconds: Family<QueueLabels, Histogram>,
    pub(crate) batch_messages: Family<QueueLabels, Histogram>,
    pub(crate) connected: Gauge,
    pub(crate) connections_opened: Counter,
    pub(crate) connections_wedged: Counter,
    pub(crate) partitions_held: Family<QueueLabels, Gauge>,
    pub(crate) partition_handovers: Family<HandoverLabels, Counter>,
    pub(crate) partition_takeover_seconds: Family<QueueLabels, Histogram>,
}

impl Default for MessagingMetrics {
    fn default() -> Self {
        Self {
            publishes: Family::default(),
            publish_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 16)),
            consumed: Family::default(),
            handler_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
            }),
            batch_messages: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1.0, 2.0, 11))
            }),
            connected: Gauge::default(),
            connections_opened: Counter::default(),
            connections_wedged: Counter::default(),
            partitions_held: Family::default(),
            partition_handovers: Family::default(),
            partition_takeover_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
        }
    }
}

impl MessagingMetrics {
    /// Registers the metrics under `registry` (the caller adds the `switchboard` prefix).
    pub fn register(&self, registry: &mut Registry) {
        let bus = registry.sub_registry_with_prefix("bus");
        bus.register("publishes", "Publishes by broker outcome", self.publishes.clone());
        bus.register(
            "publish_duration_seconds",
            "Time from publish to broker confirm",
            self.publish_seconds.clone(),
        );
        bus.register("consumed", "Consumed messages by outcome", self.consumed.clone());
        bus.register(
            "handler_duration_seconds",
            "Time a consumer handler took per attempt",
            self.handler_seconds.clone(),
        );
        bus.register(
            "batch_messages",
            "Deliveries a batching consumer took at once (what was prefetched, up to bus.batch_size)",
            self.batch_messages.clone(),
        );
        bus.register(
            "connected",
            "1 while the broker connection is up",
            self.connected.clone(),
        );
        bus.register(
            "connections_opened",
            "Broker connections opened (a rising count means reconnects)",
            self.connections_opened.clone(),
        );
        bus.register(
            "connections_wedged",
            "Connections abandoned because they said they were up but answered no probe",
            self.connections_wedged.clone(),
        );
        bus.register(
            "partitions_held",
            "Partitions of a queue group this replica holds (its seat among live replicas)",
            self.partitions_held.clone(),
        );
        bus.register(
            "partition_handovers",
            "Partitions this replica acquired or released as replicas joined and left",
            self.partition_handovers.clone(),
        );
        bus.register(
            "partition_takeover_seconds",
            "Time from this replica's seat giving it a partition to its consumer subscribing",
            self.partition_takeover_seconds.clone(),
        );
    }

    pub(crate) fn published(&self, outcome: &'static str) {
        self.publishes.get_or_create(&PublishLabels { outcome }).inc();
    }

    pub(crate) fn consumed(&self, queue: &str, outcome: &'static str) {
        self.consumed
            .get_or_create(&ConsumeLabels {
                queue: queue_group(queue),
                outcome,
            })
            .inc();
    }

    /// Counts a partition of `queue`'s group acquired (`held` true) or released.
    pub(crate) fn partition_changed(&self, queue: &str, held: bool) {
        let group = queue_group(queue);
        let gauge = self
            .partitions_held
            .get_or_create(&QueueLabels { queue: group.clone() });
        if held {
            gauge.inc();
        } else {
            gauge.dec();
        }
        self.partition_handovers
            .get_or_create(&HandoverLabels {
                queue: group,
                change: if held { "acquired" } else { "released" },
            })
            .inc();
    }

    /// Records how long a partition of `queue`'s group took from being given to subscribed.
    pub(crate) fn partition_taken_over(&self, queue: &str, seconds: f64) {
        self.partition_takeover_seconds
            .get_or_create(&QueueLabels {
                queue: queue_group(queue),
            })
            .observe(seconds);
    }

    /// Partitions of `queue`'s group this replica holds now.
    pub fn partitions_held(&self, queue: &str) -> i64 {
        self.partitions_held
            .get_or_create(&QueueLabels {
                queue: queue_group(queue),
            })
            .get()
    }

    /// How many messages of `queue`'s group ended with `outcome` so far.
    pub fn consumed_total(&self, queue: &str, outcome: &'static str) -> u64 {
        self.consumed
            .get_or_create(&ConsumeLabels {
                queue: queue_group(queue),
                outcome,
            })
            .get()
    }
}

/// Strips a partition suffix (`.p03`) so all partitions of a family share one label value.
pub(crate) fn queue_group(queue: &str) -> String {
    match queue.rsplit_once('.') {
        Some((group, suffix))
            if suffix.len() >= 2
                && suffix.starts_with('p')
                && suffix[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            group.to_owned()
        }
        _ => queue.to_owned(),
    }
}
