//! Sends: every refusal makes no provider call, retries end in one delivered message, and an
//! idempotency key makes one provider call however many times Send is called.

use super::*;

#[tokio::test]
async fn every_refusal_has_its_reason_and_makes_no_provider_call() {
    let rig = Rig::start(&[]).await;
    let (contact, open) = rig.whatsapp_customer("16505550101", 1).await;
    let (_, stale) = rig.whatsapp_customer("16505550102", 25).await;
    let mut api = rig.api();
    let refuser = rig.api();
    let refuse = |request: delivery::SendRequest| {
        let mut api = refuser.clone();
        let admin = rig.admin.clone();
        async move { api.send(authorized(request, &admin)).await.expect_err("refused") }
    };

    // Outside the 24-hour window: free text refused (templates allowed, says CanSend).
    let closed = refuse(send(&stale, text("hi"), delivery::AuthorKind::Agent)).await;
    assert_eq!(
        (closed.code(), reason(&closed).as_str()),
        (Code::FailedPrecondition, "WINDOW_CLOSED")
    );
    let can = api
        .can_send(authorized(
            delivery::CanSendRequest {
                recipient: Some(to_conversation(&stale)),
                author_kind: delivery::AuthorKind::Agent as i32,
            },
            &rig.admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(can.has_window && !can.window_open && !can.free_text_allowed && can.template_allowed);
    assert_eq!(can.refusals[0].reason, "WINDOW_CLOSED");

    // Agent text over the workspace cap (512), a template with the wrong parameter count,
    // an executable attachment.
    let long = refuse(send(&open, text(&"x".repeat(513)), delivery::AuthorKind::Agent)).await;
    assert_eq!(
        (long.code(), reason(&long).as_str()),
        (Code::InvalidArgument, "TEXT_TOO_LONG")
    );
    let template = delivery::OutboundContent {
        template: Some(delivery::Template {
            name: "order_shipped".to_owned(),
            language: "en_US".to_owned(),
            body_parameters: vec!["Ana".to_owned()],
            declared_body_parameters: 2,
            ..Default::default()
        }),
        ..Default::default()
    };
    let params = refuse(send(&stale, template, delivery::AuthorKind::Api)).await;
    assert_eq!(reason(&params), "TEMPLATE_PARAMETERS");
    let exe = delivery::OutboundContent {
        parts: vec![ContentPart {
            part: Some(Part::Media(MediaPart {
                url: "https://cdn.example.com/invoice.pdf.exe".to_owned(),
                ..Default::default()
            })),
        }],
        ..Default::default()
    };
    let executable = refuse(send(&open, exe, delivery::AuthorKind::Agent)).await;
    assert_eq!(reason(&executable), "EXECUTABLE_ATTACHMENT");

    // A bot send under a controller version routing does not hold (the conversation is human).
    let mut bot = send(&open, text("beep"), delivery::AuthorKind::Bot);
    bot.controller_version = 7;
    let fenced = refuse(bot).await;
    assert_eq!(
        (fenced.code(), reason(&fenced).as_str()),
        (Code::FailedPrecondition, "CONTROLLER_CHANGED")
    );

    // A blocked contact gets nothing.
    let mut contacts_api = ContactsServiceClient::new(rig.grpc_channel());
    contacts_api
        .block_contact(authorized(
            contacts::BlockContactRequest {
                contact_id: contact.clone(),
            },
            &rig.admin,
        ))
        .await
        .unwrap();
    let blocked = refuse(send(&open, text("hi"), delivery::AuthorKind::Agent)).await;
    assert_eq!(reason(&blocked), "CONTACT_BLOCKED");

    // Another workspace's conversation does not exist for this caller.
    let missing = refuse(send("conv_nope", text("hi"), delivery::AuthorKind::Agent)).await;
    assert_eq!(missing.code(), Code::NotFound);

    assert_eq!(rig.whatsapp_calls().await, 0, "no refusal reaches the provider");
    let stored: i64 = rig
        .db
        .query_one("SELECT count(*) FROM delivery.messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "nothing refused is stored");
}

#[tokio::test]
async fn two_failures_then_success_is_one_delivered_message_with_three_attempts() {
    let rig = Rig::start(&[]).await;
    let (_, conversation) = rig.whatsapp_customer("16505550201", 1).await;
    rig.whatsapp_account(AccountConfig {
        faults: vec![Fault::new(FaultKind::Status { status: 503 }, 2)],
        receipts: vec![ReceiptStatus::Sent, ReceiptStatus::Delivered],
        ..AccountConfig::default()
    })
    .await;
    let sent = rig
        .send_ok(send(
            &conversation,
            text("your order shipped"),
            delivery::AuthorKind::Agent,
        ))
        .await;
    assert_eq!(sent.status, DeliveryStatus::Queued as i32, "Send returns at once");
    let message = rig.wait_status(&sent.id, DeliveryStatus::Delivered).await;
    let outcomes: Vec<&str> = message
        .attempts
        .iter()
        .map(|attempt| attempt.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["retryable", "retryable", "accepted"]);
    assert_eq!(message.attempts[0].provider_status, 503);
    assert!(message.provider_message_id.starts_with("wamid."));
    assert_eq!(rig.whatsapp_calls().await, 3);
    let history: Vec<i32> = message.history.iter().map(|change| change.status).collect();
    assert_eq!(
        history,
        [
            DeliveryStatus::Queued as i32,
            DeliveryStatus::Sent as i32,
            DeliveryStatus::Delivered as i32
        ]
    );
}

#[tokio::test]
async fn five_concurrent_sends_with_one_key_make_one_provider_call() {
    let rig = Rig::start(&[]).await;
    let (_, conversation) = rig.whatsapp_customer("16505550301", 1).await;
    let mut request = send(&conversation, text("once"), delivery::AuthorKind::Api);
    request.idempotency_key = "order-42-shipped".to_owned();
    let calls = (0..5).map(|_| {
        let mut api = rig.api();
        let request = authorized(request.clone(), &rig.admin);
        async move { api.send(request).await.map(|response| response.into_inner()) }
    });
    let results = futures_util::future::join_all(calls).await;
    let ids: std::collections::BTreeSet<String> = results
        .iter()
        .map(|result| {
            result
                .as_ref()
                .expect("accepted")
                .message
                .as_ref()
                .unwrap()
                .id
                .clone()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every call returns the same message");
    assert_eq!(
        results
            .iter()
            .filter(|result| !result.as_ref().unwrap().replayed)
            .count(),
        1
    );
    let id = ids.into_iter().next().unwrap();
    rig.wait_status(&id, DeliveryStatus::Sent).await;
    let mut other = request.clone();
    other.content = Some(text("something else"));
    let reused = rig.api().send(authorized(other, &rig.admin)).await.unwrap_err();
    assert_eq!(
        (reused.code(), reason(&reused).as_str()),
        (Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED")
    );
    // A sentinel send to the same recipient, without a key: its job queues behind any second
    // job of the keyed message, and sends to one recipient go one at a time in queue order.
    let sentinel = rig
        .send_ok(send(&conversation, text("sentinel"), delivery::AuthorKind::Api))
        .await;
    rig.wait_status(&sentinel.id, DeliveryStatus::Sent).await;
    let bodies: Vec<String> = rig
        .calls(Provider::Whatsapp)
        .await
        .iter()
        .map(|call| call.body["text"]["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        bodies,
        ["once", "sentinel"],
        "one provider call for the keyed message"
    );
}

fn photo(url: &str) -> delivery::OutboundContent {
    delivery::OutboundContent {
        parts: vec![ContentPart {
            part: Some(Part::Media(MediaPart {
                url: url.to_owned(),
                mime_type: "image/jpeg".to_owned(),
                ..Default::default()
            })),
        }],
        ..Default::default()
    }
}

/// JPEG's first bytes: what the attachment check reads.
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00";

#[tokio::test]
async fn attachment_urls_into_switchboards_own_network_are_refused_and_never_fetched() {
    let rig = Rig::start(&[]).await;
    let (_, open) = rig.whatsapp_customer("16505550111", 1).await;
    let (host, hits) = file_host(JPEG, "image/jpeg").await;
    let port = host.rsplit(':').next().unwrap().to_owned();
    for url in [
        format!("{host}/photo.jpg"),
        format!("http://localhost:{port}/photo.jpg"),
        format!("http://[::ffff:127.0.0.1]:{port}/photo.jpg"),
        format!("http://2130706433:{port}/photo.jpg"),
        "http://169.254.169.254/latest/meta-data/iam/photo.jpg".to_owned(),
        "http://127.0.0.1:5432/photo.jpg".to_owned(),
    ] {
        let refused = rig
            .api()
            .send(authorized(
                send(&open, photo(&url), delivery::AuthorKind::Agent),
                &rig.admin,
            ))
            .await
            .expect_err(&url);
        assert_eq!(
            (refused.code(), reason(&refused).as_str()),
            (Code::InvalidArgument, "ATTACHMENT_URL_REFUSED"),
            "{url}: {refused:?}"
        );
        assert!(
            refused.message().contains("egress.allow_networks"),
            "the message says what to do: {}",
            refused.message()
        );
    }
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "Switchboard never connected to its own network"
    );
    assert_eq!(rig.whatsapp_calls().await, 0);
    rig.hooks.cleanup().await;
}

#[tokio::test]
async fn an_allow_listed_network_is_fetched_and_the_rest_stays_refused() {
    let rig = Rig::start(&[("SWITCHBOARD__EGRESS__ALLOW_NETWORKS", "127.0.0.1/32")]).await;
    let (_, open) = rig.whatsapp_customer("16505550112", 1).await;
    let (host, hits) = file_host(JPEG, "image/jpeg").await;
    let sent = rig
        .send_ok(send(
            &open,
            photo(&format!("{host}/photo.jpg")),
            delivery::AuthorKind::Agent,
        ))
        .await;
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one ranged GET checked the file"
    );
    rig.wait_status(&sent.id, DeliveryStatus::Sent).await;
    let metadata = rig
        .api()
        .send(authorized(
            send(
                &open,
                photo("http://169.254.169.254/latest/meta-data/photo.jpg"),
                delivery::AuthorKind::Agent,
            ),
            &rig.admin,
        ))
        .await
        .expect_err("metadata stays refused");
    assert_eq!(reason(&metadata), "ATTACHMENT_URL_REFUSED");
    rig.hooks.cleanup().await;
}

#[tokio::test]
async fn a_provider_asking_to_wait_forever_fails_the_message_without_crashing_or_retrying_at_once() {
    let rig = Rig::start(&[]).await;
    let (_, conversation) = rig.whatsapp_customer("16505550121", 1).await;
    // `Retry-After: 18446744073709551615`: longer than any clock can add.
    rig.whatsapp_account(AccountConfig {
        faults: vec![Fault::new(
            FaultKind::RateLimited {
                retry_after_secs: u64::MAX,
            },
            1,
        )],
        ..AccountConfig::default()
    })
    .await;
    let sent = rig
        .send_ok(send(
            &conversation,
            text("are you there?"),
            delivery::AuthorKind::Agent,
        ))
        .await;
    let failed = rig.wait_status(&sent.id, DeliveryStatus::Failed).await;
    assert_eq!(failed.attempts.len(), 1, "{failed:?}");
    assert_eq!(
        failed.attempts[0].retry_after_ms, 86_400_000,
        "the provider's wait is recorded bounded"
    );
    assert_eq!(rig.whatsapp_calls().await, 1, "no immediate retry");
    assert_eq!(
        rig.hooks.switchboard.admin_status("/readyz").await,
        200,
        "the process is alive and ready"
    );
    rig.hooks.cleanup().await;
}
