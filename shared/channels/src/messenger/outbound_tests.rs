use std::time::Duration;

use serde_json::json;
use switchboard_domain::Channel;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::common::v1::{ContentPart, LocationPart, MediaKind};
use switchboard_proto::delivery::v1::{Button, Interactive, InteractiveList, OutboundContent, Template};

use crate::outbound::testing::{
    Fixture, button, header, json_body, media, message, part, parts, retry_after, text,
};
use crate::outbound::{BuildError, ProviderRequest, SendOutcome, build_send, classify_send};

const PAGE_ID: &str = "106540352242922";
const PSID: &str = "6789012345678901";

fn page_token() -> Fixture {
    Fixture::new(&[("access_token", "EAAB_TEST_TOKEN")], &[])
}

fn send_on(channel: Channel, content: &OutboundContent) -> Result<ProviderRequest, BuildError> {
    build_send(
        &page_token().account(channel, PAGE_ID, None),
        &message(PSID, content),
    )
}

fn sent(content: &OutboundContent) -> serde_json::Value {
    json_body(&send_on(Channel::Messenger, content).unwrap())
}

fn refusal(content: &OutboundContent) -> String {
    match send_on(Channel::Messenger, content) {
        Err(BuildError::Unsupported(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn buttons(buttons: Vec<Button>) -> OutboundContent {
    OutboundContent {
        interactive: Some(Interactive {
            body: "How was it?".to_owned(),
            buttons,
            list: None,
        }),
        ..OutboundContent::default()
    }
}

#[test]
fn a_text_is_a_response_with_the_page_token() {
    let content = parts(vec![text("It ships tomorrow.")]);
    let mut reply = message(PSID, &content);
    // The Send API cannot quote: a reply-to is ignored.
    reply.reply_to_provider_message_id = Some("m_quoted");
    let request = build_send(&page_token().account(Channel::Messenger, PAGE_ID, None), &reply).unwrap();
    assert_eq!(
        request.url,
        "https://graph.facebook.com/v23.0/106540352242922/messages"
    );
    assert_eq!(header(&request, "authorization"), "Bearer EAAB_TEST_TOKEN");
    assert_eq!(header(&request, "content-type"), "application/json");
    assert_eq!(
        json_body(&request),
        json!({"recipient":{"id":"6789012345678901"},"messaging_type":"RESPONSE","message":{"text":"It ships tomorrow."}})
    );
}

#[test]
fn the_human_agent_tag_and_appsecret_proof_apply_on_instagram_too() {
    let fixture = Fixture::new(
        &[
            ("access_token", "EAAB_TEST_TOKEN"),
            ("app_secret", "my_app_secret"),
        ],
        &[],
    );
    let content = parts(vec![text("Back to you")]);
    let mut tagged = message("1122334455667788", &content);
    tagged.human_agent_tag = true;
    let account = fixture.account(Channel::Instagram, "17841400000000001", Some("http://sim:1"));
    let request = build_send(&account, &tagged).unwrap();
    assert_eq!(
        request.url,
        "http://sim:1/v23.0/17841400000000001/messages\
         ?appsecret_proof=3f44abc581f7aaf7c803cf8736c07ad24b8428264ec3985db6c358520c87f0a8"
    );
    assert_eq!(
        json_body(&request),
        json!({"recipient":{"id":"1122334455667788"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT",
            "message":{"text":"Back to you"}})
    );
}

#[test]
fn attachments_go_by_url_or_attachment_id() {
    let body = sent(&parts(vec![part(media(
        MediaKind::Document,
        "https://cdn.example.com/i.pdf",
    ))]));
    assert_eq!(
        body["message"],
        json!({"attachment":{"type":"file","payload":{"url":"https://cdn.example.com/i.pdf","is_reusable":true}}})
    );
    let mut uploaded = media(MediaKind::Video, "");
    uploaded.provider_media_id = "1857777774821032".to_owned();
    let body = sent(&parts(vec![part(uploaded)]));
    assert_eq!(
        body["message"],
        json!({"attachment":{"type":"video","payload":{"attachment_id":"1857777774821032"}}})
    );
    for (kind, expected) in [
        (MediaKind::Image, "image"),
        (MediaKind::Sticker, "image"),
        (MediaKind::Audio, "audio"),
    ] {
        let body = sent(&parts(vec![part(media(kind, "https://x/f"))]));
        assert_eq!(body["message"]["attachment"]["type"], expected);
    }
    let captioned = parts(vec![
        part(media(MediaKind::Image, "https://x/a.jpg")),
        text("Look"),
    ]);
    assert!(refusal(&captioned).contains("no caption"));
}

#[test]
fn buttons_become_quick_replies_and_the_rest_is_refused() {
    assert_eq!(
        sent(&buttons(vec![button("GOOD", "Good"), button("BAD", "Bad")]))["message"],
        json!({"text":"How was it?","quick_replies":[
            {"content_type":"text","title":"Good","payload":"GOOD"},
            {"content_type":"text","title":"Bad","payload":"BAD"}]})
    );
    let fourteen = (0..14).map(|index| button(&index.to_string(), "x")).collect();
    assert!(refusal(&buttons(fourteen)).contains("at most 13"));
    let mut link = button("", "Site");
    link.url = "https://example.com".to_owned();
    assert!(refusal(&buttons(vec![link])).contains("URL"));
    let list = OutboundContent {
        interactive: Some(Interactive {
            body: "Pick".to_owned(),
            buttons: Vec::new(),
            list: Some(InteractiveList::default()),
        }),
        ..OutboundContent::default()
    };
    assert!(refusal(&list).contains("no list"));
    let template = OutboundContent {
        template: Some(Template::default()),
        ..OutboundContent::default()
    };
    assert!(refusal(&template).contains("no message templates"));
    let location = parts(vec![ContentPart {
        part: Some(Part::Location(LocationPart::default())),
    }]);
    assert!(refusal(&location).contains("location"));
}

fn graph_error(code: i64, subcode: Option<i64>) -> Vec<u8> {
    let mut error = json!({"message":"failure","type":"OAuthException","code":code,"fbtrace_id":"AbC"});
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    serde_json::to_vec(&json!({ "error": error })).unwrap()
}

#[test]
fn an_accepted_send_yields_the_mid() {
    let body = br#"{"recipient_id":"6789012345678901","message_id":"m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM"}"#;
    assert_eq!(
        classify_send(Channel::Instagram, 200, &http::HeaderMap::new(), body),
        SendOutcome::Accepted {
            provider_message_id: "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM".to_owned()
        }
    );
    let SendOutcome::Permanent { error } = classify_send(
        Channel::Messenger,
        200,
        &http::HeaderMap::new(),
        br#"{"recipient_id":"1"}"#,
    ) else {
        panic!("a 2xx without a mid is permanent");
    };
    assert_eq!(error.code, "unparseable_response");
}

#[test]
fn every_error_table_row_classifies() {
    for (code, subcode) in [(4, None), (613, None), (2, None), (1200, None), (32, None)] {
        let outcome = classify_send(
            Channel::Messenger,
            400,
            &http::HeaderMap::new(),
            &graph_error(code, subcode),
        );
        assert!(
            matches!(outcome, SendOutcome::Retryable { .. }),
            "{code}: {outcome:?}"
        );
    }
    for (code, subcode) in [
        (10, Some(2018278)),
        (10, Some(1893063)),
        (10, Some(2534022)),
        (551, Some(1545041)),
        (190, None),
        (200, None),
        (100, None),
    ] {
        let outcome = classify_send(
            Channel::Messenger,
            400,
            &http::HeaderMap::new(),
            &graph_error(code, subcode),
        );
        let SendOutcome::Permanent { error } = outcome else {
            panic!("{code}/{subcode:?} should be permanent: {outcome:?}");
        };
        let expected = subcode.map_or(code.to_string(), |subcode| format!("{code}/{subcode}"));
        assert_eq!(error.code, expected);
    }
    let outcome = classify_send(Channel::Messenger, 429, &retry_after("12"), b"");
    assert!(matches!(
        outcome,
        SendOutcome::Retryable { retry_after: Some(after), error } if after == Duration::from_secs(12) && error.code == "http_429"
    ));
    let outcome = classify_send(
        Channel::Messenger,
        503,
        &http::HeaderMap::new(),
        &graph_error(999_999, None),
    );
    assert!(matches!(outcome, SendOutcome::Retryable { .. }));
}
