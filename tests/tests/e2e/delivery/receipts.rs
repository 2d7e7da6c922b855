//! Receipts in any order end in `read`; Twilio status callbacks through ingress; Telegram's
//! per-chat pace and 48-hour delete window.

use super::*;

#[tokio::test]
async fn receipts_in_every_order_and_before_the_send_answer_end_in_read() {
    let rig = Rig::start(&[]).await;
    let (_, conversation) = rig.whatsapp_customer("16505550401", 1).await;
    use ReceiptStatus::{Delivered, Read, Sent};
    let orders = [
        [Sent, Delivered, Read],
        [Sent, Read, Delivered],
        [Delivered, Sent, Read],
        [Delivered, Read, Sent],
        [Read, Sent, Delivered],
        [Read, Delivered, Sent],
    ];
    let mut ids = Vec::new();
    for (index, order) in orders.iter().enumerate() {
        for before_response in [false, true] {
            rig.whatsapp_account(AccountConfig {
                receipts: order.to_vec(),
                receipts_before_response: before_response,
                ..AccountConfig::default()
            })
            .await;
            let message = rig
                .send_ok(send(
                    &conversation,
                    text(&format!("order {index} {before_response}")),
                    delivery::AuthorKind::Agent,
                ))
                .await;
            // One send at a time, so each uses the receipt order configured for it.
            rig.wait_status(&message.id, DeliveryStatus::Read).await;
            ids.push(message.id);
        }
    }
    for id in &ids {
        let message = rig.message(id).await;
        assert_eq!(message.status, DeliveryStatus::Read as i32, "{id} ends read");
        let ranks: Vec<i32> = message.history.iter().map(|change| change.status).collect();
        assert!(
            ranks.windows(2).all(|pair| pair[0] < pair[1]),
            "{id} never went backwards: {ranks:?}"
        );
    }
    let parked: i64 = rig
        .db
        .query_one("SELECT count(*) FROM delivery.parked_receipts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        parked, 0,
        "receipts that beat the answer were applied when it came"
    );
}

#[tokio::test]
async fn a_burst_of_receipts_is_applied_in_batches_and_every_message_ends_read() {
    const CUSTOMER: &str = "16505550402";
    const MESSAGES: usize = 30;
    let rig = Rig::start(&[]).await;
    rig.whatsapp_account(AccountConfig {
        receipts: Vec::new(),
        ..AccountConfig::default()
    })
    .await;
    let (_, conversation) = rig.whatsapp_customer(CUSTOMER, 1).await;
    let mut sent = Vec::new();
    for index in 0..MESSAGES {
        let message = rig
            .send_ok(send(
                &conversation,
                text(&format!("burst {index}")),
                delivery::AuthorKind::Agent,
            ))
            .await;
        sent.push(message.id);
    }
    let mut statuses = Vec::new();
    for id in &sent {
        let message = rig.wait_status(id, DeliveryStatus::Sent).await;
        for status in ["delivered", "read"] {
            statuses.push(serde_json::json!({
                "id": message.provider_message_id,
                "status": status,
                "timestamp": Utc::now().timestamp().to_string(),
                "recipient_id": CUSTOMER,
            }));
        }
    }
    // One webhook with every status: ingress publishes them at once, so the receipts
    // consumer finds a backlog and takes it in batches.
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": WHATSAPP.2},
            "statuses": statuses
        }}]}]
    });
    let body = serde_json::to_vec(&body).unwrap();
    assert_eq!(rig.hooks.post_whatsapp(&body, None).await.status(), 200);
    for id in &sent {
        let message = rig.wait_status(id, DeliveryStatus::Read).await;
        let ranks: Vec<i32> = message.history.iter().map(|change| change.status).collect();
        assert!(
            ranks.windows(2).all(|pair| pair[0] < pair[1]),
            "{id} never went backwards: {ranks:?}"
        );
    }
    let queue = format!("{}delivery.receipts", rig.hooks.namespace);
    let taken = rig
        .hooks
        .metric(&format!(
            "switchboard_bus_batch_messages_sum{{queue=\"{queue}\"}}"
        ))
        .await;
    let batches = rig
        .hooks
        .metric(&format!(
            "switchboard_bus_batch_messages_count{{queue=\"{queue}\"}}"
        ))
        .await;
    assert_eq!(taken as usize, 2 * MESSAGES, "every receipt was taken once");
    assert!(
        batches < taken,
        "some batch held more than one receipt: {taken} receipts in {batches} batches"
    );
    let failed = rig
        .hooks
        .metric(&format!(
            "switchboard_bus_consumed_total{{queue=\"{queue}\",outcome=\"batch_failed\"}}"
        ))
        .await;
    assert_eq!(failed, 0.0, "no batch was handed back");
}

#[tokio::test]
async fn telegram_holds_one_message_per_second_per_chat_and_deletes_only_within_48_hours() {
    let rig = Rig::start(&[]).await;
    let (_, conversation) = rig.telegram_customer(123_456_001).await;
    let mut ids = Vec::new();
    for index in 0..4 {
        let message = rig
            .send_ok(send(
                &conversation,
                text(&format!("part {index}")),
                delivery::AuthorKind::Api,
            ))
            .await;
        ids.push(message.id);
    }
    for id in &ids {
        rig.wait_status(id, DeliveryStatus::Sent).await;
    }
    let calls = rig.calls(Provider::Telegram).await;
    let sends: Vec<u64> = calls
        .iter()
        .filter(|call| call.method == "sendMessage")
        .map(|call| call.time_ms)
        .collect();
    assert_eq!(sends.len(), 4);
    assert!(
        sends.windows(2).all(|pair| pair[1] - pair[0] >= 950),
        "one per second per chat: {sends:?}"
    );
    let bodies: Vec<String> = calls
        .iter()
        .filter(|call| call.method == "sendMessage")
        .map(|call| call.body["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(bodies, ["part 0", "part 1", "part 2", "part 3"], "in order");
    let stats = rig.sim.stats().await.unwrap();
    assert!(stats.accounts.iter().all(|account| account.violations == 0));

    // Deleted within 48 hours (a provider call); refused locally after that (none).
    let deleted = rig
        .api()
        .delete(authorized(
            delivery::DeleteRequest { id: ids[0].clone() },
            &rig.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert!(deleted.deleted_at.is_some());
    rig.db
        .execute(
            "UPDATE delivery.messages SET sent_at = now() - interval '49 hours' WHERE id = $1",
            &[&ids[1]],
        )
        .await
        .unwrap();
    let late = rig
        .api()
        .delete(authorized(
            delivery::DeleteRequest { id: ids[1].clone() },
            &rig.admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&late), "DELETE_WINDOW_PASSED");
    let deletes = rig
        .calls(Provider::Telegram)
        .await
        .into_iter()
        .filter(|call| call.method == "deleteMessage")
        .count();
    assert_eq!(deletes, 1);
}

// Twilio calls the send's StatusCallback (the public URL, signed as such) through the proxy in
// front of Switchboard; ingress verifies it and delivery moves the message to delivered.
#[tokio::test]
async fn twilio_status_callbacks_reach_delivery_through_ingress() {
    use switchboard_e2e::webhooks::{PUBLIC_BASE_URL, SMS};
    let rig = Rig::start(&[]).await;
    let account_sid = "AC33333333333333333333333333333333";
    let callback = format!("{PUBLIC_BASE_URL}/webhooks/sms/{}", SMS.0);
    rig.point_account(
        SMS.0,
        &[("auth_token", SMS.1)],
        &[("account_sid", account_sid), ("status_callback_url", &callback)],
    )
    .await;
    rig.sim
        .configure_account(
            Provider::Twilio,
            account_sid,
            &AccountConfig {
                credential: SMS.1.to_owned(),
                receipts: vec![ReceiptStatus::Sent, ReceiptStatus::Delivered],
                deliver_via: Some(rig.hooks.switchboard.http.clone()),
                ..AccountConfig::default()
            },
        )
        .await
        .expect("twilio account");
    // The customer texts first (signed over the public URL, as Twilio does).
    let form = format!(
        "MessageSid=SM44444444444444444444444444444444&AccountSid={account_sid}&From=%2B14155550177&To=%2B14155550100&Body=Hi&NumMedia=0&SmsStatus=received&ApiVersion=2010-04-01"
    );
    let params = switchboard_channels::twilio::parse_form(form.as_bytes()).unwrap();
    let signature = switchboard_channels::twilio::signature(SMS.1.as_bytes(), &callback, &params);
    let response = rig
        .hooks
        .http
        .post(rig.hooks.url("sms", SMS.0))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, conversation) = rig.conversation_of("SM44444444444444444444444444444444").await;
    let message = rig
        .send_ok(send(
            &conversation,
            text("Your table is ready"),
            delivery::AuthorKind::Api,
        ))
        .await;
    let delivered = rig.wait_status(&message.id, DeliveryStatus::Delivered).await;
    let sources: Vec<&str> = delivered
        .history
        .iter()
        .map(|change| change.source.as_str())
        .collect();
    assert!(
        sources.contains(&"receipt"),
        "the delivered status came from a receipt: {sources:?}"
    );
    let calls = rig.calls(Provider::Twilio).await;
    assert_eq!(calls.len(), 1);
    assert!(
        calls[0].body["StatusCallback"]
            .as_str()
            .is_some_and(|url| url.starts_with(&callback) && url.contains(&message.id)),
        "the send carried the public callback URL with the message id: {:?}",
        calls[0].body
    );
    rig.hooks.cleanup().await;
}
