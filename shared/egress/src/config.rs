//! The `[egress]` config section and the policy it becomes.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};

use crate::address::{Reserved, reserved};

/// The `[egress]` section: how Switchboard fetches URLs that callers give it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Networks (CIDR, or a single address) that caller-given URLs may reach although they
    /// are private, loopback or link-local, e.g. `["10.20.0.0/16"]` for an in-cluster media
    /// store. A list, or one comma-separated string in the environment
    /// (`SWITCHBOARD__EGRESS__ALLOW_NETWORKS=10.20.0.0/16,fd00::/8`). Empty: public only.
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub allow_networks: Vec<String>,
    /// Most redirects followed per fetch (each is checked like the first URL).
    pub max_redirects: usize,
    /// Longest wait to connect to the host.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            allow_networks: Vec::new(),
            max_redirects: 3,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl EgressConfig {
    /// Checks the values a person can get wrong; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.policy().map(|_| ())?;
        if self.max_redirects > 10 {
            return Err("egress.max_redirects must be at most 10".to_owned());
        }
        if self.connect_timeout.is_zero() {
            return Err("egress.connect_timeout must be positive".to_owned());
        }
        Ok(())
    }

    /// The policy these settings describe.
    pub fn policy(&self) -> Result<EgressPolicy, String> {
        let allowed = self
            .allow_networks
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "egress.allow_networks: {entry:?} is not a network (use CIDR such as 10.0.0.0/8, or one address)"
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EgressPolicy { allowed })
    }
}

/// Which addresses a caller-given URL may reach: public ones, and the allow-listed networks.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allowed: Vec<IpNet>,
}

impl EgressPolicy {
    /// Why `address` may not be reached, or `None` when it may.
    pub fn refusal(&self, address: IpAddr) -> Option<Reserved> {
        let reason = reserved(address)?;
        let mapped = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let allowed = self
            .allowed
            .iter()
            .any(|network| network.contains(&address) || mapped.is_some_and(|v4| network.contains(&v4)));
        (!allowed).then_some(reason)
    }
}

/// A list, or a string of comma-separated entries (how a list arrives from the environment).
fn list_or_comma_separated<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entries {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Entries::deserialize(deserializer)? {
        Entries::List(list) => list,
        Entries::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_listed_networks_pass_and_the_rest_of_the_rule_holds() {
        let config = EgressConfig {
            allow_networks: vec!["127.0.0.1".to_owned(), "10.20.0.0/16".to_owned()],
            ..EgressConfig::default()
        };
        let policy = config.policy().expect("valid");
        let refusal = |address: &str| policy.refusal(address.parse().expect("address"));
        assert_eq!(refusal("127.0.0.1"), None);
        assert_eq!(refusal("::ffff:127.0.0.1"), None);
        assert_eq!(refusal("10.20.3.4"), None);
        assert_eq!(refusal("8.8.8.8"), None);
        assert_eq!(refusal("127.0.0.2"), Some(Reserved::Loopback));
        assert_eq!(refusal("10.21.0.1"), Some(Reserved::Private));
        assert_eq!(refusal("169.254.169.254"), Some(Reserved::LinkLocal));
    }

    #[test]
    fn bad_entries_are_named() {
        let config = EgressConfig {
            allow_networks: vec!["10.0.0.0/33".to_owned()],
            ..EgressConfig::default()
        };
        let error = config.validate().expect_err("invalid");
        assert!(
            error.contains("egress.allow_networks") && error.contains("10.0.0.0/33"),
            "{error}"
        );
    }

    #[test]
    fn a_comma_separated_string_is_a_list() {
        #[derive(Deserialize)]
        struct Wrapper {
            #[serde(deserialize_with = "list_or_comma_separated")]
            networks: Vec<String>,
        }
        let parsed: Wrapper =
            serde_json::from_str(r#"{"networks": "127.0.0.1/32, fd00::/8,"}"#).expect("parses");
        assert_eq!(parsed.networks, ["127.0.0.1/32", "fd00::/8"]);
        let parsed: Wrapper = serde_json::from_str(r#"{"networks": ["10.0.0.0/8"]}"#).expect("parses");
        assert_eq!(parsed.networks, ["10.0.0.0/8"]);
    }
}
