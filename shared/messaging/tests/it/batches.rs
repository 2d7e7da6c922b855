//! A batching handler: a backlog is handled in batches acked at once, and a batch holding a
//! poison message falls back to one by one, so only the poison is dead-lettered and every
//! other message is handled exactly once, in queue order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_messaging::{Batched, Handler, HandlerError, Incoming, run_consumer};
use switchboard_testkit::eventually;

use crate::helpers::{TestBus, outgoing};

/// Handles `evt_N` messages; `evt_poison` can never be handled.
#[derive(Default)]
struct Batching {
    handled: Mutex<Vec<String>>,
    batch_sizes: Mutex<Vec<usize>>,
}

fn id(message: &Incoming) -> String {
    message.message_id.clone().unwrap_or_default()
}

impl Handler for Batching {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        if id(message) == "evt_poison" {
            return Err(HandlerError::permanent("poison"));
        }
        self.handled.lock().unwrap().push(id(message));
        Ok(())
    }

    fn max_batch(&self) -> usize {
        16
    }

    async fn handle_batch(&self, batch: &[Batched]) -> Result<(), HandlerError> {
        // All or nothing, as a transaction would be.
        if batch.iter().any(|item| id(&item.message) == "evt_poison") {
            return Err(HandlerError::permanent("poison in the batch"));
        }
        self.batch_sizes.lock().unwrap().push(batch.len());
        self.handled
            .lock()
            .unwrap()
            .extend(batch.iter().map(|item| id(&item.message)));
        Ok(())
    }
}

#[tokio::test]
async fn a_backlog_goes_in_batches_and_a_poisoned_batch_falls_back_to_one_by_one() {
    let test = TestBus::start(switchboard_testkit::bus_config()).await;
    let queue = test.bus.queue("it", "inbound");
    test.declare(std::slice::from_ref(&queue)).await;
    let publisher = test.bus.publisher();
    let ids: Vec<String> = (0..100)
        .map(|index| {
            if index == 50 {
                "evt_poison".to_owned()
            } else {
                format!("evt_{index}")
            }
        })
        .collect();
    for id in &ids {
        publisher
            .publish(outgoing(&test.bus, "inbound.whatsapp.message_received", id, ""))
            .await
            .expect("confirmed");
    }
    let handler = Arc::new(Batching::default());
    let consumer = tokio::spawn(run_consumer(
        test.bus.clone(),
        queue.clone(),
        1,
        handler.clone(),
        test.shutdown.clone(),
    ));
    eventually(Duration::from_secs(20), "the poison dead-lettered", || async {
        (test.ready_count(&queue.dead_letter_queue()).await == 1).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "99 messages handled", || async {
        (handler.handled.lock().unwrap().len() >= 99).then_some(())
    })
    .await;
    eventually(Duration::from_secs(5), "the queue drained (acked)", || async {
        (test.ready_count(&queue.name).await == 0).then_some(())
    })
    .await;
    let expected: Vec<String> = ids.iter().filter(|id| *id != "evt_poison").cloned().collect();
    assert_eq!(
        *handler.handled.lock().unwrap(),
        expected,
        "every other message once, in queue order"
    );
    assert!(
        handler.batch_sizes.lock().unwrap().iter().any(|size| *size > 1),
        "the backlog went in batches: {:?}",
        handler.batch_sizes.lock().unwrap()
    );
    test.shutdown.cancel();
    consumer.await.unwrap().unwrap();
    let cleanup = TestBus::start(test.bus.config().clone()).await;
    cleanup.cleanup(&[queue]).await;
}
