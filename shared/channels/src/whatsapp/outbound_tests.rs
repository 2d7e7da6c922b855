use std::time::Duration;

use serde_json::json;
use switchboard_domain::Channel;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::common::v1::{ContentPart, LocationPart, MediaKind, ProviderError};
use switchboard_proto::delivery::v1::{
    Interactive, InteractiveList, ListRow, ListSection, OutboundContent, Template,
};

use crate::outbound::testing::{
    Fixture, button, header, json_body, media, message, part, parts, retry_after, text,
};
use crate::outbound::{BuildError, OutboundMessage, ProviderRequest, SendOutcome, build_send, classify_send};

const PHONE_NUMBER_ID: &str = "106540352242922";

fn token() -> Fixture {
    Fixture::new(&[("access_token", "EAAB_TEST_TOKEN")], &[])
}

fn send(fixture: &Fixture, message: &OutboundMessage<'_>) -> Result<ProviderRequest, BuildError> {
    build_send(
        &fixture.account(Channel::Whatsapp, PHONE_NUMBER_ID, None),
        message,
    )
}

fn sent(content: &OutboundContent) -> serde_json::Value {
    json_body(&send(&token(), &message("16505551234", content)).unwrap())
}

fn refusal(content: &OutboundContent) -> String {
    match send(&token(), &message("16505551234", content)) {
        Err(BuildError::Unsupported(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn interactive(interactive: Interactive) -> OutboundContent {
    OutboundContent {
        interactive: Some(interactive),
        ..OutboundContent::default()
    }
}

#[test]
fn a_text_reply_is_the_documented_body_with_bearer_auth() {
    let content = parts(vec![text("Sorry about that — a replacement is on its way.")]);
    let mut reply = message("16505551234", &content);
    reply.reply_to_provider_message_id = Some("wamid.INBOUND_IMG_001");
    reply.message_id = "out-7f3a";
    let request = send(&token(), &reply).unwrap();
    assert_eq!(request.method, http::Method::POST);
    assert_eq!(
        request.url,
        "https://graph.facebook.com/v23.0/106540352242922/messages"
    );
    assert_eq!(header(&request, "authorization"), "Bearer EAAB_TEST_TOKEN");
    assert!(request.headers["authorization"].is_sensitive());
    assert_eq!(header(&request, "content-type"), "application/json");
    assert_eq!(
        json_body(&request),
        json!({"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"text",
            "context":{"message_id":"wamid.INBOUND_IMG_001"},"biz_opaque_callback_data":"out-7f3a",
            "text":{"preview_url":false,"body":"Sorry about that — a replacement is on its way."}})
    );
    // Neither the token nor the body shows in Debug.
    let debug = format!("{request:?}");
    assert!(!debug.contains("EAAB_TEST_TOKEN") && !debug.contains("replacement"));
}

#[test]
fn the_base_url_version_and_appsecret_proof_vector_v3_shape_the_url() {
    let fixture = Fixture::new(
        &[
            ("access_token", "EAAB_TEST_TOKEN"),
            ("app_secret", "my_app_secret"),
        ],
        &[("api_version", "v21.0")],
    );
    let content = parts(vec![text("hi")]);
    let account = fixture.account(
        Channel::Whatsapp,
        PHONE_NUMBER_ID,
        Some("http://sim.local:9000/graph/"),
    );
    let request = build_send(&account, &message("1", &content)).unwrap();
    assert_eq!(
        request.url,
        "http://sim.local:9000/graph/v21.0/106540352242922/messages\
         ?appsecret_proof=3f44abc581f7aaf7c803cf8736c07ad24b8428264ec3985db6c358520c87f0a8"
    );
}

#[test]
fn missing_or_unusable_credentials_are_reported() {
    let content = parts(vec![text("hi")]);
    let missing = send(&Fixture::default(), &message("1", &content));
    assert_eq!(missing, Err(BuildError::MissingCredential("access_token")));
    let empty = send(
        &Fixture::new(&[("access_token", "")], &[]),
        &message("1", &content),
    );
    assert_eq!(empty, Err(BuildError::MissingCredential("access_token")));
    let broken = send(
        &Fixture::new(&[("access_token", "a\nb")], &[]),
        &message("1", &content),
    );
    assert_eq!(broken, Err(BuildError::MissingCredential("valid access_token")));
}

#[test]
fn media_goes_by_link_or_id_with_caption_and_filename() {
    let image = parts(vec![
        part(media(MediaKind::Image, "https://cdn.example.com/r.jpg")),
        text("Receipt"),
    ]);
    let body = sent(&image);
    assert_eq!(body["type"], "image");
    assert_eq!(
        body["image"],
        json!({"link":"https://cdn.example.com/r.jpg","caption":"Receipt"})
    );
    let mut document = media(MediaKind::Document, "https://cdn.example.com/i.pdf");
    document.provider_media_id = "MEDIA_42".to_owned();
    document.filename = "invoice.pdf".to_owned();
    document.caption = "Your invoice".to_owned();
    let body = sent(&parts(vec![part(document)]));
    assert_eq!(
        body["document"],
        json!({"id":"MEDIA_42","caption":"Your invoice","filename":"invoice.pdf"})
    );
    let body = sent(&parts(vec![part(media(
        MediaKind::Sticker,
        "https://cdn.example.com/s.webp",
    ))]));
    assert_eq!(
        (body["type"].clone(), body["sticker"].clone()),
        (json!("sticker"), json!({"link":"https://cdn.example.com/s.webp"}))
    );
    let audio = parts(vec![
        part(media(MediaKind::Audio, "https://cdn.example.com/a.ogg")),
        text("listen"),
    ]);
    assert!(refusal(&audio).contains("no caption"));
}

#[test]
fn a_location_carries_its_name_and_address() {
    let location = LocationPart {
        latitude: 38.7223,
        longitude: -9.1393,
        name: "Shop".to_owned(),
        address: "Rua Augusta 1, Lisboa".to_owned(),
        url: String::new(),
    };
    let body = sent(&parts(vec![ContentPart {
        part: Some(Part::Location(location)),
    }]));
    assert_eq!(body["type"], "location");
    assert_eq!(
        body["location"],
        json!({"latitude":38.7223,"longitude":-9.1393,"name":"Shop","address":"Rua Augusta 1, Lisboa"})
    );
}

#[test]
fn a_template_has_header_body_and_button_components() {
    let content = OutboundContent {
        template: Some(Template {
            name: "order_shipped".to_owned(),
            language: "en_US".to_owned(),
            body_parameters: vec!["Sheena".to_owned(), "#12345".to_owned()],
            header_media: Some(media(MediaKind::Image, "https://cdn.example.com/box.jpg")),
            button_payloads: vec!["TRACK_12345".to_owned()],
            declared_body_parameters: 2,
        }),
        ..OutboundContent::default()
    };
    let body = sent(&content);
    assert_eq!(
        body,
        json!({"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234",
            "biz_opaque_callback_data":"msg_1","type":"template","template":{
            "name":"order_shipped","language":{"code":"en_US"},
            "components":[
              {"type":"header","parameters":[{"type":"image","image":{"link":"https://cdn.example.com/box.jpg"}}]},
              {"type":"body","parameters":[{"type":"text","text":"Sheena"},{"type":"text","text":"#12345"}]},
              {"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"TRACK_12345"}]}]}})
    );
    let bare = OutboundContent {
        template: Some(Template {
            name: "hello_world".to_owned(),
            language: "en_US".to_owned(),
            ..Template::default()
        }),
        ..OutboundContent::default()
    };
    assert_eq!(
        sent(&bare)["template"],
        json!({"name":"hello_world","language":{"code":"en_US"}})
    );
    let nameless = OutboundContent {
        template: Some(Template::default()),
        ..OutboundContent::default()
    };
    assert!(refusal(&nameless).contains("name and a language"));
}

#[test]
fn reply_buttons_and_lists_are_interactive_messages() {
    let buttons = interactive(Interactive {
        body: "Was this helpful?".to_owned(),
        buttons: vec![button("yes", "Yes"), button("no", "No")],
        list: None,
    });
    assert_eq!(
        sent(&buttons)["interactive"],
        json!({"type":"button","body":{"text":"Was this helpful?"},"action":{"buttons":[
            {"type":"reply","reply":{"id":"yes","title":"Yes"}},
            {"type":"reply","reply":{"id":"no","title":"No"}}]}})
    );
    let list = interactive(Interactive {
        body: "Pick a slot".to_owned(),
        buttons: Vec::new(),
        list: Some(InteractiveList {
            button_text: "Slots".to_owned(),
            sections: vec![ListSection {
                title: "Monday".to_owned(),
                rows: vec![
                    ListRow {
                        id: "mon-9".to_owned(),
                        title: "9:00".to_owned(),
                        description: "Morning".to_owned(),
                    },
                    ListRow {
                        id: "mon-14".to_owned(),
                        title: "14:00".to_owned(),
                        description: String::new(),
                    },
                ],
            }],
        }),
    });
    let body = sent(&list);
    assert_eq!(body["type"], "interactive");
    assert_eq!(
        body["interactive"],
        json!({"type":"list","body":{"text":"Pick a slot"},"action":{"button":"Slots","sections":[
            {"title":"Monday","rows":[{"id":"mon-9","title":"9:00","description":"Morning"},{"id":"mon-14","title":"14:00"}]}]}})
    );
    let four = interactive(Interactive {
        body: "Pick".to_owned(),
        buttons: vec![
            button("a", "A"),
            button("b", "B"),
            button("c", "C"),
            button("d", "D"),
        ],
        list: None,
    });
    assert!(refusal(&four).contains("at most 3"));
}

fn graph_error(code: i64, subcode: Option<i64>) -> Vec<u8> {
    let mut error = json!({"message":format!("(#{code}) failure"),"type":"OAuthException","code":code,
        "error_data":{"messaging_product":"whatsapp","details":"more detail"},"fbtrace_id":"AbC"});
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    serde_json::to_vec(&json!({ "error": error })).unwrap()
}

#[test]
fn an_accepted_send_yields_the_wamid() {
    let body = br#"{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI","message_status":"accepted"}]}"#;
    assert_eq!(
        classify_send(Channel::Whatsapp, 200, &http::HeaderMap::new(), body),
        SendOutcome::Accepted {
            provider_message_id: "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI".to_owned()
        }
    );
    for unreadable in [&b"{}"[..], b"{\"messages\":[]}", b"not json"] {
        let SendOutcome::Permanent { error } =
            classify_send(Channel::Whatsapp, 200, &http::HeaderMap::new(), unreadable)
        else {
            panic!("a 2xx without an id is permanent");
        };
        assert_eq!(error.code, "unparseable_response");
    }
}

#[test]
fn every_error_table_row_classifies() {
    let retryable = [4, 80007, 130429, 131056, 131057, 131000, 131016, 2, 613];
    for code in retryable {
        let outcome = classify_send(
            Channel::Whatsapp,
            400,
            &http::HeaderMap::new(),
            &graph_error(code, None),
        );
        assert!(
            matches!(outcome, SendOutcome::Retryable { .. }),
            "{code}: {outcome:?}"
        );
    }
    let permanent = [
        131047, 131026, 131048, 131049, 131051, 131052, 368, 131031, 130497, 130472, 190, 0, 10, 200, 299,
        100, 132001,
    ];
    for code in permanent {
        let outcome = classify_send(
            Channel::Whatsapp,
            400,
            &http::HeaderMap::new(),
            &graph_error(code, None),
        );
        assert!(
            matches!(outcome, SendOutcome::Permanent { .. }),
            "{code}: {outcome:?}"
        );
    }
    // A known permanent code stays permanent on a 5xx; a retryable one on a 400.
    let outcome = classify_send(
        Channel::Whatsapp,
        500,
        &http::HeaderMap::new(),
        &graph_error(131047, None),
    );
    assert!(matches!(outcome, SendOutcome::Permanent { .. }));
    // Unknown codes go by status; Retry-After is honoured.
    let outcome = classify_send(
        Channel::Whatsapp,
        429,
        &retry_after("30"),
        &graph_error(999_999, None),
    );
    assert!(matches!(
        outcome,
        SendOutcome::Retryable { retry_after: Some(after), .. } if after == Duration::from_secs(30)
    ));
    let outcome = classify_send(
        Channel::Whatsapp,
        400,
        &http::HeaderMap::new(),
        &graph_error(999_999, None),
    );
    assert!(matches!(outcome, SendOutcome::Permanent { .. }));
    // The error carries code/subcode, title, message and details.
    assert_eq!(
        classify_send(
            Channel::Whatsapp,
            400,
            &http::HeaderMap::new(),
            &graph_error(131047, Some(2494010))
        ),
        SendOutcome::Permanent {
            error: ProviderError {
                code: "131047/2494010".to_owned(),
                title: "OAuthException".to_owned(),
                message: "(#131047) failure".to_owned(),
                details: "more detail".to_owned(),
            }
        }
    );
    // Unparseable error bodies go by status.
    let outcome = classify_send(
        Channel::Whatsapp,
        502,
        &http::HeaderMap::new(),
        b"<html>Bad gateway</html>",
    );
    assert!(matches!(outcome, SendOutcome::Retryable { error, .. } if error.code == "http_502"));
}
