use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{MetricsRegistry, Readiness};

#[derive(Clone)]
struct AdminState {
    readiness: Readiness,
    metrics: MetricsRegistry,
}

/// The admin routes: `/livez` (the process runs), `/readyz` (dependencies reachable at the
/// last check and not draining; the body lists each check), `/metrics` (Prometheus).
pub fn admin_router(readiness: Readiness, metrics: MetricsRegistry) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState { readiness, metrics })
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let mut body = String::new();
    for (name, result) in state.readiness.report() {
        match result {
            Ok(()) => body.push_str(&format!("{name}: ok\n")),
            Err(reason) => body.push_str(&format!("{name}: failing: {reason}\n")),
        }
    }
    if state.readiness.is_draining() {
        body.push_str("draining: shutting down\n");
    }
    let status = if state.readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Serves the admin routes until `shutdown`; it stays up through the drain so probes see 503.
pub async fn serve_admin(
    listener: TcpListener,
    readiness: Readiness,
    metrics: MetricsRegistry,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, admin_router(readiness, metrics))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
