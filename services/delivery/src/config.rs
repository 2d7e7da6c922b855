use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[delivery]` config section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Longest text an agent may send, in characters (the provider maximum still applies to
    /// every author).
    pub agent_text_limit: usize,
    /// Fetch the first bytes of every attachment URL before accepting a message (refusing
    /// executables and files over 20 MB by their content, not only their declared type).
    pub check_attachments: bool,
    /// Longest wait for a provider's answer; a timeout after the request went out leaves the
    /// outcome unknown until a receipt says.
    #[serde(with = "humantime_serde")]
    pub send_timeout: Duration,
    /// First retry delay; doubles per attempt, with jitter.
    #[serde(with = "humantime_serde")]
    pub retry_initial_backoff: Duration,
    /// Longest delay between two attempts.
    #[serde(with = "humantime_serde")]
    pub retry_max_backoff: Duration,
    /// A message not sent this long after it was accepted fails instead of retrying again.
    #[serde(with = "humantime_serde")]
    pub retry_max_age: Duration,
    /// Receipts for unknown provider ids wait this long for their message, then expire.
    #[serde(with = "humantime_serde")]
    pub parked_receipt_ttl: Duration,
    /// A queued message with no attempt this long after its last job is queued again (its job
    /// was dead-lettered or lost with a broker; a duplicate job is harmless: the attempt
    /// claim lets one through).
    #[serde(with = "humantime_serde")]
    pub requeue_after: Duration,
    /// How often due retries and expired receipts are looked for.
    #[serde(with = "humantime_serde")]
    pub scheduler_interval: Duration,
    /// Messages of one partition in flight at once (they queue on their account's lane, live
    /// replies first).
    pub sends_in_flight: usize,
    /// The share of each provider limit the lanes pace at (the limit itself holds at any
    /// value: a call counts against its second until a second after its answer).
    pub rate_headroom: f64,
    /// Per-second send limit of WhatsApp numbers (an account's `rate_limit_per_second`
    /// setting overrides every channel's default).
    pub whatsapp_per_second: u32,
    /// Messenger Send API limit per page.
    pub messenger_per_second: u32,
    /// Instagram Send API limit per account.
    pub instagram_per_second: u32,
    /// Telegram's limit across chats per bot.
    pub telegram_per_second: u32,
    /// Twilio's queue rate per sender (1 segment/s on a US long code).
    pub sms_per_second: u32,
    /// gRPC endpoint of contacts when it runs elsewhere (microservices); unset = `grpc_client.endpoint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts_endpoint: Option<String>,
    /// gRPC endpoint of routing when it runs elsewhere; unset = `grpc_client.endpoint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_endpoint: Option<String>,
    /// Base URL of the `ingress-webchat` component that web chat replies are sent through
    /// (e.g. `http://switchboard-ingress-webchat:8080`); unset = this process's HTTP listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webchat_endpoint: Option<String>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            agent_text_limit: 512,
            check_attachments: true,
            send_timeout: Duration::from_secs(15),
            retry_initial_backoff: Duration::from_secs(1),
            retry_max_backoff: Duration::from_secs(300),
            retry_max_age: Duration::from_secs(6 * 3600),
            parked_receipt_ttl: Duration::from_secs(600),
            requeue_after: Duration::from_secs(300),
            scheduler_interval: Duration::from_millis(250),
            sends_in_flight: 256,
            rate_headroom: 0.97,
            whatsapp_per_second: 80,
            messenger_per_second: 300,
            instagram_per_second: 300,
            telegram_per_second: 30,
            sms_per_second: 1,
            contacts_endpoint: None,
            routing_endpoint: None,
            webchat_endpoint: None,
        }
    }
}

impl DeliveryConfig {
    /// Checks the values a person can get wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.agent_text_limit == 0 {
            return Err("delivery.agent_text_limit must be positive".to_owned());
        }
        if self.send_timeout.is_zero() || self.scheduler_interval.is_zero() {
            return Err("delivery.send_timeout and delivery.scheduler_interval must be positive".to_owned());
        }
        if self.retry_initial_backoff.is_zero() || self.retry_max_backoff < self.retry_initial_backoff {
            return Err(
                "delivery.retry_initial_backoff must be positive and at most delivery.retry_max_backoff"
                    .to_owned(),
            );
        }
        if self.retry_max_age.is_zero() {
            return Err("delivery.retry_max_age must be positive".to_owned());
        }
        if !(0.1..=1.0).contains(&self.rate_headroom) {
            return Err("delivery.rate_headroom must be between 0.1 and 1.0".to_owned());
        }
        if self.sends_in_flight == 0 {
            return Err("delivery.sends_in_flight must be positive".to_owned());
        }
        let limits = [
            self.whatsapp_per_second,
            self.messenger_per_second,
            self.instagram_per_second,
            self.telegram_per_second,
            self.sms_per_second,
        ];
        for (name, endpoint) in [
            ("contacts_endpoint", &self.contacts_endpoint),
            ("routing_endpoint", &self.routing_endpoint),
            ("webchat_endpoint", &self.webchat_endpoint),
        ] {
            if let Some(endpoint) = endpoint
                && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            {
                return Err(format!(
                    "delivery.{name} {endpoint:?} must be an http(s) URL, e.g. http://switchboard-contacts:50051"
                ));
            }
        }
        if limits.contains(&0) {
            return Err("delivery.*_per_second limits must be positive".to_owned());
        }
        Ok(())
    }
}
