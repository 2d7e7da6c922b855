//! Golden tests: recorded WhatsApp payloads, signed like Meta signs them, through the real
//! verification and normalization.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, UNIX_EPOCH};

use switchboard_channels::{NormalizeContext, NormalizeError, Normalized, meta, whatsapp};
use switchboard_domain::ChannelAccountId;
use switchboard_proto::common::v1 as common;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::events::v1 as events;
use switchboard_proto::events::v1::inbound_event::Kind;

const APP_SECRET: &[u8] = b"my_app_secret";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/whatsapp/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn context() -> NormalizeContext {
    NormalizeContext {
        channel_account_id: ChannelAccountId::parse("chacc_wa-main").unwrap(),
        external_id: "106540352242922".to_owned(),
        received_at: UNIX_EPOCH + Duration::from_secs(1_750_000_000),
    }
}

/// Signs `body` as Meta does, verifies it, and normalizes it.
fn normalize(body: &[u8]) -> Result<Normalized, NormalizeError> {
    let mut headers = http::HeaderMap::new();
    let signature = format!("sha256={}", meta::hmac_sha256_hex(APP_SECRET, body));
    headers.insert(meta::SIGNATURE_HEADER, signature.parse().unwrap());
    let verified = meta::verify_signature(&headers, body, APP_SECRET).unwrap();
    whatsapp::normalize(verified, &context())
}

fn message(event: &events::InboundEvent) -> &events::InboundMessage {
    match &event.kind {
        Some(Kind::Message(message)) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn only_part(event: &events::InboundEvent) -> &Part {
    let parts = &message(event).parts;
    assert_eq!(parts.len(), 1, "{parts:?}");
    parts[0].part.as_ref().unwrap()
}

fn seconds(timestamp: &Option<prost_types::Timestamp>) -> i64 {
    timestamp.as_ref().unwrap().seconds
}

#[test]
fn e1_text_message() {
    let normalized = normalize(&fixture("e1_text.json")).unwrap();
    assert!(normalized.skipped.is_empty());
    let [event] = normalized.events.as_slice() else {
        panic!("{normalized:?}")
    };
    assert_eq!(event.channel, common::Channel::Whatsapp as i32);
    assert_eq!(event.channel_account_id, "chacc_wa-main");
    assert_eq!(seconds(&event.provider_timestamp), 1_749_416_383);
    assert_eq!(seconds(&event.received_at), 1_750_000_000);
    let sender = event.sender.as_ref().unwrap();
    assert_eq!(sender.channel_user_id, "16505551234");
    assert_eq!(sender.phone_e164, "+16505551234");
    assert_eq!(sender.display_name, "Sheena Nelson");
    assert_eq!(message(event).provider_message_id, "wamid.TEST123");
    assert_eq!(
        only_part(event),
        &Part::Text(common::TextPart {
            body: "Hi there".to_owned(),
            subject: String::new()
        })
    );
}

#[test]
fn e2_image_replying_to_our_message() {
    let normalized = normalize(&fixture("e2_image_reply.json")).unwrap();
    let [event] = normalized.events.as_slice() else {
        panic!("{normalized:?}")
    };
    assert_eq!(message(event).reply_to_provider_message_id, "wamid.OUTBOUND_ABC");
    let Part::Media(media) = only_part(event) else {
        panic!()
    };
    assert_eq!(media.kind, common::MediaKind::Image as i32);
    assert_eq!(media.provider_media_id, "1479537139650973");
    assert_eq!(media.mime_type, "image/jpeg");
    assert_eq!(media.caption, "This part arrived broken");
    assert_eq!(media.sha256, "4Kc2sRk0o1mN6Xb3qYpZ8v7T0uWwE9lJfHg2aDcB1sE=");
}

#[test]
fn e3_failed_receipt_keeps_the_error_and_our_message_id() {
    let normalized = normalize(&fixture("e3_failed_status.json")).unwrap();
    let [event] = normalized.events.as_slice() else {
        panic!("{normalized:?}")
    };
    let Some(Kind::Status(status)) = &event.kind else {
        panic!()
    };
    assert_eq!(status.provider_message_id, "wamid.OUTBOUND_ABC");
    assert_eq!(status.status, common::DeliveryStatus::Failed as i32);
    assert_eq!(status.switchboard_message_id, "out-7f3a");
    let error = status.error.as_ref().unwrap();
    assert_eq!(error.code, "131047");
    assert_eq!(error.title, "Re-engagement message");
    assert!(error.details.starts_with("More than 24 hours"));
    assert_eq!(event.sender.as_ref().unwrap().channel_user_id, "16505551234");
    assert_eq!(seconds(&event.provider_timestamp), 1_749_500_000);
}

#[test]
fn a_batch_yields_one_event_per_item_in_order_and_skips_what_is_not_ours() {
    let normalized = normalize(&fixture("batch_every_type.json")).unwrap();
    let events = &normalized.events;
    assert_eq!(events.len(), 18 + 4, "18 messages and 4 known statuses");

    // Non-ASCII text arrives byte for byte; forwarded flag kept.
    assert_eq!(
        only_part(&events[0]),
        &Part::Text(common::TextPart {
            body: "Grüße 👋 — مرحبا".to_owned(),
            subject: String::new()
        })
    );
    assert!(message(&events[0]).forwarded);
    assert_eq!(events[0].sender.as_ref().unwrap().display_name, "Jürgen Ölmann");

    let Part::Location(location) = only_part(&events[1]) else {
        panic!()
    };
    assert_eq!(
        (location.latitude, location.name.as_str()),
        (52.52, "Brandenburger Tor")
    );
    let Part::ContactCard(card) = only_part(&events[2]) else {
        panic!()
    };
    assert_eq!(card.formatted_name, "Max Muster");
    assert_eq!(card.phones, vec!["+49 30 1234567"]);
    assert_eq!(card.emails, vec!["max@example.com"]);

    let Part::Choice(button) = only_part(&events[3]) else {
        panic!()
    };
    assert_eq!(
        (button.kind, button.payload.as_str()),
        (common::ChoiceKind::ButtonReply as i32, "opt_yes")
    );
    assert_eq!(message(&events[3]).reply_to_provider_message_id, "wamid.OUT_MENU");
    let Part::Choice(list) = only_part(&events[4]) else {
        panic!()
    };
    assert_eq!(
        (list.kind, list.description.as_str()),
        (common::ChoiceKind::ListReply as i32, "Where is my order?")
    );
    let Part::Choice(template) = only_part(&events[5]) else {
        panic!()
    };
    assert_eq!(
        (template.kind, template.payload.as_str()),
        (common::ChoiceKind::TemplateButton as i32, "STOP_PROMOS")
    );

    let Some(Kind::Reaction(added)) = &events[6].kind else {
        panic!()
    };
    assert_eq!(
        (
            added.target_provider_message_id.as_str(),
            added.emoji.as_str(),
            added.removed
        ),
        ("wamid.OUT_1", "❤️", false)
    );
    let Some(Kind::Reaction(removed)) = &events[7].kind else {
        panic!()
    };
    assert!(removed.removed && removed.emoji.is_empty());

    let Some(Kind::Edit(edit)) = &events[8].kind else {
        panic!()
    };
    assert_eq!(edit.target_provider_message_id, "wamid.M01");
    assert_eq!(edit.provider_message_id, "wamid.M09");
    assert_eq!(
        edit.parts[0].part,
        Some(Part::Text(common::TextPart {
            body: "Grüße!".to_owned(),
            subject: String::new()
        }))
    );
    let Some(Kind::Delete(delete)) = &events[9].kind else {
        panic!()
    };
    assert_eq!(delete.target_provider_message_id, "wamid.M02");

    let Part::Unsupported(unsupported) = only_part(&events[10]) else {
        panic!()
    };
    assert_eq!(
        (unsupported.provider_type.as_str(), unsupported.reason.as_str()),
        ("unsupported", "Message type unknown")
    );
    let Part::Unsupported(system) = only_part(&events[11]) else {
        panic!()
    };
    assert!(system.reason.contains("user_changed_number"));

    let Part::Media(voice) = only_part(&events[12]) else {
        panic!()
    };
    assert!(voice.voice && voice.kind == common::MediaKind::Audio as i32);
    let Part::Media(document) = only_part(&events[13]) else {
        panic!()
    };
    assert_eq!(document.filename, "invoice.pdf");
    let Part::Media(sticker) = only_part(&events[14]) else {
        panic!()
    };
    assert!(sticker.animated);

    let referral = message(&events[15]).referral.as_ref().unwrap();
    assert_eq!(
        (referral.source_type.as_str(), referral.click_id.as_str()),
        ("ad", "ARAkLk")
    );
    assert_eq!(referral.headline, "Spring sale");

    // A username user without a phone number is identified by the business-scoped id.
    let sender = events[16].sender.as_ref().unwrap();
    assert_eq!(sender.channel_user_id, "US.13491208655302741918");
    assert_eq!(sender.business_scoped_user_id, "US.13491208655302741918");
    assert_eq!(sender.phone_e164, "");
    assert_eq!(
        (sender.display_name.as_str(), sender.username.as_str()),
        ("Ana", "ana.ux")
    );
    let Part::Media(video) = only_part(&events[17]) else {
        panic!()
    };
    assert_eq!(video.kind, common::MediaKind::Video as i32);

    let statuses: Vec<(String, i32, String)> = events[18..]
        .iter()
        .map(|event| match &event.kind {
            Some(Kind::Status(status)) => (
                status.provider_message_id.clone(),
                status.status,
                status.provider_status.clone(),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    use common::DeliveryStatus::{Delivered, Read, Sent};
    assert_eq!(
        statuses,
        vec![
            ("wamid.OUT_1".to_owned(), Sent as i32, "sent".to_owned()),
            ("wamid.OUT_1".to_owned(), Delivered as i32, "delivered".to_owned()),
            ("wamid.OUT_1".to_owned(), Read as i32, "read".to_owned()),
            ("wamid.OUT_VOICE".to_owned(), Read as i32, "played".to_owned()),
        ]
    );

    let reasons: Vec<&str> = normalized
        .skipped
        .iter()
        .map(|skipped| skipped.reason.as_str())
        .collect();
    assert_eq!(normalized.skipped.len(), 3, "{reasons:?}");
    assert!(reasons.iter().any(|reason| reason.contains("account_update")));
    assert!(reasons.iter().any(|reason| reason.contains("\"deleted\"")));
    assert!(
        reasons.iter().any(|reason| reason.contains("999999999999999")),
        "another number's items never become ours"
    );
    assert!(
        events
            .iter()
            .all(|event| event.channel_account_id == "chacc_wa-main")
    );
}

#[test]
fn unparseable_or_foreign_payloads_are_errors_not_panics() {
    let truncated = &fixture("e1_text.json")[..200];
    assert!(matches!(normalize(truncated), Err(NormalizeError::Json { .. })));
    assert!(matches!(
        normalize(br#"{"object":"page","entry":[]}"#),
        Err(NormalizeError::Envelope { .. })
    ));
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(
        matches!(normalize(deep.as_bytes()), Err(NormalizeError::Json { .. })),
        "deep nesting is bounded"
    );
    // Nesting bombs are recognized without recursion, strings and escapes included.
    assert!(switchboard_channels::json_too_deep(deep.as_bytes(), 64));
    assert!(!switchboard_channels::json_too_deep(&fixture("e1_text.json"), 64));
    assert!(!switchboard_channels::json_too_deep(
        format!(r#"{{"text":"{}\"{}"}}"#, "[".repeat(100), "{".repeat(100)).as_bytes(),
        64
    ));
    assert!(
        normalize(br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages"}]}]}"#)
            .unwrap()
            .events
            .is_empty()
    );
}

#[test]
fn a_timestamp_no_clock_can_hold_is_left_out_not_a_panic() {
    // Found by the meta_webhook fuzz target: 2^63 seconds overflowed `UNIX_EPOCH + …`.
    let body = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"messages":[{"from":"16505551234","id":"wamid.T","timestamp":"9223372036854775808","type":"text","text":{"body":"x"}}]}}]}]}"#;
    let normalized = normalize(body).expect("normalizes");
    assert_eq!(normalized.events.len(), 1);
    assert_eq!(normalized.events[0].provider_timestamp, None);
    assert_eq!(message(&normalized.events[0]).provider_message_id, "wamid.T");
}

proptest::proptest! {
    #[test]
    fn normalizing_arbitrary_bytes_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        let _ = normalize(&body);
    }

    #[test]
    fn normalizing_mutated_real_payloads_never_panics(index in 0_usize..1_000, byte in proptest::prelude::any::<u8>()) {
        let mut body = fixture("batch_every_type.json");
        let position = index % body.len();
        body[position] = byte;
        let _ = normalize(&body);
    }
}
