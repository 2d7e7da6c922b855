//! Messenger / Instagram messaging events → [`InboundEvent`]s, one per `messaging[]` item.

use std::time::{Duration, UNIX_EPOCH};

use switchboard_domain::Channel;
use switchboard_proto::common::v1 as common;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::events::v1 as events;
use switchboard_proto::events::v1::inbound_event::Kind;

use super::types::{self, Event, Webhook};
use crate::{NormalizeContext, NormalizeError, Normalized, Skipped, Verified};

/// Which Meta messaging platform a webhook comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Platform {
    Messenger,
    Instagram,
}

impl Platform {
    fn object(self) -> &'static str {
        match self {
            Self::Messenger => "page",
            Self::Instagram => "instagram",
        }
    }

    fn channel(self) -> Channel {
        match self {
            Self::Messenger => Channel::Messenger,
            Self::Instagram => Channel::Instagram,
        }
    }

    fn provider(self) -> &'static str {
        match self {
            Self::Messenger => "messenger",
            Self::Instagram => "instagram",
        }
    }
}

/// Normalizes a verified Messenger or Instagram webhook.
pub(crate) fn normalize_platform(
    body: Verified<'_>,
    context: &NormalizeContext,
    platform: Platform,
) -> Result<Normalized, NormalizeError> {
    let provider = platform.provider();
    let webhook: Webhook = serde_json::from_slice(&crate::normalize::json_without_nul_escapes(body.body()))
        .map_err(|source| NormalizeError::Json { provider, source })?;
    if webhook.object != platform.object() {
        return Err(NormalizeError::Envelope {
            provider,
            reason: format!("object is {:?}, expected {:?}", webhook.object, platform.object()),
        });
    }
    let mut normalized = Normalized::default();
    for (entry_index, entry) in webhook.entry.iter().enumerate() {
        let location = format!("entry[{entry_index}]");
        if entry.id != context.external_id {
            normalized.skipped.push(Skipped {
                location,
                reason: format!(
                    "entry id {:?} is not this account's ({:?})",
                    entry.id, context.external_id
                ),
            });
            continue;
        }
        if !entry.standby.is_empty() {
            normalized.skipped.push(Skipped {
                location: format!("{location}.standby"),
                reason: "standby events: another app controls these threads".to_owned(),
            });
        }
        for (index, event) in entry.messaging.iter().enumerate() {
            let events = event_to_inbound(event, context, platform);
            if events.is_empty() {
                normalized.skipped.push(Skipped {
                    location: format!("{location}.messaging[{index}]"),
                    reason: "event type not handled".to_owned(),
                });
            }
            normalized.events.extend(events);
        }
    }
    Ok(normalized)
}

fn millis(value: i64) -> Option<prost_types::Timestamp> {
    let value = u64::try_from(value).ok().filter(|value| *value > 0)?;
    Some((UNIX_EPOCH + Duration::from_millis(value)).into())
}

fn base_event(
    context: &NormalizeContext,
    platform: Platform,
    customer: &str,
    timestamp: i64,
) -> events::InboundEvent {
    events::InboundEvent {
        channel: platform.channel().to_proto() as i32,
        channel_account_id: context.channel_account_id.to_string(),
        provider_timestamp: millis(timestamp),
        received_at: Some(context.received_at.into()),
        sender: Some(common::SenderIdentity {
            channel_user_id: customer.to_owned(),
            ..common::SenderIdentity::default()
        }),
        ..events::InboundEvent::default()
    }
}

fn part(part: Part) -> common::ContentPart {
    common::ContentPart { part: Some(part) }
}

fn referral(referral: &types::Referral) -> events::Referral {
    events::Referral {
        source_type: referral.source.to_lowercase(),
        source_id: referral.ad_id.clone(),
        r#ref: referral.reference.clone(),
        ..events::Referral::default()
    }
}

fn event_to_inbound(
    event: &Event,
    context: &NormalizeContext,
    platform: Platform,
) -> Vec<events::InboundEvent> {
    let customer = event.sender.id.as_str();
    let with_kind = |customer: &str, kind: Kind| {
        let mut inbound = base_event(context, platform, customer, event.timestamp);
        inbound.kind = Some(kind);
        inbound
    };
    if let Some(message) = &event.message {
        if message.is_echo {
            // Sent by the page (from Switchboard or another tool): the customer is the recipient.
            let mut echo = message_kind(message);
            if let Kind::Message(inner) = &mut echo {
                inner.echo = true;
            }
            return vec![with_kind(&event.recipient.id, echo)];
        }
        if message.is_deleted {
            return vec![with_kind(
                customer,
                Kind::Delete(events::MessageDelete {
                    target_provider_message_id: message.mid.clone(),
                }),
            )];
        }
        return vec![with_kind(customer, message_kind(message))];
    }
    if let Some(postback) = &event.postback {
        let provider_message_id = if postback.mid.is_empty() {
            format!("postback:{customer}:{}", event.timestamp)
        } else {
            postback.mid.clone()
        };
        return vec![with_kind(
            customer,
            Kind::Message(events::InboundMessage {
                provider_message_id,
                parts: vec![part(Part::Choice(common::ChoicePart {
                    kind: common::ChoiceKind::Postback as i32,
                    payload: postback.payload.clone(),
                    title: postback.title.clone(),
                    description: String::new(),
                }))],
                referral: postback.referral.as_ref().map(referral),
                ..events::InboundMessage::default()
            }),
        )];
    }
    if let Some(reaction) = &event.reaction {
        let removed = reaction.action == "unreact";
        return vec![with_kind(
            customer,
            Kind::Reaction(events::Reaction {
                target_provider_message_id: reaction.mid.clone(),
                emoji: if removed {
                    String::new()
                } else {
                    reaction.emoji.clone()
                },
                removed,
            }),
        )];
    }
    if let Some(edit) = &event.message_edit {
        return vec![with_kind(
            customer,
            Kind::Edit(events::MessageEdit {
                target_provider_message_id: edit.mid.clone(),
                parts: vec![part(Part::Text(common::TextPart {
                    body: edit.text.clone(),
                    subject: String::new(),
                }))],
                provider_message_id: format!("{}:edit:{}", edit.mid, edit.num_edit),
            }),
        )];
    }
    if let Some(delivery) = &event.delivery {
        // Everything sent before the watermark is delivered; `mids` (when present) name some of them.
        let receipt = |mid: &str| {
            with_kind(
                customer,
                Kind::Status(events::StatusReceipt {
                    provider_message_id: mid.to_owned(),
                    status: common::DeliveryStatus::Delivered as i32,
                    watermark: millis(delivery.watermark),
                    provider_status: "delivery".to_owned(),
                    ..events::StatusReceipt::default()
                }),
            )
        };
        if delivery.mids.is_empty() {
            return vec![receipt("")];
        }
        return delivery.mids.iter().map(|mid| receipt(mid)).collect();
    }
    if let Some(read) = &event.read {
        // Messenger: a watermark; Instagram (`messaging_seen`): one message id.
        return vec![with_kind(
            customer,
            Kind::Status(events::StatusReceipt {
                provider_message_id: read.mid.clone(),
                status: common::DeliveryStatus::Read as i32,
                watermark: millis(read.watermark),
                provider_status: "read".to_owned(),
                ..events::StatusReceipt::default()
            }),
        )];
    }
    if let Some(found) = &event.referral {
        return vec![with_kind(customer, Kind::Referral(referral(found)))];
    }
    Vec::new()
}

fn message_kind(message: &types::Message) -> Kind {
    let mut parts = Vec::new();
    if let Some(text) = &message.text {
        match &message.quick_reply {
            Some(quick_reply) => parts.push(part(Part::Choice(common::ChoicePart {
                kind: common::ChoiceKind::QuickReply as i32,
                payload: quick_reply.payload.clone(),
                title: text.clone(),
                description: String::new(),
            }))),
            None => parts.push(part(Part::Text(common::TextPart {
                body: text.clone(),
                subject: String::new(),
            }))),
        }
    }
    for attachment in &message.attachments {
        let url = attachment
            .payload
            .as_ref()
            .map(|payload| payload.url.clone())
            .unwrap_or_default();
        let media_kind = match attachment.kind.as_str() {
            "image" => Some(common::MediaKind::Image),
            "video" => Some(common::MediaKind::Video),
            "audio" => Some(common::MediaKind::Audio),
            "file" => Some(common::MediaKind::Document),
            "sticker" => Some(common::MediaKind::Sticker),
            _ => None,
        };
        match media_kind {
            Some(kind) => parts.push(part(Part::Media(common::MediaPart {
                kind: kind as i32,
                url,
                ..common::MediaPart::default()
            }))),
            None => parts.push(part(Part::Unsupported(common::UnsupportedPart {
                provider_type: attachment.kind.clone(),
                reason: format!("attachment type {:?} is kept as a link: {url}", attachment.kind),
            }))),
        }
    }
    if message.is_unsupported || parts.is_empty() {
        parts.push(part(Part::Unsupported(common::UnsupportedPart {
            provider_type: "message".to_owned(),
            reason: "message type not supported by the platform API".to_owned(),
        })));
    }
    let reply_to = message.reply_to.as_ref();
    let story_referral = reply_to
        .and_then(|reply| reply.story.as_ref())
        .map(|story| events::Referral {
            source_type: "ig_story".to_owned(),
            source_id: story.id.clone(),
            source_url: story.url.clone(),
            ..events::Referral::default()
        });
    Kind::Message(events::InboundMessage {
        provider_message_id: message.mid.clone(),
        parts,
        reply_to_provider_message_id: reply_to.map(|reply| reply.mid.clone()).unwrap_or_default(),
        referral: story_referral.or_else(|| message.referral.as_ref().map(referral)),
        ..events::InboundMessage::default()
    })
}
