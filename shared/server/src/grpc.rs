use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::auth::{Authenticator, GrpcAuthLayer};
use crate::grpc_metrics::{GrpcMetrics, GrpcMetricsLayer};
use crate::{AuthConfig, BoxError, Readiness};

/// The gRPC listener's parts, assembled by the binary from every component.
pub struct GrpcServer {
    /// Services of every enabled component.
    pub routes: tonic::service::RoutesBuilder,
    /// Their fully qualified names (for per-service health).
    pub service_names: Vec<&'static str>,
    /// Encoded descriptor sets for reflection.
    pub descriptor_sets: Vec<&'static [u8]>,
    /// Resolves API keys.
    pub authenticator: Arc<dyn Authenticator>,
    /// Auth settings (bootstrap token).
    pub auth: AuthConfig,
    /// Where call metrics are recorded.
    pub metrics: Arc<GrpcMetrics>,
}

/// Serves gRPC with auth, trace context, health (mirroring readiness) and reflection (v1 and
/// v1alpha) until `shutdown`, letting in-flight calls finish.
pub async fn serve_grpc(
    listener: TcpListener,
    server: GrpcServer,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), BoxError> {
    let GrpcServer {
        mut routes,
        service_names,
        descriptor_sets,
        authenticator,
        auth,
        metrics,
    } = server;
    let mut known_services: std::collections::HashSet<String> =
        service_names.iter().map(|name| (*name).to_owned()).collect();
    known_services.insert("grpc.health.v1.Health".to_owned());
    known_services.insert("grpc.reflection.v1.ServerReflection".to_owned());
    known_services.insert("grpc.reflection.v1alpha.ServerReflection".to_owned());
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let mut reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    let mut reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for set in &descriptor_sets {
        reflection_v1 = reflection_v1.register_encoded_file_descriptor_set(set);
        reflection_v1alpha = reflection_v1alpha.register_encoded_file_descriptor_set(set);
    }
    routes
        .add_service(health_service)
        .add_service(reflection_v1.build_v1()?)
        .add_service(reflection_v1alpha.build_v1alpha()?);

    // Health follows readiness at once: SERVING only while every dependency is reachable.
    let watcher = {
        let reporter = reporter.clone();
        let mut changes = readiness.subscribe();
        let shutdown = shutdown.clone();
        async move {
            loop {
                let ready = *changes.borrow_and_update();
                let status = if ready {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                reporter.set_service_status("", status).await;
                for name in &service_names {
                    reporter.set_service_status(*name, status).await;
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    changed = changes.changed() => if changed.is_err() { break },
                }
            }
        }
    };
    tokio::spawn(watcher);

    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .trace_fn(|request| {
            let span = tracing::error_span!(
                "grpc request",
                otel.kind = "server",
                rpc.system = "grpc",
                rpc.method = request.uri().path(),
            );
            switchboard_telemetry::propagation::set_remote_parent(
                &span,
                &switchboard_telemetry::propagation::HeaderCarrier(request.headers()),
            );
            span
        })
        .layer(GrpcMetricsLayer::new(metrics, known_services))
        .layer(GrpcAuthLayer::new(
            authenticator,
            auth.bootstrap_token.clone(),
            auth.internal_token.clone(),
        ))
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
