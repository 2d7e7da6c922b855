//! What every component is built from, made once per process: the database pool, the bus,
//! the metrics registry, readiness, the internal gRPC client and the API key authenticator.

use std::net::SocketAddr;
use std::sync::Arc;

use switchboard_membership::{LeaseTiming, Membership, MembershipMetrics};
use switchboard_messaging::metrics::MessagingMetrics;
use switchboard_messaging::{Bus, SeatWatch};
use switchboard_postgres::{MigrationSet, Pool};
use switchboard_server::auth::Authenticator;
use switchboard_server::{BoxError, GrpcClientConfig, MetricsRegistry, Readiness, ReadinessCheck};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{Config, Target, Targets};

/// The listeners of a process, bound before anything else starts.
pub(crate) struct Listeners {
    /// `/healthz`, `/readyz`, `/metrics`.
    pub admin: TcpListener,
    /// Webhooks, web chat and other HTTP routes.
    pub http: TcpListener,
    /// Every gRPC service.
    pub grpc: TcpListener,
    /// E-mail ingress, when it runs.
    pub smtp: Option<TcpListener>,
}

impl Listeners {
    /// Binds the listeners `targets` need.
    pub async fn bind(config: &Config, targets: &Targets) -> Result<Self, BoxError> {
        // Admin, HTTP and gRPC first, in this order (what the "listening" log lines show).
        let admin = bind("admin", config.server.admin_addr).await?;
        let http = bind("http", config.server.http_addr).await?;
        let grpc = bind("grpc", config.server.grpc_addr).await?;
        let smtp = if targets
            .ingress_channels()
            .contains(&switchboard_domain::Channel::Email)
        {
            Some(bind("smtp", config.server.smtp_addr).await?)
        } else {
            None
        };
        Ok(Self {
            admin,
            http,
            grpc,
            smtp,
        })
    }
}

async fn bind(name: &'static str, address: SocketAddr) -> Result<TcpListener, BoxError> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address} for {name}: {error}"))?;
    tracing::info!(listener = name, addr = %listener.local_addr()?, "listening");
    Ok(listener)
}

/// The shared infrastructure components are built from.
pub(crate) struct Infrastructure {
    /// The validated configuration.
    pub config: Config,
    /// The PostgreSQL pool (every component keeps state there).
    pub pool: Pool,
    /// The RabbitMQ connections.
    pub bus: Bus,
    /// Where components register their metrics.
    pub metrics: MetricsRegistry,
    /// The process's readiness checks.
    pub readiness: Readiness,
    /// How components reach other components over gRPC (this process's own port when it
    /// runs tenancy).
    pub grpc_client: GrpcClientConfig,
    /// The port of the HTTP listener (delivery reaches this process's web chat there).
    pub http_port: u16,
    /// API keys checked against tenancy's tables (used when tenancy runs here).
    pub keys: Arc<switchboard_tenancy::KeyAuthenticator>,
    /// The SMTP listener, until e-mail ingress takes it.
    pub smtp_listener: Option<TcpListener>,
    /// Metrics of the partitioned components' memberships.
    pub membership_metrics: Arc<MembershipMetrics>,
    /// This process's member id among the replicas of each partitioned component.
    pub member_id: String,
    /// Stops components' listeners and consumers.
    pub shutdown: CancellationToken,
}

impl Infrastructure {
    /// Connects to PostgreSQL (migrating when configured) and starts the bus.
    pub async fn start(
        config: Config,
        targets: &Targets,
        listeners: &mut Listeners,
        migrations: &[MigrationSet],
    ) -> Result<Self, BoxError> {
        let metrics = MetricsRegistry::default();
        let readiness = Readiness::default();
        let pool = switchboard_postgres::connect(&config.database).await?;
        if config.database.migrate_on_start.unwrap_or(targets.is_all()) {
            switchboard_postgres::migrate_all(&pool, migrations).await?;
        }
        let messaging_metrics = Arc::new(MessagingMetrics::default());
        metrics.register(|registry| messaging_metrics.register(registry));
        let bus = Bus::start(config.bus.clone(), messaging_metrics);
        let membership_metrics = Arc::new(MembershipMetrics::default());
        metrics.register(|registry| membership_metrics.register(registry));
        add_dependency_checks(&readiness, &config, targets, &pool, &bus);

        // In one process with tenancy, components ask this process's own gRPC port.
        let mut grpc_client = config.grpc_client.clone();
        if targets.contains(Target::Tenancy) {
            let port = listeners.grpc.local_addr()?.port();
            grpc_client.endpoint = format!("http://127.0.0.1:{port}");
        }
        let keys = Arc::new(switchboard_tenancy::KeyAuthenticator::new(
            pool.clone(),
            config.auth.key_cache_ttl,
        ));
        Ok(Self {
            http_port: listeners.http.local_addr()?.port(),
            smtp_listener: listeners.smtp.take(),
            config,
            pool,
            bus,
            metrics,
            readiness,
            grpc_client,
            keys,
            membership_metrics,
            member_id: switchboard_membership::process_member_id(),
            shutdown: CancellationToken::new(),
        })
    }

    /// The membership of `component` (a partitioned one) for this process: its seat, and the
    /// task that renews its lease (run it beside the component's consumers).
    pub fn membership(
        &self,
        component: &'static str,
    ) -> (
        SeatWatch,
        impl Future<Output = Result<(), BoxError>> + Send + 'static,
    ) {
        let timing = LeaseTiming {
            heartbeat: self.config.bus.partition_heartbeat,
            lease: self.config.bus.partition_lease,
        };
        let membership = Membership::new(
            self.pool.clone(),
            component,
            self.member_id.clone(),
            timing,
            self.membership_metrics.clone(),
        );
        let seat = membership.seat();
        let shutdown = self.shutdown.clone();
        (seat, async move {
            membership.run(shutdown).await?;
            Ok(())
        })
    }

    /// The internal token the component called `name` needs to call other components.
    pub fn internal_token(&self, name: &str) -> Result<&secrecy::SecretString, BoxError> {
        self.config
            .auth
            .internal_token
            .as_ref()
            .ok_or_else(|| format!("{name} needs auth.internal_token").into())
    }

    /// Who checks API keys on gRPC calls: tenancy's tables when tenancy runs here, else
    /// tenancy over gRPC (with the internal token), else nobody (no API key is accepted).
    pub fn authenticator(&self, targets: &Targets) -> Result<Arc<dyn Authenticator>, BoxError> {
        if targets.contains(Target::Tenancy) {
            return Ok(self.keys.clone());
        }
        Ok(match &self.config.auth.internal_token {
            Some(token) => Arc::new(crate::remote_keys::RemoteKeyAuthenticator::new(
                &self.grpc_client,
                token,
                self.config.auth.key_cache_ttl,
            )?),
            None => Arc::new(switchboard_server::auth::NoApiKeys),
        })
    }
}

/// Readiness of PostgreSQL and RabbitMQ. A process that runs only ingress accepts webhooks
/// while either the broker or the spool works, so it stays in the load balancer through a
/// broker outage.
fn add_dependency_checks(readiness: &Readiness, config: &Config, targets: &Targets, pool: &Pool, bus: &Bus) {
    let timeout = config.server.readiness_timeout;
    let ingress_only = targets.iter().all(|target| matches!(target, Target::Ingress(_)));
    if ingress_only {
        let (pool, bus) = (pool.clone(), bus.clone());
        readiness.add(ReadinessCheck::new("webhook hand-over", move || {
            let (pool, bus) = (pool.clone(), bus.clone());
            async move {
                if bus.is_connected() {
                    return Ok(());
                }
                switchboard_postgres::check_reachable(&pool, timeout)
                    .await
                    .map_err(|error| {
                        format!("rabbitmq is not connected and the spool is unreachable: {error}")
                    })
            }
        }));
        return;
    }
    let probe_pool = pool.clone();
    readiness.add(ReadinessCheck::new("postgres", move || {
        let pool = probe_pool.clone();
        async move { switchboard_postgres::check_reachable(&pool, timeout).await }
    }));
    let probe_bus = bus.clone();
    readiness.add(ReadinessCheck::new("rabbitmq", move || {
        let result = probe_bus.check_ready();
        async move { result }
    }));
}
