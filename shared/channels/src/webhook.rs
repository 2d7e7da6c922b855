//! One adapter per webhook wire format. An adapter holds everything a provider's webhook needs
//! from Switchboard: which secrets the account must have, how the signature is checked, how the
//! payload normalizes, what the provider expects as a 2xx answer, the subscription handshake
//! (Meta's `hub.challenge`), and the key under which a replay is recognised. Ingress picks the
//! adapter once per request with [`adapter_for`] and then only calls into it.

use std::time::{Duration, SystemTime};

use switchboard_domain::Channel;

use crate::{NormalizeContext, NormalizeError, Normalized, Verified, VerifyError};

/// What an adapter may read of the channel account a webhook was sent to.
pub trait WebhookAccount {
    /// A secret of the account by name (`app_secret`, `auth_token`, …), when it has one.
    fn secret(&self, name: &str) -> Option<&[u8]>;
    /// A non-secret setting of the account by name (`inbound_provider`, …).
    fn setting(&self, name: &str) -> Option<&str>;
}

/// One webhook request as an adapter sees it.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// The request's headers.
    pub headers: &'a http::HeaderMap,
    /// The URL the provider requested, as seen in front of the proxies (Twilio signs it).
    pub url: &'a str,
    /// The raw body, exactly as received.
    pub body: &'a [u8],
    /// When the request arrived.
    pub now: SystemTime,
    /// How old a signed timestamp may be (Mailgun signs one).
    pub signature_max_age: Duration,
}

impl WebhookRequest<'_> {
    /// The request's `Content-Type` ("" when absent or not text).
    pub fn content_type(&self) -> &str {
        content_type(self.headers)
    }
}

/// The 2xx answer a provider expects when its webhook is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuccessAnswer {
    /// The answer's `Content-Type`, when it has a body.
    pub content_type: Option<&'static str>,
    /// The answer's body.
    pub body: &'static str,
}

impl SuccessAnswer {
    /// `200 OK` with an empty body: what most providers expect.
    pub const EMPTY: Self = Self {
        content_type: None,
        body: "",
    };
}

/// The outcome of a subscription handshake (`GET` on the webhook URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// This wire format has no handshake: its webhooks are POST only.
    Unsupported,
    /// The handshake is refused (wrong mode or verify token).
    Refused,
    /// The handshake is accepted: answer this text.
    Answer(String),
}

/// Checks a request's signature with the account's secrets.
type Verify = for<'a> fn(&dyn WebhookAccount, &WebhookRequest<'a>) -> Result<Verified<'a>, VerifyError>;

/// Normalizes a verified body into inbound events.
type Normalize =
    fn(&WebhookRequest<'_>, Verified<'_>, &NormalizeContext) -> Result<Normalized, NormalizeError>;

/// Everything Switchboard knows about one webhook wire format, as one row of [`ADAPTERS`].
pub struct WebhookAdapter {
    name: &'static str,
    secret_names: &'static [&'static str],
    body_is_json: bool,
    verify: Verify,
    normalize: Normalize,
    success: SuccessAnswer,
    /// Meta's `hub.challenge`; `None`: POST only.
    handshake: Option<fn(&str, &dyn WebhookAccount) -> Handshake>,
    /// Mailgun signs a delivery token unique per delivery; `false`: event ids suffice.
    replay_by_first_event_id: bool,
}

impl WebhookAdapter {
    /// The name of the wire format (`whatsapp`, `mailgun`, …), for logs.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The secrets an account needs for webhooks of this format.
    pub fn secret_names(&self) -> &'static [&'static str] {
        self.secret_names
    }

    /// True for JSON bodies (bounded in nesting before any parser sees them).
    pub fn body_is_json(&self) -> bool {
        self.body_is_json
    }

    /// Checks the provider's signature with the account's secrets.
    pub fn verify<'a>(
        &self,
        account: &dyn WebhookAccount,
        request: &WebhookRequest<'a>,
    ) -> Result<Verified<'a>, VerifyError> {
        (self.verify)(account, request)
    }

    /// Normalizes a verified body into inbound events.
    pub fn normalize(
        &self,
        request: &WebhookRequest<'_>,
        verified: Verified<'_>,
        context: &NormalizeContext,
    ) -> Result<Normalized, NormalizeError> {
        (self.normalize)(request, verified, context)
    }

    /// The 2xx answer the provider expects.
    pub fn success_answer(&self) -> SuccessAnswer {
        self.success
    }

    /// Answers a subscription handshake with the query string of the `GET`.
    pub fn handshake(&self, query: &str, account: &dyn WebhookAccount) -> Handshake {
        self.handshake
            .map_or(Handshake::Unsupported, |handshake| handshake(query, account))
    }

    /// The key under which a repeat of this webhook is recognised as a replay, when the
    /// provider signs one (Mailgun's delivery token); `None` when events' ids suffice.
    pub fn replay_key<'n>(&self, normalized: &'n Normalized) -> Option<&'n str> {
        if !self.replay_by_first_event_id {
            return None;
        }
        normalized
            .events
            .first()
            .map(|event| event.provider_event_id.as_str())
            .filter(|token| !token.is_empty())
    }
}

/// Meta's three products share the signature and the handshake.
const META_SECRETS: &[&str] = &["app_secret", "verify_token"];

/// Every wire format, in the order of [`WireFormat`].
static ADAPTERS: [WebhookAdapter; 8] = [
    WebhookAdapter {
        name: "whatsapp",
        secret_names: META_SECRETS,
        body_is_json: true,
        verify: verify_meta,
        normalize: |_, verified, context| crate::whatsapp::normalize(verified, context),
        success: SuccessAnswer::EMPTY,
        handshake: Some(meta_handshake),
        replay_by_first_event_id: false,
    },
    WebhookAdapter {
        name: "messenger",
        secret_names: META_SECRETS,
        body_is_json: true,
        verify: verify_meta,
        normalize: |_, verified, context| crate::messenger::normalize(verified, context),
        success: SuccessAnswer::EMPTY,
        handshake: Some(meta_handshake),
        replay_by_first_event_id: false,
    },
    WebhookAdapter {
        name: "instagram",
        secret_names: META_SECRETS,
        body_is_json: true,
        verify: verify_meta,
        normalize: |_, verified, context| crate::instagram::normalize(verified, context),
        success: SuccessAnswer::EMPTY,
        handshake: Some(meta_handshake),
        replay_by_first_event_id: false,
    },
    WebhookAdapter {
        name: "telegram",
        secret_names: &["webhook_secret"],
        body_is_json: true,
        verify: |account, request| {
            let secret = required_secret(account, "webhook_secret")?;
            crate::telegram::verify_secret_token(request.headers, request.body, secret)
        },
        normalize: |_, verified, context| crate::telegram::normalize(verified, context),
        success: SuccessAnswer::EMPTY,
        handshake: None,
        replay_by_first_event_id: false,
    },
    WebhookAdapter {
        name: "twilio",
        secret_names: &["auth_token"],
        body_is_json: false,
        verify: |account, request| {
            let secret = required_secret(account, "auth_token")?;
            crate::twilio::verify_signature(request.headers, request.url, request.body, secret)
        },
        normalize: |_, verified, context| crate::twilio::normalize(verified, context),
        // Empty TwiML: Twilio sends no automatic reply.
        success: SuccessAnswer {
            content_type: Some("text/xml"),
            body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
        },
        handshake: None,
        replay_by_first_event_id: false,
    },
    WebhookAdapter {
        name: "mailgun",
        secret_names: &["signing_key"],
        body_is_json: false,
        verify: |account, request| {
            let secret = required_secret(account, "signing_key")?;
            crate::email::verify_mailgun_signature(
                request.body,
                request.content_type(),
                secret,
                request.now,
                request.signature_max_age,
            )
        },
        normalize: |request, verified, context| {
            crate::email::normalize_mailgun(verified, request.content_type(), context)
        },
        success: SuccessAnswer::EMPTY,
        handshake: None,
        replay_by_first_event_id: true,
    },
    WebhookAdapter {
        name: "postmark",
        secret_names: &["webhook_password"],
        body_is_json: true,
        verify: verify_basic_auth,
        normalize: |_, verified, context| crate::email::normalize_postmark(verified, context),
        success: SuccessAnswer::EMPTY,
        handshake: None,
        replay_by_first_event_id: false,
    },
    WebhookAdapter {
        name: "sendgrid",
        secret_names: &["webhook_password"],
        body_is_json: false,
        verify: verify_basic_auth,
        normalize: |request, verified, context| {
            crate::email::normalize_sendgrid(verified, request.content_type(), context)
        },
        success: SuccessAnswer::EMPTY,
        handshake: None,
        replay_by_first_event_id: false,
    },
];

/// The wire formats, each an index into [`ADAPTERS`].
#[derive(Debug, Clone, Copy)]
enum WireFormat {
    Whatsapp,
    Messenger,
    Instagram,
    Telegram,
    Twilio,
    Mailgun,
    Postmark,
    Sendgrid,
}

fn verify_meta<'a>(
    account: &dyn WebhookAccount,
    request: &WebhookRequest<'a>,
) -> Result<Verified<'a>, VerifyError> {
    let secret = required_secret(account, "app_secret")?;
    crate::meta::verify_signature(request.headers, request.body, secret)
}

/// Postmark and SendGrid protect their posts with Basic auth credentials.
fn verify_basic_auth<'a>(
    account: &dyn WebhookAccount,
    request: &WebhookRequest<'a>,
) -> Result<Verified<'a>, VerifyError> {
    let user = account.setting("webhook_username").unwrap_or("");
    let password = required_secret(account, "webhook_password")?;
    crate::email::verify_postmark_basic_auth(request.headers, request.body, user, password)
}

fn meta_handshake(query: &str, account: &dyn WebhookAccount) -> Handshake {
    let token = account.secret("verify_token").unwrap_or_default();
    crate::meta::verification_challenge(query, token).map_or(Handshake::Refused, Handshake::Answer)
}

/// The adapter for a webhook to `account` on `channel` (`None` for web chat, which has none).
///
/// E-mail has three inbound-parse services: the account's `inbound_provider` setting
/// (`mailgun`, `postmark`, `sendgrid`) decides; else Mailgun when the account has a Mailgun
/// `signing_key`, Postmark for JSON posts, SendGrid otherwise.
pub fn adapter_for(
    channel: Channel,
    account: &dyn WebhookAccount,
    headers: &http::HeaderMap,
) -> Option<&'static WebhookAdapter> {
    let format = match channel {
        Channel::Whatsapp => WireFormat::Whatsapp,
        Channel::Messenger => WireFormat::Messenger,
        Channel::Instagram => WireFormat::Instagram,
        Channel::Telegram => WireFormat::Telegram,
        Channel::Sms => WireFormat::Twilio,
        Channel::Email => match account.setting("inbound_provider") {
            Some("postmark") => WireFormat::Postmark,
            Some("mailgun") => WireFormat::Mailgun,
            Some("sendgrid") => WireFormat::Sendgrid,
            _ if account.secret("signing_key").is_some() => WireFormat::Mailgun,
            _ if content_type(headers).starts_with("application/json") => WireFormat::Postmark,
            _ => WireFormat::Sendgrid,
        },
        Channel::Webchat => return None,
    };
    Some(&ADAPTERS[format as usize])
}

/// A request's `Content-Type` ("" when absent or not text).
pub fn content_type(headers: &http::HeaderMap) -> &str {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

/// The account's secret `name`; a missing secret verifies nothing (a mismatch).
pub(crate) fn required_secret<'a>(
    account: &'a dyn WebhookAccount,
    name: &str,
) -> Result<&'a [u8], VerifyError> {
    account.secret(name).ok_or(VerifyError::Mismatch)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(Default)]
    struct Account {
        secrets: HashMap<&'static str, Vec<u8>>,
        settings: HashMap<&'static str, &'static str>,
    }

    impl WebhookAccount for Account {
        fn secret(&self, name: &str) -> Option<&[u8]> {
            self.secrets.get(name).map(Vec::as_slice)
        }
        fn setting(&self, name: &str) -> Option<&str> {
            self.settings.get(name).copied()
        }
    }

    fn json_headers() -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, "application/json".parse().unwrap());
        headers
    }

    #[test]
    fn each_channel_gets_its_wire_format_and_web_chat_has_none() {
        let account = Account::default();
        let headers = http::HeaderMap::new();
        let name = |channel| adapter_for(channel, &account, &headers).map(|adapter| adapter.name());
        assert_eq!(name(Channel::Whatsapp), Some("whatsapp"));
        assert_eq!(name(Channel::Messenger), Some("messenger"));
        assert_eq!(name(Channel::Instagram), Some("instagram"));
        assert_eq!(name(Channel::Telegram), Some("telegram"));
        assert_eq!(name(Channel::Sms), Some("twilio"));
        assert_eq!(name(Channel::Webchat), None);
    }

    #[test]
    fn e_mail_follows_the_setting_then_the_signing_key_then_the_content_type() {
        let name = |account: &Account, headers: &http::HeaderMap| {
            adapter_for(Channel::Email, account, headers).map(|adapter| adapter.name())
        };
        let plain = Account::default();
        assert_eq!(name(&plain, &http::HeaderMap::new()), Some("sendgrid"));
        assert_eq!(name(&plain, &json_headers()), Some("postmark"));
        let mut mailgun = Account::default();
        mailgun.secrets.insert("signing_key", b"key".to_vec());
        assert_eq!(name(&mailgun, &json_headers()), Some("mailgun"));
        mailgun.settings.insert("inbound_provider", "sendgrid");
        assert_eq!(name(&mailgun, &json_headers()), Some("sendgrid"));
    }

    #[test]
    fn only_meta_formats_answer_a_handshake() {
        let mut account = Account::default();
        account.secrets.insert("verify_token", b"tok".to_vec());
        let headers = http::HeaderMap::new();
        let adapter = |channel| adapter_for(channel, &account, &headers).unwrap();
        let query = "hub.mode=subscribe&hub.verify_token=tok&hub.challenge=42";
        assert_eq!(
            adapter(Channel::Whatsapp).handshake(query, &account),
            Handshake::Answer("42".to_owned())
        );
        assert_eq!(
            adapter(Channel::Instagram).handshake(
                "hub.mode=subscribe&hub.verify_token=no&hub.challenge=42",
                &account
            ),
            Handshake::Refused
        );
        assert_eq!(
            adapter(Channel::Telegram).handshake(query, &account),
            Handshake::Unsupported
        );
        assert_eq!(
            adapter(Channel::Sms).success_answer().content_type,
            Some("text/xml")
        );
    }

    #[test]
    fn every_row_of_the_table_is_its_wire_format() {
        let names: Vec<&str> = ADAPTERS.iter().map(WebhookAdapter::name).collect();
        assert_eq!(
            names,
            [
                "whatsapp",
                "messenger",
                "instagram",
                "telegram",
                "twilio",
                "mailgun",
                "postmark",
                "sendgrid"
            ]
        );
        assert_eq!(ADAPTERS[WireFormat::Sendgrid as usize].name(), "sendgrid");
    }
}
