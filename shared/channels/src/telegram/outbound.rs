//! Telegram Bot API sends: `POST {base}/bot{token}/{method}` with a JSON body (CHANNELS.md
//! §5.5). `sendMessage`, `sendPhoto` / `sendVideo` / `sendAudio` / `sendVoice` /
//! `sendDocument` / `sendSticker` (file_id or URL, with `caption`), `sendLocation`, an inline
//! keyboard for buttons, `reply_parameters` for quote-replies, and `deleteMessage`. The token
//! is only ever in the URL; [`crate::outbound::redact_url`] masks it.
//! See <https://core.telegram.org/bots/api#available-methods>.

use serde_json::{Map, Value, json};
use switchboard_proto::common::v1::{MediaKind, ProviderError};
use switchboard_proto::delivery::v1::Interactive;

use crate::outbound::content::{self, Media, Shape, Source, unsupported};
use crate::outbound::wire::{
    as_i64, base_url, by_status, outcome, post_json, retry_after, retry_after_seconds, retryable_status,
    secret, success, unparseable,
};
use crate::outbound::{BuildError, OutboundMessage, ProviderAccount, ProviderRequest, SendOutcome};

/// The Bot API's public base URL.
const DEFAULT_BASE: &str = "https://api.telegram.org";
/// The most bytes of an inline button's `callback_data`.
const MAX_CALLBACK_DATA: usize = 64;

/// The request that sends `message` to the chat `message.recipient`.
pub(crate) fn build_send(
    account: &ProviderAccount<'_>,
    message: &OutboundMessage<'_>,
) -> Result<ProviderRequest, BuildError> {
    let mut body = Map::new();
    body.insert("chat_id".into(), chat_id(message.recipient));
    let method = match content::shape(message.content)? {
        Shape::Text(text) => {
            body.insert("text".into(), json!(text));
            "sendMessage"
        }
        Shape::Media(media) => media_fields(&media, &mut body)?,
        Shape::Location(location) => {
            body.insert("latitude".into(), json!(location.latitude));
            body.insert("longitude".into(), json!(location.longitude));
            "sendLocation"
        }
        Shape::Interactive(interactive) => {
            body.insert("text".into(), json!(interactive.body));
            body.insert("reply_markup".into(), inline_keyboard(interactive)?);
            "sendMessage"
        }
        Shape::Template(_) => return Err(unsupported("Telegram has no message templates (WhatsApp only)")),
    };
    if let Some(quoted) = message.reply_to_provider_message_id.filter(|id| !id.is_empty()) {
        let (chat, message_id) = split_message_id(quoted)?;
        let mut reply = Map::new();
        reply.insert("message_id".into(), json!(message_id));
        // A quote from another chat names it; a deleted quote does not fail the send.
        if body.get("chat_id") != Some(&chat) {
            reply.insert("chat_id".into(), chat);
        }
        reply.insert("allow_sending_without_reply".into(), json!(true));
        body.insert("reply_parameters".into(), Value::Object(reply));
    }
    Ok(post_json(
        method_url(account, method)?,
        &Value::Object(body),
        None,
    ))
}

/// The `deleteMessage` request for the provider id `chat_id:message_id`.
pub(crate) fn build_delete(
    account: &ProviderAccount<'_>,
    provider_message_id: &str,
) -> Result<ProviderRequest, BuildError> {
    let (chat, message_id) = split_message_id(provider_message_id)?;
    let body = json!({"chat_id": chat, "message_id": message_id});
    Ok(post_json(method_url(account, "deleteMessage")?, &body, None))
}

/// Classifies the answer to [`build_send`]: accepted as `"{result.chat.id}:{result.message_id}"`.
pub(crate) fn classify_send(status: u16, headers: &http::HeaderMap, body: &[u8]) -> SendOutcome {
    classify(status, headers, body, |result| {
        let chat = result.pointer("/chat/id").and_then(as_i64)?;
        let message_id = result.get("message_id").and_then(as_i64)?;
        Some(format!("{chat}:{message_id}"))
    })
}

/// Classifies the answer to [`build_delete`]: `{"ok":true,"result":true}` is accepted as
/// `provider_message_id`.
pub(crate) fn classify_delete(
    provider_message_id: &str,
    status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
) -> SendOutcome {
    classify(status, headers, body, |result| {
        (result.as_bool() == Some(true)).then(|| provider_message_id.to_owned())
    })
}

/// `{"ok":true,"result":…}` is accepted with the id `accepted_id` finds in `result`; `{"ok":
/// false,"error_code","description","parameters"}` retries on 429 (after
/// `parameters.retry_after`, else `Retry-After`) and 5xx, and stops on anything else.
fn classify(
    status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
    accepted_id: impl Fn(&Value) -> Option<String>,
) -> SendOutcome {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return if success(status) {
            unparseable(status)
        } else {
            by_status(status, headers, body)
        };
    };
    if success(status) && value.get("ok").and_then(Value::as_bool) == Some(true) {
        return match value.get("result").and_then(accepted_id) {
            Some(id) => SendOutcome::Accepted {
                provider_message_id: id,
            },
            None => unparseable(status),
        };
    }
    let Some(code) = value.get("error_code").and_then(as_i64) else {
        return if success(status) {
            unparseable(status)
        } else {
            by_status(status, headers, body)
        };
    };
    let description = value
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let parameters = value.get("parameters");
    let details = parameters
        .and_then(|parameters| parameters.get("migrate_to_chat_id"))
        .and_then(as_i64)
        .map(|chat| format!("migrate_to_chat_id={chat}"))
        .unwrap_or_default();
    let error = ProviderError {
        code: code.to_string(),
        // "Bad Request: chat not found" → title "Bad Request".
        title: description
            .split_once(": ")
            .map_or(description, |(title, _)| title)
            .to_owned(),
        message: description.to_owned(),
        details,
    };
    let wait = parameters
        .and_then(|parameters| parameters.get("retry_after"))
        .and_then(as_i64)
        .and_then(|seconds| u64::try_from(seconds).ok())
        .map(retry_after_seconds)
        .or_else(|| retry_after(headers));
    let code_status = u16::try_from(code).unwrap_or_default();
    outcome(
        retryable_status(status) || retryable_status(code_status),
        error,
        wait,
    )
}

/// `{base}/bot{token}/{method}`; a token with bytes outside `[A-Za-z0-9:_-]` is refused.
fn method_url(account: &ProviderAccount<'_>, method: &str) -> Result<String, BuildError> {
    let token = secret(account, "bot_token")?;
    let valid = token
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b':' | b'_' | b'-'));
    if !valid {
        return Err(BuildError::MissingCredential("valid bot_token"));
    }
    Ok(format!("{}/bot{token}/{method}", base_url(account, DEFAULT_BASE)))
}

/// A numeric chat id as a JSON number, anything else (`@channel`) as a string.
fn chat_id(recipient: &str) -> Value {
    match recipient.parse::<i64>() {
        Ok(id) => json!(id),
        Err(_) => json!(recipient),
    }
}

/// Splits Switchboard's Telegram message id `"{chat_id}:{message_id}"`.
fn split_message_id(provider_message_id: &str) -> Result<(Value, i64), BuildError> {
    provider_message_id
        .rsplit_once(':')
        .filter(|(chat, _)| !chat.is_empty())
        .and_then(|(chat, message_id)| Some((chat_id(chat), message_id.parse().ok()?)))
        .ok_or_else(|| {
            unsupported(format!(
                "{provider_message_id:?} is not a Telegram message id (chat_id:message_id)"
            ))
        })
}

/// Adds the file and caption fields and returns the method.
fn media_fields(media: &Media<'_>, body: &mut Map<String, Value>) -> Result<&'static str, BuildError> {
    let (method, field) = match media.kind {
        MediaKind::Image => ("sendPhoto", "photo"),
        MediaKind::Video => ("sendVideo", "video"),
        MediaKind::Audio if media.part.voice => ("sendVoice", "voice"),
        MediaKind::Audio => ("sendAudio", "audio"),
        MediaKind::Sticker => ("sendSticker", "sticker"),
        MediaKind::Document | MediaKind::Unspecified => ("sendDocument", "document"),
    };
    let file = match media.source() {
        Source::Id(id) | Source::Url(id) => id,
    };
    body.insert(field.into(), json!(file));
    if !media.caption.is_empty() {
        if media.kind == MediaKind::Sticker {
            return Err(unsupported(
                "Telegram stickers carry no caption: send the text as its own message",
            ));
        }
        body.insert("caption".into(), json!(media.caption));
    }
    Ok(method)
}

/// One button per row: `callback_data` buttons (id ≤ 64 bytes) or `url` buttons.
fn inline_keyboard(interactive: &Interactive) -> Result<Value, BuildError> {
    if interactive.list.is_some() {
        return Err(unsupported("Telegram has no list messages (WhatsApp only)"));
    }
    let mut rows = Vec::with_capacity(interactive.buttons.len());
    for button in &interactive.buttons {
        if button.title.is_empty() {
            return Err(unsupported("a Telegram button needs a title"));
        }
        let row = if !button.url.is_empty() {
            json!([{"text": button.title, "url": button.url}])
        } else if !button.id.is_empty() && button.id.len() <= MAX_CALLBACK_DATA {
            json!([{"text": button.title, "callback_data": button.id}])
        } else {
            return Err(unsupported(format!(
                "a Telegram button needs a url or an id of 1–{MAX_CALLBACK_DATA} bytes"
            )));
        };
        rows.push(row);
    }
    Ok(json!({"inline_keyboard": rows}))
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;
