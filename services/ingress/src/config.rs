use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[ingress]` config section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngressConfig {
    /// The scheme and host providers use to reach Switchboard (e.g. `https://hooks.example.com`),
    /// as seen in front of every proxy. Twilio signs the full public URL; when unset it is
    /// rebuilt from `X-Forwarded-Proto` and `Host`.
    pub public_base_url: Option<String>,
    /// Largest JSON or form webhook body; larger ones get 413 before they are read.
    pub max_body_bytes: usize,
    /// Largest e-mail webhook body (raw MIME with attachments).
    pub max_email_body_bytes: usize,
    /// Longest time a sender may take to deliver the body (slow senders get 408).
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// How long a resolved channel account (with its secrets) is reused before asking tenancy
    /// again. A signature that fails against a cached secret older than one second is checked
    /// once more against a fresh copy, so rotated secrets work at once.
    #[serde(with = "humantime_serde")]
    pub account_cache_ttl: Duration,
    /// How long a publish may wait for the broker's confirm before the event is spooled.
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// How often the relay looks for spooled events.
    #[serde(with = "humantime_serde")]
    pub relay_interval: Duration,
    /// Most spooled events relayed in one transaction.
    pub relay_batch: u32,
    /// The host name the SMTP listener announces in its greeting.
    pub smtp_hostname: String,
    /// Most SMTP sessions at once (each may hold a message of `max_email_body_bytes`); more get 421.
    pub smtp_max_sessions: usize,
    /// Oldest Mailgun webhook timestamp accepted (older ones are replays).
    #[serde(with = "humantime_serde")]
    pub mailgun_max_age: Duration,
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            public_base_url: None,
            max_body_bytes: 1024 * 1024,
            max_email_body_bytes: 25 * 1024 * 1024,
            body_read_timeout: Duration::from_secs(10),
            account_cache_ttl: Duration::from_secs(30),
            publish_timeout: Duration::from_secs(2),
            relay_interval: Duration::from_millis(500),
            relay_batch: 500,
            smtp_hostname: "switchboard.local".to_owned(),
            smtp_max_sessions: 64,
            mailgun_max_age: Duration::from_secs(300),
        }
    }
}

impl IngressConfig {
    /// Checks the values a person can get wrong.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(base) = &self.public_base_url {
            let ok = (base.starts_with("https://") || base.starts_with("http://"))
                && !base.ends_with('/')
                && http::Uri::try_from(base.as_str()).is_ok();
            if !ok {
                return Err(format!(
                    "ingress.public_base_url {base:?} must be an http(s) URL without a trailing slash, e.g. https://hooks.example.com"
                ));
            }
        }
        if self.max_body_bytes == 0 || self.max_email_body_bytes == 0 {
            return Err(
                "ingress.max_body_bytes and ingress.max_email_body_bytes must be greater than zero"
                    .to_owned(),
            );
        }
        if self.body_read_timeout.is_zero() || self.publish_timeout.is_zero() || self.relay_interval.is_zero()
        {
            return Err(
                "ingress.body_read_timeout, ingress.publish_timeout and ingress.relay_interval must be greater than zero"
                    .to_owned(),
            );
        }
        if self.relay_batch == 0 {
            return Err("ingress.relay_batch must be at least 1".to_owned());
        }
        if self.smtp_max_sessions == 0 {
            return Err("ingress.smtp_max_sessions must be at least 1".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_base_url_must_be_a_bare_origin() {
        let mut config = IngressConfig::default();
        assert!(config.validate().is_ok());
        config.public_base_url = Some("https://hooks.example.com".to_owned());
        assert!(config.validate().is_ok());
        config.public_base_url = Some("hooks.example.com/".to_owned());
        let error = config.validate().unwrap_err();
        assert!(error.contains("ingress.public_base_url"), "{error}");
    }
}
