use serde::{Deserialize, Serialize};
use switchboard_contacts::ContactsConfig;
use switchboard_delivery::DeliveryConfig;
use switchboard_egress::EgressConfig;
use switchboard_ingress::IngressConfig;
use switchboard_messaging::BusConfig;
use switchboard_postgres::DatabaseConfig;
use switchboard_routing::RoutingConfig;
use switchboard_server::{AuthConfig, GrpcClientConfig, ServerConfig, ShutdownConfig};
use switchboard_telemetry::TelemetryConfig;
use switchboard_tenancy::TenancyConfig;
use switchboard_webchat::WebchatConfig;

use crate::{Cli, Command, Target, Targets};

/// The whole configuration: one section per concern, each owned by its crate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listeners and transport limits.
    pub server: ServerConfig,
    /// Drain and grace periods.
    pub shutdown: ShutdownConfig,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
    /// PostgreSQL.
    pub database: DatabaseConfig,
    /// RabbitMQ.
    pub bus: BusConfig,
    /// API keys and the bootstrap token.
    pub auth: AuthConfig,
    /// How components reach each other's gRPC APIs.
    pub grpc_client: GrpcClientConfig,
    /// The tenancy component.
    pub tenancy: TenancyConfig,
    /// The contacts component.
    pub contacts: ContactsConfig,
    /// The routing component.
    pub routing: RoutingConfig,
    /// The delivery component.
    pub delivery: DeliveryConfig,
    /// The ingress component (webhooks).
    pub ingress: IngressConfig,
    /// The web chat channel (`ingress-webchat`).
    pub webchat: WebchatConfig,
    /// Fetches of caller-given URLs (attachments): which addresses they may reach.
    pub egress: EgressConfig,
}

impl Config {
    /// Validates the sections the enabled targets use; the message names the key.
    pub fn validate(&self, targets: &Targets) -> Result<(), String> {
        self.server.validate()?;
        self.auth.validate()?;
        // Every component keeps state in PostgreSQL and talks over RabbitMQ.
        self.database.validate()?;
        self.bus.validate()?;
        for target in targets.iter() {
            match target {
                Target::Tenancy => self.tenancy.validate()?,
                Target::Contacts => self.contacts.validate()?,
                Target::Routing => self.routing.validate()?,
                Target::Delivery => {
                    self.delivery.validate()?;
                    self.egress.validate()?;
                    if self.auth.internal_token.is_none() {
                        return Err(
                            "delivery needs auth.internal_token (SWITCHBOARD_INTERNAL_TOKEN) to ask contacts, routing and tenancy; generate one with `openssl rand -hex 32`"
                                .to_owned(),
                        );
                    }
                }
                Target::Ingress(channel) => {
                    self.ingress.validate()?;
                    if channel.is_none_or(|channel| channel == switchboard_domain::Channel::Webchat) {
                        self.webchat.validate()?;
                    }
                    if self.auth.internal_token.is_none() {
                        return Err(
                            "ingress needs auth.internal_token (SWITCHBOARD_INTERNAL_TOKEN) to look up channel accounts; generate one with `openssl rand -hex 32`"
                                .to_owned(),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Validates what `switchboard migrate` uses: the database section
    /// (telemetry is checked when it starts). It binds no listener, opens no bus connection and
    /// makes no internal call, so the tokens are not required.
    pub fn validate_for_migrate(&self) -> Result<(), String> {
        self.database.validate()
    }
}

/// Loads the config and targets of `cli`, validated for what its command does.
pub(crate) fn load(cli: &Cli) -> Result<(Config, Targets), String> {
    let targets = Targets::parse(&cli.targets)?;
    let config: Config =
        switchboard_server::load_config(cli.config.as_deref()).map_err(|error| error.to_string())?;
    validate_for(&config, &targets, cli.command.as_ref())?;
    Ok((config, targets))
}

/// Validates `config` for `command`: `migrate` needs only the database, every other command
/// (and `run`, the default) the sections of the enabled targets.
fn validate_for(config: &Config, targets: &Targets, command: Option<&Command>) -> Result<(), String> {
    match command {
        Some(Command::Migrate) => config.validate_for_migrate(),
        // Only the broker is used.
        Some(Command::DeadLetters { .. }) => config.bus.validate(),
        Some(Command::Run | Command::PrintConfig | Command::Healthcheck { .. } | Command::Reply { .. })
        | None => config.validate(targets),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_config_loads_and_matches_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/example.toml");
        let loaded: Config =
            switchboard_server::load_config_from(Some(&path), |_| None).expect("example loads");
        let defaults = Config::default();
        assert_eq!(
            toml::to_string(&loaded).expect("serializes"),
            toml::to_string(&defaults).expect("serializes"),
            "deploy/config/example.toml must list the defaults"
        );
    }

    #[test]
    fn migrate_validates_the_database_only() {
        let all = Targets::parse(&["all".to_owned()]).expect("all parses");
        // What a bare migration Job has: a database URL, no tokens.
        let config = Config::default();
        validate_for(&config, &all, Some(&Command::Migrate)).expect("migrate needs no token");
        for command in [None, Some(Command::Run)] {
            let error = validate_for(&config, &all, command.as_ref()).expect_err("run needs the token");
            assert!(error.contains("auth.internal_token"), "{error}");
        }

        // Nor does it use the bus or the listeners.
        let mut unused_sections = Config::default();
        unused_sections.bus.partitions = 0;
        unused_sections.server.grpc_max_message_bytes = 0;
        validate_for(&unused_sections, &all, Some(&Command::Migrate)).expect("bus and server unused");

        let mut bad_database = Config::default();
        bad_database.database.url = "mysql://nope".to_owned().into();
        let error = validate_for(&bad_database, &all, Some(&Command::Migrate)).expect_err("bad database url");
        assert!(error.contains("database.url"), "{error}");
    }

    #[test]
    fn conventional_environment_names_override_the_file() {
        let config: Config = switchboard_server::load_config_from(None, |name| match name {
            "DATABASE_URL" => Some("postgres://db.internal:5432/sb".to_owned()),
            "SWITCHBOARD_HTTP_ADDR" => Some("127.0.0.1:18080".to_owned()),
            "RUST_LOG" => Some("debug".to_owned()),
            _ => None,
        })
        .expect("loads");
        use secrecy::ExposeSecret;
        assert_eq!(
            config.database.url.expose_secret(),
            "postgres://db.internal:5432/sb"
        );
        assert_eq!(config.server.http_addr.to_string(), "127.0.0.1:18080");
        assert_eq!(config.telemetry.log_filter, "debug");
    }
}
