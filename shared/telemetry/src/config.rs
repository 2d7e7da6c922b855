use serde::{Deserialize, Serialize};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-friendly multi-line output for a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for containers and log shippers.
    Json,
}

/// The `[telemetry]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Log line format (`pretty` or `json`; env `SWITCHBOARD_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// `tracing` filter directives (env `RUST_LOG` wins), e.g. `info,switchboard=debug`.
    pub log_filter: String,
    /// OTLP/gRPC collector endpoint (env `OTEL_EXPORTER_OTLP_ENDPOINT`); export is off when empty.
    pub otlp_endpoint: String,
    /// `service.name` resource attribute of exported spans.
    pub service_name: String,
    /// Share of new traces recorded (0.0–1.0); a caller's sampling decision is always followed.
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Pretty,
            log_filter: "info".to_owned(),
            otlp_endpoint: String::new(),
            service_name: "switchboard".to_owned(),
            sample_ratio: 1.0,
        }
    }
}
