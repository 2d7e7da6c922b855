//! RED metrics for every gRPC call: `switchboard_grpc_requests_total{service,method,code}` and
//! `switchboard_grpc_request_duration_seconds{service,method}`. Labels stay bounded: a path
//! that names no registered method is counted as `service="unknown"`.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::Frame;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the request counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: String,
    method: String,
    code: String,
}

/// Labels of the duration histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: String,
    method: String,
}

/// The gRPC metrics of the process.
#[derive(Debug)]
pub struct GrpcMetrics {
    requests: Family<CallLabels, Counter>,
    duration: Family<MethodLabels, Histogram>,
}

impl Default for GrpcMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_25, 2.0, 16))),
        }
    }
}

impl GrpcMetrics {
    /// Registers the metrics under `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let grpc = registry.sub_registry_with_prefix("grpc");
        grpc.register(
            "requests",
            "gRPC calls by service, method and status code",
            self.requests.clone(),
        );
        grpc.register(
            "request_duration_seconds",
            "gRPC call duration until the status is known",
            self.duration.clone(),
        );
    }
}

/// Tower layer recording [`GrpcMetrics`] for the services named in `known_services`.
#[derive(Clone)]
pub(crate) struct GrpcMetricsLayer {
    metrics: Arc<GrpcMetrics>,
    known_services: Arc<HashSet<String>>,
}

impl GrpcMetricsLayer {
    pub(crate) fn new(metrics: Arc<GrpcMetrics>, known_services: HashSet<String>) -> Self {
        Self {
            metrics,
            known_services: Arc::new(known_services),
        }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service produced by [`GrpcMetricsLayer`].
#[derive(Clone)]
pub(crate) struct GrpcMetricsService<S> {
    inner: S,
    layer: GrpcMetricsLayer,
}

/// Records one call once its status is known.
struct CallRecorder {
    metrics: Arc<GrpcMetrics>,
    labels: MethodLabels,
    started: Instant,
}

impl CallRecorder {
    fn record(self, code: &str) {
        self.metrics
            .duration
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
        self.metrics
            .requests
            .get_or_create(&CallLabels {
                service: self.labels.service,
                method: self.labels.method,
                code: code.to_owned(),
            })
            .inc();
    }
}

fn code_name(value: &http::HeaderValue) -> String {
    let number = value
        .to_str()
        .ok()
        .and_then(|text| text.parse::<i32>().ok())
        .unwrap_or(2);
    format!("{:?}", tonic::Code::from_i32(number))
}

impl<S, B> tower::Service<http::Request<B>> for GrpcMetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (service, method) = match request.uri().path().trim_start_matches('/').split_once('/') {
            Some((service, method)) if self.layer.known_services.contains(service) => {
                (service.to_owned(), method.to_owned())
            }
            _ => ("unknown".to_owned(), "unknown".to_owned()),
        };
        let recorder = CallRecorder {
            metrics: self.layer.metrics.clone(),
            labels: MethodLabels { service, method },
            started: Instant::now(),
        };
        Box::pin(async move {
            let response = inner.call(request).await?;
            // Errors answered at once carry grpc-status in the headers ("trailers-only").
            if let Some(status) = response.headers().get("grpc-status") {
                recorder.record(&code_name(status));
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let body = StatusWatchingBody {
                inner: body,
                recorder: Some(recorder),
            };
            Ok(http::Response::from_parts(parts, tonic::body::Body::new(body)))
        })
    }
}

/// Passes the body through and records the call when the trailers carry its status.
struct StatusWatchingBody {
    inner: tonic::body::Body,
    recorder: Option<CallRecorder>,
}

impl http_body::Body for StatusWatchingBody {
    type Data = <tonic::body::Body as http_body::Body>::Data;
    type Error = <tonic::body::Body as http_body::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(trailers) = frame.trailers_ref()
            && let Some(recorder) = self.recorder.take()
        {
            let code = trailers
                .get("grpc-status")
                .map_or_else(|| "Unknown".to_owned(), code_name);
            recorder.record(&code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for StatusWatchingBody {
    fn drop(&mut self) {
        // The client went away before the status was sent.
        if let Some(recorder) = self.recorder.take() {
            recorder.record("Cancelled");
        }
    }
}
