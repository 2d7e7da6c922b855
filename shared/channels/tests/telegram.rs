//! Telegram updates in their real shape through the secret-token check and normalization.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, UNIX_EPOCH};

use switchboard_channels::{NormalizeContext, NormalizeError, Normalized, telegram};
use switchboard_domain::ChannelAccountId;
use switchboard_proto::common::v1 as common;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::events::v1 as events;
use switchboard_proto::events::v1::inbound_event::Kind;

const SECRET: &str = "tg-webhook-secret_123";

fn normalize(body: &str) -> Result<Normalized, NormalizeError> {
    let mut headers = http::HeaderMap::new();
    headers.insert(telegram::SECRET_TOKEN_HEADER, SECRET.parse().unwrap());
    let verified = telegram::verify_secret_token(&headers, body.as_bytes(), SECRET.as_bytes()).unwrap();
    let context = NormalizeContext {
        channel_account_id: ChannelAccountId::parse("chacc_tg-bot").unwrap(),
        external_id: "7000000001".to_owned(),
        received_at: UNIX_EPOCH + Duration::from_secs(1_750_000_000),
    };
    telegram::normalize(verified, &context)
}

fn single(body: &str) -> events::InboundEvent {
    let normalized = normalize(body).unwrap();
    assert!(normalized.skipped.is_empty(), "{normalized:?}");
    let [event] = normalized.events.as_slice() else {
        panic!("{normalized:?}")
    };
    event.clone()
}

fn message(event: &events::InboundEvent) -> &events::InboundMessage {
    match &event.kind {
        Some(Kind::Message(message)) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn e8a_text_from_a_private_chat() {
    let event = single(
        r#"{"update_id":712345678,"message":{"message_id":4821,"from":{"id":123456789,"is_bot":false,"first_name":"Ana","last_name":"Silva","username":"anasilva","language_code":"pt-br"},"chat":{"id":123456789,"first_name":"Ana","type":"private"},"date":1718002000,"text":"Olá, preciso de ajuda"}}"#,
    );
    assert_eq!(event.channel, common::Channel::Telegram as i32);
    assert_eq!(event.provider_event_id, "712345678");
    assert_eq!(event.provider_conversation_key, "123456789");
    assert_eq!(event.provider_timestamp.as_ref().unwrap().seconds, 1_718_002_000);
    let sender = event.sender.as_ref().unwrap();
    assert_eq!(sender.channel_user_id, "123456789");
    assert_eq!(
        (
            sender.display_name.as_str(),
            sender.username.as_str(),
            sender.locale.as_str()
        ),
        ("Ana Silva", "anasilva", "pt-br")
    );
    let message = message(&event);
    assert_eq!(message.provider_message_id, "123456789:4821");
    assert_eq!(
        message.parts[0].part,
        Some(Part::Text(common::TextPart {
            body: "Olá, preciso de ajuda".to_owned(),
            subject: String::new()
        }))
    );
}

#[test]
fn e8b_photo_replying_to_the_bot_takes_the_largest_size() {
    let event = single(
        r#"{"update_id":712345679,"message":{"message_id":4822,"from":{"id":123456789,"is_bot":false,"first_name":"Ana"},"chat":{"id":123456789,"first_name":"Ana","type":"private"},"date":1718002060,"reply_to_message":{"message_id":4820,"from":{"id":7000000001,"is_bot":true,"first_name":"AcmeBot"},"chat":{"id":123456789,"type":"private"},"date":1718001990,"text":"Can you send a photo?"},"photo":[{"file_id":"AgACAgQAAxkBAAIBsmZ0small","file_unique_id":"AQADsmall","file_size":1320,"width":90,"height":67},{"file_id":"AgACAgQAAxkBAAIBsmZ0large","file_unique_id":"AQADlarge","file_size":84213,"width":1280,"height":960}],"caption":"Aqui está"}}"#,
    );
    let message = message(&event);
    assert_eq!(message.reply_to_provider_message_id, "123456789:4820");
    let [part] = message.parts.as_slice() else {
        panic!()
    };
    let Some(Part::Media(photo)) = &part.part else {
        panic!()
    };
    assert_eq!(photo.provider_media_id, "AgACAgQAAxkBAAIBsmZ0large");
    assert_eq!((photo.size_bytes, photo.caption.as_str()), (84_213, "Aqui está"));
}

#[test]
fn edits_callbacks_reactions_and_media_normalize() {
    let edit = single(
        r#"{"update_id":1,"edited_message":{"message_id":4821,"from":{"id":42,"is_bot":false,"first_name":"Ana"},"chat":{"id":42,"type":"private"},"date":1718002000,"edit_date":1718002100,"text":"Olá!"}}"#,
    );
    let Some(Kind::Edit(edit)) = &edit.kind else {
        panic!()
    };
    assert_eq!(edit.target_provider_message_id, "42:4821");
    assert_eq!(edit.provider_message_id, "42:4821:edit:1718002100");

    let callback = single(
        r#"{"update_id":2,"callback_query":{"id":"4382bfdwdsb323b2d9","from":{"id":42,"is_bot":false,"first_name":"Ana"},"message":{"message_id":4830,"from":{"id":7000000001,"is_bot":true,"first_name":"AcmeBot"},"chat":{"id":42,"type":"private"},"date":1718002200,"text":"Pick one"},"chat_instance":"-123","data":"plan:pro"}}"#,
    );
    let tap = message(&callback);
    assert_eq!(tap.provider_message_id, "callback:4382bfdwdsb323b2d9");
    assert_eq!(tap.reply_to_provider_message_id, "42:4830");
    let Some(Part::Choice(choice)) = &tap.parts[0].part else {
        panic!()
    };
    assert_eq!(
        (choice.kind, choice.payload.as_str()),
        (common::ChoiceKind::CallbackQuery as i32, "plan:pro")
    );

    let reaction = single(
        r#"{"update_id":3,"message_reaction":{"chat":{"id":42,"type":"private"},"message_id":4830,"user":{"id":42,"is_bot":false,"first_name":"Ana"},"date":1718002300,"old_reaction":[],"new_reaction":[{"type":"emoji","emoji":"👍"}]}}"#,
    );
    let Some(Kind::Reaction(reaction)) = &reaction.kind else {
        panic!()
    };
    assert_eq!(
        (
            reaction.target_provider_message_id.as_str(),
            reaction.emoji.as_str(),
            reaction.removed
        ),
        ("42:4830", "👍", false)
    );

    let voice = single(
        r#"{"update_id":4,"message":{"message_id":9,"from":{"id":42,"is_bot":false,"first_name":"Ana"},"chat":{"id":42,"type":"private"},"date":1718002400,"voice":{"file_id":"AwACvoice","file_unique_id":"u","duration":3,"mime_type":"audio/ogg","file_size":4400}}}"#,
    );
    let Some(Part::Media(media)) = &message_parts(&voice)[0] else {
        panic!()
    };
    assert!(media.voice && media.kind == common::MediaKind::Audio as i32 && media.mime_type == "audio/ogg");

    let start = single(
        r#"{"update_id":5,"message":{"message_id":1,"from":{"id":42,"is_bot":false,"first_name":"Ana"},"chat":{"id":42,"type":"private"},"date":1718002500,"text":"/start promo-2026"}}"#,
    );
    let referral = message(&start).referral.clone().unwrap();
    assert_eq!(
        (referral.source_type.as_str(), referral.r#ref.as_str()),
        ("telegram_start", "promo-2026")
    );

    let poll = single(
        r#"{"update_id":6,"message":{"message_id":2,"from":{"id":42,"is_bot":false,"first_name":"Ana"},"chat":{"id":42,"type":"private"},"date":1718002600,"poll":{"id":"1","question":"?"}}}"#,
    );
    assert!(matches!(&message_parts(&poll)[0], Some(Part::Unsupported(_))));
}

fn message_parts(event: &events::InboundEvent) -> Vec<Option<Part>> {
    message(event)
        .parts
        .iter()
        .map(|part| part.part.clone())
        .collect()
}

#[test]
fn blocking_the_bot_is_a_consent_event_and_no_receipt_is_ever_invented() {
    let blocked = single(
        r#"{"update_id":10,"my_chat_member":{"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"Ana"},"date":1718003000,"old_chat_member":{"status":"member","user":{"id":7000000001,"is_bot":true,"first_name":"AcmeBot"}},"new_chat_member":{"status":"kicked","user":{"id":7000000001,"is_bot":true,"first_name":"AcmeBot"},"until_date":0}}}"#,
    );
    let Some(Kind::Consent(consent)) = &blocked.kind else {
        panic!()
    };
    assert_eq!(consent.action, events::ConsentAction::BotBlocked as i32);
    let unblocked = single(
        r#"{"update_id":11,"my_chat_member":{"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"Ana"},"date":1718003100,"old_chat_member":{"status":"kicked"},"new_chat_member":{"status":"member"}}}"#,
    );
    let Some(Kind::Consent(consent)) = &unblocked.kind else {
        panic!()
    };
    assert_eq!(consent.action, events::ConsentAction::BotUnblocked as i32);

    // Channel posts and bot-authored messages produce nothing, and nothing is ever a receipt.
    let channel_post = normalize(r#"{"update_id":12,"channel_post":{"message_id":1,"chat":{"id":-100,"type":"channel"},"date":1,"text":"news"}}"#).unwrap();
    assert!(channel_post.events.is_empty() && channel_post.skipped.len() == 1);
    let from_bot = normalize(r#"{"update_id":13,"message":{"message_id":1,"from":{"id":7,"is_bot":true,"first_name":"B"},"chat":{"id":-5,"type":"group"},"date":1,"text":"hi"}}"#).unwrap();
    assert!(from_bot.events.is_empty());
}

#[test]
fn malformed_updates_are_errors() {
    assert!(matches!(
        normalize(r#"{"message":{}}"#),
        Err(NormalizeError::Json { .. })
    ));
    assert!(matches!(
        normalize(r#"{"update_id":1,"message":{"message_id":1}"#),
        Err(NormalizeError::Json { .. })
    ));
}

proptest::proptest! {
    #[test]
    fn arbitrary_bodies_never_panic(body in ".{0,600}") {
        let _ = normalize(&body);
    }
}
