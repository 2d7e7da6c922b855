//! E-mail: raw MIME (SMTP), bounces, auto-replies, and the Mailgun and Postmark webhooks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_channels::{NormalizeContext, Normalized, VerifyError, email};
use switchboard_domain::ChannelAccountId;
use switchboard_proto::common::v1 as common;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::events::v1 as events;
use switchboard_proto::events::v1::inbound_event::Kind;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/email/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn context() -> NormalizeContext {
    NormalizeContext {
        channel_account_id: ChannelAccountId::parse("chacc_support-mail").unwrap(),
        external_id: "support@acme.test".to_owned(),
        received_at: UNIX_EPOCH + Duration::from_secs(1_750_000_000),
    }
}

fn raw(name: &str) -> Normalized {
    let body = fixture(name);
    email::normalize_raw(email::accepted_by_smtp_listener(&body), &context()).unwrap()
}

fn message(event: &events::InboundEvent) -> &events::InboundMessage {
    match &event.kind {
        Some(Kind::Message(message)) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn a_multipart_reply_prefers_text_decodes_headers_and_threads() {
    let normalized = raw("reply_with_attachment.eml");
    let [event] = normalized.events.as_slice() else {
        panic!("{normalized:?}")
    };
    assert_eq!(event.channel, common::Channel::Email as i32);
    let sender = event.sender.as_ref().unwrap();
    assert_eq!(
        sender.email, "juergen@example.com",
        "addresses are normalized to lowercase"
    );
    assert_eq!(
        sender.display_name, "Jürgen Müller",
        "RFC 2047 encoded-words decoded"
    );
    assert_eq!(event.provider_timestamp.as_ref().unwrap().seconds, 1_749_549_600);
    let reply = message(event);
    assert_eq!(reply.provider_message_id, "CAF+reply-1@mail.example.com");
    assert_eq!(reply.reply_to_provider_message_id, "sb-msg-0001@acme.test");
    let threading = reply.email.as_ref().unwrap();
    assert_eq!(
        threading.references,
        vec!["sb-msg-0000@acme.test", "sb-msg-0001@acme.test"]
    );
    assert_eq!(
        event.provider_conversation_key, "sb-msg-0000@acme.test",
        "the thread root"
    );
    let Some(Part::Text(text)) = &reply.parts[0].part else {
        panic!()
    };
    assert_eq!(text.subject, "Re: Bestellung über € 20");
    assert_eq!(
        text.body.trim(),
        "Grüße, die Lieferung ist beschädigt.",
        "quoted-printable text preferred over HTML"
    );
    let Some(Part::Media(attachment)) = &reply.parts[1].part else {
        panic!()
    };
    assert_eq!(
        (attachment.filename.as_str(), attachment.mime_type.as_str()),
        ("rechnung.pdf", "application/pdf")
    );
    assert_eq!(attachment.kind, common::MediaKind::Document as i32);
    assert!(attachment.size_bytes > 0);
}

#[test]
fn html_only_mail_is_reduced_to_text() {
    let normalized = raw("html_only.eml");
    let Some(Part::Text(text)) = &message(&normalized.events[0]).parts[0].part else {
        panic!()
    };
    assert!(
        text.body.contains("Where is") && text.body.contains("my order"),
        "{:?}",
        text.body
    );
    assert!(!text.body.contains('<'), "no markup: {:?}", text.body);
}

#[test]
fn a_delivery_status_notification_fails_our_original_message() {
    let normalized = raw("dsn_bounce.eml");
    let [event] = normalized.events.as_slice() else {
        panic!("{normalized:?}")
    };
    let Some(Kind::Status(receipt)) = &event.kind else {
        panic!("{event:?}")
    };
    assert_eq!(receipt.provider_message_id, "sb-msg-0042@acme.test");
    assert_eq!(receipt.status, common::DeliveryStatus::Failed as i32);
    let error = receipt.error.as_ref().unwrap();
    assert_eq!(error.code, "5.1.1");
    assert!(error.message.contains("Recipient address rejected"));
    assert_eq!(event.sender.as_ref().unwrap().email, "nobody@example.org");
}

#[test]
fn auto_replies_are_skipped_to_avoid_loops() {
    let normalized = raw("auto_reply.eml");
    assert!(normalized.events.is_empty());
    assert!(normalized.skipped[0].reason.contains("Auto-Submitted"));
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    assert!(email::normalize_raw(email::accepted_by_smtp_listener(b""), &context()).is_err());
    assert!(
        email::normalize_raw(email::accepted_by_smtp_listener(b"no headers at all"), &context()).is_err()
    );
}

#[test]
fn mailgun_parsed_fields_and_raw_mime_routes() {
    let signing_key = b"my_mailgun_signing_key";
    let sign = |timestamp: &str, token: &str| {
        switchboard_channels::meta::hmac_sha256_hex(signing_key, format!("{timestamp}{token}").as_bytes())
    };
    let now = SystemTime::now();
    let timestamp = now.duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
    let headers = r#"[["Message-Id","<mg-1@example.com>"],["In-Reply-To","<sb-msg-0001@acme.test>"],["References","<sb-msg-0001@acme.test>"]]"#;
    let form = format!(
        "timestamp={timestamp}&token=tok1&signature={}&recipient=support%40acme.test&from=Jane+Doe+%3Cjane%40example.com%3E&subject=Hello&body-plain=Hi+there%0A%3E+quoted&stripped-text=Hi+there&message-headers={}",
        sign(&timestamp, "tok1"),
        percent_encode(headers)
    );
    let verified = email::verify_mailgun_signature(
        form.as_bytes(),
        URLENCODED,
        signing_key,
        now,
        Duration::from_secs(900),
    )
    .unwrap();
    let normalized = email::normalize_mailgun(verified, URLENCODED, &context()).unwrap();
    let event = &normalized.events[0];
    assert_eq!(event.provider_event_id, "tok1");
    let parsed = message(event);
    assert_eq!(parsed.provider_message_id, "mg-1@example.com");
    assert_eq!(parsed.reply_to_provider_message_id, "sb-msg-0001@acme.test");
    let Some(Part::Text(text)) = &parsed.parts[0].part else {
        panic!()
    };
    assert_eq!(
        (text.body.as_str(), text.subject.as_str()),
        ("Hi there", "Hello"),
        "stripped text without the quote"
    );
    assert_eq!(event.sender.as_ref().unwrap().display_name, "Jane Doe");

    let mime = String::from_utf8(fixture("reply_with_attachment.eml")).unwrap();
    let form = format!(
        "timestamp={timestamp}&token=tok2&signature={}&body-mime={}",
        sign(&timestamp, "tok2"),
        percent_encode(&mime)
    );
    let verified = email::verify_mailgun_signature(
        form.as_bytes(),
        URLENCODED,
        signing_key,
        now,
        Duration::from_secs(900),
    )
    .unwrap();
    let normalized = email::normalize_mailgun(verified, URLENCODED, &context()).unwrap();
    assert_eq!(
        message(&normalized.events[0]).provider_message_id,
        "CAF+reply-1@mail.example.com"
    );
    assert_eq!(normalized.events[0].provider_event_id, "tok2");
}

#[test]
fn a_signed_mailgun_timestamp_no_clock_can_hold_is_malformed_not_a_panic() {
    let signing_key = b"my_mailgun_signing_key";
    let timestamp = "18446744073709551615";
    let signature =
        switchboard_channels::meta::hmac_sha256_hex(signing_key, format!("{timestamp}tok9").as_bytes());
    let form = format!("timestamp={timestamp}&token=tok9&signature={signature}&body-plain=x");
    let refused = email::verify_mailgun_signature(
        form.as_bytes(),
        URLENCODED,
        signing_key,
        SystemTime::now(),
        Duration::from_secs(900),
    );
    assert!(
        matches!(refused, Err(VerifyError::Malformed { header: "timestamp" })),
        "{refused:?}"
    );
}

#[test]
fn postmark_json_threads_by_the_rfc_message_id() {
    let body = br#"{"FromName":"Jane","MessageStream":"inbound","From":"jane@example.com","FromFull":{"Email":"Jane@Example.com","Name":"Jane Doe","MailboxHash":"conv42"},"To":"support+conv42@acme.test","Subject":"Re: Your order","MessageID":"22c74902-a0c1-4511-804f-341342852c90","Date":"Thu, 5 Apr 2012 16:59:01 +0200","TextBody":"Thanks!\n\nOn ... wrote:\n> old","StrippedTextReply":"Thanks!","Headers":[{"Name":"Message-ID","Value":"<CAOuK@mail.example.com>"},{"Name":"In-Reply-To","Value":"<sb-msg-0042@acme.test>"}],"Attachments":[{"Name":"photo.jpg","Content":"/9j/4AAQ","ContentType":"image/jpeg","ContentLength":4096}]}"#;
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "authorization",
        "Basic cG9zdG1hcms6czNjcmV0LXBhc3M=".parse().unwrap(),
    );
    let verified = email::verify_postmark_basic_auth(&headers, body, "postmark", b"s3cret-pass").unwrap();
    let normalized = email::normalize_postmark(verified, &context()).unwrap();
    let event = &normalized.events[0];
    assert_eq!(event.provider_event_id, "22c74902-a0c1-4511-804f-341342852c90");
    let reply = message(event);
    assert_eq!(reply.provider_message_id, "CAOuK@mail.example.com");
    assert_eq!(reply.reply_to_provider_message_id, "sb-msg-0042@acme.test");
    let Some(Part::Text(text)) = &reply.parts[0].part else {
        panic!()
    };
    assert_eq!(text.body, "Thanks!");
    let Some(Part::Media(photo)) = &reply.parts[1].part else {
        panic!()
    };
    assert_eq!(
        (photo.kind, photo.size_bytes),
        (common::MediaKind::Image as i32, 4096)
    );
    assert_eq!(event.sender.as_ref().unwrap().email, "jane@example.com");
}

fn percent_encode(text: &str) -> String {
    let mut encoded = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

proptest::proptest! {
    #[test]
    fn arbitrary_mail_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        let _ = email::normalize_raw(email::accepted_by_smtp_listener(&body), &context());
    }

    #[test]
    fn arbitrary_or_mutated_sendgrid_posts_never_panic(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
        cut in 0usize..4096,
        flip in 0usize..4096,
    ) {
        let _ = sendgrid(&body);
        let mut real = fixture("sendgrid_parsed.multipart");
        let cut = cut.min(real.len());
        real.truncate(real.len() - cut / 2);
        if let Some(byte) = real.get_mut(flip) {
            *byte ^= 0x5a;
        }
        let _ = sendgrid(&real);
    }
}

const URLENCODED: &str = "application/x-www-form-urlencoded";

#[test]
fn mailgun_multipart_posts_with_attachments_verify_and_keep_the_files() {
    let signing_key = b"my_mailgun_signing_key";
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let signature =
        switchboard_channels::meta::hmac_sha256_hex(signing_key, format!("{timestamp}tok-multi").as_bytes());
    let field = |name: &str, value: &str| {
        format!("--mg\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
    };
    let body = [
        field("timestamp", &timestamp),
        field("token", "tok-multi"),
        field("signature", &signature),
        field("from", "Jane Doe <jane@example.com>"),
        field("subject", "Invoice"),
        field("body-plain", "See attached"),
        field("attachment-count", "1"),
        "--mg\r\nContent-Disposition: form-data; name=\"attachment-1\"; filename=\"invoice.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 bytes\r\n--mg--\r\n".to_owned(),
    ]
    .concat();
    let content_type = "multipart/form-data; boundary=mg";
    let verified = email::verify_mailgun_signature(
        body.as_bytes(),
        content_type,
        signing_key,
        SystemTime::now(),
        Duration::from_secs(900),
    )
    .unwrap();
    let normalized = email::normalize_mailgun(verified, content_type, &context()).unwrap();
    let parsed = message(&normalized.events[0]);
    let Some(Part::Media(file)) = &parsed.parts[1].part else {
        panic!("{parsed:?}")
    };
    assert_eq!(
        (file.filename.as_str(), file.mime_type.as_str(), file.size_bytes),
        ("invoice.pdf", "application/pdf", 14)
    );
    assert!(
        email::verify_mailgun_signature(
            body.replace("tok-multi", "tok-other").as_bytes(),
            content_type,
            signing_key,
            SystemTime::now(),
            Duration::from_secs(900)
        )
        .is_err()
    );
}

const SENDGRID_CONTENT_TYPE: &str = "multipart/form-data; boundary=xYzZY";

fn sendgrid(body: &[u8]) -> Result<Normalized, switchboard_channels::NormalizeError> {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "authorization",
        "Basic c2VuZGdyaWQ6czNjcmV0".parse().unwrap(), // sendgrid:s3cret
    );
    let verified = email::verify_sendgrid_basic_auth(&headers, body, "sendgrid", b"s3cret").unwrap();
    email::normalize_sendgrid(verified, SENDGRID_CONTENT_TYPE, &context())
}

#[test]
fn sendgrid_parsed_fields_keep_threading_non_ascii_text_and_attachments() {
    let normalized = sendgrid(&fixture("sendgrid_parsed.multipart")).unwrap();
    let [event] = normalized.events.as_slice() else {
        panic!("{normalized:?}")
    };
    let sender = event.sender.as_ref().unwrap();
    assert_eq!(
        (sender.email.as_str(), sender.display_name.as_str()),
        ("joao@example.com", "João Silva")
    );
    let parsed = message(event);
    assert_eq!(parsed.provider_message_id, "CAGRsg1@mail.example.com");
    assert_eq!(parsed.reply_to_provider_message_id, "sb-msg-0042@acme.test");
    let threading = parsed.email.as_ref().unwrap();
    assert_eq!(
        threading.references,
        vec!["sb-msg-0041@acme.test", "sb-msg-0042@acme.test"]
    );
    let Some(Part::Text(text)) = &parsed.parts[0].part else {
        panic!("{parsed:?}")
    };
    assert_eq!(text.subject, "Pedido nº 42");
    assert_eq!(text.body.trim(), "Olá, o pedido ainda não chegou.");
    let Some(Part::Media(attachment)) = &parsed.parts[1].part else {
        panic!("{parsed:?}")
    };
    assert_eq!(
        (
            attachment.filename.as_str(),
            attachment.mime_type.as_str(),
            attachment.size_bytes
        ),
        ("receipt.pdf", "application/pdf", 27)
    );
    assert!(event.provider_timestamp.is_some());
}

#[test]
fn sendgrid_raw_mime_posts_go_through_the_mime_parser() {
    let raw = fixture("reply_with_attachment.eml");
    let mut body = b"--xYzZY\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\nsupport@acme.test\r\n--xYzZY\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n".to_vec();
    body.extend_from_slice(&raw);
    body.extend_from_slice(b"\r\n--xYzZY--\r\n");
    let from_sendgrid = sendgrid(&body).unwrap();
    let direct = email::normalize_raw(email::accepted_by_smtp_listener(&raw), &context()).unwrap();
    assert_eq!(
        message(&from_sendgrid.events[0]).provider_message_id,
        message(&direct.events[0]).provider_message_id
    );
}

#[test]
fn sendgrid_posts_that_are_not_form_data_are_errors() {
    assert!(sendgrid(b"{}").is_err());
    let no_headers = b"--xYzZY\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\na@b\r\n--xYzZY--\r\n";
    assert!(sendgrid(no_headers).is_err());
}
