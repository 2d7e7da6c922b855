//! Each endpoint answers in its provider's shape and checks the configured credential.

use serde_json::{Value, json};
use switchboard_provider_sim::{
    AccountConfig, CallOutcome, CallsQuery, Fault, FaultKind, Limits, Provider, SimulatorError,
};

use crate::{BOT, BOT_TOKEN, IG, PAGE, TWILIO_SID, TWILIO_TOKEN, WA_PHONE, WA_TOKEN, read, start};

fn graph_error_code(body: &Value) -> i64 {
    assert_eq!(body["error"]["type"], "OAuthException", "{body}");
    assert!(body["error"]["fbtrace_id"].is_string(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["code"].as_i64().expect("numeric code")
}

#[tokio::test]
async fn whatsapp_answers_like_the_cloud_api_and_checks_the_bearer_token() {
    let harness = start().await;
    harness
        .account(Provider::Whatsapp, WA_PHONE, AccountConfig::new(WA_TOKEN))
        .await;

    let (status, body) = harness.whatsapp_text(WA_TOKEN, "+16505551234").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["contacts"][0]["input"], "+16505551234");
    assert_eq!(body["contacts"][0]["wa_id"], "16505551234");
    let wamid = body["messages"][0]["id"].as_str().expect("wamid").to_owned();
    assert!(wamid.starts_with("wamid."), "{wamid}");
    assert_eq!(body["messages"][0]["message_status"], "accepted");

    let (status, body) = harness.whatsapp_text("wrong", "16505551234").await;
    assert_eq!(status, 401);
    assert_eq!(graph_error_code(&body), 190);

    let response = harness
        .http
        .post(harness.url("/v23.0/999/messages"))
        .bearer_auth(WA_TOKEN)
        .json(&json!({"messaging_product": "whatsapp", "to": "1", "type": "text", "text": {"body": "x"}}))
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!((status, graph_error_code(&body)), (401, 190));

    let missing_to = json!({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}});
    let response = harness
        .http
        .post(harness.url(&format!("/v23.0/{WA_PHONE}/messages")))
        .bearer_auth(WA_TOKEN)
        .json(&missing_to)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!((status, graph_error_code(&body)), (400, 100));
    assert_eq!(body["error"]["error_data"]["messaging_product"], "whatsapp");

    let mark_read = json!({"messaging_product": "whatsapp", "status": "read", "message_id": wamid});
    let response = harness
        .http
        .post(harness.url(&format!("/v23.0/{WA_PHONE}/messages")))
        .bearer_auth(WA_TOKEN)
        .json(&mark_read)
        .send()
        .await
        .unwrap();
    assert_eq!(read(response).await, (200, json!({"success": true})));

    let calls = harness
        .control
        .calls(&CallsQuery {
            provider: Some(Provider::Whatsapp),
            ..CallsQuery::default()
        })
        .await
        .unwrap();
    let outcomes: Vec<CallOutcome> = calls.iter().map(|call| call.outcome).collect();
    assert_eq!(
        outcomes,
        [
            CallOutcome::Accepted,
            CallOutcome::Unauthorized,
            CallOutcome::Unauthorized,
            CallOutcome::Rejected,
            CallOutcome::Accepted,
        ]
    );
    let first = &calls[0];
    assert_eq!(first.account, WA_PHONE);
    assert_eq!(first.method, "messages");
    assert_eq!(first.recipient.as_deref(), Some("+16505551234"));
    assert_eq!(first.body["text"]["body"], "hello");
    assert_eq!(first.status, Some(200));
    assert_eq!(first.provider_message_id.as_deref(), Some(wamid.as_str()));
    assert_eq!(calls[1].error_code.as_deref(), Some("190"));
    assert!(calls.windows(2).all(|pair| pair[0].seq < pair[1].seq));
}

#[tokio::test]
async fn messenger_and_instagram_answer_recipient_and_message_ids() {
    let harness = start().await;
    harness
        .account(Provider::Messenger, PAGE, AccountConfig::new("PAGE_TOKEN"))
        .await;
    harness
        .account(Provider::Instagram, IG, AccountConfig::new("IG_TOKEN"))
        .await;
    let send = |object: &str, token: &'static str| {
        let request = harness
            .http
            .post(harness.url(&format!("/v23.0/{object}/messages")))
            .bearer_auth(token)
            .json(&json!({"recipient": {"id": "6789012345678901"}, "messaging_type": "RESPONSE", "message": {"text": "hi"}}));
        async move { read(request.send().await.unwrap()).await }
    };
    for (object, token) in [(PAGE, "PAGE_TOKEN"), (IG, "IG_TOKEN"), ("me", "IG_TOKEN")] {
        let (status, body) = send(object, token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["recipient_id"], "6789012345678901");
        assert!(body["message_id"].as_str().unwrap().starts_with("m_"), "{body}");
    }
    let (status, body) = send(PAGE, "IG_TOKEN").await;
    assert_eq!((status, graph_error_code(&body)), (401, 190));

    let calls = harness.control.calls(&CallsQuery::default()).await.unwrap();
    let providers: Vec<Provider> = calls.iter().map(|call| call.provider).collect();
    assert_eq!(
        providers,
        [
            Provider::Messenger,
            Provider::Instagram,
            Provider::Instagram,
            Provider::Messenger
        ]
    );
}

#[tokio::test]
async fn telegram_answers_bot_api_messages_with_ids_increasing_per_chat() {
    let harness = start().await;
    let config = AccountConfig {
        limits: Limits {
            per_recipient_per_second: Some(0),
            ..Limits::default()
        },
        ..AccountConfig::new(BOT_TOKEN)
    };
    harness.account(Provider::Telegram, BOT, config).await;

    let (status, body) = harness.telegram_text(BOT_TOKEN, 123).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(body["result"]["message_id"], 1);
    assert_eq!(body["result"]["chat"], json!({"id": 123, "type": "private"}));
    assert_eq!(body["result"]["text"], "hello");
    assert!(body["result"]["date"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(
        harness.telegram_text(BOT_TOKEN, 123).await.1["result"]["message_id"],
        2
    );
    assert_eq!(
        harness.telegram_text(BOT_TOKEN, 456).await.1["result"]["message_id"],
        1
    );
    let group = harness.telegram_text(BOT_TOKEN, -100_555).await.1;
    assert_eq!(group["result"]["chat"]["type"], "supergroup");

    // Form-encoded media.
    let response = harness
        .http
        .post(harness.url(&format!("/bot{BOT_TOKEN}/sendPhoto")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("chat_id=123&photo=https%3A%2F%2Fcdn.example.com%2Fa.jpg&caption=look")
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["message_id"], 3);
    assert_eq!(body["result"]["caption"], "look");
    assert!(body["result"]["photo"].as_array().unwrap().len() >= 2);

    let delete = |message_id: i64| {
        let request = harness
            .http
            .post(harness.url(&format!("/bot{BOT_TOKEN}/deleteMessage")))
            .json(&json!({"chat_id": 123, "message_id": message_id}));
        async move { read(request.send().await.unwrap()).await }
    };
    assert_eq!(delete(1).await, (200, json!({"ok": true, "result": true})));
    let (status, body) = delete(1).await;
    assert_eq!(status, 400);
    assert_eq!(body["description"], "Bad Request: message to delete not found");

    let (status, body) = harness.telegram_text("7000000001:wrong", 123).await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
        )
    );
    let (status, body) = harness.telegram_text("42:unknown-bot", 123).await;
    assert_eq!((status, body["error_code"].clone()), (401, json!(401)));

    let response = harness
        .http
        .post(harness.url(&format!("/bot{BOT_TOKEN}/sendTelepathy")))
        .json(&json!({"chat_id": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(read(response).await.0, 404);

    let calls = harness
        .control
        .calls(&CallsQuery {
            account: Some(BOT.to_owned()),
            ..CallsQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(calls[0].method, "sendMessage");
    assert_eq!(calls[0].provider_message_id.as_deref(), Some("123:1"));
    assert_eq!(calls[4].body["photo"], "https://cdn.example.com/a.jpg");
    assert!(
        calls
            .iter()
            .all(|call| !call.body.to_string().contains("AAHdqTcv")),
        "the call log never holds the bot token"
    );
}

#[tokio::test]
async fn twilio_answers_the_message_resource_and_checks_basic_auth() {
    let harness = start().await;
    // A long code's default is 1 message per second; this test sends faster.
    let config = AccountConfig {
        limits: Limits {
            per_second: Some(0),
            ..Limits::default()
        },
        ..AccountConfig::new(TWILIO_TOKEN)
    };
    harness.account(Provider::Twilio, TWILIO_SID, config).await;

    let (status, body) = harness
        .twilio_send(
            TWILIO_SID,
            TWILIO_TOKEN,
            &[
                ("To", "+14155550123"),
                ("From", "+14155550100"),
                ("Body", "Hello from SMS"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let sid = body["sid"].as_str().unwrap();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert!(sid[2..].bytes().all(|byte| byte.is_ascii_hexdigit()));
    assert_eq!(body["status"], "queued");
    assert_eq!(body["to"], "+14155550123");
    assert_eq!(body["from"], "+14155550100");
    assert_eq!(body["body"], "Hello from SMS");
    assert_eq!(body["num_segments"], "1");
    assert_eq!(body["error_code"], Value::Null);
    assert_eq!(body["account_sid"], TWILIO_SID);

    let (status, body) = harness
        .twilio_send(
            TWILIO_SID,
            TWILIO_TOKEN,
            &[
                ("To", "+14155550123"),
                ("From", "+14155550100"),
                ("MediaUrl", "https://cdn.example.com/1.jpg"),
                ("MediaUrl", "https://cdn.example.com/2.jpg"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["sid"].as_str().unwrap().starts_with("MM"));
    assert_eq!(body["num_media"], "2");

    let (status, body) = harness
        .twilio_send(
            TWILIO_SID,
            "wrong",
            &[("To", "+1"), ("From", "+2"), ("Body", "x")],
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
    );
    let (status, body) = harness
        .twilio_send(TWILIO_SID, TWILIO_TOKEN, &[("From", "+2"), ("Body", "x")])
        .await;
    assert_eq!((status, body["code"].clone()), (400, json!(21604)));

    let calls = harness.control.calls(&CallsQuery::default()).await.unwrap();
    assert_eq!(calls[1].method, "Messages.json");
    assert_eq!(
        calls[1].body["MediaUrl"],
        json!(["https://cdn.example.com/1.jpg", "https://cdn.example.com/2.jpg"])
    );
    assert_eq!(calls[0].body["Body"], "Hello from SMS");
    assert_eq!(calls[2].outcome, CallOutcome::Unauthorized);
}

#[tokio::test]
async fn the_control_api_refuses_bad_input_and_reset_forgets_everything() {
    let harness = start().await;
    let refused = harness
        .control
        .configure_account(Provider::Telegram, BOT, &AccountConfig::new("no-bot-id-prefix"))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, SimulatorError::Status { status: 400, .. }),
        "{refused}"
    );
    let unknown = harness
        .control
        .add_faults(
            Provider::Whatsapp,
            "nobody",
            &[Fault::new(FaultKind::Status { status: 500 }, 1)],
        )
        .await
        .unwrap_err();
    assert!(matches!(unknown, SimulatorError::Status { status: 404, .. }));
    let response = harness
        .http
        .put(harness.url("/_sim/accounts/carrier-pigeon/1"))
        .json(&json!({"credential": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    harness
        .account(Provider::Whatsapp, WA_PHONE, AccountConfig::new(WA_TOKEN))
        .await;
    assert_eq!(harness.whatsapp_text(WA_TOKEN, "1").await.0, 200);
    harness.control.reset().await.unwrap();
    let stats = harness.control.stats().await.unwrap();
    assert!(stats.accounts.is_empty());
    assert_eq!(stats.calls_recorded, 0);
    assert_eq!(harness.whatsapp_text(WA_TOKEN, "1").await.0, 401);
}
