//! Building the enabled components and running them under one lifecycle.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use switchboard_messaging::Bus;
use switchboard_messaging::metrics::MessagingMetrics;
use switchboard_postgres::{MigrationSet, Pool};
use switchboard_server::{
    BoxError, ComponentParts, GrpcServer, MetricsRegistry, Readiness, ReadinessCheck, serve_admin,
    serve_grpc, serve_http,
};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{Config, EXIT_FORCED, Target, Targets};

/// How long the runtime may take to stop once `future` is done. A task still running then is
/// abandoned: a client library wedged in a lock (seen: lapin's recovery deadlocking on a
/// broker-closed connection) must not keep a stopping process alive past its grace period.
const RUNTIME_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Runs `future` on a multi-threaded runtime.
pub(crate) fn block_on(future: impl Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => {
            let code = runtime.block_on(future);
            runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
            code
        }
        Err(error) => {
            eprintln!("switchboard: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The migrations of the enabled targets.
fn migration_sets(targets: &Targets) -> Vec<MigrationSet> {
    let mut sets: Vec<MigrationSet> = Vec::new();
    for target in targets.iter() {
        let target_sets: &[MigrationSet] = match target {
            Target::Tenancy => &[switchboard_tenancy::MIGRATIONS],
            Target::Contacts => &[switchboard_contacts::MIGRATIONS],
            Target::Routing => &[switchboard_routing::MIGRATIONS],
            Target::Delivery => &[switchboard_delivery::MIGRATIONS],
            Target::Ingress(None) => &[switchboard_ingress::MIGRATIONS, switchboard_webchat::MIGRATIONS],
            Target::Ingress(Some(switchboard_domain::Channel::Webchat)) => &[switchboard_webchat::MIGRATIONS],
            Target::Ingress(Some(_)) => &[switchboard_ingress::MIGRATIONS],
        };
        for set in target_sets {
            if !sets.iter().any(|known| known.schema == set.schema) {
                sets.push(*set);
            }
        }
    }
    sets
}

async fn apply_migrations(pool: &Pool, targets: &Targets) -> Result<(), BoxError> {
    for set in migration_sets(targets) {
        let applied = switchboard_postgres::migrate(pool, &set).await?;
        tracing::info!(schema = set.schema, applied = applied.len(), "schema up to date");
    }
    Ok(())
}

/// `switchboard migrate`: applies the migrations of the enabled targets and exits.
pub(crate) async fn migrate(config: Config, targets: Targets) -> ExitCode {
    let _telemetry = match switchboard_telemetry::init(&config.telemetry) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("switchboard: {error}");
            return ExitCode::from(crate::EXIT_CONFIG);
        }
    };
    let result = async {
        let pool = switchboard_postgres::connect(&config.database).await?;
        apply_migrations(&pool, &targets).await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error_chain(error.as_ref()), "migration failed");
            ExitCode::FAILURE
        }
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Runs the enabled targets until SIGTERM/SIGINT (exit 0 after draining) or until any task
/// fails (exit 1). A second signal forces exit 130.
pub async fn run_server(config: Config, targets: Targets) -> ExitCode {
    let telemetry = match switchboard_telemetry::init(&config.telemetry) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("switchboard: {error}");
            return ExitCode::from(crate::EXIT_CONFIG);
        }
    };
    let code = match run(config, targets).await {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(error = %error_chain(error.as_ref()), "switchboard failed");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

async fn bind(name: &'static str, address: std::net::SocketAddr) -> Result<TcpListener, BoxError> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot listen on {address} for {name}: {error}"))?;
    tracing::info!(listener = name, addr = %listener.local_addr()?, "listening");
    Ok(listener)
}

async fn run(config: Config, targets: Targets) -> Result<ExitCode, BoxError> {
    tracing::info!(targets = %targets, version = env!("CARGO_PKG_VERSION"), "starting switchboard");
    let admin_listener = bind("admin", config.server.admin_addr).await?;
    let http_listener = bind("http", config.server.http_addr).await?;
    let grpc_listener = bind("grpc", config.server.grpc_addr).await?;
    let ingress_channels = targets.ingress_channels();
    let smtp_listener = if ingress_channels.contains(&switchboard_domain::Channel::Email) {
        Some(bind("smtp", config.server.smtp_addr).await?)
    } else {
        None
    };

    let metrics = MetricsRegistry::default();
    let readiness = Readiness::default();
    let shutdown = CancellationToken::new();
    let admin_shutdown = CancellationToken::new();

    // Ingress accepts webhooks while either the broker or the spool works, so a process that
    // runs only ingress stays in the load balancer through a broker outage.
    let ingress_only = targets.iter().all(|target| matches!(target, Target::Ingress(_)));
    let pool = if targets.need_database() {
        let pool = switchboard_postgres::connect(&config.database).await?;
        let migrate_now = config.database.migrate_on_start.unwrap_or(targets.is_all());
        if migrate_now {
            apply_migrations(&pool, &targets).await?;
        }
        if !ingress_only {
            let probe_pool = pool.clone();
            let timeout = config.server.readiness_timeout;
            readiness.add(ReadinessCheck::new("postgres", move || {
                let pool = probe_pool.clone();
                async move { switchboard_postgres::check_reachable(&pool, timeout).await }
            }));
        }
        Some(pool)
    } else {
        None
    };

    let bus = if targets.need_bus() {
        let messaging_metrics = Arc::new(MessagingMetrics::default());
        metrics.register(|registry| messaging_metrics.register(registry));
        let bus = Bus::start(config.bus.clone(), messaging_metrics);
        if !ingress_only {
            let probe_bus = bus.clone();
            readiness.add(ReadinessCheck::new("rabbitmq", move || {
                let result = probe_bus.check_ready();
                async move { result }
            }));
        }
        Some(bus)
    } else {
        None
    };

    if let (true, Some(pool), Some(bus)) = (ingress_only, &pool, &bus) {
        let (probe_pool, probe_bus) = (pool.clone(), bus.clone());
        let timeout = config.server.readiness_timeout;
        readiness.add(ReadinessCheck::new("webhook hand-over", move || {
            let (pool, bus) = (probe_pool.clone(), probe_bus.clone());
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
    }

    // In one process with tenancy, ingress asks this process's own gRPC port.
    let mut grpc_client = config.grpc_client.clone();
    if targets.contains(Target::Tenancy) {
        let port = grpc_listener.local_addr()?.port();
        grpc_client.endpoint = format!("http://127.0.0.1:{port}");
    }
    let ingress_metrics = Arc::new(switchboard_ingress::IngressMetrics::default());
    if !ingress_channels.is_empty() {
        metrics.register(|registry| ingress_metrics.register(registry));
    }

    let http_port = http_listener.local_addr()?.port();
    let mut parts = Vec::new();
    let mut authenticator: Option<Arc<dyn switchboard_server::auth::Authenticator>> = None;
    for target in targets.iter() {
        match target {
            Target::Tenancy => {
                let (Some(pool), Some(bus)) = (&pool, &bus) else {
                    return Err("tenancy needs postgres and rabbitmq".into());
                };
                let keys = Arc::new(switchboard_tenancy::KeyAuthenticator::new(
                    pool.clone(),
                    config.auth.key_cache_ttl,
                ));
                parts.push(
                    switchboard_tenancy::build(
                        &config.tenancy,
                        pool.clone(),
                        bus.publisher(),
                        keys.clone(),
                        config.server.grpc_max_message_bytes,
                    )
                    .await?,
                );
                authenticator = Some(keys);
            }
            Target::Contacts => {
                let (Some(pool), Some(bus)) = (&pool, &bus) else {
                    return Err("contacts needs postgres and rabbitmq".into());
                };
                let contacts_metrics = Arc::new(switchboard_contacts::ContactsMetrics::default());
                metrics.register(|registry| contacts_metrics.register(registry));
                parts.push(switchboard_contacts::build(
                    switchboard_contacts::ContactsDependencies {
                        config: &config.contacts,
                        pool: pool.clone(),
                        bus: bus.clone(),
                        metrics: contacts_metrics,
                        grpc_max_message_bytes: config.server.grpc_max_message_bytes,
                        shutdown: shutdown.clone(),
                    },
                ));
            }
            Target::Routing => {
                let (Some(pool), Some(bus)) = (&pool, &bus) else {
                    return Err("routing needs postgres and rabbitmq".into());
                };
                parts.push(switchboard_routing::build(
                    switchboard_routing::RoutingDependencies {
                        config: &config.routing,
                        database: &config.database,
                        pool: pool.clone(),
                        bus: bus.clone(),
                        shutdown: shutdown.clone(),
                    },
                ));
            }
            Target::Delivery => {
                let (Some(pool), Some(bus)) = (&pool, &bus) else {
                    return Err("delivery needs postgres and rabbitmq".into());
                };
                let Some(internal_token) = &config.auth.internal_token else {
                    return Err("delivery needs auth.internal_token".into());
                };
                let delivery_metrics = Arc::new(switchboard_delivery::DeliveryMetrics::default());
                metrics.register(|registry| delivery_metrics.register(registry));
                parts.push(switchboard_delivery::build(
                    switchboard_delivery::DeliveryDependencies {
                        config: &config.delivery,
                        egress: &config.egress,
                        grpc_client: &grpc_client,
                        internal_token,
                        pool: pool.clone(),
                        bus: bus.clone(),
                        metrics: delivery_metrics,
                        grpc_max_message_bytes: config.server.grpc_max_message_bytes,
                        webchat_endpoint: config
                            .delivery
                            .webchat_endpoint
                            .clone()
                            .unwrap_or_else(|| format!("http://127.0.0.1:{http_port}")),
                        shutdown: shutdown.clone(),
                    },
                )?);
            }
            // One ingress serves every enabled channel; built once below.
            Target::Ingress(_) => {}
        }
    }
    let webhook_channels: Vec<_> = ingress_channels
        .iter()
        .copied()
        .filter(|channel| *channel != switchboard_domain::Channel::Webchat)
        .collect();
    if ingress_channels.contains(&switchboard_domain::Channel::Webchat) {
        let (Some(pool), Some(bus), Some(internal_token)) = (&pool, &bus, &config.auth.internal_token) else {
            return Err("web chat needs postgres, rabbitmq and auth.internal_token".into());
        };
        let webchat_metrics = Arc::new(switchboard_webchat::WebchatMetrics::default());
        metrics.register(|registry| webchat_metrics.register(registry));
        parts.push(switchboard_webchat::build(
            switchboard_webchat::WebchatDependencies {
                config: &config.webchat,
                public_base_url: config.ingress.public_base_url.clone(),
                grpc_client: &grpc_client,
                internal_token,
                pool: pool.clone(),
                bus: bus.clone(),
                metrics: webchat_metrics,
                shutdown: shutdown.clone(),
            },
        )?);
    }
    if !webhook_channels.is_empty() {
        let (Some(pool), Some(bus)) = (&pool, &bus) else {
            return Err("ingress needs postgres and rabbitmq".into());
        };
        parts.push(
            switchboard_ingress::build(
                &webhook_channels,
                switchboard_ingress::IngressDependencies {
                    config: &config.ingress,
                    grpc_client: &grpc_client,
                    auth: &config.auth,
                    pool: pool.clone(),
                    bus: bus.clone(),
                    metrics: ingress_metrics.clone(),
                    smtp_listener,
                    shutdown: shutdown.clone(),
                },
            )
            .await?,
        );
    }
    // Without tenancy in this process, API keys are checked by tenancy over gRPC.
    let authenticator: Arc<dyn switchboard_server::auth::Authenticator> = match authenticator {
        Some(local) => local,
        None => match &config.auth.internal_token {
            Some(token) => Arc::new(crate::remote_keys::RemoteKeyAuthenticator::new(
                &grpc_client,
                token,
                config.auth.key_cache_ttl,
            )?),
            None => Arc::new(switchboard_server::auth::NoApiKeys),
        },
    };

    let mut router = axum::Router::new();
    let mut grpc_router = axum::Router::new();
    let mut service_names = Vec::new();
    let mut tasks: JoinSet<(&'static str, Result<(), BoxError>)> = JoinSet::new();
    for part in parts {
        let ComponentParts {
            router: part_router,
            grpc,
            grpc_service_names,
            tasks: part_tasks,
            readiness: checks,
        } = part;
        if let Some(part_router) = part_router {
            router = router.merge(part_router);
        }
        // Each built gRPC router carries tonic's UNIMPLEMENTED fallback, and axum refuses to
        // merge two fallbacks: drop them here; the one fallback is added back below.
        grpc_router = grpc_router.merge(grpc.routes().into_axum_router().reset_fallback());
        service_names.extend(grpc_service_names);
        for check in checks {
            readiness.add(check);
        }
        for (name, task) in part_tasks {
            tasks.spawn(named(name, task));
        }
    }
    let grpc_metrics = Arc::new(switchboard_server::GrpcMetrics::default());
    metrics.register(|registry| grpc_metrics.register(registry));
    let grpc_server = GrpcServer {
        metrics: grpc_metrics,
        routes: tonic::service::RoutesBuilder::from(grpc_router.fallback(grpc_unimplemented)),
        service_names,
        descriptor_sets: vec![switchboard_proto::FILE_DESCRIPTOR_SET],
        authenticator,
        auth: config.auth.clone(),
    };

    // Readiness first, so the first /readyz already has results.
    readiness.check_now(config.server.readiness_timeout).await;
    tasks.spawn(named("admin server", {
        let (readiness, metrics, admin_shutdown) =
            (readiness.clone(), metrics.clone(), admin_shutdown.clone());
        Box::pin(async move { Ok(serve_admin(admin_listener, readiness, metrics, admin_shutdown).await?) })
    }));
    tasks.spawn(named("readiness", {
        let readiness = readiness.clone();
        let (interval, timeout, admin_shutdown) = (
            config.server.readiness_interval,
            config.server.readiness_timeout,
            admin_shutdown.clone(),
        );
        Box::pin(async move {
            readiness
                .run(interval, timeout, admin_shutdown, |_| Box::pin(async {}))
                .await;
            Ok(())
        })
    }));
    tasks.spawn(named("http server", {
        let (timeout, readiness, shutdown) = (
            config.server.http_request_timeout,
            readiness.clone(),
            shutdown.clone(),
        );
        Box::pin(async move { Ok(serve_http(http_listener, router, timeout, readiness, shutdown).await?) })
    }));
    tasks.spawn(named("grpc server", {
        let (readiness, shutdown) = (readiness.clone(), shutdown.clone());
        Box::pin(async move { serve_grpc(grpc_listener, grpc_server, readiness, shutdown).await })
    }));
    tracing::info!("switchboard started");

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let failed = tokio::select! {
        _ = terminate.recv() => None,
        _ = interrupt.recv() => None,
        Some(joined) = tasks.join_next() => Some(describe_exit(joined)),
    };
    let exit = match &failed {
        None => {
            tracing::info!(drain_delay = ?config.shutdown.drain_delay, "shutdown requested; draining");
            readiness.start_draining();
            let drained = tokio::select! {
                () = tokio::time::sleep(config.shutdown.drain_delay) => true,
                _ = terminate.recv() => false,
                _ = interrupt.recv() => false,
            };
            if !drained {
                tracing::warn!("second signal; exiting now");
                return Ok(ExitCode::from(EXIT_FORCED));
            }
            ExitCode::SUCCESS
        }
        Some(reason) => {
            tracing::error!(reason = %reason, "a component stopped; shutting down");
            readiness.start_draining();
            ExitCode::FAILURE
        }
    };

    // Stop listeners and consumers; in-flight work finishes within the grace period.
    shutdown.cancel();
    let finished = async {
        loop {
            let remaining = tasks.len();
            if remaining <= 2 {
                // Only the admin server and readiness loop are left: they stop last.
                break;
            }
            match tasks.join_next().await {
                Some(joined) => {
                    let description = describe_exit(joined);
                    tracing::info!(task = %description, "task finished");
                    if !description.ends_with("stopped") {
                        tracing::warn!(task = %description, "task ended with an error during shutdown");
                    }
                }
                None => break,
            }
        }
    };
    let graceful = tokio::select! {
        () = finished => true,
        // Past the grace period the process still exits normally: what was not acked is
        // redelivered to another replica, and the orchestrator asked us to go.
        () = tokio::time::sleep(config.shutdown.grace_period) => {
            tracing::warn!(
                grace_period = ?config.shutdown.grace_period,
                "grace period over; abandoning in-flight work"
            );
            false
        }
        _ = terminate.recv() => {
            tracing::warn!("second signal; exiting now");
            return Ok(ExitCode::from(EXIT_FORCED));
        }
        _ = interrupt.recv() => {
            tracing::warn!("second signal; exiting now");
            return Ok(ExitCode::from(EXIT_FORCED));
        }
    };
    if let Some(bus) = &bus {
        let _ = tokio::time::timeout(Duration::from_secs(5), bus.close()).await;
    }
    admin_shutdown.cancel();
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    tracing::info!(graceful, "switchboard stopped");
    Ok(exit)
}

fn describe_exit(joined: Result<(&'static str, Result<(), BoxError>), tokio::task::JoinError>) -> String {
    match joined {
        Ok((name, Ok(()))) => format!("{name} stopped"),
        Ok((name, Err(error))) => format!("{name} failed: {}", error_chain(error.as_ref())),
        Err(error) => format!("a task panicked: {error}"),
    }
}

async fn named(
    name: &'static str,
    task: switchboard_server::ComponentTask,
) -> (&'static str, Result<(), BoxError>) {
    (name, task.await)
}

/// gRPC answer for a method no component serves.
async fn grpc_unimplemented() -> axum::response::Response {
    tonic::Status::unimplemented("no such gRPC service or method in this process").into_http()
}
