//! Ingress through outages: with RabbitMQ stopped, signed webhooks still get 2xx through the
//! PostgreSQL spool and every one reaches the bus, in order, once RabbitMQ is back; with
//! PostgreSQL stopped as well, webhooks get 503. These tests stop the shared local broker and
//! database, so they run alone (the Makefile's serial `chaos_` pass) and always start them again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use switchboard_e2e::webhooks::{WebhookSwitchboard, whatsapp_text};
use switchboard_proto::events::v1::envelope::Payload;
use switchboard_proto::events::v1::inbound_event::Kind;
use switchboard_testkit::broker::stop_broker;
use switchboard_testkit::database_server::stop_database;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_webhooks_are_spooled_while_the_broker_is_down_and_relayed_in_order() {
    let hooks = WebhookSwitchboard::start(&[
        ("SWITCHBOARD__INGRESS__PUBLISH_TIMEOUT", "1s"),
        ("SWITCHBOARD__INGRESS__ACCOUNT_CACHE_TTL", "10m"),
        ("SWITCHBOARD__BUS__CONFIRM_TIMEOUT", "1s"),
    ])
    .await;
    let message = |n: u32| {
        whatsapp_text(
            &format!("wamid.CHAOS-{n}"),
            "16505551234",
            &format!("message {n}"),
        )
    };
    assert_eq!(hooks.post_whatsapp(&message(1), None).await.status(), 200);

    let broker = tokio::task::spawn_blocking(stop_broker).await.unwrap();
    for n in 2..=6 {
        let started = Instant::now();
        let response = hooks.post_whatsapp(&message(n), None).await;
        assert_eq!(response.status(), 200, "message {n} accepted through the spool");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "message {n} answered within a provider's patience"
        );
    }
    assert_eq!(
        hooks
            .metric("switchboard_ingress_events_total{channel=\"whatsapp\",outcome=\"spooled\"}")
            .await,
        5.0
    );

    // Both down: nothing can take the event durably, so the provider must retry.
    let database = tokio::task::spawn_blocking(stop_database).await.unwrap();
    let response = hooks.post_whatsapp(&message(7), None).await;
    assert_eq!(response.status(), 503);
    assert!(response.text().await.unwrap().contains("retry later"));
    tokio::task::spawn_blocking(move || database.start())
        .await
        .unwrap();

    tokio::task::spawn_blocking(move || broker.start()).await.unwrap();
    let events = hooks.read_events(6, Duration::from_secs(60)).await;
    let ids: Vec<String> = events
        .iter()
        .map(|read| match &read.envelope.payload {
            Some(Payload::Inbound(inbound)) => match &inbound.kind {
                Some(Kind::Message(message)) => message.provider_message_id.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect();
    let expected: Vec<String> = (1..=6).map(|n| format!("wamid.CHAOS-{n}")).collect();
    assert_eq!(ids, expected, "every accepted webhook reached the bus, in order");
    assert!(
        events[1..]
            .iter()
            .all(|read| read.headers.contains_key("traceparent")),
        "relayed events carry their trace context"
    );

    // Drained: the spool is empty and new webhooks are published directly again.
    switchboard_testkit::eventually(Duration::from_secs(10), "spool drained", || async {
        (hooks.metric("switchboard_ingress_spool_depth").await == 0.0).then_some(())
    })
    .await;
    assert_eq!(hooks.post_whatsapp(&message(8), None).await.status(), 200);
    let events = hooks.read_events(1, Duration::from_secs(10)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        hooks
            .metric("switchboard_ingress_events_total{channel=\"whatsapp\",outcome=\"published\"}")
            .await,
        2.0
    );
    hooks.cleanup().await;
}
