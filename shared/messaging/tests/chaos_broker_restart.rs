//! RabbitMQ stopped and started under load. This test stops the shared local broker, so it
//! runs alone (the Makefile runs `chaos_` tests in a separate, serial pass) and always starts
//! the broker again, even when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_messaging::{Handler, HandlerError, Incoming, run_consumer};
use switchboard_testkit::broker::stop_broker;
use switchboard_testkit::eventually;

use helpers::{TestBus, outgoing};

#[derive(Default)]
struct Collector {
    seen: Mutex<Vec<String>>,
}

impl Handler for Collector {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let envelope = message.decode_envelope().map_err(HandlerError::permanent)?;
        self.seen.lock().unwrap().push(envelope.event_id);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_a_broker_restart_loses_nothing_that_was_confirmed() {
    // lapin's own recovery rides out the outage (or, if it stalls, the supervisor replaces it).
    let opened = broker_restart_scenario(8).await;
    assert!(opened >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_when_lapin_recovery_is_out_of_the_way_the_supervisor_rebuilds_and_loses_nothing() {
    // Without lapin's recovery the supervisor must build a new connection.
    let opened = broker_restart_scenario(0).await;
    assert!(
        opened >= 2,
        "the supervisor opened a new connection ({opened} opened)"
    );
}

/// Publishes and consumes through a 3-second broker outage; returns how many connections the
/// supervisor opened.
async fn broker_restart_scenario(recovery_attempts: u32) -> u64 {
    // A confirm timeout shorter than the outage: publishes during it must fail visibly.
    let config = switchboard_messaging::BusConfig {
        confirm_timeout: Duration::from_secs(1),
        recovery_attempts,
        ..switchboard_testkit::bus_config()
    };
    let test = TestBus::start(config).await;
    let queue = test.bus.queue("chaos", "inbound");
    test.declare(std::slice::from_ref(&queue)).await;
    let collector = Arc::new(Collector::default());
    let consumer = tokio::spawn(run_consumer(
        test.bus.clone(),
        queue.clone(),
        4,
        collector.clone(),
        test.shutdown.clone(),
    ));

    let confirmed = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(0_u32));
    let stop_publishing = tokio_util::sync::CancellationToken::new();
    let publisher_task = {
        let publisher = test.bus.publisher();
        let bus = test.bus.clone();
        let confirmed = confirmed.clone();
        let failed = failed.clone();
        let stop = stop_publishing.clone();
        tokio::spawn(async move {
            let mut index = 0_u32;
            while !stop.is_cancelled() {
                let id = format!("evt_{index}");
                match publisher
                    .publish(outgoing(&bus, "inbound.sms.message_received", &id, ""))
                    .await
                {
                    Ok(()) => confirmed.lock().unwrap().push(id),
                    Err(_) => *failed.lock().unwrap() += 1,
                }
                index += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // Under load before the outage: publishes confirmed and the consumer handling them.
    eventually(Duration::from_secs(10), "traffic before the outage", || async {
        (confirmed.lock().unwrap().len() >= 20 && !collector.seen.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    let guard = tokio::task::spawn_blocking(stop_broker).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the bus to notice the outage",
        || async { (!test.bus.is_connected()).then_some(()) },
    )
    .await;
    // The outage lasts at least 3 s (the fault under test, not a wait for something), and
    // until a publish has failed in it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    eventually(
        Duration::from_secs(10),
        "a publish to fail during the outage",
        || async { (*failed.lock().unwrap() > 0).then_some(()) },
    )
    .await;
    tokio::task::spawn_blocking(move || guard.start()).await.unwrap();
    eventually(Duration::from_secs(60), "the bus to reconnect", || async {
        test.bus.is_connected().then_some(())
    })
    .await;
    let confirmed_before_recovery = confirmed.lock().unwrap().len();
    eventually(Duration::from_secs(30), "publishes to succeed again", || async {
        (confirmed.lock().unwrap().len() > confirmed_before_recovery + 20).then_some(())
    })
    .await;
    stop_publishing.cancel();
    publisher_task.await.unwrap();

    let confirmed: Vec<String> = confirmed.lock().unwrap().clone();
    assert!(
        *failed.lock().unwrap() > 0,
        "publishes during the outage must fail, not pretend"
    );
    eventually(
        Duration::from_secs(30),
        "every confirmed message consumed",
        || async {
            let seen: HashSet<String> = collector.seen.lock().unwrap().iter().cloned().collect();
            confirmed.iter().all(|id| seen.contains(id)).then_some(())
        },
    )
    .await;

    test.shutdown.cancel();
    consumer.await.unwrap().unwrap();
    let opened = test.bus.connections_opened();
    test.cleanup(&[queue]).await;
    opened
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_connections_closed_by_the_broker_are_rebuilt_and_consumers_resume() {
    let test = TestBus::start(switchboard_testkit::bus_config()).await;
    let queue = test.bus.queue("chaos", "inbound");
    test.declare(std::slice::from_ref(&queue)).await;
    let collector = Arc::new(Collector::default());
    let consumer = tokio::spawn(run_consumer(
        test.bus.clone(),
        queue.clone(),
        2,
        collector.clone(),
        test.shutdown.clone(),
    ));
    let publisher = test.bus.publisher();
    publisher
        .publish(outgoing(
            &test.bus,
            "inbound.sms.message_received",
            "evt_before",
            "",
        ))
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "the first message", || async {
        (collector.seen.lock().unwrap().len() == 1).then_some(())
    })
    .await;

    // An operator (or a broker node restart) force-closes every client connection.
    tokio::task::spawn_blocking(|| {
        switchboard_testkit::broker::rabbitmqctl(&["close_all_connections", "switchboard chaos test"])
    })
    .await
    .unwrap();

    // The same publisher and consumer work again without being rebuilt by the caller.
    eventually(
        Duration::from_secs(30),
        "a publish after the forced close",
        || async {
            publisher
                .publish(outgoing(
                    &test.bus,
                    "inbound.sms.message_received",
                    "evt_after",
                    "",
                ))
                .await
                .ok()
        },
    )
    .await;
    eventually(Duration::from_secs(30), "the consumer to resume", || async {
        collector
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|id| id == "evt_after")
            .then_some(())
    })
    .await;

    test.shutdown.cancel();
    consumer.await.unwrap().unwrap();
    test.cleanup(&[queue]).await;
}
