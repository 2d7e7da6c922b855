//! Prometheus metrics of web chat: open sockets, messages by direction and outcome, sessions
//! by outcome. Labels are bounded words, never ids.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of the message counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    /// `inbound` (visitor) or `outbound` (agent, bot).
    pub direction: &'static str,
    /// `accepted`, `duplicate`, or the refusal code (`rate_limited`, `message_too_large`, …).
    pub outcome: &'static str,
}

/// Labels of the session counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `created`, `resumed`, or the refusal code.
    pub outcome: &'static str,
}

/// Every web chat metric.
#[derive(Debug, Default)]
pub struct WebchatMetrics {
    pub(crate) sockets: Gauge,
    pub(crate) messages: Family<MessageLabels, Counter>,
    pub(crate) sessions: Family<OutcomeLabels, Counter>,
}

impl WebchatMetrics {
    /// Registers every metric under `switchboard_webchat_…`.
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("webchat");
        registry.register(
            "sockets",
            "Open visitor WebSockets on this replica",
            self.sockets.clone(),
        );
        registry.register(
            "messages",
            "Web chat messages by direction and outcome",
            self.messages.clone(),
        );
        registry.register("sessions", "Session requests by outcome", self.sessions.clone());
    }

    pub(crate) fn message(&self, direction: &'static str, outcome: &'static str) {
        self.messages
            .get_or_create(&MessageLabels { direction, outcome })
            .inc();
    }

    pub(crate) fn session(&self, outcome: &'static str) {
        self.sessions.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}
