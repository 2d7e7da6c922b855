//! Building the enabled components and running them under one lifecycle.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use switchboard_server::{BoxError, ComponentParts, GrpcServer, serve_admin, serve_grpc, serve_http};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::components::{Component, migration_sets};
use crate::infrastructure::{Infrastructure, Listeners};
use crate::{Config, EXIT_FORCED, Targets};

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
        Ok::<(), BoxError>(switchboard_postgres::migrate_all(&pool, &migration_sets(&targets)).await?)
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

/// What a person starting Switchboard needs once it is ready: where each listener answers,
/// and how to get an API key.
struct ReadyNotice {
    admin: String,
    http: String,
    grpc: String,
    webchat: bool,
    bootstrap_token: bool,
}

impl ReadyNotice {
    fn new(config: &Config, targets: &Targets, [admin, http, grpc]: &[std::net::SocketAddr; 3]) -> Self {
        // A listener on every interface is reached locally as localhost.
        let url = |address: &std::net::SocketAddr| {
            if address.ip().is_unspecified() {
                format!("http://localhost:{}", address.port())
            } else {
                format!("http://{address}")
            }
        };
        Self {
            admin: url(admin),
            http: url(http),
            grpc: url(grpc),
            webchat: targets
                .ingress_channels()
                .contains(&switchboard_domain::Channel::Webchat),
            bootstrap_token: config.auth.bootstrap_token.is_some()
                && targets.contains(crate::Target::Tenancy),
        }
    }

    fn log(&self) {
        let webchat_demo = self.webchat.then(|| {
            format!(
                "{}/webchat/<account id>/demo (accounts with demo_page)",
                self.http
            )
        });
        let api_keys = self.bootstrap_token.then_some(
            "create one with the bootstrap token (SWITCHBOARD_BOOTSTRAP_TOKEN): WorkspaceAdminService/CreateApiKey",
        );
        tracing::info!(
            webhooks = %format!("{}/webhooks/<channel>/<account id>", self.http),
            grpc = %self.grpc,
            readiness = %format!("{}/readyz", self.admin),
            metrics = %format!("{}/metrics", self.admin),
            webchat_demo,
            api_keys,
            "switchboard is ready"
        );
    }
}

/// How a task of the process ended.
enum TaskEnd {
    /// It returned `Ok`: it was asked to stop.
    Stopped(&'static str),
    /// It returned an error.
    Failed(&'static str, BoxError),
    /// It panicked or was aborted.
    Panicked(tokio::task::JoinError),
}

impl TaskEnd {
    fn of(joined: Result<(&'static str, Result<(), BoxError>), tokio::task::JoinError>) -> Self {
        match joined {
            Ok((name, Ok(()))) => Self::Stopped(name),
            Ok((name, Err(error))) => Self::Failed(name, error),
            Err(error) => Self::Panicked(error),
        }
    }
}

impl std::fmt::Display for TaskEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stopped(name) => write!(f, "{name} stopped"),
            Self::Failed(name, error) => write!(f, "{name} failed: {}", error_chain(error.as_ref())),
            Self::Panicked(error) => write!(f, "a task panicked: {error}"),
        }
    }
}

/// The tasks of a process, in two sets: the components' work (listeners, consumers, relays),
/// which stops first and within the grace period, and the admin server with the readiness
/// loop, which answer `/readyz` until the very end.
#[derive(Default)]
struct Tasks {
    components: JoinSet<(&'static str, Result<(), BoxError>)>,
    admin: JoinSet<(&'static str, Result<(), BoxError>)>,
}

impl Tasks {
    /// The first task of either set that ends.
    async fn first_end(&mut self) -> TaskEnd {
        let joined = tokio::select! {
            Some(joined) = self.components.join_next() => joined,
            Some(joined) = self.admin.join_next() => joined,
            // Both sets empty: nothing can end, so only a signal stops the process.
            else => return std::future::pending().await,
        };
        TaskEnd::of(joined)
    }

    /// Waits for every component task, logging how each ended.
    async fn components_finished(&mut self) {
        while let Some(joined) = self.components.join_next().await {
            match TaskEnd::of(joined) {
                end @ TaskEnd::Stopped(_) => tracing::info!(task = %end, "task finished"),
                end => tracing::warn!(task = %end, "task ended with an error during shutdown"),
            }
        }
    }

    /// Stops what is left.
    async fn abort_all(&mut self) {
        self.components.abort_all();
        self.admin.abort_all();
        while self.components.join_next().await.is_some() {}
        while self.admin.join_next().await.is_some() {}
    }
}

/// Builds every enabled component and merges their parts behind the process's listeners.
async fn build_components(
    infra: &mut Infrastructure,
    targets: &Targets,
    tasks: &mut Tasks,
) -> Result<(axum::Router, GrpcServer), BoxError> {
    let mut router = axum::Router::new();
    let mut grpc_router = axum::Router::new();
    let mut service_names = Vec::new();
    for component in Component::enabled_by(targets) {
        let parts = component.build(infra).await?;
        let ComponentParts {
            router: part_router,
            grpc,
            tasks: part_tasks,
            readiness: checks,
        } = parts;
        if let Some(part_router) = part_router {
            router = router.merge(part_router);
        }
        service_names.extend(grpc.names());
        // Each built gRPC router carries tonic's UNIMPLEMENTED fallback, and axum refuses to
        // merge two fallbacks: drop them here; the one fallback is added back below.
        grpc_router = grpc_router.merge(grpc.into_axum_router().reset_fallback());
        for check in checks {
            infra.readiness.add(check);
        }
        for (name, task) in part_tasks {
            tasks.components.spawn(named(name, task));
        }
    }
    let grpc_metrics = Arc::new(switchboard_server::GrpcMetrics::default());
    infra.metrics.register(|registry| grpc_metrics.register(registry));
    let grpc_server = GrpcServer {
        metrics: grpc_metrics,
        routes: tonic::service::RoutesBuilder::from(grpc_router.fallback(grpc_unimplemented)),
        service_names,
        descriptor_sets: vec![switchboard_proto::FILE_DESCRIPTOR_SET],
        authenticator: infra.authenticator(targets)?,
        auth: infra.config.auth.clone(),
    };
    Ok((router, grpc_server))
}

async fn run(config: Config, targets: Targets) -> Result<ExitCode, BoxError> {
    tracing::info!(targets = %targets, version = env!("CARGO_PKG_VERSION"), "starting switchboard");
    let mut listeners = Listeners::bind(&config, &targets).await?;
    let migrations = migration_sets(&targets);
    let mut infra = Infrastructure::start(config, &targets, &mut listeners, &migrations).await?;
    let mut tasks = Tasks::default();
    let (router, grpc_server) = build_components(&mut infra, &targets, &mut tasks).await?;
    let Infrastructure {
        config,
        bus,
        metrics,
        readiness,
        shutdown,
        ..
    } = infra;
    let Listeners {
        admin, http, grpc, ..
    } = listeners;
    let addresses = [admin.local_addr()?, http.local_addr()?, grpc.local_addr()?];
    let admin_shutdown = CancellationToken::new();

    // Readiness first, so the first /readyz already has results.
    readiness.check_now(config.server.readiness_timeout).await;
    tasks.admin.spawn(named("admin server", {
        let (readiness, metrics, admin_shutdown) =
            (readiness.clone(), metrics.clone(), admin_shutdown.clone());
        Box::pin(async move { Ok(serve_admin(admin, readiness, metrics, admin_shutdown).await?) })
    }));
    let ready_notice = ReadyNotice::new(&config, &targets, &addresses);
    tasks.admin.spawn(named("readiness", {
        let readiness = readiness.clone();
        let (interval, timeout, admin_shutdown) = (
            config.server.readiness_interval,
            config.server.readiness_timeout,
            admin_shutdown.clone(),
        );
        Box::pin(async move {
            let announced = std::sync::Once::new();
            readiness
                .run(interval, timeout, admin_shutdown, move |ready| {
                    if ready {
                        announced.call_once(|| ready_notice.log());
                    }
                    Box::pin(async {})
                })
                .await;
            Ok(())
        })
    }));
    tasks.components.spawn(named("http server", {
        let (timeout, readiness, shutdown) = (
            config.server.http_request_timeout,
            readiness.clone(),
            shutdown.clone(),
        );
        Box::pin(async move { Ok(serve_http(http, router, timeout, readiness, shutdown).await?) })
    }));
    tasks.components.spawn(named("grpc server", {
        let (readiness, shutdown) = (readiness.clone(), shutdown.clone());
        Box::pin(async move { serve_grpc(grpc, grpc_server, readiness, shutdown).await })
    }));
    tracing::info!("switchboard started");

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let failed = tokio::select! {
        _ = terminate.recv() => None,
        _ = interrupt.recv() => None,
        end = tasks.first_end() => Some(end),
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
    let graceful = tokio::select! {
        () = tasks.components_finished() => true,
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
    let _ = tokio::time::timeout(Duration::from_secs(5), bus.close()).await;
    admin_shutdown.cancel();
    tasks.abort_all().await;
    tracing::info!(graceful, "switchboard stopped");
    Ok(exit)
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
