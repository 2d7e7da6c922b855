//! Status webhooks: signed so ingress's verifiers accept them, shaped so its normalizers
//! read them, ordered as configured, retried when the receiver fails.

use std::collections::HashMap;

use serde_json::{Value, json};
use switchboard_proto::common::v1::DeliveryStatus;
use switchboard_provider_sim::{AccountConfig, Provider, ReceiptStatus};

use crate::receiver::{Expect, Receiver};
use crate::{IG, PAGE, TWILIO_SID, TWILIO_TOKEN, WA_PHONE, WA_TOKEN, eventually, read, start};

fn expect(channel: &str, secret: &str, external_id: &str) -> HashMap<String, Expect> {
    HashMap::from([(
        channel.to_owned(),
        Expect {
            secret: secret.to_owned(),
            external_id: external_id.to_owned(),
        },
    )])
}

#[tokio::test]
async fn whatsapp_statuses_are_signed_over_the_raw_body_and_read_by_ingress() {
    let harness = start().await;
    let receiver = Receiver::start(expect("whatsapp", "my_app_secret", WA_PHONE), 0).await;
    let config = AccountConfig {
        webhook_url: Some(format!("{}/webhooks/whatsapp/chacc_wa", receiver.base_url)),
        webhook_secret: Some("my_app_secret".to_owned()),
        receipts: vec![ReceiptStatus::Sent, ReceiptStatus::Delivered, ReceiptStatus::Read],
        business_account_id: Some("102290129340398".to_owned()),
        ..AccountConfig::new(WA_TOKEN)
    };
    harness.account(Provider::Whatsapp, WA_PHONE, config).await;
    let send = json!({
        "messaging_product": "whatsapp", "to": "16505551234", "type": "text",
        "biz_opaque_callback_data": "msg_0001", "text": {"body": "Grüße — äöå"},
    });
    let response = harness
        .http
        .post(harness.url(&format!("/v23.0/{WA_PHONE}/messages")))
        .bearer_auth(WA_TOKEN)
        .json(&send)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, 200);
    let wamid = body["messages"][0]["id"].as_str().unwrap().to_owned();

    let received = eventually("three whatsapp statuses", || async {
        let received = receiver.received();
        (received.len() == 3).then_some(received)
    })
    .await;
    assert!(receiver.rejected().is_empty(), "{:?}", receiver.rejected());
    let statuses: Vec<&str> = received
        .iter()
        .map(|webhook| webhook.receipts[0].provider_status.as_str())
        .collect();
    assert_eq!(statuses, ["sent", "delivered", "read"]);
    for webhook in &received {
        let receipt = &webhook.receipts[0];
        assert_eq!(receipt.provider_message_id, wamid);
        assert_eq!(receipt.switchboard_message_id, "msg_0001");
        let payload: Value = serde_json::from_slice(&webhook.body).unwrap();
        assert_eq!(payload["object"], "whatsapp_business_account");
        assert_eq!(payload["entry"][0]["id"], "102290129340398");
        let value = &payload["entry"][0]["changes"][0]["value"];
        assert_eq!(value["metadata"]["phone_number_id"], WA_PHONE);
        let status = &value["statuses"][0];
        assert_eq!(status["recipient_id"], "16505551234");
        assert!(status["timestamp"].as_str().unwrap().parse::<i64>().is_ok());
    }
    assert_eq!(received[1].receipts[0].status, DeliveryStatus::Delivered);

    let stats = harness.control.stats().await.unwrap();
    let account = stats.account(Provider::Whatsapp, WA_PHONE).unwrap();
    assert_eq!((account.webhooks.ok, account.webhooks.failed), (3, 0));
    assert_eq!(stats.webhooks.ok, 3);
}

#[tokio::test]
async fn receipts_before_response_arrive_before_the_send_is_answered() {
    let harness = start().await;
    let receiver = Receiver::start(expect("whatsapp", "my_app_secret", WA_PHONE), 0).await;
    let config = AccountConfig {
        webhook_url: Some(format!("{}/webhooks/whatsapp/chacc_wa", receiver.base_url)),
        webhook_secret: Some("my_app_secret".to_owned()),
        receipts: vec![ReceiptStatus::Sent, ReceiptStatus::Delivered],
        receipt_delay_ms: 200,
        receipts_before_response: true,
        ..AccountConfig::new(WA_TOKEN)
    };
    harness.account(Provider::Whatsapp, WA_PHONE, config).await;
    let (status, body) = harness.whatsapp_text(WA_TOKEN, "16505551234").await;
    receiver.mark("response");
    assert_eq!(status, 200, "{body}");
    let events = eventually("the delivered receipt", || async {
        let events = receiver.events();
        (events.len() == 3).then_some(events)
    })
    .await;
    assert_eq!(events, ["whatsapp:sent", "response", "whatsapp:delivered"]);
    let wamid = body["messages"][0]["id"].as_str().unwrap();
    assert_eq!(receiver.received()[0].receipts[0].provider_message_id, wamid);
}

#[tokio::test]
async fn twilio_callbacks_go_to_the_status_callback_signed_over_its_url() {
    let harness = start().await;
    let receiver = Receiver::start(expect("twilio", TWILIO_TOKEN, "+14155550100"), 0).await;
    let config = AccountConfig {
        receipts: vec![ReceiptStatus::Sent, ReceiptStatus::Delivered],
        ..AccountConfig::new(TWILIO_TOKEN)
    };
    harness.account(Provider::Twilio, TWILIO_SID, config).await;
    let callback = format!(
        "{}/webhooks/twilio/chacc_tw?sb_message_id=msg_0009",
        receiver.base_url
    );
    let form = [
        ("To", "+14155550123"),
        ("From", "+14155550100"),
        ("Body", "Hello + goodbye & more"),
        ("StatusCallback", callback.as_str()),
    ];
    let (status, body) = harness.twilio_send(TWILIO_SID, TWILIO_TOKEN, &form).await;
    assert_eq!(status, 201, "{body}");
    let sid = body["sid"].as_str().unwrap().to_owned();
    let received = eventually("two twilio callbacks", || async {
        let received = receiver.received();
        (received.len() == 2).then_some(received)
    })
    .await;
    assert!(receiver.rejected().is_empty(), "{:?}", receiver.rejected());
    for (webhook, expected) in received.iter().zip(["sent", "delivered"]) {
        assert_eq!(webhook.url, callback);
        assert_eq!(webhook.receipts[0].provider_message_id, sid);
        assert_eq!(webhook.receipts[0].provider_status, expected);
        let params: HashMap<String, String> = form_urlencoded::parse(&webhook.body).into_owned().collect();
        assert_eq!(params["AccountSid"], TWILIO_SID);
        assert_eq!(params["To"], "+14155550123");
        assert_eq!(params["ApiVersion"], "2010-04-01");
    }
}

#[tokio::test]
async fn messenger_and_instagram_receipts_are_watermarks_and_read_mids() {
    let harness = start().await;
    let mut channels = expect("messenger", "page_app_secret", PAGE);
    channels.extend(expect("instagram", "ig_app_secret", IG));
    let receiver = Receiver::start(channels, 0).await;
    for (provider, id, channel, secret, receipts) in [
        (
            Provider::Messenger,
            PAGE,
            "messenger",
            "page_app_secret",
            vec![ReceiptStatus::Sent, ReceiptStatus::Delivered, ReceiptStatus::Read],
        ),
        (
            Provider::Instagram,
            IG,
            "instagram",
            "ig_app_secret",
            vec![ReceiptStatus::Delivered, ReceiptStatus::Read],
        ),
    ] {
        let config = AccountConfig {
            webhook_url: Some(format!(
                "{}/webhooks/{channel}/chacc_{channel}",
                receiver.base_url
            )),
            webhook_secret: Some(secret.to_owned()),
            receipts,
            shuffle_receipts: true,
            ..AccountConfig::new("TOKEN")
        };
        harness.account(provider, id, config).await;
    }
    let mut mids = HashMap::new();
    for id in [PAGE, IG] {
        let response = harness
            .http
            .post(harness.url(&format!("/v23.0/{id}/messages")))
            .bearer_auth("TOKEN")
            .json(&json!({"recipient": {"id": "6789012345678901"}, "message": {"text": "hi"}}))
            .send()
            .await
            .unwrap();
        let (_, body) = read(response).await;
        mids.insert(id, body["message_id"].as_str().unwrap().to_owned());
    }
    // Messenger has delivery and read (no "sent"); Instagram only read.
    let received = eventually("three receipts", || async {
        let received = receiver.received();
        (received.len() == 3).then_some(received)
    })
    .await;
    assert!(receiver.rejected().is_empty(), "{:?}", receiver.rejected());
    let mut messenger: Vec<DeliveryStatus> = received
        .iter()
        .filter(|webhook| webhook.channel == "messenger")
        .map(|webhook| webhook.receipts[0].status)
        .collect();
    messenger.sort_by_key(|status| *status as i32);
    assert_eq!(messenger, [DeliveryStatus::Delivered, DeliveryStatus::Read]);
    let delivery = received
        .iter()
        .find(|webhook| webhook.receipts[0].provider_status == "delivery")
        .unwrap();
    assert_eq!(delivery.receipts[0].provider_message_id, mids[PAGE]);
    let instagram = received
        .iter()
        .find(|webhook| webhook.channel == "instagram")
        .unwrap();
    assert_eq!(instagram.receipts[0].status, DeliveryStatus::Read);
    assert_eq!(instagram.receipts[0].provider_message_id, mids[IG]);
}

#[tokio::test]
async fn failed_webhook_posts_are_retried_and_counted() {
    let harness = start().await;
    let receiver = Receiver::start(expect("whatsapp", "my_app_secret", WA_PHONE), 2).await;
    let config = AccountConfig {
        webhook_url: Some(format!("{}/webhooks/whatsapp/chacc_wa", receiver.base_url)),
        webhook_secret: Some("my_app_secret".to_owned()),
        receipts: vec![ReceiptStatus::Delivered],
        ..AccountConfig::new(WA_TOKEN)
    };
    harness.account(Provider::Whatsapp, WA_PHONE, config).await;
    assert_eq!(harness.whatsapp_text(WA_TOKEN, "1").await.0, 200);
    let stats = eventually("a delivered webhook", || async {
        let stats = harness.control.stats().await.unwrap();
        (stats.webhooks.ok == 1).then_some(stats)
    })
    .await;
    assert_eq!((stats.webhooks.retries, stats.webhooks.failed), (2, 0));

    // Nobody listens here: every attempt fails, then the post is given up and counted.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!(
        "http://{}/webhooks/whatsapp/chacc_wa",
        closed.local_addr().unwrap()
    );
    drop(closed);
    let config = AccountConfig {
        webhook_url: Some(dead_url),
        webhook_secret: Some("my_app_secret".to_owned()),
        receipts: vec![ReceiptStatus::Delivered],
        ..AccountConfig::new(WA_TOKEN)
    };
    harness.account(Provider::Whatsapp, WA_PHONE, config).await;
    assert_eq!(harness.whatsapp_text(WA_TOKEN, "2").await.0, 200);
    let stats = eventually("a failed webhook", || async {
        let stats = harness.control.stats().await.unwrap();
        (stats.webhooks.failed == 1).then_some(stats)
    })
    .await;
    assert_eq!(stats.webhooks.retries, 2 + 3);
}
