//! WhatsApp Cloud API sends: `POST {base}/{version}/{phone_number_id}/messages` (CHANNELS.md
//! §2.5). Text, one media (link or uploaded id) with its caption, location, templates, reply
//! buttons and lists; `context` for quote-replies; our message id round-trips in
//! `biz_opaque_callback_data`.
//! See <https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages>.

use serde_json::{Map, Value, json};
use switchboard_proto::common::v1::{LocationPart, MediaKind, MediaPart};
use switchboard_proto::delivery::v1::{Interactive, Template};

use crate::outbound::content::{self, Media, Shape, Source, unsupported};
use crate::outbound::graph::{self, Verdict};
use crate::outbound::{BuildError, OutboundMessage, ProviderAccount, ProviderRequest, SendOutcome};

/// Reply buttons per interactive message.
const MAX_BUTTONS: usize = 3;
/// Rows across all sections of a list message.
const MAX_LIST_ROWS: usize = 10;

/// The request that sends `message` from the phone number `account.external_id`.
pub(crate) fn build_send(
    account: &ProviderAccount<'_>,
    message: &OutboundMessage<'_>,
) -> Result<ProviderRequest, BuildError> {
    let mut body = Map::new();
    body.insert("messaging_product".into(), json!("whatsapp"));
    body.insert("recipient_type".into(), json!("individual"));
    body.insert("to".into(), json!(message.recipient));
    let (kind, object) = match content::shape(message.content)? {
        Shape::Text(text) => ("text", json!({"preview_url": false, "body": text})),
        Shape::Media(media) => (media_type(media.kind), media_object(&media)?),
        Shape::Location(location) => ("location", location_object(location)),
        Shape::Template(template) => ("template", template_object(template)?),
        Shape::Interactive(interactive) => ("interactive", interactive_object(interactive)?),
    };
    body.insert("type".into(), json!(kind));
    body.insert(kind.into(), object);
    if let Some(quoted) = message.reply_to_provider_message_id.filter(|id| !id.is_empty()) {
        body.insert("context".into(), json!({"message_id": quoted}));
    }
    if !message.message_id.is_empty() {
        body.insert("biz_opaque_callback_data".into(), json!(message.message_id));
    }
    graph::post_messages(account, &Value::Object(body))
}

/// Classifies the answer to [`build_send`]: `messages[0].id` (the wamid) when accepted.
pub(crate) fn classify_send(status: u16, headers: &http::HeaderMap, body: &[u8]) -> SendOutcome {
    graph::classify(
        status,
        headers,
        body,
        |value| value.pointer("/messages/0/id").and_then(Value::as_str),
        verdict,
    )
}

/// CHANNELS.md §2.5's error table: throughput and temporary codes retry, window, recipient,
/// policy and credential codes stop; unknown codes go by HTTP status.
fn verdict(code: i64, _subcode: Option<i64>) -> Verdict {
    match code {
        // 1/2 temporary API errors; 4/17/32/613 Graph throttling; 80007 WABA rate limit;
        // 130429 throughput; 131000 unknown; 131016 service unavailable; 131056 pair rate;
        // 131057 account in maintenance.
        1 | 2 | 4 | 17 | 32 | 613 | 80007 | 130429 | 131000 | 131016 | 131056 | 131057 => Verdict::Retry,
        // 0/10/190/200–299 token and permission problems; 100 invalid parameter; 368 policy
        // block; 130472 marketing experiment; 130497 country restricted; 131026
        // undeliverable; 131031 account locked; 131047 re-engagement (window closed); 131048
        // spam rate limit; 131049 ecosystem limit; 131051 unsupported type; 131052 media
        // download; 132000–132016 template errors.
        0
        | 10
        | 100
        | 190
        | 200..=299
        | 368
        | 130472
        | 130497
        | 131026
        | 131031
        | 131047
        | 131048
        | 131049
        | 131051
        | 131052
        | 132000..=132016 => Verdict::Stop,
        _ => Verdict::ByStatus,
    }
}

fn media_type(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "image",
        MediaKind::Video => "video",
        MediaKind::Audio => "audio",
        MediaKind::Sticker => "sticker",
        MediaKind::Document | MediaKind::Unspecified => "document",
    }
}

/// `{"link": url}` or `{"id": media id}`.
fn media_reference(part: &MediaPart) -> Map<String, Value> {
    let mut object = Map::new();
    match content::source(part) {
        Source::Id(id) => object.insert("id".into(), json!(id)),
        Source::Url(url) => object.insert("link".into(), json!(url)),
    };
    object
}

fn media_object(media: &Media<'_>) -> Result<Value, BuildError> {
    let mut object = media_reference(media.part);
    if !media.caption.is_empty() {
        if matches!(media.kind, MediaKind::Audio | MediaKind::Sticker) {
            return Err(unsupported(format!(
                "WhatsApp {} messages carry no caption: send the text as its own message",
                media_type(media.kind)
            )));
        }
        object.insert("caption".into(), json!(media.caption));
    }
    if media_type(media.kind) == "document" && !media.part.filename.is_empty() {
        object.insert("filename".into(), json!(media.part.filename));
    }
    Ok(Value::Object(object))
}

fn location_object(location: &LocationPart) -> Value {
    let mut object = Map::new();
    object.insert("latitude".into(), json!(location.latitude));
    object.insert("longitude".into(), json!(location.longitude));
    for (key, value) in [("name", &location.name), ("address", &location.address)] {
        if !value.is_empty() {
            object.insert(key.into(), json!(value));
        }
    }
    Value::Object(object)
}

fn template_object(template: &Template) -> Result<Value, BuildError> {
    if template.name.is_empty() || template.language.is_empty() {
        return Err(unsupported(
            "a WhatsApp template needs a name and a language code",
        ));
    }
    let mut components = Vec::new();
    if let Some(header) = &template.header_media {
        let kind = content::media_kind(header);
        if !matches!(kind, MediaKind::Image | MediaKind::Video | MediaKind::Document) {
            return Err(unsupported(
                "a template header is an image, a video or a document",
            ));
        }
        if header.url.is_empty() && header.provider_media_id.is_empty() {
            return Err(unsupported(
                "the template header needs a url or a provider_media_id",
            ));
        }
        let kind = media_type(kind);
        let mut reference = media_reference(header);
        if kind == "document" && !header.filename.is_empty() {
            reference.insert("filename".into(), json!(header.filename));
        }
        components.push(json!({"type": "header", "parameters": [{"type": kind, kind: reference}]}));
    }
    if !template.body_parameters.is_empty() {
        let parameters: Vec<Value> = template
            .body_parameters
            .iter()
            .map(|text| json!({"type": "text", "text": text}))
            .collect();
        components.push(json!({"type": "body", "parameters": parameters}));
    }
    for (index, payload) in template.button_payloads.iter().enumerate() {
        if payload.is_empty() {
            continue;
        }
        components.push(json!({
            "type": "button",
            "sub_type": "quick_reply",
            "index": index.to_string(),
            "parameters": [{"type": "payload", "payload": payload}],
        }));
    }
    let mut object = Map::new();
    object.insert("name".into(), json!(template.name));
    object.insert("language".into(), json!({"code": template.language}));
    if !components.is_empty() {
        object.insert("components".into(), Value::Array(components));
    }
    Ok(Value::Object(object))
}

fn interactive_object(interactive: &Interactive) -> Result<Value, BuildError> {
    let body = json!({"text": interactive.body});
    if let Some(list) = &interactive.list {
        let rows: usize = list.sections.iter().map(|section| section.rows.len()).sum();
        if list.button_text.is_empty() || rows == 0 || rows > MAX_LIST_ROWS {
            return Err(unsupported(format!(
                "a WhatsApp list needs a button text and 1–{MAX_LIST_ROWS} rows"
            )));
        }
        let sections: Vec<Value> = list
            .sections
            .iter()
            .map(|section| {
                let rows: Vec<Value> = section
                    .rows
                    .iter()
                    .map(|row| {
                        let mut object = Map::new();
                        object.insert("id".into(), json!(row.id));
                        object.insert("title".into(), json!(row.title));
                        if !row.description.is_empty() {
                            object.insert("description".into(), json!(row.description));
                        }
                        Value::Object(object)
                    })
                    .collect();
                let mut object = Map::new();
                if !section.title.is_empty() {
                    object.insert("title".into(), json!(section.title));
                }
                object.insert("rows".into(), Value::Array(rows));
                Value::Object(object)
            })
            .collect();
        return Ok(json!({
            "type": "list",
            "body": body,
            "action": {"button": list.button_text, "sections": sections},
        }));
    }
    if interactive.buttons.len() > MAX_BUTTONS {
        return Err(unsupported(format!(
            "WhatsApp allows at most {MAX_BUTTONS} reply buttons"
        )));
    }
    if interactive.buttons.iter().any(|button| !button.url.is_empty()) {
        return Err(unsupported("WhatsApp reply buttons cannot open a URL"));
    }
    let buttons: Vec<Value> = interactive
        .buttons
        .iter()
        .map(|button| json!({"type": "reply", "reply": {"id": button.id, "title": button.title}}))
        .collect();
    Ok(json!({"type": "button", "body": body, "action": {"buttons": buttons}}))
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;
