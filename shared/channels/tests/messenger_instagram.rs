//! Messenger and Instagram webhooks, signed as Meta signs them, through verification and
//! normalization (CHANNELS.md E4–E7 and a batch of every event kind).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, UNIX_EPOCH};

use switchboard_channels::{NormalizeContext, NormalizeError, Normalized, instagram, messenger, meta};
use switchboard_domain::ChannelAccountId;
use switchboard_proto::common::v1 as common;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::events::v1 as events;
use switchboard_proto::events::v1::inbound_event::Kind;

const APP_SECRET: &[u8] = b"meta_app_secret";
const PAGE_ID: &str = "107220000000001";
const IG_ID: &str = "17841400000000001";

type Normalizer =
    fn(switchboard_channels::Verified<'_>, &NormalizeContext) -> Result<Normalized, NormalizeError>;

fn run(normalizer: Normalizer, external_id: &str, body: &str) -> Result<Normalized, NormalizeError> {
    let mut headers = http::HeaderMap::new();
    let signature = format!("sha256={}", meta::hmac_sha256_hex(APP_SECRET, body.as_bytes()));
    headers.insert(meta::SIGNATURE_HEADER, signature.parse().unwrap());
    let verified = meta::verify_signature(&headers, body.as_bytes(), APP_SECRET).unwrap();
    let context = NormalizeContext {
        channel_account_id: ChannelAccountId::parse("chacc_meta").unwrap(),
        external_id: external_id.to_owned(),
        received_at: UNIX_EPOCH + Duration::from_secs(1_750_000_000),
    };
    normalizer(verified, &context)
}

fn message(event: &events::InboundEvent) -> &events::InboundMessage {
    match &event.kind {
        Some(Kind::Message(message)) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn e4_quick_reply_tap() {
    let normalized = run(
        messenger::normalize,
        PAGE_ID,
        r#"{"object":"page","entry":[{"id":"107220000000001","time":1718000000123,"messaging":[{
  "sender":{"id":"6789012345678901"},"recipient":{"id":"107220000000001"},"timestamp":1718000000100,
  "message":{"mid":"m_Ab3dEfGhIjKlMnOpQr","text":"Track my order","quick_reply":{"payload":"TRACK_ORDER"}}}]}]}"#,
    )
    .unwrap();
    let [event] = normalized.events.as_slice() else {
        panic!("{normalized:?}")
    };
    assert_eq!(event.channel, common::Channel::Messenger as i32);
    assert_eq!(event.sender.as_ref().unwrap().channel_user_id, "6789012345678901");
    let timestamp = event.provider_timestamp.as_ref().unwrap();
    assert_eq!(
        (timestamp.seconds, timestamp.nanos),
        (1_718_000_000, 100_000_000),
        "milliseconds kept"
    );
    let message = message(event);
    assert_eq!(message.provider_message_id, "m_Ab3dEfGhIjKlMnOpQr");
    let Some(Part::Choice(choice)) = &message.parts[0].part else {
        panic!()
    };
    assert_eq!(choice.kind, common::ChoiceKind::QuickReply as i32);
    assert_eq!(
        (choice.payload.as_str(), choice.title.as_str()),
        ("TRACK_ORDER", "Track my order")
    );
}

#[test]
fn e5_image_replying_to_an_earlier_message() {
    let normalized = run(
        messenger::normalize,
        PAGE_ID,
        r#"{"object":"page","entry":[{"id":"107220000000001","time":1718000500456,"messaging":[{
  "sender":{"id":"6789012345678901"},"recipient":{"id":"107220000000001"},"timestamp":1718000500400,
  "message":{"mid":"m_Zy9xWvUtSrQpOnMlKj","reply_to":{"mid":"m_Ab3dEfGhIjKlMnOpQr"},
    "attachments":[{"type":"image","payload":{"url":"https://scontent.xx.fbcdn.net/v/t1.15752-9/abc.jpg?_nc_oc=x&oh=y&oe=z"}}]}}]}]}"#,
    )
    .unwrap();
    let message = message(&normalized.events[0]);
    assert_eq!(message.reply_to_provider_message_id, "m_Ab3dEfGhIjKlMnOpQr");
    let Some(Part::Media(image)) = &message.parts[0].part else {
        panic!()
    };
    assert_eq!(image.kind, common::MediaKind::Image as i32);
    assert!(image.url.starts_with("https://scontent.xx.fbcdn.net/"));
}

#[test]
fn a_messenger_batch_covers_echoes_postbacks_reactions_edits_and_watermarks() {
    let normalized = run(
        messenger::normalize,
        PAGE_ID,
        r#"{"object":"page","entry":[
 {"id":"107220000000001","time":1718000900000,"messaging":[
  {"sender":{"id":"107220000000001"},"recipient":{"id":"6789012345678901"},"timestamp":1718000900001,
   "message":{"mid":"m_echo1","is_echo":true,"app_id":1517776481860111,"text":"Sent from Business Suite"}},
  {"sender":{"id":"6789012345678901"},"recipient":{"id":"107220000000001"},"timestamp":1718000900002,
   "postback":{"mid":"m_pb1","title":"Get Started","payload":"GET_STARTED","referral":{"ref":"summer","source":"SHORTLINK","type":"OPEN_THREAD"}}},
  {"sender":{"id":"6789012345678901"},"recipient":{"id":"107220000000001"},"timestamp":1718000900003,
   "reaction":{"mid":"m_out1","action":"react","reaction":"love","emoji":"❤"}},
  {"sender":{"id":"6789012345678901"},"recipient":{"id":"107220000000001"},"timestamp":1718000900004,
   "reaction":{"mid":"m_out1","action":"unreact"}},
  {"sender":{"id":"6789012345678901"},"recipient":{"id":"107220000000001"},"timestamp":1718000900005,
   "message_edit":{"mid":"m_Ab3dEfGhIjKlMnOpQr","text":"Track my order please","num_edit":1}},
  {"sender":{"id":"6789012345678901"},"recipient":{"id":"107220000000001"},"timestamp":1718000900006,
   "delivery":{"mids":["m_out1","m_out2"],"watermark":1718000899000}},
  {"sender":{"id":"6789012345678901"},"recipient":{"id":"107220000000001"},"timestamp":1718000900007,
   "delivery":{"watermark":1718000899500}},
  {"sender":{"id":"6789012345678901"},"recipient":{"id":"107220000000001"},"timestamp":1718000900008,
   "read":{"watermark":1718000899900}},
  {"sender":{"id":"6789012345678901"},"recipient":{"id":"107220000000001"},"timestamp":1718000900009,
   "optin":{"ref":"x"}}
 ]},
 {"id":"999000000000000","time":1718000900000,"messaging":[
  {"sender":{"id":"1"},"recipient":{"id":"999000000000000"},"timestamp":1,"message":{"mid":"m_foreign","text":"not ours"}}]}
]}"#,
    )
    .unwrap();
    let events = &normalized.events;
    assert_eq!(events.len(), 9, "{events:#?}");

    let echo = message(&events[0]);
    assert!(echo.echo, "an echo is marked, never a new inbound message");
    assert_eq!(
        events[0].sender.as_ref().unwrap().channel_user_id,
        "6789012345678901",
        "the customer, not the page"
    );

    let postback = message(&events[1]);
    let Some(Part::Choice(choice)) = &postback.parts[0].part else {
        panic!()
    };
    assert_eq!(
        (choice.kind, choice.payload.as_str()),
        (common::ChoiceKind::Postback as i32, "GET_STARTED")
    );
    assert_eq!(postback.referral.as_ref().unwrap().r#ref, "summer");

    let Some(Kind::Reaction(react)) = &events[2].kind else {
        panic!()
    };
    assert_eq!((react.emoji.as_str(), react.removed), ("❤", false));
    let Some(Kind::Reaction(unreact)) = &events[3].kind else {
        panic!()
    };
    assert!(unreact.removed && unreact.target_provider_message_id == "m_out1");

    let Some(Kind::Edit(edit)) = &events[4].kind else {
        panic!()
    };
    assert_eq!(edit.target_provider_message_id, "m_Ab3dEfGhIjKlMnOpQr");

    let receipts: Vec<(String, i32, i64)> = events[5..]
        .iter()
        .map(|event| match &event.kind {
            Some(Kind::Status(receipt)) => (
                receipt.provider_message_id.clone(),
                receipt.status,
                receipt
                    .watermark
                    .as_ref()
                    .map_or(0, |watermark| watermark.seconds),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    use common::DeliveryStatus::{Delivered, Read};
    assert_eq!(
        receipts,
        vec![
            ("m_out1".to_owned(), Delivered as i32, 1_718_000_899),
            ("m_out2".to_owned(), Delivered as i32, 1_718_000_899),
            (String::new(), Delivered as i32, 1_718_000_899),
            (String::new(), Read as i32, 1_718_000_899),
        ]
    );

    let reasons: Vec<&str> = normalized
        .skipped
        .iter()
        .map(|skipped| skipped.reason.as_str())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().any(|reason| reason.contains("not handled")),
        "optin is not handled"
    );
    assert!(
        reasons.iter().any(|reason| reason.contains("999000000000000")),
        "another page is not ours"
    );
}

#[test]
fn e6_and_e7_instagram_text_and_story_reply() {
    let normalized = run(
        instagram::normalize,
        IG_ID,
        r#"{"object":"instagram","entry":[{"id":"17841400000000001","time":1718001000000,"messaging":[{"sender":{"id":"1122334455667788"},"recipient":{"id":"17841400000000001"},"timestamp":1718000999000,"message":{"mid":"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAw","text":"Do you ship to Lisbon?"}}]}]}"#,
    )
    .unwrap();
    let [event] = normalized.events.as_slice() else {
        panic!("{normalized:?}")
    };
    assert_eq!(event.channel, common::Channel::Instagram as i32);
    assert_eq!(event.sender.as_ref().unwrap().channel_user_id, "1122334455667788");
    assert_eq!(
        message(event).parts[0].part,
        Some(Part::Text(common::TextPart {
            body: "Do you ship to Lisbon?".to_owned(),
            subject: String::new()
        }))
    );

    let normalized = run(
        instagram::normalize,
        IG_ID,
        r#"{"object":"instagram","entry":[{"id":"17841400000000001","time":1718001200000,"messaging":[{"sender":{"id":"1122334455667788"},"recipient":{"id":"17841400000000001"},"timestamp":1718001199000,"message":{"mid":"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjI5","reply_to":{"story":{"url":"https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1799&signature=abc","id":"1799"}},"attachments":[{"type":"image","payload":{"url":"https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1800&signature=def"}}]}}]}]}"#,
    )
    .unwrap();
    let story_reply = message(&normalized.events[0]);
    let referral = story_reply.referral.as_ref().unwrap();
    assert_eq!(
        (referral.source_type.as_str(), referral.source_id.as_str()),
        ("ig_story", "1799")
    );
    let Some(Part::Media(image)) = &story_reply.parts[0].part else {
        panic!()
    };
    assert!(image.url.contains("asset_id=1800"));
}

#[test]
fn instagram_unsends_seen_receipts_and_envelope_mismatches() {
    let normalized = run(
        instagram::normalize,
        IG_ID,
        r#"{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[
  {"sender":{"id":"1122334455667788"},"recipient":{"id":"17841400000000001"},"timestamp":1718001300000,"message":{"mid":"aWdf_gone","is_deleted":true}},
  {"sender":{"id":"1122334455667788"},"recipient":{"id":"17841400000000001"},"timestamp":1718001300001,"read":{"mid":"aWdf_ours"}},
  {"sender":{"id":"1122334455667788"},"recipient":{"id":"17841400000000001"},"timestamp":1718001300002,"message":{"mid":"aWdf_share","attachments":[{"type":"share","payload":{"url":"https://www.instagram.com/p/abc"}}]}}
]}]}"#,
    )
    .unwrap();
    let Some(Kind::Delete(deleted)) = &normalized.events[0].kind else {
        panic!()
    };
    assert_eq!(deleted.target_provider_message_id, "aWdf_gone");
    let Some(Kind::Status(seen)) = &normalized.events[1].kind else {
        panic!()
    };
    assert_eq!(
        (seen.provider_message_id.as_str(), seen.status),
        ("aWdf_ours", common::DeliveryStatus::Read as i32)
    );
    let Some(Part::Unsupported(share)) = &message(&normalized.events[2]).parts[0].part else {
        panic!()
    };
    assert!(share.reason.contains("instagram.com/p/abc"), "the link is kept");

    assert!(matches!(
        run(instagram::normalize, IG_ID, r#"{"object":"page","entry":[]}"#),
        Err(NormalizeError::Envelope { .. })
    ));
    assert!(matches!(
        run(messenger::normalize, PAGE_ID, r#"{"object":"page","entry":[{"#),
        Err(NormalizeError::Json { .. })
    ));
}

proptest::proptest! {
    #[test]
    fn arbitrary_bodies_never_panic(body in ".{0,600}") {
        let _ = run(messenger::normalize, PAGE_ID, &body);
        let _ = run(instagram::normalize, IG_ID, &body);
    }
}
