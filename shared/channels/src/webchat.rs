//! Web chat, Switchboard's own channel. Its "provider API" is the `ingress-webchat` component:
//! delivery sends with `POST {base}/webchat/{account}/internal/messages` (bearer: the internal
//! token), which stores the message in the visitor's thread and pushes it to their sockets on
//! every replica. The answer's `id` (`wcm_…`) is the provider message id that the visitor's
//! delivered and read receipts carry. Agent typing and read marks use `internal/typing` and
//! `internal/read`. See `services/webchat/PROTOCOL.md`.

use serde_json::{Value, json};
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::common::v1::{MediaKind, ProviderError};

use crate::outbound::wire::{
    authorization, by_status, path_segment, post_json, secret, success, unparseable,
};
use crate::outbound::{BuildError, OutboundMessage, ProviderAccount, ProviderRequest, SendOutcome};

/// The secret holding the internal token ingress-webchat requires.
pub const INTERNAL_TOKEN_SECRET: &str = "internal_token";

fn base<'a>(account: &ProviderAccount<'a>) -> Result<&'a str, BuildError> {
    account
        .base_url
        .map(|url| url.trim_end_matches('/'))
        .ok_or(BuildError::MissingCredential(
            "web chat endpoint (delivery.webchat_endpoint)",
        ))
}

fn internal_post(
    account: &ProviderAccount<'_>,
    action: &str,
    body: &Value,
) -> Result<ProviderRequest, BuildError> {
    let token = secret(account, INTERNAL_TOKEN_SECRET)?;
    let url = format!(
        "{}/webchat/{}/internal/{action}",
        base(account)?,
        path_segment(account.id)
    );
    Ok(post_json(
        url,
        body,
        Some(authorization(&format!("Bearer {token}"), INTERNAL_TOKEN_SECRET)?),
    ))
}

/// The request that puts `message` in the visitor's thread.
pub(crate) fn build_send(
    account: &ProviderAccount<'_>,
    message: &OutboundMessage<'_>,
) -> Result<ProviderRequest, BuildError> {
    let content = message.content;
    if content.template.is_some() {
        return Err(BuildError::Unsupported(
            "templates are a WhatsApp feature; send text to a web chat visitor".to_owned(),
        ));
    }
    let mut texts: Vec<String> = Vec::new();
    let mut attachments: Vec<Value> = Vec::new();
    for part in content.parts.iter().filter_map(|part| part.part.as_ref()) {
        match part {
            Part::Text(text) => texts.push(text.body.clone()),
            Part::Media(media) => {
                if media.url.is_empty() {
                    return Err(BuildError::Unsupported(
                        "web chat media needs a URL the visitor's browser can load".to_owned(),
                    ));
                }
                if !media.caption.is_empty() {
                    texts.push(media.caption.clone());
                }
                attachments.push(json!({
                    "url": media.url,
                    "mime_type": media.mime_type,
                    "filename": media.filename,
                    "size": media.size_bytes,
                    "kind": media_kind_name(media.kind()),
                }));
            }
            Part::Location(location) => texts.push(
                format!(
                    "📍 {} {} https://www.openstreetmap.org/?mlat={}&mlon={}",
                    location.name, location.address, location.latitude, location.longitude
                )
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            ),
            other => {
                return Err(BuildError::Unsupported(format!(
                    "web chat cannot carry a {} part",
                    part_name(other)
                )));
            }
        }
    }
    let mut buttons: Vec<Value> = Vec::new();
    if let Some(interactive) = &content.interactive {
        texts.push(interactive.body.clone());
        for button in &interactive.buttons {
            buttons.push(json!({"id": button.id, "title": button.title, "url": button.url}));
        }
        if let Some(list) = &interactive.list {
            for row in list.sections.iter().flat_map(|section| &section.rows) {
                buttons.push(json!({"id": row.id, "title": row.title}));
            }
        }
    }
    let body = json!({
        "recipient": message.recipient,
        "message_id": message.message_id,
        "author": match message.author_kind {
            "agent" | "api" => "agent",
            "system" => "system",
            _ => "bot",
        },
        "text": texts.join("\n"),
        "attachments": attachments,
        "buttons": buttons,
        "reply_to": message.reply_to_provider_message_id,
    });
    internal_post(account, "messages", &body)
}

/// An agent typing indicator (`on` or off) for the visitor `recipient`.
pub fn build_typing(
    account: &ProviderAccount<'_>,
    recipient: &str,
    on: bool,
) -> Result<ProviderRequest, BuildError> {
    internal_post(
        account,
        "typing",
        &json!({"recipient": recipient, "state": if on { "on" } else { "off" }}),
    )
}

/// The agent read the visitor's messages up to the provider message id `up_to` (`wcm_…`).
pub fn build_read(
    account: &ProviderAccount<'_>,
    recipient: &str,
    up_to: &str,
) -> Result<ProviderRequest, BuildError> {
    internal_post(
        account,
        "read",
        &json!({"recipient": recipient, "up_to_message_id": up_to}),
    )
}

/// Reads ingress-webchat's answer to a send: `{id, seq}` on success, `{error: {code,
/// message}}` else.
pub(crate) fn classify_send(status: u16, headers: &http::HeaderMap, body: &[u8]) -> SendOutcome {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if success(status) {
        return match parsed
            .as_ref()
            .and_then(|value| value.get("id"))
            .and_then(Value::as_str)
        {
            Some(id) if !id.is_empty() => SendOutcome::Accepted {
                provider_message_id: id.to_owned(),
            },
            _ => unparseable(status),
        };
    }
    refused(status, headers, body, parsed.as_ref())
}

/// Reads ingress-webchat's answer to a typing or read action (a 2xx has no id to read).
pub fn classify_action(status: u16, headers: &http::HeaderMap, body: &[u8]) -> SendOutcome {
    if success(status) {
        return SendOutcome::Accepted {
            provider_message_id: String::new(),
        };
    }
    refused(status, headers, body, serde_json::from_slice(body).ok().as_ref())
}

/// A refusal: permanent with web chat's error code for 400/404/422, else by HTTP status.
fn refused(status: u16, headers: &http::HeaderMap, body: &[u8], parsed: Option<&Value>) -> SendOutcome {
    let error = parsed.and_then(|value| value.get("error"));
    match (status, error) {
        // The visitor is gone or the request can never succeed as it is.
        (400 | 404 | 422, Some(error)) => SendOutcome::Permanent {
            error: ProviderError {
                code: error
                    .get("code")
                    .and_then(Value::as_str)
                    .unwrap_or("rejected")
                    .to_owned(),
                title: String::new(),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                details: String::new(),
            },
        },
        _ => by_status(status, headers, body),
    }
}

fn media_kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image | MediaKind::Sticker => "image",
        MediaKind::Video => "video",
        MediaKind::Audio => "audio",
        MediaKind::Document | MediaKind::Unspecified => "file",
    }
}

fn part_name(part: &Part) -> &'static str {
    match part {
        Part::Text(_) => "text",
        Part::Media(_) => "media",
        Part::Location(_) => "location",
        Part::ContactCard(_) => "contact card",
        Part::Choice(_) => "choice",
        Part::Unsupported(_) => "unsupported",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::testing::{Fixture, json_body, message, parts, text};
    use switchboard_domain::Channel;

    #[test]
    fn a_send_posts_to_the_internal_api_with_the_internal_token() {
        let fixture = Fixture::new(&[(INTERNAL_TOKEN_SECRET, "tok")], &[]);
        let content = parts(vec![text("Hello there")]);
        let request = build_send(
            &fixture.account(Channel::Webchat, "x", Some("http://webchat:8080/")),
            &message("wcv_1", &content),
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            request.url,
            "http://webchat:8080/webchat/chacc_test/internal/messages"
        );
        assert_eq!(
            request
                .headers
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
            Some(&b"Bearer tok"[..])
        );
        let body = json_body(&request);
        assert_eq!(body["recipient"], "wcv_1");
        assert_eq!(body["message_id"], "msg_1");
        assert_eq!(body["author"], "agent");
        assert_eq!(body["text"], "Hello there");
    }

    #[test]
    fn without_endpoint_or_token_nothing_is_built() {
        let content = parts(vec![text("hi")]);
        let no_token = Fixture::new(&[], &[]);
        assert!(matches!(
            build_send(
                &no_token.account(Channel::Webchat, "x", Some("http://w")),
                &message("v", &content)
            ),
            Err(BuildError::MissingCredential(_))
        ));
        let token = Fixture::new(&[(INTERNAL_TOKEN_SECRET, "tok")], &[]);
        assert!(matches!(
            build_send(
                &token.account(Channel::Webchat, "x", None),
                &message("v", &content)
            ),
            Err(BuildError::MissingCredential(_))
        ));
    }

    #[test]
    fn answers_classify_into_accepted_permanent_and_retryable() {
        let headers = http::HeaderMap::new();
        assert_eq!(
            classify_send(200, &headers, br#"{"id":"wcm_1","seq":3}"#),
            SendOutcome::Accepted {
                provider_message_id: "wcm_1".to_owned()
            }
        );
        assert!(matches!(
            classify_send(404, &headers, br#"{"error":{"code":"unknown_visitor","message":"no such visitor"}}"#),
            SendOutcome::Permanent { error } if error.code == "unknown_visitor"
        ));
        assert!(matches!(
            classify_send(503, &headers, b""),
            SendOutcome::Retryable { .. }
        ));
        assert!(matches!(
            classify_send(200, &headers, b"{}"),
            SendOutcome::Permanent { .. }
        ));
        assert!(matches!(
            classify_action(204, &headers, b""),
            SendOutcome::Accepted { .. }
        ));
        assert!(matches!(
            classify_action(404, &headers, br#"{"error":{"code":"unknown_visitor","message":"gone"}}"#),
            SendOutcome::Permanent { error } if error.code == "unknown_visitor"
        ));
        assert!(matches!(
            classify_action(503, &headers, b""),
            SendOutcome::Retryable { .. }
        ));
    }
}
