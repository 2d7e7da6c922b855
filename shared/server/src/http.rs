use std::time::Duration;

use axum::Router;
use axum::extract::MatchedPath;
use http::Request;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::Readiness;

/// Serves the merged component routes with the standard layers (request id, trace span with
/// W3C parent, timeout) until `shutdown`, finishing in-flight requests.
///
/// From the moment `readiness` starts draining, every HTTP/1 answer carries
/// `Connection: close`: clients finish their request on the connection they have and open a new
/// one for the next (which the load balancer, seeing `/readyz` fail, sends elsewhere), so no
/// idle keep-alive connection is left for the final close to cut under a request.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    request_timeout: Duration,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let request_id = http::HeaderName::from_static("x-request-id");
    let router = router
        .layer(axum::middleware::map_response(
            move |mut response: axum::response::Response| {
                let draining = readiness.is_draining();
                async move {
                    if draining {
                        response
                            .headers_mut()
                            .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
                    }
                    response
                }
            },
        ))
        .layer(TimeoutLayer::with_status_code(
            http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            let span = tracing::error_span!(
                "http request",
                otel.kind = "server",
                http.request.method = %request.method(),
                http.route = route,
                request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or(""),
            );
            switchboard_telemetry::propagation::set_remote_parent(
                &span,
                &switchboard_telemetry::propagation::HeaderCarrier(request.headers()),
            );
            span
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    // Handlers that limit per client (web chat sessions per IP) read the peer address.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
