use std::time::Duration;

use serde_json::json;
use switchboard_domain::Channel;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::common::v1::{ContentPart, LocationPart, MediaKind, ProviderError};
use switchboard_proto::delivery::v1::{Button, Interactive, OutboundContent, Template};

use crate::outbound::testing::{
    Fixture, button, header, json_body, media, message, part, parts, retry_after, text,
};
use crate::outbound::{
    BuildError, OutboundMessage, ProviderRequest, SendOutcome, build_delete, build_send, classify_delete,
    classify_send, redact_url,
};

const TOKEN: &str = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";
const CHAT: &str = "987654321";

fn bot() -> Fixture {
    Fixture::new(&[("bot_token", TOKEN)], &[])
}

fn send(message: &OutboundMessage<'_>) -> Result<ProviderRequest, BuildError> {
    build_send(&bot().account(Channel::Telegram, "123456", None), message)
}

fn sent(content: &OutboundContent) -> (String, serde_json::Value) {
    let request = send(&message(CHAT, content)).unwrap();
    let method = request.url.rsplit('/').next().unwrap_or_default().to_owned();
    (method, json_body(&request))
}

fn refusal(content: &OutboundContent) -> String {
    match send(&message(CHAT, content)) {
        Err(BuildError::Unsupported(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn keyboard(buttons: Vec<Button>) -> OutboundContent {
    OutboundContent {
        interactive: Some(Interactive {
            body: "Choose".to_owned(),
            buttons,
            list: None,
        }),
        ..OutboundContent::default()
    }
}

#[test]
fn a_text_reply_puts_the_token_only_in_the_url() {
    let content = parts(vec![text("On its way")]);
    let mut reply = message(CHAT, &content);
    reply.reply_to_provider_message_id = Some("987654321:42");
    let request = send(&reply).unwrap();
    assert_eq!(
        request.url,
        format!("https://api.telegram.org/bot{TOKEN}/sendMessage")
    );
    assert_eq!(header(&request, "content-type"), "application/json");
    assert!(request.headers.get("authorization").is_none());
    assert!(!String::from_utf8_lossy(&request.body).contains(TOKEN));
    assert!(!format!("{request:?}").contains(TOKEN));
    assert_eq!(
        redact_url(&request.url),
        "https://api.telegram.org/bot***/sendMessage"
    );
    assert_eq!(
        json_body(&request),
        json!({"chat_id":987654321,"text":"On its way",
            "reply_parameters":{"message_id":42,"allow_sending_without_reply":true}})
    );
}

#[test]
fn the_base_url_override_and_bad_tokens() {
    let content = parts(vec![text("hi")]);
    let fixture = bot();
    let account = fixture.account(Channel::Telegram, "123456", Some("http://sim:8081/"));
    let request = build_send(&account, &message("@news", &content)).unwrap();
    assert_eq!(request.url, format!("http://sim:8081/bot{TOKEN}/sendMessage"));
    assert_eq!(json_body(&request)["chat_id"], "@news");
    let missing = build_send(
        &Fixture::default().account(Channel::Telegram, "1", None),
        &message(CHAT, &content),
    );
    assert_eq!(missing, Err(BuildError::MissingCredential("bot_token")));
    let slashed = Fixture::new(&[("bot_token", "1:a/../b")], &[]);
    let refused = build_send(
        &slashed.account(Channel::Telegram, "1", None),
        &message(CHAT, &content),
    );
    assert_eq!(refused, Err(BuildError::MissingCredential("valid bot_token")));
}

#[test]
fn a_quote_from_another_chat_names_it_and_a_bad_id_is_refused() {
    let content = parts(vec![text("hi")]);
    let mut reply = message(CHAT, &content);
    reply.reply_to_provider_message_id = Some("-1001234567890:7");
    assert_eq!(
        json_body(&send(&reply).unwrap())["reply_parameters"],
        json!({"message_id":7,"chat_id":-1001234567890_i64,"allow_sending_without_reply":true})
    );
    reply.reply_to_provider_message_id = Some("wamid.X");
    assert!(
        matches!(send(&reply), Err(BuildError::Unsupported(reason)) if reason.contains("not a Telegram message id"))
    );
}

#[test]
fn media_methods_carry_the_file_and_caption() {
    let photo = parts(vec![
        part(media(MediaKind::Image, "https://cdn.example.com/p.jpg")),
        text("New stock"),
    ]);
    assert_eq!(
        sent(&photo),
        (
            "sendPhoto".to_owned(),
            json!({"chat_id":987654321,"photo":"https://cdn.example.com/p.jpg","caption":"New stock"})
        )
    );
    let mut voice = media(MediaKind::Audio, "https://x/v.ogg");
    voice.voice = true;
    voice.provider_media_id = "AwACAgIAAxkBAAI".to_owned();
    assert_eq!(
        sent(&parts(vec![part(voice)])),
        (
            "sendVoice".to_owned(),
            json!({"chat_id":987654321,"voice":"AwACAgIAAxkBAAI"})
        )
    );
    for (kind, method, field) in [
        (MediaKind::Video, "sendVideo", "video"),
        (MediaKind::Audio, "sendAudio", "audio"),
        (MediaKind::Document, "sendDocument", "document"),
        (MediaKind::Sticker, "sendSticker", "sticker"),
    ] {
        let (found, body) = sent(&parts(vec![part(media(kind, "https://x/f"))]));
        assert_eq!((found.as_str(), &body[field]), (method, &json!("https://x/f")));
    }
    let sticker = parts(vec![
        part(media(MediaKind::Sticker, "https://x/s.webp")),
        text("hi"),
    ]);
    assert!(refusal(&sticker).contains("no caption"));
}

#[test]
fn locations_and_inline_keyboards() {
    let location = parts(vec![ContentPart {
        part: Some(Part::Location(LocationPart {
            latitude: 52.52,
            longitude: 13.405,
            ..LocationPart::default()
        })),
    }]);
    assert_eq!(
        sent(&location),
        (
            "sendLocation".to_owned(),
            json!({"chat_id":987654321,"latitude":52.52,"longitude":13.405})
        )
    );
    let mut site = button("", "Open site");
    site.url = "https://example.com/track".to_owned();
    assert_eq!(
        sent(&keyboard(vec![button("yes", "Yes"), site])),
        (
            "sendMessage".to_owned(),
            json!({"chat_id":987654321,"text":"Choose","reply_markup":{"inline_keyboard":[
                [{"text":"Yes","callback_data":"yes"}],
                [{"text":"Open site","url":"https://example.com/track"}]]}})
        )
    );
    assert!(refusal(&keyboard(vec![button(&"x".repeat(65), "Too long")])).contains("1–64 bytes"));
    assert!(refusal(&keyboard(vec![button("id", "")])).contains("needs a title"));
    let template = OutboundContent {
        template: Some(Template::default()),
        ..OutboundContent::default()
    };
    assert!(refusal(&template).contains("no message templates"));
}

#[test]
fn delete_parses_the_provider_id() {
    let fixture = bot();
    let account = fixture.account(Channel::Telegram, "123456", None);
    let request = build_delete(&account, "-1001234567890:55").unwrap();
    assert_eq!(
        request.url,
        format!("https://api.telegram.org/bot{TOKEN}/deleteMessage")
    );
    assert_eq!(
        json_body(&request),
        json!({"chat_id":-1001234567890_i64,"message_id":55})
    );
    for bad in ["55", ":55", "1:x", ""] {
        assert!(
            matches!(build_delete(&account, bad), Err(BuildError::Unsupported(_))),
            "{bad}"
        );
    }
    assert_eq!(
        classify_delete(
            Channel::Telegram,
            "1:55",
            200,
            &http::HeaderMap::new(),
            br#"{"ok":true,"result":true}"#
        ),
        SendOutcome::Accepted {
            provider_message_id: "1:55".to_owned()
        }
    );
    let not_found =
        br#"{"ok":false,"error_code":400,"description":"Bad Request: message to delete not found"}"#;
    assert!(matches!(
        classify_delete(Channel::Telegram, "1:55", 400, &http::HeaderMap::new(), not_found),
        SendOutcome::Permanent { .. }
    ));
}

#[test]
fn classification_follows_ok_error_code_and_retry_after() {
    let accepted = br#"{"ok":true,"result":{"message_id":43,"from":{"id":123456,"is_bot":true,"first_name":"Shop"},"chat":{"id":987654321,"type":"private"},"date":1718000000,"text":"On its way"}}"#;
    assert_eq!(
        classify_send(Channel::Telegram, 200, &http::HeaderMap::new(), accepted),
        SendOutcome::Accepted {
            provider_message_id: "987654321:43".to_owned()
        }
    );
    let flood = br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 35","parameters":{"retry_after":35}}"#;
    assert_eq!(
        classify_send(Channel::Telegram, 429, &retry_after("5"), flood),
        SendOutcome::Retryable {
            error: ProviderError {
                code: "429".to_owned(),
                title: "Too Many Requests".to_owned(),
                message: "Too Many Requests: retry after 35".to_owned(),
                details: String::new(),
            },
            retry_after: Some(Duration::from_secs(35)),
        }
    );
    // A body's retry_after is bounded like the header's: huge is clamped to a day, negative
    // falls back to the header.
    let huge = br#"{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":9223372036854775807}}"#;
    assert!(matches!(
        classify_send(Channel::Telegram, 429, &http::HeaderMap::new(), huge),
        SendOutcome::Retryable { retry_after: Some(after), .. } if after == Duration::from_secs(86_400)
    ));
    let negative =
        br#"{"ok":false,"error_code":429,"description":"Too Many Requests","parameters":{"retry_after":-3}}"#;
    assert!(matches!(
        classify_send(Channel::Telegram, 429, &retry_after("4"), negative),
        SendOutcome::Retryable { retry_after: Some(after), .. } if after == Duration::from_secs(4)
    ));
    let gateway = br#"{"ok":false,"error_code":502,"description":"Bad Gateway"}"#;
    assert!(matches!(
        classify_send(Channel::Telegram, 502, &retry_after("3"), gateway),
        SendOutcome::Retryable { retry_after: Some(after), .. } if after == Duration::from_secs(3)
    ));
    let blocked = br#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#;
    let migrated = br#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234567890}}"#;
    assert!(matches!(
        classify_send(Channel::Telegram, 403, &http::HeaderMap::new(), blocked),
        SendOutcome::Permanent { error } if error.code == "403" && error.title == "Forbidden"
    ));
    assert!(matches!(
        classify_send(Channel::Telegram, 400, &http::HeaderMap::new(), migrated),
        SendOutcome::Permanent { error } if error.details == "migrate_to_chat_id=-1001234567890"
    ));
    for (status, body) in [(200, &b"{\"ok\":true,\"result\":{}}"[..]), (200, b"<html>")] {
        assert!(matches!(
            classify_send(Channel::Telegram, status, &http::HeaderMap::new(), body),
            SendOutcome::Permanent { error } if error.code == "unparseable_response"
        ));
    }
    assert!(matches!(
        classify_send(Channel::Telegram, 504, &http::HeaderMap::new(), b"<html>timeout</html>"),
        SendOutcome::Retryable { error, .. } if error.code == "http_504"
    ));
}
