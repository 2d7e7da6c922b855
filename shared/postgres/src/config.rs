use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The `[database]` config section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Connection URL (env `DATABASE_URL`); the database is created when missing.
    #[serde(serialize_with = "expose")]
    pub url: SecretString,
    /// Most connections this process opens.
    pub max_connections: usize,
    /// How long to wait for a connection (new or from the pool) before failing.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Create the database named in `url` when it does not exist.
    pub create_if_missing: bool,
    /// Run migrations at start. Unset: yes in `all` mode, no otherwise (run `switchboard migrate`).
    pub migrate_on_start: Option<bool>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("postgres://postgres@127.0.0.1:5432/switchboard"),
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            create_if_missing: true,
            migrate_on_start: None,
        }
    }
}

impl DatabaseConfig {
    /// Checks the values a person can get wrong; the message says which key and why.
    pub fn validate(&self) -> Result<(), String> {
        use secrecy::ExposeSecret;
        let url = self.url.expose_secret();
        let parsed: tokio_postgres::Config = url
            .parse()
            .map_err(|error| format!("database.url (DATABASE_URL) is not a valid PostgreSQL URL: {error}"))?;
        if parsed.get_dbname().is_none() {
            return Err("database.url (DATABASE_URL) must name a database, e.g. postgres://postgres@127.0.0.1:5432/switchboard".to_owned());
        }
        if self.max_connections == 0 {
            return Err("database.max_connections must be at least 1".to_owned());
        }
        if self.connect_timeout.is_zero() {
            return Err("database.connect_timeout must be greater than zero".to_owned());
        }
        Ok(())
    }
}

/// Serializes the secret's value (config loading round-trips through serde; `print-config` redacts).
fn expose<S: serde::Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    serializer.serialize_str(secret.expose_secret())
}
