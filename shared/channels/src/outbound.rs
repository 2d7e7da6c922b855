//! Sending through each provider's API, as pure functions: [`build_send`] turns a message into
//! the exact HTTP request the provider expects, and [`classify_send`] turns the provider's
//! answer into an [`SendOutcome`] (accepted with its id, retryable with the provider's
//! retry-after, or permanent with its error code). Delivery does the I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use switchboard_domain::Channel;
use switchboard_proto::common::v1::ProviderError;
use switchboard_proto::delivery::v1::OutboundContent;

pub(crate) mod content;
pub(crate) mod graph;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod wire;

/// A channel account as a provider call needs it.
#[derive(Clone)]
pub struct ProviderAccount<'a> {
    /// Switchboard's id of the account (`chacc_…`).
    pub id: &'a str,
    /// The account's channel.
    pub channel: Channel,
    /// The provider's id of the account: WhatsApp phone_number_id, page id, Instagram account
    /// id, Telegram bot id, Twilio number or messaging service SID (`MG…`), e-mail address.
    pub external_id: &'a str,
    /// Provider API base URL override (simulator, regional endpoint); `None` = the provider's.
    pub base_url: Option<&'a str>,
    /// Non-secret settings: `api_version` (Meta, default [`DEFAULT_GRAPH_VERSION`]),
    /// `account_sid` (Twilio), `status_callback_url` (Twilio).
    pub settings: &'a BTreeMap<String, String>,
    /// Secrets: `access_token` (+ optional `app_secret` for appsecret_proof) on Meta,
    /// `bot_token` on Telegram, `auth_token` on Twilio.
    pub secrets: &'a BTreeMap<String, String>,
}

/// The Graph API version used when an account does not set `api_version`.
pub const DEFAULT_GRAPH_VERSION: &str = "v23.0";

/// One outbound message as the provider call needs it.
#[derive(Debug, Clone, Copy)]
pub struct OutboundMessage<'a> {
    /// Switchboard's id (`msg_…`), echoed where the provider allows it
    /// (WhatsApp `biz_opaque_callback_data`, Twilio status-callback URL query `sb_message_id`).
    pub message_id: &'a str,
    /// The channel user id: wa_id, PSID, IGSID, Telegram chat id, E.164 number.
    pub recipient: &'a str,
    /// What to send (validated by delivery's policy before it gets here).
    pub content: &'a OutboundContent,
    /// The provider id of the message this one quotes.
    pub reply_to_provider_message_id: Option<&'a str>,
    /// Messenger / Instagram: `messaging_type: MESSAGE_TAG`, `tag: HUMAN_AGENT`.
    pub human_agent_tag: bool,
    /// Who wrote it: `agent`, `bot`, `workflow`, `broadcast` or `api` (web chat shows it).
    pub author_kind: &'a str,
}

/// An HTTP request to make, exactly as the provider expects it.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderRequest {
    /// `POST` for sends.
    pub method: http::Method,
    /// Full URL (base URL + path + query).
    pub url: String,
    /// Headers including authorization and content type.
    pub headers: http::HeaderMap,
    /// The body bytes (JSON or form-encoded).
    pub body: Vec<u8>,
}

impl std::fmt::Debug for ProviderRequest {
    // Never prints headers (tokens) or the body (customer content).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRequest")
            .field("method", &self.method)
            .field("url", &redact_url(&self.url))
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The URL with a Telegram bot token (`/bot<token>/`) masked, for logs and spans.
pub fn redact_url(url: &str) -> String {
    match url.find("/bot") {
        Some(start) => {
            let rest = &url[start + 4..];
            match rest.find('/') {
                Some(end) => format!("{}/bot***{}", &url[..start], &rest[end..]),
                None => format!("{}/bot***", &url[..start]),
            }
        }
        None => url.to_owned(),
    }
}

/// Why a request could not be built (the message cannot be sent on this channel as it is).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// A secret or setting the provider needs is missing.
    #[error("the channel account has no {0}")]
    MissingCredential(&'static str),
    /// The content has something the channel cannot carry.
    #[error("{0}")]
    Unsupported(String),
}

/// What the provider said about one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted: the provider's message id (wamid, mid, Telegram `chat_id:message_id`,
    /// Twilio SID).
    Accepted {
        /// The provider's id of the sent message.
        provider_message_id: String,
    },
    /// A passing failure (429, 5xx, throughput codes); try again, never sooner than
    /// `retry_after` when the provider gave one.
    Retryable {
        /// The provider's error.
        error: ProviderError,
        /// The provider's retry-after (HTTP header, Telegram `parameters.retry_after`).
        retry_after: Option<Duration>,
    },
    /// The message can never be sent as it is (window closed, blocked, bad recipient).
    Permanent {
        /// The provider's error.
        error: ProviderError,
    },
}

/// The request that sends `message` through `account`.
pub fn build_send(
    account: &ProviderAccount<'_>,
    message: &OutboundMessage<'_>,
) -> Result<ProviderRequest, BuildError> {
    match account.channel {
        Channel::Whatsapp => crate::whatsapp::outbound::build_send(account, message),
        Channel::Messenger | Channel::Instagram => crate::messenger::outbound::build_send(account, message),
        Channel::Telegram => crate::telegram::outbound::build_send(account, message),
        Channel::Sms => crate::twilio::outbound::build_send(account, message),
        Channel::Email => Err(BuildError::Unsupported(
            "e-mail is not sent over HTTP: delivery sends it over SMTP".to_owned(),
        )),
        Channel::Webchat => crate::webchat::build_send(account, message),
    }
}

/// Classifies the provider's answer (`status`, `headers`, `body`) to a request from
/// [`build_send`] on `channel`.
///
/// A 2xx without a message id the adapter can read is [`SendOutcome::Permanent`] with code
/// `unparseable_response`, not retryable: the provider most likely accepted the message and a
/// retry could deliver it twice. An error body of an unexpected shape is classified by HTTP
/// status alone (408, 429 and 5xx retryable) with code `http_<status>`.
pub fn classify_send(channel: Channel, status: u16, headers: &http::HeaderMap, body: &[u8]) -> SendOutcome {
    match channel {
        Channel::Whatsapp => crate::whatsapp::outbound::classify_send(status, headers, body),
        Channel::Messenger | Channel::Instagram => {
            crate::messenger::outbound::classify_send(status, headers, body)
        }
        Channel::Telegram => crate::telegram::outbound::classify_send(status, headers, body),
        Channel::Sms => crate::twilio::outbound::classify_send(status, headers, body),
        Channel::Webchat => crate::webchat::classify_send(status, headers, body),
        Channel::Email if wire::success(status) => wire::unparseable(status),
        Channel::Email => wire::by_status(status, headers, body),
    }
}

/// The request that deletes the provider message `provider_message_id` (Telegram
/// `deleteMessage`); `Unsupported` on channels without deletion.
pub fn build_delete(
    account: &ProviderAccount<'_>,
    provider_message_id: &str,
) -> Result<ProviderRequest, BuildError> {
    match account.channel {
        Channel::Telegram => crate::telegram::outbound::build_delete(account, provider_message_id),
        channel => Err(BuildError::Unsupported(format!(
            "{} messages cannot be deleted at the provider",
            channel_name(channel)
        ))),
    }
}

/// Classifies the provider's answer to a request from [`build_delete`]: accepted carries
/// `provider_message_id` (the deleted message), failures classify as for [`classify_send`].
pub fn classify_delete(
    channel: Channel,
    provider_message_id: &str,
    status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
) -> SendOutcome {
    match channel {
        Channel::Telegram => {
            crate::telegram::outbound::classify_delete(provider_message_id, status, headers, body)
        }
        _ if wire::success(status) => SendOutcome::Accepted {
            provider_message_id: provider_message_id.to_owned(),
        },
        _ => wire::by_status(status, headers, body),
    }
}

fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Whatsapp => "WhatsApp",
        Channel::Messenger => "Messenger",
        Channel::Instagram => "Instagram",
        Channel::Telegram => "Telegram",
        Channel::Sms => "SMS",
        Channel::Email => "E-mail",
        Channel::Webchat => "Web chat",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::testing::{Fixture, message, parts, text};

    #[test]
    fn email_is_not_sent_over_http() {
        let fixture = Fixture::new(&[("access_token", "t")], &[]);
        let content = parts(vec![text("hi")]);
        let refused = build_send(
            &fixture.account(Channel::Email, "x", None),
            &message("y", &content),
        );
        assert!(
            matches!(&refused, Err(BuildError::Unsupported(reason)) if reason.contains("not sent over HTTP")),
            "{refused:?}"
        );
        assert!(matches!(
            classify_send(Channel::Email, 500, &http::HeaderMap::new(), b""),
            SendOutcome::Retryable { .. }
        ));
    }

    #[test]
    fn only_telegram_deletes() {
        let fixture = Fixture::new(&[("access_token", "t")], &[]);
        for channel in Channel::ALL
            .into_iter()
            .filter(|channel| *channel != Channel::Telegram)
        {
            assert!(
                matches!(
                    build_delete(&fixture.account(channel, "x", None), "1:2"),
                    Err(BuildError::Unsupported(_))
                ),
                "{channel:?}"
            );
        }
    }

    #[test]
    fn redaction_masks_the_bot_token() {
        assert_eq!(
            redact_url("https://api.telegram.org/bot1:abc/sendMessage"),
            "https://api.telegram.org/bot***/sendMessage"
        );
        assert_eq!(
            redact_url("https://graph.facebook.com/v23.0/1/messages"),
            "https://graph.facebook.com/v23.0/1/messages"
        );
    }

    proptest::proptest! {
        #[test]
        fn classification_never_panics(
            status in 100u16..600,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
        ) {
            for channel in Channel::ALL {
                let _ = classify_send(channel, status, &http::HeaderMap::new(), &body);
                let _ = classify_delete(channel, "1:2", status, &http::HeaderMap::new(), &body);
            }
        }
    }
}
