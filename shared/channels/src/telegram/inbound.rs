//! Telegram `Update` → [`InboundEvent`]. Message ids are unique per chat only, so the provider
//! message id is `<chat id>:<message id>`; the `update_id` is the delivery id for replays.

use std::time::{Duration, UNIX_EPOCH};

use switchboard_domain::Channel;
use switchboard_proto::common::v1 as common;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::events::v1 as events;
use switchboard_proto::events::v1::inbound_event::Kind;

use super::types::{self, Message, Update, User};
use crate::{NormalizeContext, NormalizeError, Normalized, Skipped, Verified};

const PROVIDER: &str = "telegram";

/// Normalizes a verified Telegram update (one per webhook). Update types Switchboard does not
/// handle (channel posts, polls, chat member changes in groups) are skipped with a reason.
pub fn normalize(body: Verified<'_>, context: &NormalizeContext) -> Result<Normalized, NormalizeError> {
    let update: Update = serde_json::from_slice(&crate::normalize::json_without_nul_escapes(body.body()))
        .map_err(|source| NormalizeError::Json {
            provider: PROVIDER,
            source,
        })?;
    let mut normalized = Normalized::default();
    let skip = |reason: String| Skipped {
        location: format!("update {}", update.update_id),
        reason,
    };
    let event = if let Some(message) = &update.message {
        message_event(message, context)
    } else if let Some(edited) = &update.edited_message {
        edit_event(edited, context)
    } else if let Some(callback) = &update.callback_query {
        Some(callback_event(callback, context))
    } else if let Some(reaction) = &update.message_reaction {
        reaction_event(reaction, context)
    } else if let Some(member) = &update.my_chat_member {
        membership_event(member, context)
    } else {
        None
    };
    match event {
        Some(mut event) => {
            event.provider_event_id = update.update_id.to_string();
            normalized.events.push(event);
        }
        None => normalized
            .skipped
            .push(skip("update type not handled (or sent by a bot)".to_owned())),
    }
    Ok(normalized)
}

fn timestamp(seconds: i64) -> Option<prost_types::Timestamp> {
    let seconds = u64::try_from(seconds).ok().filter(|seconds| *seconds > 0)?;
    Some((UNIX_EPOCH + Duration::from_secs(seconds)).into())
}

fn sender(user: &User) -> common::SenderIdentity {
    let display_name = format!("{} {}", user.first_name, user.last_name)
        .trim()
        .to_owned();
    common::SenderIdentity {
        channel_user_id: user.id.to_string(),
        display_name,
        username: user.username.clone(),
        locale: user.language_code.clone(),
        ..common::SenderIdentity::default()
    }
}

fn base_event(context: &NormalizeContext, user: &User, chat_id: i64, date: i64) -> events::InboundEvent {
    events::InboundEvent {
        channel: Channel::Telegram.to_proto() as i32,
        channel_account_id: context.channel_account_id.to_string(),
        provider_timestamp: timestamp(date),
        received_at: Some(context.received_at.into()),
        sender: Some(sender(user)),
        provider_conversation_key: chat_id.to_string(),
        ..events::InboundEvent::default()
    }
}

fn message_key(chat_id: i64, message_id: i64) -> String {
    format!("{chat_id}:{message_id}")
}

fn human_author(message: &Message) -> Option<&User> {
    message.from.as_ref().filter(|user| !user.is_bot)
}

fn message_event(message: &Message, context: &NormalizeContext) -> Option<events::InboundEvent> {
    let user = human_author(message)?;
    let mut event = base_event(context, user, message.chat.id, message.date);
    let referral = message
        .text
        .as_deref()
        .and_then(|text| text.strip_prefix("/start "))
        .map(|payload| events::Referral {
            source_type: "telegram_start".to_owned(),
            r#ref: payload.trim().to_owned(),
            ..events::Referral::default()
        });
    event.kind = Some(Kind::Message(events::InboundMessage {
        provider_message_id: message_key(message.chat.id, message.message_id),
        parts: content_parts(message),
        reply_to_provider_message_id: message
            .reply_to_message
            .as_ref()
            .map(|quoted| message_key(quoted.chat.id, quoted.message_id))
            .unwrap_or_default(),
        forwarded: message.forward_origin.is_some(),
        referral,
        ..events::InboundMessage::default()
    }));
    Some(event)
}

fn edit_event(message: &Message, context: &NormalizeContext) -> Option<events::InboundEvent> {
    let user = human_author(message)?;
    let edited_at = message.edit_date.unwrap_or(message.date);
    let mut event = base_event(context, user, message.chat.id, edited_at);
    event.kind = Some(Kind::Edit(events::MessageEdit {
        target_provider_message_id: message_key(message.chat.id, message.message_id),
        parts: content_parts(message),
        provider_message_id: format!(
            "{}:edit:{edited_at}",
            message_key(message.chat.id, message.message_id)
        ),
    }));
    Some(event)
}

fn callback_event(callback: &types::CallbackQuery, context: &NormalizeContext) -> events::InboundEvent {
    let chat_id = callback
        .message
        .as_ref()
        .map_or(callback.from.id, |message| message.chat.id);
    // The tap itself has no date (0 = none); the receipt time orders it.
    let mut event = base_event(context, &callback.from, chat_id, 0);
    event.kind = Some(Kind::Message(events::InboundMessage {
        provider_message_id: format!("callback:{}", callback.id),
        parts: vec![part(Part::Choice(common::ChoicePart {
            kind: common::ChoiceKind::CallbackQuery as i32,
            payload: callback.data.clone(),
            ..common::ChoicePart::default()
        }))],
        reply_to_provider_message_id: callback
            .message
            .as_ref()
            .map(|message| message_key(message.chat.id, message.message_id))
            .unwrap_or_default(),
        ..events::InboundMessage::default()
    }));
    event
}

fn reaction_event(
    reaction: &types::MessageReaction,
    context: &NormalizeContext,
) -> Option<events::InboundEvent> {
    // Anonymous (chat-level) reactions have no user to attribute them to.
    let user = reaction.user.as_ref()?;
    let mut event = base_event(context, user, reaction.chat.id, reaction.date);
    let emoji = reaction
        .new_reaction
        .iter()
        .find(|reaction| reaction.kind == "emoji")
        .map(|reaction| reaction.emoji.clone())
        .unwrap_or_default();
    event.kind = Some(Kind::Reaction(events::Reaction {
        target_provider_message_id: message_key(reaction.chat.id, reaction.message_id),
        removed: reaction.new_reaction.is_empty(),
        emoji,
    }));
    Some(event)
}

fn membership_event(
    member: &types::ChatMemberUpdated,
    context: &NormalizeContext,
) -> Option<events::InboundEvent> {
    let action = match (
        member.old_chat_member.status.as_str(),
        member.new_chat_member.status.as_str(),
    ) {
        (_, "kicked") => events::ConsentAction::BotBlocked,
        ("kicked", "member") => events::ConsentAction::BotUnblocked,
        _ => return None,
    };
    let mut event = base_event(context, &member.from, member.chat.id, member.date);
    event.kind = Some(Kind::Consent(events::ConsentChange {
        action: action as i32,
        keyword: String::new(),
    }));
    Some(event)
}

fn part(part: Part) -> common::ContentPart {
    common::ContentPart { part: Some(part) }
}

fn file_part(kind: common::MediaKind, file: &types::File, caption: &str) -> common::ContentPart {
    part(Part::Media(common::MediaPart {
        kind: kind as i32,
        provider_media_id: file.file_id.clone(),
        mime_type: file.mime_type.clone(),
        size_bytes: file.file_size,
        filename: file.file_name.clone(),
        caption: caption.to_owned(),
        ..common::MediaPart::default()
    }))
}

fn content_parts(message: &Message) -> Vec<common::ContentPart> {
    use common::MediaKind;
    let caption = message.caption.as_deref().unwrap_or("");
    let mut parts = Vec::new();
    if let Some(text) = &message.text {
        parts.push(part(Part::Text(common::TextPart {
            body: text.clone(),
            subject: String::new(),
        })));
    }
    // Telegram sends every size of a photo; the largest is the original.
    if let Some(largest) = message
        .photo
        .iter()
        .max_by_key(|size| (size.file_size, size.width * size.height))
    {
        parts.push(part(Part::Media(common::MediaPart {
            kind: MediaKind::Image as i32,
            provider_media_id: largest.file_id.clone(),
            size_bytes: largest.file_size,
            caption: caption.to_owned(),
            ..common::MediaPart::default()
        })));
    }
    if let Some(document) = &message.document {
        parts.push(file_part(MediaKind::Document, document, caption));
    }
    if let Some(voice) = &message.voice {
        let mut voice_part = file_part(MediaKind::Audio, voice, caption);
        if let Some(Part::Media(media)) = voice_part.part.as_mut() {
            media.voice = true;
        }
        parts.push(voice_part);
    }
    if let Some(audio) = &message.audio {
        parts.push(file_part(MediaKind::Audio, audio, caption));
    }
    for video in [&message.video, &message.video_note, &message.animation]
        .into_iter()
        .flatten()
    {
        parts.push(file_part(MediaKind::Video, video, caption));
    }
    if let Some(sticker) = &message.sticker {
        parts.push(part(Part::Media(common::MediaPart {
            kind: MediaKind::Sticker as i32,
            provider_media_id: sticker.file_id.clone(),
            size_bytes: sticker.file_size,
            animated: sticker.is_animated || sticker.is_video,
            ..common::MediaPart::default()
        })));
    }
    if let Some(venue) = &message.venue {
        parts.push(part(Part::Location(common::LocationPart {
            latitude: venue.location.latitude,
            longitude: venue.location.longitude,
            name: venue.title.clone(),
            address: venue.address.clone(),
            url: String::new(),
        })));
    } else if let Some(location) = &message.location {
        parts.push(part(Part::Location(common::LocationPart {
            latitude: location.latitude,
            longitude: location.longitude,
            ..common::LocationPart::default()
        })));
    }
    if let Some(contact) = &message.contact {
        parts.push(part(Part::ContactCard(common::ContactCardPart {
            formatted_name: format!("{} {}", contact.first_name, contact.last_name)
                .trim()
                .to_owned(),
            phones: vec![contact.phone_number.clone()],
            emails: Vec::new(),
        })));
    }
    if parts.is_empty() {
        parts.push(part(Part::Unsupported(common::UnsupportedPart {
            provider_type: "message".to_owned(),
            reason: "no content Switchboard understands (poll, dice, game, service message…)".to_owned(),
        })));
    }
    parts
}
