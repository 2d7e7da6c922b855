//! Raw MIME → event: a customer's mail becomes a message; a delivery-status notification
//! becomes a failed receipt for our original message; auto-replies are skipped.

use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};
use switchboard_domain::Channel;
use switchboard_proto::common::v1 as common;
use switchboard_proto::events::v1 as events;

use super::{AttachmentInfo, Email, bare_message_id, message_event};
use crate::{NormalizeContext, NormalizeError, Normalized, Skipped, Verified};

const PROVIDER: &str = "email";

fn text_list(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(text) => vec![bare_message_id(text)],
        HeaderValue::TextList(list) => list.iter().map(|text| bare_message_id(text)).collect(),
        _ => Vec::new(),
    }
}

/// Normalizes a raw RFC 5322 message whose transport the caller authenticated (the SMTP
/// listener's recipient check, or a verified parse webhook).
pub fn normalize_raw(body: Verified<'_>, context: &NormalizeContext) -> Result<Normalized, NormalizeError> {
    let raw = body.body();
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| NormalizeError::Envelope {
            provider: PROVIDER,
            reason: "not an RFC 5322 message".to_owned(),
        })?;
    if message.headers().is_empty() {
        return Err(NormalizeError::Envelope {
            provider: PROVIDER,
            reason: "no headers".to_owned(),
        });
    }
    let mut normalized = Normalized::default();

    if let Some(receipt) = delivery_status_receipt(&message) {
        normalized.events.push(events::InboundEvent {
            channel: Channel::Email.to_proto() as i32,
            channel_account_id: context.channel_account_id.to_string(),
            received_at: Some(context.received_at.into()),
            sender: Some(common::SenderIdentity {
                channel_user_id: receipt.1.clone(),
                email: receipt.1,
                ..common::SenderIdentity::default()
            }),
            kind: Some(events::inbound_event::Kind::Status(receipt.0)),
            ..events::InboundEvent::default()
        });
        return Ok(normalized);
    }

    let auto_submitted = message
        .header_raw("Auto-Submitted")
        .map(str::trim)
        .unwrap_or("no");
    let precedence = message
        .header_raw("Precedence")
        .map(|value| value.trim().to_lowercase());
    if !auto_submitted.eq_ignore_ascii_case("no")
        || matches!(precedence.as_deref(), Some("bulk" | "list" | "junk"))
        || message.header_raw("X-Autoreply").is_some()
    {
        normalized.skipped.push(Skipped {
            location: "headers".to_owned(),
            reason: "automatic reply (Auto-Submitted / Precedence / X-Autoreply): not answered, to avoid mail loops".to_owned(),
        });
        return Ok(normalized);
    }

    let from = message.from().and_then(|address| address.first());
    let from_address = from
        .and_then(|address| address.address())
        .unwrap_or("")
        .to_owned();
    if from_address.is_empty() {
        return Err(NormalizeError::Envelope {
            provider: PROVIDER,
            reason: "no From address".to_owned(),
        });
    }
    // Without a Message-ID, a hash of the raw message keeps retries deduplicated.
    let message_id = message
        .message_id()
        .map(bare_message_id)
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(raw))));
    let attachments = message
        .attachments()
        .map(|part| AttachmentInfo {
            filename: part.attachment_name().unwrap_or("attachment").to_owned(),
            content_type: super::mime_type(part).unwrap_or_else(|| "application/octet-stream".to_owned()),
            size: part.len() as u64,
        })
        .collect();
    let email = Email {
        message_id,
        in_reply_to: text_list(message.in_reply_to())
            .into_iter()
            .next()
            .unwrap_or_default(),
        references: text_list(message.references()),
        from_address,
        from_name: from.and_then(|address| address.name()).unwrap_or("").to_owned(),
        subject: message.subject().unwrap_or("").to_owned(),
        // Text preferred; an HTML-only mail is reduced to text by mail-parser.
        text: message
            .body_text(0)
            .map(|text| text.into_owned())
            .unwrap_or_default(),
        date_seconds: message.date().map(mail_parser::DateTime::to_timestamp),
        attachments,
    };
    normalized.events.push(message_event(email, context));
    Ok(normalized)
}

/// A `multipart/report; report-type=delivery-status` bounce (RFC 3464): the failed receipt
/// for the original message and the recipient that failed, when it is a permanent failure.
fn delivery_status_receipt(message: &mail_parser::Message<'_>) -> Option<(events::StatusReceipt, String)> {
    let content_type = message.content_type()?;
    let is_report = content_type.ctype().eq_ignore_ascii_case("multipart")
        && content_type
            .subtype()
            .is_some_and(|subtype| subtype.eq_ignore_ascii_case("report"))
        && content_type
            .attribute("report-type")
            .is_some_and(|report| report.eq_ignore_ascii_case("delivery-status"));
    if !is_report {
        return None;
    }
    let mut action = String::new();
    let mut status = String::new();
    let mut diagnostic = String::new();
    let mut recipient = String::new();
    let mut original_id = String::new();
    for part in &message.parts {
        let Some(part_type) = part.content_type() else {
            continue;
        };
        let kind = format!("{}/{}", part_type.ctype(), part_type.subtype().unwrap_or("")).to_lowercase();
        if kind == "message/delivery-status" {
            let text = String::from_utf8_lossy(part.contents()).into_owned();
            for line in text.lines() {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                let value = value.trim();
                match name.trim().to_lowercase().as_str() {
                    "action" => action = value.to_lowercase(),
                    "status" => status = value.to_owned(),
                    "diagnostic-code" => diagnostic = value.to_owned(),
                    "final-recipient" | "original-recipient" if recipient.is_empty() => {
                        recipient = value.rsplit(';').next().unwrap_or(value).trim().to_lowercase();
                    }
                    _ => {}
                }
            }
        } else if kind == "text/rfc822-headers" || kind == "message/rfc822" {
            let headers = match part.message() {
                Some(original) => original.message_id().map(bare_message_id),
                None => String::from_utf8_lossy(part.contents()).lines().find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.trim()
                        .eq_ignore_ascii_case("message-id")
                        .then(|| bare_message_id(value))
                }),
            };
            if let Some(id) = headers {
                original_id = id;
            }
        }
    }
    // Only permanent failures fail a message; delayed (4.x.x) notices are not final.
    if action != "failed" || original_id.is_empty() {
        return None;
    }
    Some((
        events::StatusReceipt {
            provider_message_id: original_id,
            status: common::DeliveryStatus::Failed as i32,
            error: Some(common::ProviderError {
                code: status,
                title: "bounced".to_owned(),
                message: diagnostic,
                details: String::new(),
            }),
            provider_status: "bounced".to_owned(),
            ..events::StatusReceipt::default()
        },
        recipient,
    ))
}
