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

/// Everything Switchboard knows about one webhook wire format.
pub trait WebhookAdapter: Sync {
    /// The name of the wire format (`whatsapp`, `mailgun`, …), for logs.
    fn name(&self) -> &'static str;

    /// The secrets an account needs for webhooks of this format.
    fn secret_names(&self) -> &'static [&'static str];

    /// True for JSON bodies (bounded in nesting before any parser sees them).
    fn body_is_json(&self) -> bool;

    /// Checks the provider's signature with the account's secrets.
    fn verify<'a>(
        &self,
        account: &dyn WebhookAccount,
        request: &WebhookRequest<'a>,
    ) -> Result<Verified<'a>, VerifyError>;

    /// Normalizes a verified body into inbound events.
    fn normalize(
        &self,
        request: &WebhookRequest<'_>,
        verified: Verified<'_>,
        context: &NormalizeContext,
    ) -> Result<Normalized, NormalizeError>;

    /// The 2xx answer the provider expects.
    fn success_answer(&self) -> SuccessAnswer {
        SuccessAnswer::EMPTY
    }

    /// Answers a subscription handshake with the query string of the `GET`.
    fn handshake(&self, _query: &str, _account: &dyn WebhookAccount) -> Handshake {
        Handshake::Unsupported
    }

    /// The key under which a repeat of this webhook is recognised as a replay, when the
    /// provider signs one (Mailgun's delivery token); `None` when events' ids suffice.
    fn replay_key<'n>(&self, _normalized: &'n Normalized) -> Option<&'n str> {
        None
    }
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
) -> Option<&'static dyn WebhookAdapter> {
    use crate::{email, meta, telegram, twilio};
    Some(match channel {
        Channel::Whatsapp => &meta::WHATSAPP,
        Channel::Messenger => &meta::MESSENGER,
        Channel::Instagram => &meta::INSTAGRAM,
        Channel::Telegram => &telegram::WEBHOOK,
        Channel::Sms => &twilio::WEBHOOK,
        Channel::Email => match account.setting("inbound_provider") {
            Some("postmark") => &email::POSTMARK,
            Some("mailgun") => &email::MAILGUN,
            Some("sendgrid") => &email::SENDGRID,
            _ if account.secret("signing_key").is_some() => &email::MAILGUN,
            _ if content_type(headers).starts_with("application/json") => &email::POSTMARK,
            _ => &email::SENDGRID,
        },
        Channel::Webchat => return None,
    })
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
        let query = "hub.mode=subscribe&hub.verify_token=tok&hub.challenge=42";
        assert_eq!(
            crate::meta::WHATSAPP.handshake(query, &account),
            Handshake::Answer("42".to_owned())
        );
        assert_eq!(
            crate::meta::WHATSAPP.handshake(
                "hub.mode=subscribe&hub.verify_token=no&hub.challenge=42",
                &account
            ),
            Handshake::Refused
        );
        assert_eq!(
            crate::telegram::WEBHOOK.handshake(query, &account),
            Handshake::Unsupported
        );
        assert_eq!(
            crate::twilio::WEBHOOK.success_answer().content_type,
            Some("text/xml")
        );
    }
}
