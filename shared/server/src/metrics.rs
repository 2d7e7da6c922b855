use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;

/// The process's Prometheus registry; every metric name gets the `switchboard_` prefix.
#[derive(Clone)]
pub struct MetricsRegistry {
    registry: Arc<Mutex<Registry>>,
}

impl Default for MetricsRegistry {
    fn default() -> Self {
        Self {
            registry: Arc::new(Mutex::new(Registry::with_prefix("switchboard"))),
        }
    }
}

impl MetricsRegistry {
    /// Lets a component register its metrics.
    pub fn register(&self, register: impl FnOnce(&mut Registry)) {
        if let Ok(mut registry) = self.registry.lock() {
            register(&mut registry);
        }
    }

    /// Renders the OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Ok(registry) = self.registry.lock()
            && prometheus_client::encoding::text::encode(&mut text, &registry).is_err()
        {
            text.clear();
        }
        text
    }
}
