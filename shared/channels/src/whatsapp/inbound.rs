//! WhatsApp webhook → [`InboundEvent`]s: one per message and per status, in payload order.

use std::time::{Duration, UNIX_EPOCH};

use switchboard_domain::Channel;
use switchboard_proto::common::v1 as common;
use switchboard_proto::events::v1 as events;
use switchboard_proto::events::v1::inbound_event::Kind;

use super::types::{self, Contact, Message, Status, Value, Webhook};
use crate::{NormalizeContext, NormalizeError, Normalized, Skipped, Verified};

const PROVIDER: &str = "whatsapp";

/// Normalizes a verified WhatsApp webhook. Items for another phone number, fields other than
/// `messages` and value-level `errors[]` are skipped with a reason; only a body that is not a
/// WhatsApp webhook at all is an error.
pub fn normalize(body: Verified<'_>, context: &NormalizeContext) -> Result<Normalized, NormalizeError> {
    let webhook: Webhook = serde_json::from_slice(&crate::normalize::json_without_nul_escapes(body.body()))
        .map_err(|source| NormalizeError::Json {
        provider: PROVIDER,
        source,
    })?;
    if webhook.object != "whatsapp_business_account" {
        return Err(NormalizeError::Envelope {
            provider: PROVIDER,
            reason: format!(
                "object is {:?}, expected \"whatsapp_business_account\"",
                webhook.object
            ),
        });
    }
    let mut normalized = Normalized::default();
    for (entry_index, entry) in webhook.entry.iter().enumerate() {
        for (change_index, change) in entry.changes.iter().enumerate() {
            let location = format!("entry[{entry_index}].changes[{change_index}]");
            if change.field != "messages" {
                normalized.skipped.push(Skipped {
                    location,
                    reason: format!("field {:?} is not handled", change.field),
                });
                continue;
            }
            let Some(value) = &change.value else {
                normalized.skipped.push(Skipped {
                    location,
                    reason: "change without value".to_owned(),
                });
                continue;
            };
            let phone_number_id = value
                .metadata
                .as_ref()
                .map_or("", |metadata| metadata.phone_number_id.as_str());
            if phone_number_id != context.external_id {
                normalized.skipped.push(Skipped {
                    location,
                    reason: format!(
                        "phone_number_id {phone_number_id:?} is not this account's ({:?})",
                        context.external_id
                    ),
                });
                continue;
            }
            normalize_value(value, context, &location, &mut normalized);
        }
    }
    Ok(normalized)
}

fn normalize_value(value: &Value, context: &NormalizeContext, location: &str, normalized: &mut Normalized) {
    for (index, message) in value.messages.iter().enumerate() {
        match message_event(message, &value.contacts, context) {
            Some(event) => normalized.events.push(event),
            None => normalized.skipped.push(Skipped {
                location: format!("{location}.messages[{index}]"),
                reason: "message without id or sender".to_owned(),
            }),
        }
    }
    for (index, status) in value.statuses.iter().enumerate() {
        match status_event(status, context) {
            Some(event) => normalized.events.push(event),
            None => normalized.skipped.push(Skipped {
                location: format!("{location}.statuses[{index}]"),
                reason: format!("status {:?} without id or with an unknown value", status.status),
            }),
        }
    }
}

/// Parses WhatsApp's string timestamps (Unix seconds).
fn timestamp(seconds: &str) -> Option<prost_types::Timestamp> {
    let seconds: u64 = seconds.trim().parse().ok()?;
    Some(UNIX_EPOCH.checked_add(Duration::from_secs(seconds))?.into())
}

fn base_event(
    context: &NormalizeContext,
    provider_timestamp: &str,
    sender: common::SenderIdentity,
) -> events::InboundEvent {
    events::InboundEvent {
        channel: Channel::Whatsapp.to_proto() as i32,
        channel_account_id: context.channel_account_id.to_string(),
        provider_event_id: String::new(),
        provider_timestamp: timestamp(provider_timestamp),
        received_at: Some(context.received_at.into()),
        sender: Some(sender),
        provider_conversation_key: String::new(),
        kind: None,
    }
}

fn sender_identity(message: &Message, contacts: &[Contact]) -> Option<common::SenderIdentity> {
    // Users with a username may come without a phone number, identified by their BSUID.
    let wa_id = message.from.as_str();
    let contact = contacts.iter().find(|contact| {
        (!wa_id.is_empty() && contact.wa_id == wa_id)
            || (!message.from_user_id.is_empty() && contact.user_id == message.from_user_id)
    });
    let business_scoped_user_id = if message.from_user_id.is_empty() {
        contact.map(|contact| contact.user_id.clone()).unwrap_or_default()
    } else {
        message.from_user_id.clone()
    };
    let channel_user_id = if wa_id.is_empty() {
        business_scoped_user_id.clone()
    } else {
        wa_id.to_owned()
    };
    if channel_user_id.is_empty() {
        return None;
    }
    let phone_e164 = if !wa_id.is_empty() && wa_id.bytes().all(|byte| byte.is_ascii_digit()) {
        format!("+{wa_id}")
    } else {
        String::new()
    };
    Some(common::SenderIdentity {
        channel_user_id,
        phone_e164,
        display_name: contact
            .and_then(|contact| contact.profile.as_ref())
            .map(|profile| profile.name.clone())
            .unwrap_or_default(),
        username: contact
            .map(|contact| contact.username.clone())
            .unwrap_or_default(),
        business_scoped_user_id,
        ..common::SenderIdentity::default()
    })
}

fn message_event(
    message: &Message,
    contacts: &[Contact],
    context: &NormalizeContext,
) -> Option<events::InboundEvent> {
    if message.id.is_empty() {
        return None;
    }
    let sender = sender_identity(message, contacts)?;
    let mut event = base_event(context, &message.timestamp, sender);
    event.kind = Some(match message.kind.as_str() {
        "reaction" => {
            let reaction = message.reaction.as_ref();
            let emoji = reaction
                .map(|reaction| reaction.emoji.clone())
                .unwrap_or_default();
            Kind::Reaction(events::Reaction {
                target_provider_message_id: reaction
                    .map(|reaction| reaction.message_id.clone())
                    .unwrap_or_default(),
                removed: emoji.is_empty(),
                emoji,
            })
        }
        "revoke" => Kind::Delete(events::MessageDelete {
            target_provider_message_id: message
                .revoke
                .as_ref()
                .map(|revoke| revoke.original_message_id.clone())
                .unwrap_or_default(),
        }),
        "edit" => {
            let edit = message.edit.as_ref();
            Kind::Edit(events::MessageEdit {
                target_provider_message_id: edit
                    .map(|edit| edit.original_message_id.clone())
                    .unwrap_or_default(),
                parts: edit
                    .and_then(|edit| edit.message.as_deref())
                    .map(content_parts)
                    .unwrap_or_default(),
                provider_message_id: message.id.clone(),
            })
        }
        _ => {
            let context_info = message.context.as_ref();
            Kind::Message(events::InboundMessage {
                provider_message_id: message.id.clone(),
                parts: content_parts(message),
                reply_to_provider_message_id: context_info
                    .map(|context| context.id.clone())
                    .unwrap_or_default(),
                forwarded: context_info
                    .is_some_and(|context| context.forwarded || context.frequently_forwarded),
                echo: false,
                referral: message.referral.as_ref().map(referral),
                email: None,
            })
        }
    });
    Some(event)
}

fn referral(referral: &types::Referral) -> events::Referral {
    events::Referral {
        source_type: referral.source_type.clone(),
        source_id: referral.source_id.clone(),
        source_url: referral.source_url.clone(),
        headline: referral.headline.clone(),
        body: referral.body.clone(),
        r#ref: String::new(),
        click_id: referral.ctwa_clid.clone(),
    }
}

fn part(part: common::content_part::Part) -> common::ContentPart {
    common::ContentPart { part: Some(part) }
}

fn unsupported(provider_type: &str, reason: String) -> Vec<common::ContentPart> {
    vec![part(common::content_part::Part::Unsupported(
        common::UnsupportedPart {
            provider_type: provider_type.to_owned(),
            reason,
        },
    ))]
}

fn media_part(kind: common::MediaKind, media: &types::Media) -> common::ContentPart {
    part(common::content_part::Part::Media(common::MediaPart {
        kind: kind as i32,
        provider_media_id: media.id.clone(),
        url: media.url.clone(),
        mime_type: media.mime_type.clone(),
        size_bytes: 0,
        filename: media.filename.clone(),
        caption: media.caption.clone(),
        sha256: media.sha256.clone(),
        voice: media.voice,
        animated: media.animated,
    }))
}

fn choice(
    kind: common::ChoiceKind,
    payload: &str,
    title: &str,
    description: &str,
) -> Vec<common::ContentPart> {
    vec![part(common::content_part::Part::Choice(common::ChoicePart {
        kind: kind as i32,
        payload: payload.to_owned(),
        title: title.to_owned(),
        description: description.to_owned(),
    }))]
}

/// The content of a message by its `type`; unknown types become an `UnsupportedPart` so that
/// nothing the customer sent disappears silently.
fn content_parts(message: &Message) -> Vec<common::ContentPart> {
    use common::MediaKind;
    let media = |kind: MediaKind, media: &Option<types::Media>| match media {
        Some(media) => vec![media_part(kind, media)],
        None => unsupported(&message.kind, "media object missing".to_owned()),
    };
    match message.kind.as_str() {
        "text" => vec![part(common::content_part::Part::Text(common::TextPart {
            body: message
                .text
                .as_ref()
                .map(|text| text.body.clone())
                .unwrap_or_default(),
            subject: String::new(),
        }))],
        "image" => media(MediaKind::Image, &message.image),
        "video" => media(MediaKind::Video, &message.video),
        "audio" => media(MediaKind::Audio, &message.audio),
        "document" => media(MediaKind::Document, &message.document),
        "sticker" => media(MediaKind::Sticker, &message.sticker),
        "location" => match &message.location {
            Some(location) => vec![part(common::content_part::Part::Location(common::LocationPart {
                latitude: location.latitude,
                longitude: location.longitude,
                name: location.name.clone(),
                address: location.address.clone(),
                url: location.url.clone(),
            }))],
            None => unsupported("location", "location object missing".to_owned()),
        },
        "contacts" => message
            .contacts
            .iter()
            .map(|contact| {
                part(common::content_part::Part::ContactCard(common::ContactCardPart {
                    formatted_name: contact
                        .name
                        .as_ref()
                        .map(|name| name.formatted_name.clone())
                        .unwrap_or_default(),
                    phones: contact.phones.iter().map(|phone| phone.phone.clone()).collect(),
                    emails: contact.emails.iter().map(|email| email.email.clone()).collect(),
                }))
            })
            .collect(),
        "interactive" => match &message.interactive {
            Some(interactive) => match (
                interactive.kind.as_str(),
                &interactive.button_reply,
                &interactive.list_reply,
            ) {
                ("button_reply", Some(reply), _) => choice(
                    common::ChoiceKind::ButtonReply,
                    &reply.id,
                    &reply.title,
                    &reply.description,
                ),
                ("list_reply", _, Some(reply)) => choice(
                    common::ChoiceKind::ListReply,
                    &reply.id,
                    &reply.title,
                    &reply.description,
                ),
                (other, _, _) => unsupported("interactive", format!("interactive type {other:?}")),
            },
            None => unsupported("interactive", "interactive object missing".to_owned()),
        },
        "button" => match &message.button {
            Some(button) => choice(
                common::ChoiceKind::TemplateButton,
                &button.payload,
                &button.text,
                "",
            ),
            None => unsupported("button", "button object missing".to_owned()),
        },
        "system" => {
            let system = message.system.as_ref();
            unsupported(
                "system",
                format!(
                    "{}: {}",
                    system.map_or("", |system| system.kind.as_str()),
                    system.map_or("", |system| system.body.as_str())
                ),
            )
        }
        other => {
            let reason = message
                .errors
                .first()
                .map(|error| error.title.clone())
                .unwrap_or_else(|| "message type not supported".to_owned());
            unsupported(other, reason)
        }
    }
}

fn status_event(status: &Status, context: &NormalizeContext) -> Option<events::InboundEvent> {
    use common::DeliveryStatus;
    if status.id.is_empty() {
        return None;
    }
    let delivery_status = match status.status.as_str() {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        // A played voice message was read.
        "read" | "played" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        _ => return None,
    };
    let sender = common::SenderIdentity {
        channel_user_id: status.recipient_id.clone(),
        phone_e164: if !status.recipient_id.is_empty()
            && status.recipient_id.bytes().all(|byte| byte.is_ascii_digit())
        {
            format!("+{}", status.recipient_id)
        } else {
            String::new()
        },
        ..common::SenderIdentity::default()
    };
    let mut event = base_event(context, &status.timestamp, sender);
    let error = status.errors.first().map(|error| common::ProviderError {
        code: match &error.code {
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::String(text) => text.clone(),
            _ => String::new(),
        },
        title: error.title.clone(),
        message: error.message.clone(),
        details: error
            .error_data
            .as_ref()
            .map(|data| data.details.clone())
            .unwrap_or_default(),
    });
    event.kind = Some(Kind::Status(events::StatusReceipt {
        provider_message_id: status.id.clone(),
        status: delivery_status as i32,
        switchboard_message_id: status.biz_opaque_callback_data.clone(),
        watermark: None,
        error,
        provider_status: status.status.clone(),
    }));
    Some(event)
}
