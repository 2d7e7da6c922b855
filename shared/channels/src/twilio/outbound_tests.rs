use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use switchboard_domain::Channel;
use switchboard_proto::common::v1::content_part::Part;
use switchboard_proto::common::v1::{ContentPart, LocationPart, MediaKind, MediaPart, ProviderError};
use switchboard_proto::delivery::v1::{Interactive, OutboundContent, Template};

use crate::outbound::testing::{Fixture, button, header, media, message, part, parts, retry_after, text};
use crate::outbound::{BuildError, ProviderRequest, SendOutcome, build_send, classify_send};
use crate::twilio::parse_form;

const ACCOUNT_SID: &str = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
const FROM: &str = "+15017122661";
const TO: &str = "+15558675310";

fn twilio(callback: Option<&str>) -> Fixture {
    let mut settings = vec![("account_sid", ACCOUNT_SID)];
    settings.extend(callback.map(|url| ("status_callback_url", url)));
    Fixture::new(&[("auth_token", "your_auth_token")], &settings)
}

fn send_from(
    fixture: &Fixture,
    from: &str,
    content: &OutboundContent,
) -> Result<ProviderRequest, BuildError> {
    build_send(&fixture.account(Channel::Sms, from, None), &message(TO, content))
}

fn form(request: &ProviderRequest) -> Vec<(String, String)> {
    parse_form(&request.body).expect("a form body")
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn refusal(content: &OutboundContent) -> String {
    match send_from(&twilio(None), FROM, content) {
        Err(BuildError::Unsupported(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_text_is_form_encoded_with_basic_auth_and_the_status_callback() {
    let fixture = twilio(Some("https://gw.example.com/ingress/twilio/status?acct=chacc_1"));
    let content = parts(vec![text("Your code is 1234 & expires soon")]);
    let request = send_from(&fixture, FROM, &content).unwrap();
    assert_eq!(request.method, http::Method::POST);
    assert_eq!(
        request.url,
        format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    let basic = STANDARD.encode(format!("{ACCOUNT_SID}:your_auth_token"));
    assert_eq!(header(&request, "authorization"), format!("Basic {basic}"));
    assert!(request.headers["authorization"].is_sensitive());
    assert_eq!(
        header(&request, "content-type"),
        "application/x-www-form-urlencoded"
    );
    let body = String::from_utf8(request.body.clone()).unwrap();
    assert!(
        body.starts_with("To=%2B15558675310&From=%2B15017122661&Body=Your+code+is+1234+%26+expires+soon")
    );
    assert_eq!(
        form(&request),
        pairs(&[
            ("To", TO),
            ("From", FROM),
            ("Body", "Your code is 1234 & expires soon"),
            (
                "StatusCallback",
                "https://gw.example.com/ingress/twilio/status?acct=chacc_1&sb_message_id=msg_1"
            ),
        ])
    );
    let fixture = twilio(Some("https://gw.example.com/status"));
    let request = send_from(&fixture, FROM, &content).unwrap();
    assert_eq!(
        form(&request).last().unwrap().1,
        "https://gw.example.com/status?sb_message_id=msg_1"
    );
}

#[test]
fn a_messaging_service_sends_up_to_ten_media_urls() {
    let mut content_parts = vec![text("Photos from today")];
    content_parts
        .extend((1..=3).map(|index| part(media(MediaKind::Image, &format!("https://x/{index}.jpg")))));
    let fixture = twilio(None);
    let account = fixture.account(
        Channel::Sms,
        "MG9752274e9e519418a7406176694466fa",
        Some("http://sim:4010"),
    );
    let request = build_send(&account, &message(TO, &parts(content_parts))).unwrap();
    assert_eq!(
        request.url,
        format!("http://sim:4010/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    assert_eq!(
        form(&request),
        pairs(&[
            ("To", TO),
            ("MessagingServiceSid", "MG9752274e9e519418a7406176694466fa"),
            ("Body", "Photos from today"),
            ("MediaUrl", "https://x/1.jpg"),
            ("MediaUrl", "https://x/2.jpg"),
            ("MediaUrl", "https://x/3.jpg"),
        ])
    );
    // A media caption is the body when there is no text part.
    let mut captioned = media(MediaKind::Image, "https://x/1.jpg");
    captioned.caption = "Look".to_owned();
    let request = send_from(&twilio(None), FROM, &parts(vec![part(captioned)])).unwrap();
    assert_eq!(
        form(&request),
        pairs(&[
            ("To", TO),
            ("From", FROM),
            ("Body", "Look"),
            ("MediaUrl", "https://x/1.jpg")
        ])
    );
    let eleven = (0..11)
        .map(|index| part(media(MediaKind::Image, &format!("https://x/{index}"))))
        .collect();
    assert!(refusal(&parts(eleven)).contains("at most 10"));
}

#[test]
fn what_sms_cannot_carry_is_refused() {
    let uploaded = MediaPart {
        provider_media_id: "ME123".to_owned(),
        ..MediaPart::default()
    };
    assert!(refusal(&parts(vec![part(uploaded)])).contains("URL"));
    assert!(refusal(&parts(vec![text("a"), text("b")])).contains("one text"));
    let location = ContentPart {
        part: Some(Part::Location(LocationPart::default())),
    };
    assert!(refusal(&parts(vec![location])).contains("location"));
    let template = OutboundContent {
        template: Some(Template::default()),
        ..OutboundContent::default()
    };
    assert!(refusal(&template).contains("templates"));
    let interactive = OutboundContent {
        interactive: Some(Interactive {
            body: "Pick".to_owned(),
            buttons: vec![button("a", "A")],
            list: None,
        }),
        ..OutboundContent::default()
    };
    assert!(refusal(&interactive).contains("no buttons"));
    assert!(refusal(&parts(vec![text(" ")])).contains("no content"));
    let content = parts(vec![text("hi")]);
    let no_sid = Fixture::new(&[("auth_token", "t")], &[]);
    assert_eq!(
        send_from(&no_sid, FROM, &content),
        Err(BuildError::MissingCredential("account_sid"))
    );
    let no_token = Fixture::new(&[], &[("account_sid", ACCOUNT_SID)]);
    assert_eq!(
        send_from(&no_token, FROM, &content),
        Err(BuildError::MissingCredential("auth_token"))
    );
}

#[test]
fn classification_follows_the_twilio_error_body() {
    let created = br#"{"sid":"SM1f0e8ae6ade43cb3c0ce4525424e404f","status":"queued","num_segments":"1","error_code":null}"#;
    assert_eq!(
        classify_send(Channel::Sms, 201, &http::HeaderMap::new(), created),
        SendOutcome::Accepted {
            provider_message_id: "SM1f0e8ae6ade43cb3c0ce4525424e404f".to_owned()
        }
    );
    assert!(matches!(
        classify_send(Channel::Sms, 201, &http::HeaderMap::new(), br#"{"status":"queued"}"#),
        SendOutcome::Permanent { error } if error.code == "unparseable_response"
    ));
    let concurrency = br#"{"code":20429,"message":"Too Many Requests","more_info":"https://www.twilio.com/docs/errors/20429","status":429}"#;
    assert_eq!(
        classify_send(Channel::Sms, 429, &retry_after("2"), concurrency),
        SendOutcome::Retryable {
            error: ProviderError {
                code: "20429".to_owned(),
                title: String::new(),
                message: "Too Many Requests".to_owned(),
                details: "https://www.twilio.com/docs/errors/20429".to_owned(),
            },
            retry_after: Some(Duration::from_secs(2)),
        }
    );
    let server = br#"{"code":20500,"message":"Internal Server Error","more_info":"https://www.twilio.com/docs/errors/20500","status":500}"#;
    assert!(matches!(
        classify_send(Channel::Sms, 500, &http::HeaderMap::new(), server),
        SendOutcome::Retryable { .. }
    ));
    for code in [21211, 21610, 21614, 21611, 21623, 63016, 20003] {
        let body = format!(
            r#"{{"code":{code},"message":"m","more_info":"https://www.twilio.com/docs/errors/{code}","status":400}}"#
        );
        let outcome = classify_send(Channel::Sms, 400, &http::HeaderMap::new(), body.as_bytes());
        assert!(
            matches!(&outcome, SendOutcome::Permanent { error } if error.code == code.to_string()),
            "{code}: {outcome:?}"
        );
    }
    assert!(matches!(
        classify_send(Channel::Sms, 503, &http::HeaderMap::new(), b"Service Unavailable"),
        SendOutcome::Retryable { error, .. } if error.code == "http_503"
    ));
}
