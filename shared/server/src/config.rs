use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source could not be read or a value has the wrong type.
    #[error("{0}")]
    Load(#[from] Box<figment::Error>),
    /// A value is out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// Environment variables with a conventional or documented name, mapped into the config tree.
const ENV_ALIASES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("AMQP_URL", "bus.url"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "telemetry.otlp_endpoint"),
    ("RUST_LOG", "telemetry.log_filter"),
    ("SWITCHBOARD_LOG_FORMAT", "telemetry.log_format"),
    ("SWITCHBOARD_HTTP_ADDR", "server.http_addr"),
    ("SWITCHBOARD_GRPC_ADDR", "server.grpc_addr"),
    ("SWITCHBOARD_ADMIN_ADDR", "server.admin_addr"),
    ("SWITCHBOARD_SMTP_ADDR", "server.smtp_addr"),
    ("SWITCHBOARD_BOOTSTRAP_TOKEN", "auth.bootstrap_token"),
    ("SWITCHBOARD_INTERNAL_TOKEN", "auth.internal_token"),
    ("SWITCHBOARD_CHANNELS_FILE", "tenancy.channels_file"),
];

/// Loads `T` from its defaults, then the TOML `file` (if any), then the environment:
/// `SWITCHBOARD__SECTION__KEY` for any key, plus the conventional names (`DATABASE_URL`,
/// `AMQP_URL`, `OTEL_EXPORTER_OTLP_ENDPOINT`, `RUST_LOG`, `SWITCHBOARD_HTTP_ADDR`, …).
pub fn load_config<T: Serialize + DeserializeOwned + Default>(file: Option<&Path>) -> Result<T, ConfigError> {
    load_config_from(file, |name| std::env::var(name).ok())
}

/// [`load_config`] with an explicit environment (for tests).
pub fn load_config_from<T: Serialize + DeserializeOwned + Default>(
    file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<T, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        if !file.is_file() {
            return Err(ConfigError::Invalid(format!(
                "config file {} does not exist",
                file.display()
            )));
        }
        figment = figment.merge(Toml::file_exact(file));
    }
    figment = figment.merge(Env::prefixed("SWITCHBOARD__").split("__"));
    for (variable, key) in ENV_ALIASES {
        if let Some(value) = env(variable).filter(|value| !value.is_empty()) {
            figment = figment.merge((*key, value));
        }
    }
    figment
        .extract()
        .map_err(|error| ConfigError::Load(Box::new(error)))
}

/// Config keys that hold secrets; `print-config` replaces their values.
pub const SECRET_KEYS: &[&str] = &[
    "database.url",
    "bus.url",
    "auth.bootstrap_token",
    "auth.internal_token",
];

/// Replaces the values at [`SECRET_KEYS`] in a serialized config with `[redacted]`.
pub fn redact_secrets(config: &mut toml::Table) {
    for path in SECRET_KEYS {
        let Some((section, key)) = path.split_once('.') else {
            continue;
        };
        if let Some(toml::Value::Table(table)) = config.get_mut(section)
            && table.contains_key(key)
        {
            table.insert(key.to_owned(), toml::Value::String("[redacted]".to_owned()));
        }
    }
}

fn expose_optional<S: serde::Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    match secret {
        Some(secret) => serializer.serialize_str(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}

/// The `[server]` section: listeners and transport limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Public HTTP listener for webhooks and web chat (env `SWITCHBOARD_HTTP_ADDR`).
    pub http_addr: SocketAddr,
    /// gRPC listener for every component's API (env `SWITCHBOARD_GRPC_ADDR`).
    pub grpc_addr: SocketAddr,
    /// Admin listener: `/livez`, `/readyz`, `/metrics` (env `SWITCHBOARD_ADMIN_ADDR`).
    pub admin_addr: SocketAddr,
    /// SMTP listener of e-mail ingress, bound only when e-mail ingress runs (env `SWITCHBOARD_SMTP_ADDR`).
    pub smtp_addr: SocketAddr,
    /// Largest gRPC message accepted or sent, in bytes.
    pub grpc_max_message_bytes: usize,
    /// Longest time one HTTP request may take end to end.
    #[serde(with = "humantime_serde")]
    pub http_request_timeout: Duration,
    /// How often readiness checks run.
    #[serde(with = "humantime_serde")]
    pub readiness_interval: Duration,
    /// How long one readiness check may take.
    #[serde(with = "humantime_serde")]
    pub readiness_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            grpc_addr: SocketAddr::from(([0, 0, 0, 0], 50051)),
            admin_addr: SocketAddr::from(([0, 0, 0, 0], 9090)),
            smtp_addr: SocketAddr::from(([0, 0, 0, 0], 2525)),
            grpc_max_message_bytes: 4 * 1024 * 1024,
            http_request_timeout: Duration::from_secs(30),
            readiness_interval: Duration::from_secs(1),
            readiness_timeout: Duration::from_secs(2),
        }
    }
}

impl ServerConfig {
    /// Checks the values a person can get wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !(1024..=64 * 1024 * 1024).contains(&self.grpc_max_message_bytes) {
            return Err(format!(
                "server.grpc_max_message_bytes must be between 1024 and 67108864, got {}",
                self.grpc_max_message_bytes
            ));
        }
        if self.http_request_timeout.is_zero()
            || self.readiness_interval.is_zero()
            || self.readiness_timeout.is_zero()
        {
            return Err("server timeouts and intervals must be greater than zero".to_owned());
        }
        Ok(())
    }
}

/// The `[shutdown]` section: how the process drains on SIGTERM.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// After SIGTERM, `/readyz` answers 503 for this long before listeners stop, so load
    /// balancers stop sending traffic first.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// Longest time to finish in-flight work after the drain delay; then the process exits.
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_delay: Duration::from_secs(5),
            grace_period: Duration::from_secs(25),
        }
    }
}

/// The `[auth]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A platform-admin token for the first API keys (env `SWITCHBOARD_BOOTSTRAP_TOKEN`);
    /// at least 32 characters; unset disables it.
    #[serde(serialize_with = "expose_optional")]
    pub bootstrap_token: Option<SecretString>,
    /// Token the components present to each other (env `SWITCHBOARD_INTERNAL_TOKEN`), e.g. for
    /// ingress to resolve channel-account secrets; at least 32 characters; unset disables
    /// internal calls. Every pod of one installation needs the same value.
    #[serde(serialize_with = "expose_optional")]
    pub internal_token: Option<SecretString>,
    /// How long a verified API key is trusted before it is looked up again (revocation delay).
    #[serde(with = "humantime_serde")]
    pub key_cache_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            bootstrap_token: None,
            internal_token: None,
            key_cache_ttl: Duration::from_secs(30),
        }
    }
}

impl AuthConfig {
    /// Checks the values a person can get wrong.
    pub fn validate(&self) -> Result<(), String> {
        use secrecy::ExposeSecret;
        if let Some(token) = &self.bootstrap_token
            && token.expose_secret().chars().count() < 32
        {
            return Err(
                "auth.bootstrap_token (SWITCHBOARD_BOOTSTRAP_TOKEN) must be at least 32 characters; generate one with `openssl rand -hex 32`".to_owned(),
            );
        }
        if let Some(token) = &self.internal_token {
            if token.expose_secret().chars().count() < 32 {
                return Err(
                    "auth.internal_token (SWITCHBOARD_INTERNAL_TOKEN) must be at least 32 characters; generate one with `openssl rand -hex 32`".to_owned(),
                );
            }
            if self
                .bootstrap_token
                .as_ref()
                .is_some_and(|bootstrap| bootstrap.expose_secret() == token.expose_secret())
            {
                return Err("auth.internal_token must differ from auth.bootstrap_token".to_owned());
            }
        }
        Ok(())
    }
}

/// The `[grpc_client]` section: how components reach each other's gRPC APIs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcClientConfig {
    /// Endpoint of the other components; in `all` mode the process's own gRPC port.
    pub endpoint: String,
    /// Longest time to establish a connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest time one call may take.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl GrpcClientConfig {
    /// A channel to `endpoint` that connects on first use (so a component may start before
    /// the one it calls), with the configured timeouts.
    pub fn lazy_channel(&self) -> Result<tonic::transport::Channel, String> {
        let endpoint = tonic::transport::Endpoint::from_shared(self.endpoint.clone())
            .map_err(|error| format!("grpc_client.endpoint {:?} is not a URL: {error}", self.endpoint))?
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout);
        Ok(endpoint.connect_lazy())
    }
}

impl Default for GrpcClientConfig {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:50051".to_owned(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        }
    }
}
