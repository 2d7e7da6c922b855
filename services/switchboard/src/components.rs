//! The components a process runs, and how each is built from the shared infrastructure.
//! Adding a component is one [`Component`] variant, its migrations and one `build` arm.

use std::sync::Arc;

use switchboard_domain::Channel;
use switchboard_postgres::MigrationSet;
use switchboard_server::{BoxError, ComponentParts};

use crate::infrastructure::Infrastructure;
use crate::{Target, Targets};

/// One part of Switchboard that the binary builds and runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Component {
    /// Workspaces, API keys and channel accounts.
    Tenancy,
    /// Identity resolution and the contacts API.
    Contacts,
    /// Conversations, history, assignment.
    Routing,
    /// Outbound messages.
    Delivery,
    /// The web chat widget's endpoints.
    Webchat,
    /// Provider webhooks (and the SMTP listener) of these channels.
    Webhooks(Vec<Channel>),
}

impl Component {
    /// The components `targets` enable, in start order.
    pub fn enabled_by(targets: &Targets) -> Vec<Component> {
        let mut components = Vec::new();
        for target in targets.iter() {
            match target {
                Target::Tenancy => components.push(Self::Tenancy),
                Target::Contacts => components.push(Self::Contacts),
                Target::Routing => components.push(Self::Routing),
                Target::Delivery => components.push(Self::Delivery),
                // Every ingress target together makes one webhook component (and web chat).
                Target::Ingress(_) => {}
            }
        }
        let channels = targets.ingress_channels();
        if channels.contains(&Channel::Webchat) {
            components.push(Self::Webchat);
        }
        let webhook_channels: Vec<Channel> = channels
            .into_iter()
            .filter(|channel| *channel != Channel::Webchat)
            .collect();
        if !webhook_channels.is_empty() {
            components.push(Self::Webhooks(webhook_channels));
        }
        components
    }

    /// The component's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Tenancy => "tenancy",
            Self::Contacts => "contacts",
            Self::Routing => "routing",
            Self::Delivery => "delivery",
            Self::Webchat => "web chat",
            Self::Webhooks(_) => "ingress",
        }
    }

    /// The schema the component owns.
    pub fn migrations(&self) -> MigrationSet {
        match self {
            Self::Tenancy => switchboard_tenancy::MIGRATIONS,
            Self::Contacts => switchboard_contacts::MIGRATIONS,
            Self::Routing => switchboard_routing::MIGRATIONS,
            Self::Delivery => switchboard_delivery::MIGRATIONS,
            Self::Webchat => switchboard_webchat::MIGRATIONS,
            Self::Webhooks(_) => switchboard_ingress::MIGRATIONS,
        }
    }

    /// Builds the component's routes, gRPC services, tasks and probes.
    pub async fn build(&self, infra: &mut Infrastructure) -> Result<ComponentParts, BoxError> {
        let config = &infra.config;
        let shutdown = infra.shutdown.clone();
        let grpc_max_message_bytes = config.server.grpc_max_message_bytes;
        Ok(match self {
            Self::Tenancy => {
                switchboard_tenancy::build(
                    &config.tenancy,
                    infra.pool.clone(),
                    infra.bus.publisher(),
                    infra.keys.clone(),
                    grpc_max_message_bytes,
                )
                .await?
            }
            Self::Contacts => {
                let metrics = Arc::new(switchboard_contacts::ContactsMetrics::default());
                infra.metrics.register(|registry| metrics.register(registry));
                let (seat, membership) = infra.membership("contacts");
                let mut parts = switchboard_contacts::build(switchboard_contacts::ContactsDependencies {
                    config: &config.contacts,
                    pool: infra.pool.clone(),
                    bus: infra.bus.clone(),
                    seat,
                    metrics,
                    grpc_max_message_bytes,
                    shutdown,
                });
                parts.spawn("contacts membership", membership);
                parts
            }
            Self::Routing => {
                let (seat, membership) = infra.membership("routing");
                let mut parts = switchboard_routing::build(switchboard_routing::RoutingDependencies {
                    config: &config.routing,
                    database: &config.database,
                    pool: infra.pool.clone(),
                    bus: infra.bus.clone(),
                    seat,
                    shutdown,
                });
                parts.spawn("routing membership", membership);
                parts
            }
            Self::Delivery => {
                let metrics = Arc::new(switchboard_delivery::DeliveryMetrics::default());
                infra.metrics.register(|registry| metrics.register(registry));
                let webchat_endpoint = config
                    .delivery
                    .webchat_endpoint
                    .clone()
                    .unwrap_or_else(|| format!("http://127.0.0.1:{}", infra.http_port));
                let (seat, membership) = infra.membership("delivery");
                let mut parts = switchboard_delivery::build(switchboard_delivery::DeliveryDependencies {
                    config: &config.delivery,
                    egress: &config.egress,
                    grpc_client: &infra.grpc_client,
                    internal_token: infra.internal_token(self.name())?,
                    pool: infra.pool.clone(),
                    bus: infra.bus.clone(),
                    seat,
                    metrics,
                    grpc_max_message_bytes,
                    webchat_endpoint,
                    shutdown,
                })?;
                parts.spawn("delivery membership", membership);
                parts
            }
            Self::Webchat => {
                let metrics = Arc::new(switchboard_webchat::WebchatMetrics::default());
                infra.metrics.register(|registry| metrics.register(registry));
                switchboard_webchat::build(switchboard_webchat::WebchatDependencies {
                    config: &config.webchat,
                    public_base_url: config.ingress.public_base_url.clone(),
                    grpc_client: &infra.grpc_client,
                    internal_token: infra.internal_token(self.name())?,
                    pool: infra.pool.clone(),
                    bus: infra.bus.clone(),
                    metrics,
                    shutdown,
                })?
            }
            Self::Webhooks(channels) => {
                let metrics = Arc::new(switchboard_ingress::IngressMetrics::default());
                infra.metrics.register(|registry| metrics.register(registry));
                switchboard_ingress::build(
                    channels,
                    switchboard_ingress::IngressDependencies {
                        config: &config.ingress,
                        grpc_client: &infra.grpc_client,
                        auth: &config.auth,
                        pool: infra.pool.clone(),
                        bus: infra.bus.clone(),
                        metrics,
                        smtp_listener: infra.smtp_listener.take(),
                        shutdown,
                    },
                )
                .await?
            }
        })
    }
}

/// The migrations of the components `targets` enable, each schema once.
pub(crate) fn migration_sets(targets: &Targets) -> Vec<MigrationSet> {
    let mut sets: Vec<MigrationSet> = Vec::new();
    // The partitioned components share one table of leases.
    let partitioned = Component::enabled_by(targets).iter().any(|component| {
        matches!(
            component,
            Component::Contacts | Component::Routing | Component::Delivery
        )
    });
    if partitioned {
        sets.push(switchboard_membership::MIGRATIONS);
    }
    for set in Component::enabled_by(targets).iter().map(Component::migrations) {
        if !sets.iter().any(|known| known.schema == set.schema) {
            sets.push(set);
        }
    }
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn components(targets: &[&str]) -> Vec<Component> {
        let values: Vec<String> = targets.iter().map(|target| (*target).to_owned()).collect();
        Component::enabled_by(&Targets::parse(&values).unwrap_or_else(|error| panic!("{error}")))
    }

    #[test]
    fn ingress_targets_make_one_webhook_component_and_web_chat_its_own() {
        let all = components(&["all"]);
        assert_eq!(all.len(), 6);
        assert_eq!(all[4], Component::Webchat);
        assert!(matches!(&all[5], Component::Webhooks(channels) if channels.len() == 6));
        assert_eq!(components(&["ingress-webchat"]), vec![Component::Webchat]);
        assert_eq!(
            components(&["ingress-sms", "ingress-email"]),
            vec![Component::Webhooks(vec![Channel::Sms, Channel::Email])]
        );
    }

    #[test]
    fn each_schema_is_migrated_once() {
        let values = ["ingress".to_owned(), "ingress-sms".to_owned()];
        let schemas: Vec<&str> =
            migration_sets(&Targets::parse(&values).unwrap_or_else(|error| panic!("{error}")))
                .iter()
                .map(|set| set.schema)
                .collect();
        assert_eq!(schemas, vec!["webchat", "ingress"]);
    }
}
