use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::{LogFormat, TelemetryConfig};

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `telemetry.sample_ratio` is outside 0.0–1.0.
    #[error("telemetry.sample_ratio must be between 0.0 and 1.0, got {0}")]
    InvalidSampleRatio(f64),
    /// The log filter directives do not parse.
    #[error("invalid log filter {filter:?}")]
    InvalidFilter {
        /// The directives as configured.
        filter: String,
        /// What the parser said.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// The OTLP exporter could not be built.
    #[error("could not build the otlp exporter for {endpoint}")]
    Exporter {
        /// The configured endpoint.
        endpoint: String,
        /// The exporter's error.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// A global subscriber was installed already.
    #[error("a global tracing subscriber is installed already")]
    AlreadyInstalled(#[source] tracing_subscriber::util::TryInitError),
}

/// Keeps the trace exporter alive; [`TelemetryGuard::shutdown`] flushes pending spans.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes and stops the exporter; call once at the end of `main`.
    pub fn shutdown(mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("switchboard: flushing traces failed: {error}");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber and W3C propagator as configured.
///
/// Must run inside a tokio runtime when an OTLP endpoint is set (the batch exporter spawns).
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = EnvFilter::try_new(&config.log_filter).map_err(|source| TelemetryError::InvalidFilter {
        filter: config.log_filter.clone(),
        source,
    })?;
    let fmt_layer = match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_target(true).boxed(),
    };

    // The tracer runs even without an exporter, so W3C trace context still flows from the
    // caller through HTTP, gRPC and the bus to the next hop (which may export).
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    if !(0.0..=1.0).contains(&config.sample_ratio) {
        return Err(TelemetryError::InvalidSampleRatio(config.sample_ratio));
    }
    let sampler = opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
        opentelemetry_sdk::trace::Sampler::TraceIdRatioBased(config.sample_ratio),
    ));
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(sampler);
    if !config.otlp_endpoint.is_empty() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.otlp_endpoint.clone())
            .build()
            .map_err(|source| TelemetryError::Exporter {
                endpoint: config.otlp_endpoint.clone(),
                source,
            })?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    // Spans reach OpenTelemetry at INFO whatever the log filter says: turning logs down to
    // `warn` must not cut the trace (and the W3C context other hops continue) into pieces.
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("switchboard"))
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    opentelemetry::global::set_tracer_provider(provider.clone());
    let provider = Some(provider);

    tracing_subscriber::registry()
        .with(fmt_layer.with_filter(filter))
        .with(otel_layer)
        .try_init()
        .map_err(TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard { provider })
}

/// Installs test tracing once per process: silent unless `TEST_LOG` is set.
pub fn init_for_tests() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        if std::env::var_os("TEST_LOG").is_some() {
            let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
    });
}
