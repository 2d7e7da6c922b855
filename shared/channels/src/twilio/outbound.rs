//! Twilio Programmable Messaging sends: `POST
//! {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded, HTTP Basic
//! `AccountSid:AuthToken` (CHANNELS.md §6.5). One body and up to 10 `MediaUrl`s; our message
//! id rides in the `StatusCallback` URL as `sb_message_id`.
//! See <https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource>.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use switchboard_proto::common::v1::ProviderError;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::delivery::v1::OutboundContent;

use crate::outbound::content::unsupported;
use crate::outbound::wire::{
    as_i64, authorization, base_url, by_status, outcome, path_segment, post_form, retry_after,
    retryable_status, secret, setting, success, unparseable, with_query,
};
use crate::outbound::{BuildError, OutboundMessage, ProviderAccount, ProviderRequest, SendOutcome};

/// Twilio's public REST base URL.
const DEFAULT_BASE: &str = "https://api.twilio.com";
/// Media files per message.
const MAX_MEDIA: usize = 10;
/// Twilio's "too many concurrent requests" code (HTTP 429), never processed: safe to retry.
const CONCURRENCY_LIMIT: i64 = 20429;

/// The request that sends `message` from the number (or `MG…` messaging service)
/// `account.external_id`. Quote-replies and the human-agent tag do not apply to SMS.
pub(crate) fn build_send(
    account: &ProviderAccount<'_>,
    message: &OutboundMessage<'_>,
) -> Result<ProviderRequest, BuildError> {
    let account_sid = setting(account, "account_sid").ok_or(BuildError::MissingCredential("account_sid"))?;
    let auth_token = secret(account, "auth_token")?;
    if account.external_id.is_empty() {
        return Err(BuildError::MissingCredential("external_id"));
    }
    let (text, media_urls) = sms_content(message.content)?;
    let callback = setting(account, "status_callback_url")
        .map(|url| with_query(url, "sb_message_id", message.message_id));
    let sender = if account.external_id.starts_with("MG") {
        "MessagingServiceSid"
    } else {
        "From"
    };
    let mut pairs = vec![("To", message.recipient), (sender, account.external_id)];
    if !text.is_empty() {
        pairs.push(("Body", text));
    }
    pairs.extend(media_urls.into_iter().map(|url| ("MediaUrl", url)));
    if let Some(callback) = &callback {
        pairs.push(("StatusCallback", callback));
    }
    let url = format!(
        "{}/2010-04-01/Accounts/{}/Messages.json",
        base_url(account, DEFAULT_BASE),
        path_segment(account_sid)
    );
    let credentials = STANDARD.encode(format!("{account_sid}:{auth_token}"));
    let authorization = authorization(&format!("Basic {credentials}"), "valid auth_token")?;
    Ok(post_form(url, &pairs, authorization))
}

/// Classifies the answer to [`build_send`]: `201 {"sid":…}` is accepted; `{code, message,
/// more_info, status}` retries on 20429 / 429 / 5xx and stops on any other 4xx.
pub(crate) fn classify_send(status: u16, headers: &http::HeaderMap, body: &[u8]) -> SendOutcome {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    if success(status) {
        return match parsed
            .as_ref()
            .and_then(|value| value.get("sid"))
            .and_then(Value::as_str)
            .filter(|sid| !sid.is_empty())
        {
            Some(sid) => SendOutcome::Accepted {
                provider_message_id: sid.to_owned(),
            },
            None => unparseable(status),
        };
    }
    let Some((code, value)) = parsed
        .as_ref()
        .and_then(|value| Some((value.get("code").and_then(as_i64)?, value)))
    else {
        return by_status(status, headers, body);
    };
    let text = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let error = ProviderError {
        code: code.to_string(),
        title: String::new(),
        message: text("message"),
        details: text("more_info"),
    };
    outcome(
        code == CONCURRENCY_LIMIT || retryable_status(status),
        error,
        retry_after(headers),
    )
}

/// The body (a text part, or a media part's caption) and the media URLs.
fn sms_content(content: &OutboundContent) -> Result<(&str, Vec<&str>), BuildError> {
    if content.template.is_some() {
        return Err(unsupported(
            "SMS has no message templates (WhatsApp only): send a text",
        ));
    }
    if content.interactive.is_some() {
        return Err(unsupported("SMS has no buttons or lists: send a text"));
    }
    let mut bodies = Vec::new();
    let mut media_urls = Vec::new();
    for part in &content.parts {
        match &part.part {
            Some(Part::Text(text)) => bodies.push(text.body.as_str()),
            Some(Part::Media(media)) if media.url.is_empty() => {
                return Err(unsupported("SMS media must be a URL Twilio can fetch"));
            }
            Some(Part::Media(media)) => {
                media_urls.push(media.url.as_str());
                bodies.push(media.caption.as_str());
            }
            Some(Part::Location(_)) => return Err(unsupported("SMS cannot send a location")),
            Some(_) | None => return Err(unsupported("SMS sends only text and media parts")),
        }
    }
    bodies.retain(|body| !body.trim().is_empty());
    if bodies.len() > 1 {
        return Err(unsupported(
            "an SMS carries one text: a text part or one media caption, not several",
        ));
    }
    if media_urls.len() > MAX_MEDIA {
        return Err(unsupported(format!(
            "Twilio sends at most {MAX_MEDIA} media files per message"
        )));
    }
    let body = bodies.first().copied().unwrap_or_default();
    if body.is_empty() && media_urls.is_empty() {
        return Err(unsupported("the message has no content"));
    }
    Ok((body, media_urls))
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;
