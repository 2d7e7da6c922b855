//! Telemetry for every Switchboard process: the tracing subscriber (JSON or pretty), OTLP
//! trace export when an endpoint is configured, and W3C trace-context propagation over HTTP
//! headers and gRPC metadata.
//!
//! It owns no metrics registry (that is `switchboard-server`'s) and knows nothing of AMQP: the
//! messaging kit adapts its own headers to the [`propagation`] carriers here.

mod config;
mod init;
pub mod propagation;

pub use config::{LogFormat, TelemetryConfig};
pub use init::{TelemetryError, TelemetryGuard, init, init_for_tests};
