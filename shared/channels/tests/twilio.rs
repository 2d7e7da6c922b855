//! Twilio webhooks, signed as Twilio signs them, through verification and normalization.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, UNIX_EPOCH};

use switchboard_channels::{NormalizeContext, NormalizeError, Normalized, twilio};
use switchboard_domain::ChannelAccountId;
use switchboard_proto::common::v1 as common;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::events::v1 as events;
use switchboard_proto::events::v1::inbound_event::Kind;

const TOKEN: &[u8] = b"my_twilio_auth_token";
const URL: &str = "https://gw.example.com/webhooks/sms/chacc_sms-main";

/// CHANNELS.md E9.
const E9: &str = "ToCountry=US&ToState=CA&SmsMessageSid=SM11111111111111111111111111111111&NumMedia=0&ToCity=SAN+FRANCISCO&FromZip=94105&SmsSid=SM11111111111111111111111111111111&FromState=CA&SmsStatus=received&FromCity=SAN+FRANCISCO&Body=Hello+from+SMS&FromCountry=US&To=%2B14155550100&MessagingServiceSid=MG22222222222222222222222222222222&ToZip=94105&NumSegments=1&MessageSid=SM11111111111111111111111111111111&AccountSid=AC33333333333333333333333333333333&From=%2B14155550123&ApiVersion=2010-04-01";

fn context(external_id: &str) -> NormalizeContext {
    NormalizeContext {
        channel_account_id: ChannelAccountId::parse("chacc_sms-main").unwrap(),
        external_id: external_id.to_owned(),
        received_at: UNIX_EPOCH + Duration::from_secs(1_750_000_000),
    }
}

fn normalize(body: &str, external_id: &str) -> Result<Normalized, NormalizeError> {
    let params = twilio::parse_form(body.as_bytes()).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        twilio::SIGNATURE_HEADER,
        twilio::signature(TOKEN, URL, &params).parse().unwrap(),
    );
    let verified = twilio::verify_signature(&headers, URL, body.as_bytes(), TOKEN).unwrap();
    twilio::normalize(verified, &context(external_id))
}

fn message(event: &events::InboundEvent) -> &events::InboundMessage {
    match &event.kind {
        Some(Kind::Message(message)) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn e9_inbound_sms() {
    let normalized = normalize(E9, "+14155550100").unwrap();
    let [event] = normalized.events.as_slice() else {
        panic!("{normalized:?}")
    };
    assert_eq!(event.channel, common::Channel::Sms as i32);
    assert_eq!(event.provider_timestamp, None, "Twilio sends no timestamp");
    let sender = event.sender.as_ref().unwrap();
    assert_eq!(
        (sender.channel_user_id.as_str(), sender.phone_e164.as_str()),
        ("+14155550123", "+14155550123")
    );
    let message = message(event);
    assert_eq!(message.provider_message_id, "SM11111111111111111111111111111111");
    assert_eq!(
        message.parts[0].part,
        Some(Part::Text(common::TextPart {
            body: "Hello from SMS".to_owned(),
            subject: String::new()
        }))
    );
    // An account registered by its messaging service matches too.
    assert_eq!(
        normalize(E9, "MG22222222222222222222222222222222")
            .unwrap()
            .events
            .len(),
        1
    );
}

#[test]
fn e10_mms_with_two_media_and_no_text() {
    let body = "MessageSid=MM44444444444444444444444444444444&AccountSid=AC33333333333333333333333333333333&From=%2B14155550123&To=%2B14155550100&Body=&NumMedia=2&MediaContentType0=image%2Fjpeg&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC33%2FMessages%2FMM44%2FMedia%2FME55&MediaContentType1=video%2Fmp4&MediaUrl1=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC33%2FMessages%2FMM44%2FMedia%2FME66";
    let normalized = normalize(body, "+14155550100").unwrap();
    let [event] = normalized.events.as_slice() else {
        panic!("{normalized:?}")
    };
    let parts = &message(event).parts;
    assert_eq!(parts.len(), 2);
    let Some(Part::Media(image)) = &parts[0].part else {
        panic!()
    };
    assert_eq!(
        (image.kind, image.mime_type.as_str()),
        (common::MediaKind::Image as i32, "image/jpeg")
    );
    assert!(image.url.ends_with("/Media/ME55"));
    let Some(Part::Media(video)) = &parts[1].part else {
        panic!()
    };
    assert_eq!(video.kind, common::MediaKind::Video as i32);
}

#[test]
fn stop_start_and_help_keywords_become_consent_events_next_to_the_message() {
    for (text, action) in [
        ("STOP", events::ConsentAction::OptOut),
        (" unsubscribe ", events::ConsentAction::OptOut),
        ("Start", events::ConsentAction::OptIn),
        ("help", events::ConsentAction::Help),
    ] {
        let body = format!(
            "MessageSid=SM9&From=%2B14155550123&To=%2B14155550100&NumMedia=0&Body={}",
            text.replace(' ', "+")
        );
        let normalized = normalize(&body, "+14155550100").unwrap();
        assert_eq!(normalized.events.len(), 2, "{text}");
        let Some(Kind::Consent(consent)) = &normalized.events[1].kind else {
            panic!()
        };
        assert_eq!(consent.action, action as i32, "{text}");
        assert_eq!(consent.keyword, text.trim().to_uppercase());
    }
    assert_eq!(
        normalize(
            "MessageSid=SM9&From=%2B1&To=%2B14155550100&Body=please+stop+it",
            "+14155550100"
        )
        .unwrap()
        .events
        .len(),
        1
    );
}

#[test]
fn status_callbacks_become_receipts_with_provider_errors() {
    let failed = "MessageSid=SM55555555555555555555555555555555&MessageStatus=undelivered&ErrorCode=30006&ErrorMessage=Landline+or+unreachable+carrier&AccountSid=AC33&From=%2B14155550100&To=%2B14155550123&ApiVersion=2010-04-01";
    let normalized = normalize(failed, "+14155550100").unwrap();
    let [event] = normalized.events.as_slice() else {
        panic!("{normalized:?}")
    };
    let Some(Kind::Status(receipt)) = &event.kind else {
        panic!()
    };
    assert_eq!(receipt.provider_message_id, "SM55555555555555555555555555555555");
    assert_eq!(receipt.status, common::DeliveryStatus::Failed as i32);
    assert_eq!(receipt.provider_status, "undelivered");
    assert_eq!(receipt.error.as_ref().unwrap().code, "30006");
    assert_eq!(
        event.sender.as_ref().unwrap().channel_user_id,
        "+14155550123",
        "the customer is the recipient"
    );

    let delivered = "MessageSid=SM5&MessageStatus=delivered&From=%2B14155550100&To=%2B14155550123";
    let Some(Kind::Status(receipt)) = &normalize(delivered, "+14155550100").unwrap().events[0].kind else {
        panic!()
    };
    assert_eq!(receipt.status, common::DeliveryStatus::Delivered as i32);
    let receiving = "MessageSid=SM5&MessageStatus=receiving&From=%2B14155550100&To=%2B14155550123";
    assert_eq!(normalize(receiving, "+14155550100").unwrap().skipped.len(), 1);
}

#[test]
fn another_numbers_webhooks_and_garbage_are_not_ours() {
    let normalized = normalize(E9, "+19995550000").unwrap();
    assert!(normalized.events.is_empty());
    assert!(normalized.skipped[0].reason.contains("+14155550100"));
    assert!(matches!(
        normalize("From=%2B1&To=%2B2&Body=x", "+2"),
        Err(NormalizeError::Envelope { .. })
    ));
}

proptest::proptest! {
    #[test]
    fn arbitrary_forms_never_panic(body in "[A-Za-z0-9=&%+]{0,400}") {
        if let Some(params) = twilio::parse_form(body.as_bytes()) {
            let mut headers = http::HeaderMap::new();
            headers.insert(twilio::SIGNATURE_HEADER, twilio::signature(TOKEN, URL, &params).parse().unwrap());
            if let Ok(verified) = twilio::verify_signature(&headers, URL, body.as_bytes(), TOKEN) {
                let _ = twilio::normalize(verified, &context("+14155550100"));
            }
        }
    }
}
