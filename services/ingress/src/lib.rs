//! The ingress component: provider webhooks at `/webhooks/{channel}/{account_id}` are verified
//! on their raw bytes, normalized by `switchboard-channels`, and published with a broker confirm
//! before the provider gets its 2xx. When the broker cannot confirm, the events go to a
//! PostgreSQL spool (the provider still gets 2xx) and a relay drains it in order; only when
//! both are down does ingress answer 503.
//!
//! It owns the `ingress` schema (spool and dead letters) and learns channel accounts through
//! tenancy's internal gRPC directory; it keeps no other state.

mod admin;
mod config;
mod metrics;
mod pipeline;
mod rejection;
mod replay;
mod smtp;
mod spool;
mod webhook;

use std::sync::Arc;

use switchboard_domain::Channel;
use switchboard_messaging::{Bus, MessagingError};
use switchboard_postgres::{Migration, MigrationSet, Pool};
use switchboard_server::{AuthConfig, ComponentParts, GrpcClientConfig};
use tokio_util::sync::CancellationToken;

pub use config::IngressConfig;
pub use metrics::IngressMetrics;
pub use spool::Spool;
pub use switchboard_directory::{AccountDirectory, DirectoryError, ResolvedAccount};
pub use switchboard_inbound::{InboundTopology, inbound_topology};

/// The schema migrations of the ingress component.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    schema: "ingress",
    migrations: &[
        Migration {
            version: 1,
            name: "initial",
            sql: include_str!("../migrations/0001_initial.sql"),
        },
        Migration {
            version: 2,
            name: "spool_is_an_outbox",
            sql: include_str!("../migrations/0002_spool_is_an_outbox.sql"),
        },
    ],
};

/// The channels that have webhooks (web chat has its own endpoint).
pub const WEBHOOK_CHANNELS: [Channel; 6] = [
    Channel::Whatsapp,
    Channel::Messenger,
    Channel::Instagram,
    Channel::Telegram,
    Channel::Sms,
    Channel::Email,
];

/// What ingress needs from the rest of the process.
pub struct IngressDependencies<'a> {
    /// Ingress settings.
    pub config: &'a IngressConfig,
    /// How to reach tenancy's gRPC directory.
    pub grpc_client: &'a GrpcClientConfig,
    /// Carries the internal token the directory requires.
    pub auth: &'a AuthConfig,
    /// The spool's and dead letters' database.
    pub pool: Pool,
    /// The broker.
    pub bus: Bus,
    /// Ingress metrics (registered by the caller).
    pub metrics: Arc<IngressMetrics>,
    /// The SMTP listener (bound by the caller) when e-mail ingress runs.
    pub smtp_listener: Option<tokio::net::TcpListener>,
    /// Stops the relay and the SMTP listener.
    pub shutdown: CancellationToken,
}

/// Why ingress could not be built.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
    /// The inbound queues could not be declared.
    #[error("cannot declare the inbound queues")]
    Topology(#[from] MessagingError),
}

/// Builds ingress for `channels`: the webhook routes and the spool relay, after declaring
/// the inbound queues.
pub async fn build(
    channels: &[Channel],
    dependencies: IngressDependencies<'_>,
) -> Result<ComponentParts, IngressError> {
    let IngressDependencies {
        config,
        grpc_client,
        auth,
        pool,
        bus,
        metrics,
        smtp_listener,
        shutdown,
    } = dependencies;
    let token = auth.internal_token.as_ref().ok_or_else(|| {
        IngressError::Config(
            "ingress needs auth.internal_token (SWITCHBOARD_INTERNAL_TOKEN) to look up channel accounts"
                .to_owned(),
        )
    })?;
    let directory =
        AccountDirectory::new(grpc_client, token, config.account_cache_ttl).map_err(IngressError::Config)?;
    let topology = Arc::new(inbound_topology(&bus));
    match topology.declare().await {
        Ok(()) => {}
        // Ingress must come up and spool while the broker is away; the relay declares later.
        Err(MessagingError::NotConnected) => {
            tracing::warn!("rabbitmq is not reachable at start; webhooks are spooled until it is");
        }
        Err(error) => return Err(error.into()),
    }

    let spool = Arc::new(Spool::new(pool.clone()));
    let publisher = bus.publisher();
    let ingress = Arc::new(pipeline::Ingress {
        config: config.clone(),
        channels: channels.to_vec(),
        directory,
        publisher: publisher.clone(),
        spool: spool.clone(),
        topology: topology.clone(),
        pool,
        metrics: metrics.clone(),
        partitions: bus.partitions().clone(),
        replays: replay::ReplayGuard::new(config.mailgun_max_age),
    });
    let mut parts = ComponentParts {
        router: Some(webhook::router(ingress.clone())),
        ..ComponentParts::default()
    };
    parts.add_grpc_service(admin::admin_server(ingress.pool.clone()));
    if let Some(listener) = smtp_listener {
        parts.spawn(
            "smtp listener",
            smtp::serve_smtp(listener, ingress, config.smtp_hostname.clone(), shutdown.clone()),
        );
    }
    let (interval, batch) = (config.relay_interval, config.relay_batch);
    parts.spawn(
        "ingress spool relay",
        spool::Relay {
            spool,
            topology,
            publisher,
            interval,
            batch,
            metrics,
            shutdown,
        }
        .run(),
    );
    Ok(parts)
}
