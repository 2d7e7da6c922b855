use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use switchboard_messaging::{Handler, HandlerError, Incoming, run_consumer};
use switchboard_testkit::eventually;

use crate::helpers::{Recorder, TestBus, outgoing};

/// Takes a while per message, counting starts and finishes.
#[derive(Default)]
struct SlowHandler {
    started: AtomicU32,
    finished: AtomicU32,
}

impl Handler for SlowHandler {
    async fn handle(&self, _message: &Incoming) -> Result<(), HandlerError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        self.finished.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn shutdown_finishes_the_message_in_flight_once_and_returns_the_rest() {
    let test = TestBus::start(switchboard_testkit::bus_config()).await;
    let queue = test.bus.queue("it", "inbound");
    test.declare(std::slice::from_ref(&queue)).await;
    let publisher = test.bus.publisher();
    publisher
        .publish(outgoing(
            &test.bus,
            "inbound.email.message_received",
            "evt_in_flight",
            "",
        ))
        .await
        .unwrap();
    publisher
        .publish(outgoing(
            &test.bus,
            "inbound.email.message_received",
            "evt_waiting",
            "",
        ))
        .await
        .unwrap();

    let handler = Arc::new(SlowHandler::default());
    let consumer = tokio::spawn(run_consumer(
        test.bus.clone(),
        queue.clone(),
        1,
        handler.clone(),
        test.shutdown.clone(),
    ));
    eventually(Duration::from_secs(5), "the handler to start", || async {
        (handler.started.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;

    // SIGTERM equivalent while the first message is being handled.
    test.shutdown.cancel();
    consumer.await.unwrap().unwrap();
    assert_eq!(
        handler.started.load(Ordering::SeqCst),
        1,
        "nothing new started after shutdown"
    );
    assert_eq!(
        handler.finished.load(Ordering::SeqCst),
        1,
        "the in-flight message was finished"
    );

    // The next process sees only the message that was never started: nothing lost, nothing twice.
    let next = TestBus::start(test.bus.config().clone()).await;
    let recorder = Arc::new(Recorder::default());
    let consumer = tokio::spawn(run_consumer(
        next.bus.clone(),
        queue.clone(),
        1,
        recorder.clone(),
        next.shutdown.clone(),
    ));
    eventually(Duration::from_secs(5), "the waiting message", || async {
        (!recorder.seen.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    // A sentinel behind whatever the queue still holds (consumed in order): once it is seen, a
    // second copy of either message would have been seen too.
    next.bus
        .publisher()
        .publish(outgoing(
            &next.bus,
            "inbound.email.message_received",
            "evt_sentinel",
            "",
        ))
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "the sentinel", || async {
        recorder.ids().contains(&"evt_sentinel".to_owned()).then_some(())
    })
    .await;
    assert_eq!(
        recorder.ids(),
        vec!["evt_waiting".to_owned(), "evt_sentinel".to_owned()]
    );
    next.shutdown.cancel();
    consumer.await.unwrap().unwrap();
    let cleanup = TestBus::start(test.bus.config().clone()).await;
    cleanup.cleanup(&[queue]).await;
}
