//! Server kit shared by every component: config loading (figment), the common config
//! sections, the admin listener (`/livez`, `/readyz`, `/metrics`), the HTTP and gRPC servers
//! with their standard layers (trace, auth, explicit size limits, health, reflection), the
//! readiness registry, bearer-key authentication and the one mapping of [`ErrorCode`] to HTTP
//! and gRPC status.
//!
//! It depends on the domain and telemetry crates only; services plug into it through
//! [`ComponentParts`] and the [`auth::Authenticator`] trait.
//!
//! [`ErrorCode`]: switchboard_domain::ErrorCode

mod admin;
pub mod auth;
mod component;
mod config;
mod error;
mod grpc;
mod grpc_metrics;
mod http;
mod metrics;
pub mod paging;
mod readiness;

pub use admin::{admin_router, serve_admin};
pub use component::{BoxError, ComponentParts, ComponentTask, GrpcServices};
pub use config::{
    AuthConfig, ConfigError, GrpcClientConfig, SECRET_KEYS, ServerConfig, ShutdownConfig, load_config,
    load_config_from, redact_secrets,
};
pub use error::{grpc_code, http_status, status_from};
pub use grpc::{GrpcServer, serve_grpc};
pub use grpc_metrics::GrpcMetrics;
pub use http::serve_http;
pub use metrics::MetricsRegistry;
pub use readiness::{Readiness, ReadinessCheck};
