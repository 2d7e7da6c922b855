//! Fault injection: server errors, rate-limit answers, provider errors, dropped responses,
//! latency.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_provider_sim::{AccountConfig, CallOutcome, CallsQuery, Fault, FaultKind, Provider};

use crate::{BOT, BOT_TOKEN, PAGE, TWILIO_SID, TWILIO_TOKEN, WA_PHONE, WA_TOKEN, read, start};

#[tokio::test]
async fn two_server_errors_then_success() {
    let harness = start().await;
    let config = AccountConfig {
        faults: vec![Fault::new(FaultKind::Status { status: 500 }, 2)],
        ..AccountConfig::new(WA_TOKEN)
    };
    harness.account(Provider::Whatsapp, WA_PHONE, config).await;
    for _ in 0..2 {
        let (status, body) = harness.whatsapp_text(WA_TOKEN, "16505551234").await;
        assert_eq!(status, 500);
        assert_eq!(body["error"]["code"], 131000);
        assert_eq!(body["error"]["type"], "OAuthException");
    }
    let (status, body) = harness.whatsapp_text(WA_TOKEN, "16505551234").await;
    assert_eq!(status, 200, "{body}");

    let calls = harness.control.calls(&CallsQuery::default()).await.unwrap();
    let outcomes: Vec<CallOutcome> = calls.iter().map(|call| call.outcome).collect();
    assert_eq!(
        outcomes,
        [CallOutcome::Fault, CallOutcome::Fault, CallOutcome::Accepted]
    );
    let stats = harness.control.stats().await.unwrap();
    let account = stats.account(Provider::Whatsapp, WA_PHONE).unwrap();
    assert_eq!(
        (account.faults_injected, account.accepted, account.refused),
        (2, 1, 2)
    );
    assert_eq!(account.violations, 0);
}

#[tokio::test]
async fn injected_rate_limits_and_errors_answer_in_the_providers_shape() {
    let harness = start().await;
    harness
        .account(Provider::Telegram, BOT, AccountConfig::new(BOT_TOKEN))
        .await;
    harness
        .account(Provider::Whatsapp, WA_PHONE, AccountConfig::new(WA_TOKEN))
        .await;
    harness
        .account(Provider::Twilio, TWILIO_SID, AccountConfig::new(TWILIO_TOKEN))
        .await;
    harness
        .account(Provider::Messenger, PAGE, AccountConfig::new("PAGE_TOKEN"))
        .await;
    let queued = harness
        .control
        .add_faults(
            Provider::Telegram,
            BOT,
            &[
                Fault::new(FaultKind::RateLimited { retry_after_secs: 3 }, 1),
                Fault::new(FaultKind::Status { status: 502 }, 1),
            ],
        )
        .await
        .unwrap();
    assert_eq!(queued, 2);
    let response = harness
        .http
        .post(harness.url(&format!("/bot{BOT_TOKEN}/sendMessage")))
        .json(&json!({"chat_id": 5, "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["retry-after"], "3");
    let (status, body) = read(response).await;
    assert_eq!(status, 429);
    assert_eq!(body["parameters"]["retry_after"], 3);
    assert_eq!(body["description"], "Too Many Requests: retry after 3");
    let (status, body) = harness.telegram_text(BOT_TOKEN, 5).await;
    assert_eq!((status, body["error_code"].clone()), (502, json!(502)));

    let error = |code: &str, subcode: Option<u64>| {
        let kind = FaultKind::Error {
            code: code.to_owned(),
            status: None,
            subcode,
            message: None,
        };
        vec![Fault::new(kind, 1)]
    };
    harness
        .control
        .add_faults(Provider::Whatsapp, WA_PHONE, &error("131047", None))
        .await
        .unwrap();
    let (status, body) = harness.whatsapp_text(WA_TOKEN, "16505551234").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 131047);
    assert_eq!(body["error"]["message"], "(#131047) Re-engagement message");
    assert!(
        body["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("24 hours")
    );

    harness
        .control
        .add_faults(Provider::Twilio, TWILIO_SID, &error("21610", None))
        .await
        .unwrap();
    let form = [("To", "+14155550123"), ("From", "+14155550100"), ("Body", "hi")];
    let (status, body) = harness.twilio_send(TWILIO_SID, TWILIO_TOKEN, &form).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], 21610);
    assert_eq!(body["more_info"], "https://www.twilio.com/docs/errors/21610");

    harness
        .control
        .add_faults(Provider::Messenger, PAGE, &error("10", Some(2_018_278)))
        .await
        .unwrap();
    let response = harness
        .http
        .post(harness.url(&format!("/v23.0/{PAGE}/messages")))
        .bearer_auth("PAGE_TOKEN")
        .json(&json!({"recipient": {"id": "1"}, "message": {"text": "hi"}}))
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 10);
    assert_eq!(body["error"]["error_subcode"], 2_018_278);

    // Telegram's error code is its HTTP status.
    harness
        .control
        .add_faults(Provider::Telegram, BOT, &error("403", None))
        .await
        .unwrap();
    let (status, body) = harness.telegram_text(BOT_TOKEN, 6).await;
    assert_eq!(status, 403);
    assert_eq!(body["description"], "Forbidden: bot was blocked by the user");
}

#[tokio::test]
async fn a_dropped_response_times_the_client_out_but_the_send_is_recorded() {
    let harness = start().await;
    let config = AccountConfig {
        faults: vec![Fault::new(FaultKind::DropResponse { hold_ms: None }, 1)],
        ..AccountConfig::new(WA_TOKEN)
    };
    harness.account(Provider::Whatsapp, WA_PHONE, config).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = impatient
        .post(harness.url(&format!("/v23.0/{WA_PHONE}/messages")))
        .bearer_auth(WA_TOKEN)
        .json(&json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "text", "text": {"body": "hi"}}))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");

    let calls = harness.control.calls(&CallsQuery::default()).await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].outcome, CallOutcome::Dropped);
    assert_eq!(calls[0].status, None);
    assert!(
        calls[0]
            .provider_message_id
            .as_deref()
            .unwrap()
            .starts_with("wamid.")
    );
    let stats = harness.control.stats().await.unwrap();
    let account = stats.account(Provider::Whatsapp, WA_PHONE).unwrap();
    assert_eq!((account.accepted, account.dropped_responses), (1, 1));
    // The fault is used up: the next send is answered.
    assert_eq!(harness.whatsapp_text(WA_TOKEN, "16505551234").await.0, 200);
}

#[tokio::test]
async fn a_dropped_response_closes_the_connection_without_an_answer() {
    let harness = start().await;
    let config = AccountConfig {
        faults: vec![Fault::new(FaultKind::DropResponse { hold_ms: Some(50) }, 1)],
        ..AccountConfig::new(TWILIO_TOKEN)
    };
    harness.account(Provider::Twilio, TWILIO_SID, config).await;
    let error = harness
        .http
        .post(harness.url(&format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")))
        .basic_auth(TWILIO_SID, Some(TWILIO_TOKEN))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("To=%2B14155550123&From=%2B14155550100&Body=hi")
        .send()
        .await
        .unwrap_err();
    assert!(!error.is_timeout() && error.status().is_none(), "{error:?}");
    let calls = harness.control.calls(&CallsQuery::default()).await.unwrap();
    assert_eq!(calls[0].outcome, CallOutcome::Dropped);
    assert!(calls[0].provider_message_id.as_deref().unwrap().starts_with("SM"));
}

#[tokio::test]
async fn latency_is_added_to_every_answer() {
    let harness = start().await;
    let config = AccountConfig {
        latency_ms: 200,
        ..AccountConfig::new(WA_TOKEN)
    };
    harness.account(Provider::Whatsapp, WA_PHONE, config).await;
    let started = Instant::now();
    assert_eq!(harness.whatsapp_text(WA_TOKEN, "1").await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    let started = Instant::now();
    let response = harness
        .http
        .post(harness.url(&format!("/v23.0/{WA_PHONE}/messages")))
        .bearer_auth(WA_TOKEN)
        .json(&json!({"messaging_product": "whatsapp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(started.elapsed() >= Duration::from_millis(200));
}
