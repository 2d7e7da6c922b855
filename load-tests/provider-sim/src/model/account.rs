//! Account configuration: credential, limits, faults, latency and status webhooks.

use serde::{Deserialize, Deserializer, Serialize};

use super::Provider;

/// The configuration of one simulated account (`PUT /_sim/accounts/{provider}/{external_id}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The credential sends must carry: Meta access token (Bearer), whole Telegram bot token
    /// (`<bot id>:<secret>`, in the path), Twilio auth token (Basic `AccountSid:AuthToken`).
    pub credential: String,
    /// Rate limits; a field left out takes the provider's default, `0` switches it off.
    #[serde(default)]
    pub limits: Limits,
    /// Faults consumed by the next sends, in order.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Milliseconds added to every answer of this account.
    #[serde(default)]
    pub latency_ms: u64,
    /// Where status webhooks go (Meta); for Twilio only when a send has no `StatusCallback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Signing key of the webhooks: Meta app secret; for Twilio, overrides the auth token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// Statuses posted after each accepted send, in order (those the provider has no webhook
    /// for are skipped: Messenger has delivered/read, Instagram read, Telegram none).
    #[serde(default)]
    pub receipts: Vec<ReceiptStatus>,
    /// Milliseconds before each receipt posted after the answer.
    #[serde(default)]
    pub receipt_delay_ms: u64,
    /// Posts the receipts in a random order.
    #[serde(default)]
    pub shuffle_receipts: bool,
    /// Posts the first receipt (and waits for it) before answering the send request.
    #[serde(default)]
    pub receipts_before_response: bool,
    /// WhatsApp: the WABA id in webhooks' `entry[].id` (default: the phone number id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_account_id: Option<String>,
    /// WhatsApp: `metadata.display_phone_number` in webhooks (default `15550000000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_phone_number: Option<String>,
    /// An origin (`http://127.0.0.1:8080`) webhooks are posted to instead of their URL's own,
    /// as a reverse proxy in front of Switchboard would: path and query stay, and signatures
    /// are still over the URL as given (Twilio signs the public StatusCallback URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_via: Option<String>,
}

impl AccountConfig {
    /// A config with `credential` and everything else at its default.
    pub fn new(credential: impl Into<String>) -> Self {
        Self {
            credential: credential.into(),
            ..Self::default()
        }
    }
}

/// One account of an `--accounts` file: where it lives plus its config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountSeed {
    /// The provider.
    pub provider: Provider,
    /// Phone number id, page id, IG id, bot id or AccountSid.
    pub external_id: String,
    /// The config, as in the `PUT` body.
    #[serde(flatten)]
    pub config: AccountConfig,
}

impl<'de> Deserialize<'de> for AccountSeed {
    // By hand: serde's `flatten` would let misspelt config fields through silently.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut fields = serde_json::Map::deserialize(deserializer)?;
        let mut take = |name: &'static str| fields.remove(name).ok_or_else(|| D::Error::missing_field(name));
        let provider: Provider = serde_json::from_value(take("provider")?).map_err(D::Error::custom)?;
        let external_id: String = serde_json::from_value(take("external_id")?).map_err(D::Error::custom)?;
        let config: AccountConfig =
            serde_json::from_value(serde_json::Value::Object(fields)).map_err(D::Error::custom)?;
        Ok(Self {
            provider,
            external_id,
            config,
        })
    }
}

/// Rate limits as configured: `None` = the provider's default, `Some(0)` = off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Accepted sends in any 1-second sliding window (WhatsApp 80, Messenger/Instagram 300,
    /// Telegram 30, Twilio 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<u32>,
    /// Accepted sends to one recipient in any second (Telegram 1 per chat; others off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_recipient_per_second: Option<u32>,
    /// Accepted sends to one recipient in any minute (e.g. WhatsApp pair rate 10; off by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_recipient_per_minute: Option<u32>,
    /// Telegram: accepted sends to one group (negative chat id) in any minute (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_group_per_minute: Option<u32>,
}

impl Limits {
    /// The limits in force on `provider`: defaults filled in, zeros turned into "no limit".
    pub fn resolve(&self, provider: Provider) -> EffectiveLimits {
        let (per_second, per_recipient_per_second, per_group_per_minute) = match provider {
            Provider::Whatsapp => (80, None, None),
            Provider::Messenger | Provider::Instagram => (300, None, None),
            Provider::Telegram => (30, Some(1), Some(20)),
            Provider::Twilio => (1, None, None),
        };
        let on = |value: Option<u32>| value.filter(|limit| *limit > 0);
        EffectiveLimits {
            per_second: on(self.per_second.or(Some(per_second))),
            per_recipient_per_second: on(self.per_recipient_per_second.or(per_recipient_per_second)),
            per_recipient_per_minute: on(self.per_recipient_per_minute),
            per_group_per_minute: on(self.per_group_per_minute.or(per_group_per_minute)),
        }
    }
}

/// The limits enforced on an account (`None` = no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveLimits {
    /// Accepted sends in any 1-second sliding window.
    pub per_second: Option<u32>,
    /// Accepted sends to one recipient in any second.
    pub per_recipient_per_second: Option<u32>,
    /// Accepted sends to one recipient in any minute.
    pub per_recipient_per_minute: Option<u32>,
    /// Accepted sends to one Telegram group in any minute.
    pub per_group_per_minute: Option<u32>,
}

/// A status the simulator can post as a webhook after a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptStatus {
    /// Twilio `sending`.
    Sending,
    /// WhatsApp / Twilio `sent`.
    Sent,
    /// WhatsApp / Twilio `delivered`, Messenger `delivery` watermark.
    Delivered,
    /// WhatsApp / Twilio `read`, Messenger `read` watermark, Instagram `read.mid`.
    Read,
    /// WhatsApp `played` (voice messages).
    Played,
    /// WhatsApp `failed` (error 131026), Twilio `failed` (ErrorCode 30003).
    Failed,
    /// Twilio `undelivered` (ErrorCode 30003).
    Undelivered,
}

impl ReceiptStatus {
    /// The provider's word for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Sending => "sending",
            ReceiptStatus::Sent => "sent",
            ReceiptStatus::Delivered => "delivered",
            ReceiptStatus::Read => "read",
            ReceiptStatus::Played => "played",
            ReceiptStatus::Failed => "failed",
            ReceiptStatus::Undelivered => "undelivered",
        }
    }
}

/// A fault queued on an account: `kind` applied to the next `count` sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// What happens to the send.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many sends it applies to (default 1).
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// `kind` applied to the next `count` sends.
    pub fn new(kind: FaultKind, count: u32) -> Self {
        Self { kind, count }
    }
}

/// What a fault does to a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// A provider-shaped server error with this HTTP status (500, 502, 503…); nothing is sent.
    Status {
        /// HTTP status of the answer.
        status: u16,
    },
    /// The provider's rate-limit answer with a `Retry-After` header (and Telegram's
    /// `parameters.retry_after`); nothing is sent.
    RateLimited {
        /// Seconds the client is told to wait.
        #[serde(default = "one_second")]
        retry_after_secs: u64,
    },
    /// The send is accepted and recorded (receipts follow) but never answered: the connection
    /// is held until the client gives up, then closed after `hold_ms` (default 30 s).
    DropResponse {
        /// How long the unanswered connection is held open.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hold_ms: Option<u64>,
    },
    /// A provider error in the provider's shape (e.g. WhatsApp `131047`, Twilio `21610`,
    /// Telegram `403`); nothing is sent.
    Error {
        /// The provider's error code (a JSON string or number).
        #[serde(deserialize_with = "code_string")]
        code: String,
        /// HTTP status of the answer (default 400; on Telegram the code itself when it is
        /// an HTTP status, e.g. 403).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// Graph `error_subcode`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subcode: Option<u64>,
        /// The provider's message; a known code gets the provider's text when left out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

fn one_second() -> u64 {
    1
}

/// Accepts `"131047"` and `131047`.
fn code_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Code {
        Text(String),
        Number(i64),
    }
    Ok(match Code::deserialize(deserializer)? {
        Code::Text(text) => text,
        Code::Number(number) => number.to_string(),
    })
}

/// The answer of `PUT /_sim/accounts/{provider}/{external_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfiguredAccount {
    /// The provider.
    pub provider: Provider,
    /// The account's external id.
    pub external_id: String,
    /// The limits now in force.
    pub limits: EffectiveLimits,
    /// Faults queued.
    pub faults_queued: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_the_documented_shapes() {
        let faults: Vec<Fault> = serde_json::from_str(
            r#"[{"kind":"status","status":500,"count":2},
                {"kind":"rate_limited","retry_after_secs":1,"count":1},
                {"kind":"drop_response","count":1},
                {"kind":"error","code":"131047","status":400,"count":1},
                {"kind":"error","code":21610}]"#,
        )
        .unwrap();
        assert_eq!(faults[0], Fault::new(FaultKind::Status { status: 500 }, 2));
        assert_eq!(
            faults[2],
            Fault::new(FaultKind::DropResponse { hold_ms: None }, 1)
        );
        assert!(matches!(
            &faults[3].kind,
            FaultKind::Error {
                status: Some(400),
                ..
            }
        ));
        assert!(matches!(&faults[4].kind, FaultKind::Error { code, status: None, .. } if code == "21610"));
        assert_eq!(faults[4].count, 1);
    }

    #[test]
    fn limits_take_provider_defaults_and_zero_switches_off() {
        let telegram = Limits::default().resolve(Provider::Telegram);
        assert_eq!(telegram.per_second, Some(30));
        assert_eq!(telegram.per_recipient_per_second, Some(1));
        assert_eq!(telegram.per_group_per_minute, Some(20));
        let whatsapp = Limits {
            per_second: Some(0),
            per_recipient_per_minute: Some(10),
            ..Limits::default()
        }
        .resolve(Provider::Whatsapp);
        assert_eq!(whatsapp.per_second, None);
        assert_eq!(whatsapp.per_recipient_per_minute, Some(10));
        assert_eq!(whatsapp.per_recipient_per_second, None);
    }
}
