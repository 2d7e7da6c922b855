use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::partition::Partitions;

/// The `[bus]` config section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// AMQP URL (env `AMQP_URL`), e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    #[serde(serialize_with = "expose")]
    pub url: SecretString,
    /// Prefix for every exchange and queue name; isolates tests or several installs on one vhost.
    pub namespace: String,
    /// Connection name shown in the RabbitMQ management UI.
    pub connection_name: String,
    /// How long a publish may wait for the broker's confirm (including a reconnect) before failing.
    #[serde(with = "humantime_serde")]
    pub confirm_timeout: Duration,
    /// How long one connection attempt may take.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Reconnection attempts lapin makes by itself after a connection failure (replaying
    /// channels, consumers and confirms) before the supervisor builds a new connection and
    /// retries without limit. 0 (the default) leaves every reconnection to the supervisor:
    /// lapin 4.12.3's recovery can deadlock when it finishes (it drops pending replies while
    /// holding the channel's status lock, and their closers take that lock again), which
    /// wedges the connection and the process's shutdown.
    pub recovery_attempts: u32,
    /// Longest time a connection may stay down while lapin recovers it; past it the supervisor
    /// abandons that connection and builds a new one (recovery can stall).
    #[serde(with = "humantime_serde")]
    pub recovery_timeout: Duration,
    /// Longest pause between two reconnection attempts (it grows exponentially up to this).
    #[serde(with = "humantime_serde")]
    pub reconnect_max_backoff: Duration,
    /// Number of partitions of every partitioned event family that `family_partitions` does not
    /// name. Publishers and consumers of one installation must agree; changing it re-maps keys
    /// to partitions (see docs/architecture.md for the procedure).
    pub partitions: u16,
    /// Partition counts of single event families (`inbound`, `contact`, `outbound`, `send`,
    /// `assignment`, `bot`, `autoreply`), overriding `partitions` for them, e.g.
    /// `[bus.family_partitions] inbound = 32` or `SWITCHBOARD__BUS__FAMILY_PARTITIONS__INBOUND=32`.
    pub family_partitions: BTreeMap<String, u16>,
    /// How often each replica of a partitioned component renews its membership lease (the
    /// live replicas split the partitions between them; see docs/architecture.md).
    #[serde(with = "humantime_serde")]
    pub partition_heartbeat: Duration,
    /// How long a lease lasts: a replica killed without a goodbye loses its partitions to the
    /// others at most this plus one heartbeat later.
    #[serde(with = "humantime_serde")]
    pub partition_lease: Duration,
    /// Unacknowledged messages the broker may push to one consumer (`basic.qos` prefetch).
    pub prefetch: u16,
    /// Most deliveries of one partition a batching consumer (identity resolution) handles in
    /// one transaction; its prefetch is raised to this. 1 turns batching off.
    pub batch_size: u16,
    /// Handler attempts per delivery before a message goes to its dead-letter queue.
    pub max_attempts: u32,
    /// First retry pause after a failed handler attempt (doubles each time, with jitter).
    #[serde(with = "humantime_serde")]
    pub retry_initial_backoff: Duration,
    /// Longest retry pause between handler attempts.
    #[serde(with = "humantime_serde")]
    pub retry_max_backoff: Duration,
    /// Broker-side `x-delivery-limit` of every queue: the backstop for messages that crash the
    /// consumer before it can answer (they are dead-lettered after this many deliveries).
    pub broker_delivery_limit: u32,
    /// `x-max-length` of every queue; past it publishes are refused (`x-overflow: reject-publish`),
    /// so a publisher sees the back-pressure instead of the broker dropping messages.
    pub max_queue_length: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f"),
            namespace: String::new(),
            connection_name: "switchboard".to_owned(),
            confirm_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            recovery_attempts: 0,
            recovery_timeout: Duration::from_secs(30),
            reconnect_max_backoff: Duration::from_secs(10),
            partitions: 8,
            family_partitions: BTreeMap::new(),
            partition_heartbeat: Duration::from_secs(2),
            partition_lease: Duration::from_secs(6),
            prefetch: 16,
            batch_size: 64,
            max_attempts: 5,
            retry_initial_backoff: Duration::from_millis(200),
            retry_max_backoff: Duration::from_secs(10),
            broker_delivery_limit: 20,
            max_queue_length: 5_000_000,
        }
    }
}

impl BusConfig {
    /// The partition count of every event family, as publishers and consumers use it.
    pub fn partition_counts(&self) -> Partitions {
        Partitions::new(self.partitions, self.family_partitions.clone())
    }

    /// Checks the values a person can get wrong; the message says which key and why.
    pub fn validate(&self) -> Result<(), String> {
        use secrecy::ExposeSecret;
        let url = self.url.expose_secret();
        url.parse::<lapin::uri::AMQPUri>()
            .map_err(|error| format!("bus.url (AMQP_URL) is not a valid AMQP URL: {error}"))?;
        if self.partitions == 0 || self.partitions > 256 {
            return Err(format!(
                "bus.partitions must be between 1 and 256, got {}",
                self.partitions
            ));
        }
        for (family, count) in &self.family_partitions {
            if family.is_empty()
                || !family
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
            {
                return Err(format!(
                    "bus.family_partitions names {family:?}, which is not an event family (a name like inbound or send)"
                ));
            }
            if *count == 0 || *count > 256 {
                return Err(format!(
                    "bus.family_partitions.{family} must be between 1 and 256, got {count}"
                ));
            }
        }
        if self.partition_heartbeat.is_zero() || self.partition_lease < self.partition_heartbeat * 2 {
            return Err(format!(
                "bus.partition_lease ({:?}) must be at least twice bus.partition_heartbeat ({:?}), which must be above zero",
                self.partition_lease, self.partition_heartbeat
            ));
        }
        if self.batch_size == 0 || self.batch_size > 1_000 {
            return Err(format!(
                "bus.batch_size must be between 1 and 1000, got {}",
                self.batch_size
            ));
        }
        if self.prefetch == 0 {
            return Err("bus.prefetch must be at least 1".to_owned());
        }
        if self.max_attempts == 0 {
            return Err("bus.max_attempts must be at least 1".to_owned());
        }
        if self.broker_delivery_limit < self.max_attempts {
            return Err(format!(
                "bus.broker_delivery_limit ({}) must be at least bus.max_attempts ({})",
                self.broker_delivery_limit, self.max_attempts
            ));
        }
        if self.recovery_timeout < self.connect_timeout {
            return Err(format!(
                "bus.recovery_timeout ({:?}) must be at least bus.connect_timeout ({:?})",
                self.recovery_timeout, self.connect_timeout
            ));
        }
        if self.confirm_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err("bus.confirm_timeout and bus.connect_timeout must be greater than zero".to_owned());
        }
        let name_ok = self
            .namespace
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
        if !name_ok || self.namespace.len() > 64 {
            return Err(format!(
                "bus.namespace {:?} may hold at most 64 of [A-Za-z0-9._-]",
                self.namespace
            ));
        }
        Ok(())
    }
}

/// Serializes the secret's value (config loading round-trips through serde; `print-config` redacts).
fn expose<S: serde::Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    serializer.serialize_str(secret.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_family(family: &str, count: u16) -> BusConfig {
        BusConfig {
            family_partitions: BTreeMap::from([(family.to_owned(), count)]),
            ..BusConfig::default()
        }
    }

    #[test]
    fn family_partition_counts_are_validated_and_override_the_default() {
        let config = with_family("inbound", 32);
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.partition_counts().of_family("inbound"), 32);
        assert_eq!(config.partition_counts().of_family("contact"), 8);

        let error = with_family("inbound", 0).validate().unwrap_err();
        assert!(error.contains("bus.family_partitions.inbound"), "{error}");
        let error = with_family("inbound.whatsapp", 4).validate().unwrap_err();
        assert!(error.contains("not an event family"), "{error}");
    }
}
