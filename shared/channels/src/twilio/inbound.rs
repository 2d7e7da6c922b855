//! Twilio form webhooks → [`InboundEvent`]s: an inbound SMS/MMS becomes a message (plus a
//! consent event for STOP/START/HELP keywords); a status callback becomes a receipt.

use std::collections::BTreeMap;

use switchboard_domain::Channel;
use switchboard_proto::common::v1 as common;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::events::v1 as events;
use switchboard_proto::events::v1::inbound_event::Kind;

use crate::{NormalizeContext, NormalizeError, Normalized, Skipped, Verified};

const PROVIDER: &str = "twilio";

/// Twilio's default opt-out, opt-in and help keywords (whole message, any case).
const OPT_OUT: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "REVOKE",
];
const OPT_IN: &[&str] = &["START", "YES", "UNSTOP"];
const HELP: &[&str] = &["HELP", "INFO"];

/// Most media a Twilio message can carry (`MediaUrl0`…`MediaUrl9`).
const MAX_MEDIA: usize = 10;

/// Normalizes a verified Twilio webhook (inbound message or status callback).
pub fn normalize(body: Verified<'_>, context: &NormalizeContext) -> Result<Normalized, NormalizeError> {
    let pairs: Vec<(String, String)> = super::parse_form(body.body())
        .ok_or_else(|| NormalizeError::Envelope {
            provider: PROVIDER,
            reason: "body is not application/x-www-form-urlencoded UTF-8".to_owned(),
        })?
        .into_iter()
        // `%00` decodes to a NUL, which no store can hold (the signature was checked on the
        // original pairs).
        .map(|(name, value)| (name, crate::normalize::without_nul(value)))
        .collect();
    // A repeated field keeps its first value; Twilio sends each once.
    let mut form: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, value) in &pairs {
        form.entry(name.as_str()).or_insert(value.as_str());
    }
    let field = |name: &str| form.get(name).copied().unwrap_or("");
    let message_sid = field("MessageSid");
    if message_sid.is_empty() {
        return Err(NormalizeError::Envelope {
            provider: PROVIDER,
            reason: "no MessageSid".to_owned(),
        });
    }
    let mut normalized = Normalized::default();
    if let Some(status) = form.get("MessageStatus") {
        // Status callbacks are about our outbound message: the customer is `To`.
        if !belongs_to_account(field("From"), field("MessagingServiceSid"), context) {
            normalized.skipped.push(foreign(field("From"), context));
            return Ok(normalized);
        }
        match status_receipt(status, message_sid, field("ErrorCode"), field("ErrorMessage")) {
            Some(receipt) => {
                let mut event = base_event(context, field("To"));
                event.kind = Some(Kind::Status(receipt));
                normalized.events.push(event);
            }
            None => normalized.skipped.push(Skipped {
                location: "MessageStatus".to_owned(),
                reason: format!("status {status:?} carries no delivery progress"),
            }),
        }
        return Ok(normalized);
    }

    if !belongs_to_account(field("To"), field("MessagingServiceSid"), context) {
        normalized.skipped.push(foreign(field("To"), context));
        return Ok(normalized);
    }
    let sender = field("From");
    let mut parts = Vec::new();
    let text = field("Body");
    if !text.is_empty() {
        parts.push(part(Part::Text(common::TextPart {
            body: text.to_owned(),
            subject: String::new(),
        })));
    }
    let media_count: usize = field("NumMedia").parse().unwrap_or(0);
    for index in 0..media_count.min(MAX_MEDIA) {
        let url = field(&format!("MediaUrl{index}"));
        if url.is_empty() {
            continue;
        }
        let mime_type = field(&format!("MediaContentType{index}"));
        parts.push(part(Part::Media(common::MediaPart {
            kind: crate::normalize::media_kind_of_mime(mime_type) as i32,
            url: url.to_owned(),
            mime_type: mime_type.to_owned(),
            ..common::MediaPart::default()
        })));
    }
    let mut event = base_event(context, sender);
    if let Some(sender_identity) = event.sender.as_mut() {
        sender_identity.display_name = field("ProfileName").to_owned();
    }
    event.kind = Some(Kind::Message(events::InboundMessage {
        provider_message_id: message_sid.to_owned(),
        parts,
        reply_to_provider_message_id: field("OriginalRepliedMessageSid").to_owned(),
        ..events::InboundMessage::default()
    }));
    normalized.events.push(event);

    if let Some(action) = consent_action(text) {
        let mut consent = base_event(context, sender);
        consent.provider_event_id = format!("{message_sid}:consent");
        consent.kind = Some(Kind::Consent(events::ConsentChange {
            action: action as i32,
            keyword: text.trim().to_uppercase(),
        }));
        normalized.events.push(consent);
    }
    Ok(normalized)
}

fn part(part: Part) -> common::ContentPart {
    common::ContentPart { part: Some(part) }
}

/// The webhook is for this account when its number (or messaging service) is the account's.
fn belongs_to_account(number: &str, messaging_service: &str, context: &NormalizeContext) -> bool {
    let number = number.strip_prefix("whatsapp:").unwrap_or(number);
    number == context.external_id
        || (!messaging_service.is_empty() && messaging_service == context.external_id)
}

fn foreign(number: &str, context: &NormalizeContext) -> Skipped {
    Skipped {
        location: "To".to_owned(),
        reason: format!(
            "number {number:?} is not this account's ({:?})",
            context.external_id
        ),
    }
}

fn base_event(context: &NormalizeContext, customer: &str) -> events::InboundEvent {
    let address = customer.strip_prefix("whatsapp:").unwrap_or(customer);
    let is_phone = address.starts_with('+') && address[1..].bytes().all(|byte| byte.is_ascii_digit());
    events::InboundEvent {
        channel: Channel::Sms.to_proto() as i32,
        channel_account_id: context.channel_account_id.to_string(),
        // Twilio's payload carries no timestamp; ordering falls back to receipt time.
        provider_timestamp: None,
        received_at: Some(context.received_at.into()),
        sender: Some(common::SenderIdentity {
            channel_user_id: address.to_owned(),
            phone_e164: if is_phone {
                address.to_owned()
            } else {
                String::new()
            },
            ..common::SenderIdentity::default()
        }),
        ..events::InboundEvent::default()
    }
}

fn consent_action(text: &str) -> Option<events::ConsentAction> {
    let keyword = text.trim().to_uppercase();
    if OPT_OUT.contains(&keyword.as_str()) {
        Some(events::ConsentAction::OptOut)
    } else if OPT_IN.contains(&keyword.as_str()) {
        Some(events::ConsentAction::OptIn)
    } else if HELP.contains(&keyword.as_str()) {
        Some(events::ConsentAction::Help)
    } else {
        None
    }
}

fn status_receipt(
    status: &str,
    message_sid: &str,
    error_code: &str,
    error_message: &str,
) -> Option<events::StatusReceipt> {
    use common::DeliveryStatus;
    let delivery_status = match status {
        "accepted" | "scheduled" | "queued" => DeliveryStatus::Queued,
        "sending" => DeliveryStatus::Sending,
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "undelivered" | "failed" | "canceled" => DeliveryStatus::Failed,
        _ => return None,
    };
    let error = (!error_code.is_empty()).then(|| common::ProviderError {
        code: error_code.to_owned(),
        title: String::new(),
        message: error_message.to_owned(),
        details: String::new(),
    });
    Some(events::StatusReceipt {
        provider_message_id: message_sid.to_owned(),
        status: delivery_status as i32,
        error,
        provider_status: status.to_owned(),
        ..events::StatusReceipt::default()
    })
}
