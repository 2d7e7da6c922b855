//! Messenger and Instagram sends through the Graph Send API: `POST
//! {base}/{version}/{page or IG account id}/messages` (CHANNELS.md §3.5, §4). Text, one
//! attachment (URL or attachment id) and quick replies; `HUMAN_AGENT` tagging. The Send API has
//! no quote-replies, templates, lists or captions.
//! See <https://developers.facebook.com/docs/messenger-platform/reference/send-api>.

use serde_json::{Map, Value, json};
use switchboard_domain::Channel;
use switchboard_proto::common::v1::MediaKind;
use switchboard_proto::delivery::v1::Interactive;

use crate::outbound::content::{self, Media, Shape, Source, unsupported};
use crate::outbound::graph::{self, Verdict};
use crate::outbound::{BuildError, OutboundMessage, ProviderAccount, ProviderRequest, SendOutcome};

/// Quick replies per message.
const MAX_QUICK_REPLIES: usize = 13;

/// The request that sends `message` from the Page or Instagram account `account.external_id`.
/// `reply_to_provider_message_id` is ignored: the Send API cannot quote a message.
pub(crate) fn build_send(
    account: &ProviderAccount<'_>,
    message: &OutboundMessage<'_>,
) -> Result<ProviderRequest, BuildError> {
    let platform = platform(account.channel);
    let payload = match content::shape(message.content)? {
        Shape::Text(text) => json!({"text": text}),
        Shape::Media(media) => json!({"attachment": attachment(platform, &media)?}),
        Shape::Interactive(interactive) => quick_replies(platform, interactive)?,
        Shape::Location(_) => return Err(unsupported(format!("{platform} cannot send a location"))),
        Shape::Template(_) => {
            return Err(unsupported(format!(
                "{platform} has no message templates (WhatsApp only)"
            )));
        }
    };
    let mut body = Map::new();
    body.insert("recipient".into(), json!({"id": message.recipient}));
    if message.human_agent_tag {
        body.insert("messaging_type".into(), json!("MESSAGE_TAG"));
        body.insert("tag".into(), json!("HUMAN_AGENT"));
    } else {
        body.insert("messaging_type".into(), json!("RESPONSE"));
    }
    body.insert("message".into(), payload);
    graph::post_messages(account, &Value::Object(body))
}

/// Classifies the answer to [`build_send`]: `message_id` (the mid) when accepted.
pub(crate) fn classify_send(status: u16, headers: &http::HeaderMap, body: &[u8]) -> SendOutcome {
    graph::classify(
        status,
        headers,
        body,
        |value| value.get("message_id").and_then(Value::as_str),
        verdict,
    )
}

/// CHANNELS.md §3.5's error table: throttling and temporary codes retry; window (10/…),
/// unavailable person (551), policy and credential codes stop; unknown codes go by status.
fn verdict(code: i64, _subcode: Option<i64>) -> Verdict {
    match code {
        // 1/2 temporary; 4/17/32/613 throttling; 1200 temporary send failure.
        1 | 2 | 4 | 17 | 32 | 613 | 1200 => Verdict::Retry,
        // 10 outside the window (2018278, IG 2534022) or Page restricted (1893063); 100 invalid
        // parameter; 190 token; 200–299 permissions; 368 policy block; 551 person unavailable.
        10 | 100 | 190 | 200..=299 | 368 | 551 => Verdict::Stop,
        _ => Verdict::ByStatus,
    }
}

fn platform(channel: Channel) -> &'static str {
    match channel {
        Channel::Instagram => "Instagram",
        _ => "Messenger",
    }
}

fn attachment(platform: &str, media: &Media<'_>) -> Result<Value, BuildError> {
    if !media.caption.is_empty() {
        return Err(unsupported(format!(
            "{platform} attachments carry no caption: send the text as its own message"
        )));
    }
    let kind = match media.kind {
        MediaKind::Image | MediaKind::Sticker => "image",
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
        MediaKind::Document | MediaKind::Unspecified => "file",
    };
    let payload = match media.source() {
        Source::Id(id) => json!({"attachment_id": id}),
        Source::Url(url) => json!({"url": url, "is_reusable": true}),
    };
    Ok(json!({"type": kind, "payload": payload}))
}

fn quick_replies(platform: &str, interactive: &Interactive) -> Result<Value, BuildError> {
    if interactive.list.is_some() {
        return Err(unsupported(format!(
            "{platform} has no list messages (WhatsApp only)"
        )));
    }
    if interactive.buttons.len() > MAX_QUICK_REPLIES {
        return Err(unsupported(format!(
            "{platform} allows at most {MAX_QUICK_REPLIES} quick replies"
        )));
    }
    if interactive.buttons.iter().any(|button| !button.url.is_empty()) {
        return Err(unsupported(format!("{platform} quick replies cannot open a URL")));
    }
    let replies: Vec<Value> = interactive
        .buttons
        .iter()
        .map(|button| json!({"content_type": "text", "title": button.title, "payload": button.id}))
        .collect();
    Ok(json!({"text": interactive.body, "quick_replies": replies}))
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;
