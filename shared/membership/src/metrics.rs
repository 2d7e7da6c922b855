//! Prometheus metrics of membership: live members, seat changes and failed renewals, per
//! component.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of every membership metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabels {
    /// `contacts`, `routing` or `delivery`.
    pub component: &'static str,
}

/// Every membership metric, registered once per process.
#[derive(Debug, Default)]
pub struct MembershipMetrics {
    members: Family<ComponentLabels, Gauge>,
    seat_changes: Family<ComponentLabels, Counter>,
    renewal_failures: Family<ComponentLabels, Counter>,
}

impl MembershipMetrics {
    /// Registers the metrics under `registry` (the caller adds the `switchboard` prefix).
    pub fn register(&self, registry: &mut Registry) {
        let membership = registry.sub_registry_with_prefix("membership");
        membership.register(
            "members",
            "Live replicas of the component as this replica last saw them",
            self.members.clone(),
        );
        membership.register(
            "seat_changes",
            "Times this replica's seat (and so its partitions) changed",
            self.seat_changes.clone(),
        );
        membership.register(
            "renewal_failures",
            "Lease renewals that failed (the database was unreachable)",
            self.renewal_failures.clone(),
        );
    }

    pub(crate) fn members(&self, component: &'static str, members: usize) {
        self.members
            .get_or_create(&ComponentLabels { component })
            .set(i64::try_from(members).unwrap_or(i64::MAX));
    }

    pub(crate) fn seat_changed(&self, component: &'static str) {
        self.seat_changes
            .get_or_create(&ComponentLabels { component })
            .inc();
    }

    pub(crate) fn renewal_failed(&self, component: &'static str) {
        self.renewal_failures
            .get_or_create(&ComponentLabels { component })
            .inc();
    }
}
