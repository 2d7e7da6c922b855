use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use switchboard_messaging::{
    HEADER_ATTEMPTS, HEADER_DEAD_LETTER_REASON, Handler, HandlerError, Incoming, PublishError, run_consumer,
};
use switchboard_testkit::eventually;

use crate::helpers::{Recorder, TestBus, header_text, outgoing};

impl Handler for Recorder {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        self.seen.lock().unwrap().push(message.clone());
        Ok(())
    }
}

#[tokio::test]
async fn confirmed_publishes_are_consumed_and_acked_with_trace_context() {
    let test = TestBus::start(switchboard_testkit::bus_config()).await;
    let queue = test.bus.queue("it", "inbound");
    test.declare(std::slice::from_ref(&queue)).await;
    let publisher = test.bus.publisher();
    for index in 0..20 {
        publisher
            .publish(outgoing(
                &test.bus,
                "inbound.whatsapp.message_received",
                &format!("evt_{index}"),
                "",
            ))
            .await
            .expect("confirmed");
    }
    let recorder = Arc::new(Recorder::default());
    let consumer = tokio::spawn(run_consumer(
        test.bus.clone(),
        queue.clone(),
        4,
        recorder.clone(),
        test.shutdown.clone(),
    ));

    eventually(Duration::from_secs(10), "20 messages consumed", || async {
        (recorder.seen.lock().unwrap().len() >= 20).then_some(())
    })
    .await;
    let mut ids = recorder.ids();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "each message exactly once");
    let first = recorder.seen.lock().unwrap()[0].clone();
    assert_eq!(
        first.message_type.as_deref(),
        Some("inbound.whatsapp.message_received")
    );
    assert!(first.message_id.is_some());
    eventually(Duration::from_secs(5), "queue drained (acked)", || async {
        (test.ready_count(&queue.name).await == 0).then_some(())
    })
    .await;

    test.shutdown.cancel();
    consumer.await.unwrap().unwrap();
    let test = TestBus::start(test.bus.config().clone()).await;
    test.cleanup(&[queue]).await;
}

#[tokio::test]
async fn a_publish_nobody_can_receive_is_an_error() {
    let test = TestBus::start(switchboard_testkit::bus_config()).await;
    let error = test
        .bus
        .publisher()
        .publish(outgoing(&test.bus, "nobody.listens.here", "evt_1", ""))
        .await
        .expect_err("unroutable must not be confirmed as success");
    assert!(
        matches!(error, PublishError::Unroutable { reply_code: 312, .. }),
        "{error:?}"
    );
    test.cleanup(&[]).await;
}

/// Fails every attempt with a retryable error.
struct AlwaysFails {
    attempts: AtomicU32,
}

impl Handler for AlwaysFails {
    async fn handle(&self, _message: &Incoming) -> Result<(), HandlerError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Err(HandlerError::retryable("contacts service unavailable"))
    }
}

#[tokio::test]
async fn a_failing_message_is_retried_then_dead_lettered_with_its_reason() {
    let config = switchboard_testkit::bus_config();
    let max_attempts = config.max_attempts;
    let test = TestBus::start(config).await;
    let queue = test.bus.queue("it", "inbound");
    test.declare(std::slice::from_ref(&queue)).await;
    test.bus
        .publisher()
        .publish(outgoing(
            &test.bus,
            "inbound.sms.message_received",
            "evt_poison",
            "",
        ))
        .await
        .unwrap();
    let handler = Arc::new(AlwaysFails {
        attempts: AtomicU32::new(0),
    });
    let consumer = tokio::spawn(run_consumer(
        test.bus.clone(),
        queue.clone(),
        1,
        handler.clone(),
        test.shutdown.clone(),
    ));

    let dead = eventually(
        Duration::from_secs(10),
        "the message in the dead-letter queue",
        || async { test.get_one(&queue.dead_letter_queue()).await },
    )
    .await;
    assert_eq!(handler.attempts.load(Ordering::SeqCst), max_attempts);
    let headers = dead.delivery.properties.headers().clone().unwrap();
    let header = |name: &str| header_text(&headers, name).unwrap_or_default();
    assert!(
        header(HEADER_DEAD_LETTER_REASON).contains("gave up after 3 attempts"),
        "{headers:?}"
    );
    assert!(header(HEADER_DEAD_LETTER_REASON).contains("contacts service unavailable"));
    assert!(header(HEADER_ATTEMPTS).contains('3'));
    assert_eq!(
        dead.delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str()),
        Some("evt_poison"),
        "the dead letter keeps the original message id"
    );
    assert_eq!(
        test.ready_count(&queue.name).await,
        0,
        "nothing left in the source queue"
    );

    test.shutdown.cancel();
    consumer.await.unwrap().unwrap();
    let test = TestBus::start(test.bus.config().clone()).await;
    test.cleanup(&[queue]).await;
}

/// Fails with "dependency unavailable" `outage` times, then succeeds.
struct OutageThenOk {
    outage: u32,
    attempts: AtomicU32,
}

impl Handler for OutageThenOk {
    async fn handle(&self, _message: &Incoming) -> Result<(), HandlerError> {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        if attempt <= self.outage {
            return Err(HandlerError::unavailable("the database is restarting"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_outage_longer_than_the_retry_budget_waits_and_dead_letters_nothing() {
    let config = switchboard_testkit::bus_config();
    // Three times the attempts a failing message gets before it is dead-lettered.
    let outage = config.max_attempts * 3;
    let test = TestBus::start(config).await;
    let queue = test.bus.queue("it", "inbound");
    test.declare(std::slice::from_ref(&queue)).await;
    test.bus
        .publisher()
        .publish(outgoing(
            &test.bus,
            "inbound.sms.message_received",
            "evt_good",
            "",
        ))
        .await
        .unwrap();
    let handler = Arc::new(OutageThenOk {
        outage,
        attempts: AtomicU32::new(0),
    });
    let consumer = tokio::spawn(run_consumer(
        test.bus.clone(),
        queue.clone(),
        1,
        handler.clone(),
        test.shutdown.clone(),
    ));
    eventually(
        Duration::from_secs(30),
        "the message handled after the outage",
        || async { (handler.attempts.load(Ordering::SeqCst) > outage).then_some(()) },
    )
    .await;
    let acked = eventually(Duration::from_secs(5), "the ack counted", || async {
        let acked = test.bus.metrics().consumed_total(&queue.name, "acked");
        (acked == 1).then_some(acked)
    })
    .await;
    assert_eq!(acked, 1);
    assert_eq!(
        test.bus
            .metrics()
            .consumed_total(&queue.name, "dependency_unavailable"),
        u64::from(outage),
        "every wait is counted"
    );
    assert_eq!(
        test.ready_count(&queue.dead_letter_queue()).await,
        0,
        "a good message is never dead-lettered for an outage"
    );
    assert_eq!(
        handler.attempts.load(Ordering::SeqCst),
        outage + 1,
        "handled once"
    );

    test.shutdown.cancel();
    consumer.await.unwrap().unwrap();
    let test = TestBus::start(test.bus.config().clone()).await;
    test.cleanup(&[queue]).await;
}
