//! A consumer running several handlers at once still hands the messages of one order key
//! over one at a time, in queue order, however long each takes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_messaging::{Handler, HandlerError, Incoming, run_consumer};
use switchboard_testkit::eventually;

use crate::helpers::{TestBus, outgoing};

/// Keys its messages by their envelope's partition key; every third message of a key is slow,
/// so without ordering the next ones would overtake it.
#[derive(Default)]
struct SlowFirsts {
    /// Per key, the sequences in the order they were handled.
    handled: Mutex<BTreeMap<String, Vec<u32>>>,
    /// Handlers running now: per key, and in all.
    running: Mutex<(HashMap<String, u32>, u32)>,
    /// Most handlers ever running at once: of one key, and in all.
    most: Mutex<(u32, u32)>,
}

impl Handler for SlowFirsts {
    fn order_key(&self, message: &Incoming) -> Option<String> {
        Some(message.decode_envelope().ok()?.partition_key)
    }

    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let envelope = message.decode_envelope().map_err(HandlerError::permanent)?;
        let key = envelope.partition_key;
        let sequence: u32 = envelope
            .event_id
            .rsplit_once('#')
            .and_then(|(_, sequence)| sequence.parse().ok())
            .expect("key#sequence");
        {
            let mut running = self.running.lock().unwrap();
            let of_key = running.0.entry(key.clone()).or_default();
            *of_key += 1;
            let of_key = *of_key;
            running.1 += 1;
            let mut most = self.most.lock().unwrap();
            *most = (most.0.max(of_key), most.1.max(running.1));
        }
        let delay = if sequence.is_multiple_of(3) { 30 } else { 1 };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        self.handled
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default()
            .push(sequence);
        let mut running = self.running.lock().unwrap();
        *running.0.entry(key).or_default() -= 1;
        running.1 -= 1;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_of_one_order_key_are_handled_one_at_a_time_in_queue_order() {
    let test = TestBus::start(switchboard_testkit::bus_config()).await;
    let queue = test.bus.queue("it", "inbound");
    test.declare(std::slice::from_ref(&queue)).await;
    let publisher = test.bus.publisher();
    let keys = ["chacc_1/alice", "chacc_1/bob", "chacc_1/carol", "chacc_2/alice"];
    for sequence in 0..25 {
        for key in keys {
            publisher
                .publish(outgoing(
                    &test.bus,
                    "inbound.whatsapp.message_received",
                    &format!("{key}#{sequence}"),
                    key,
                ))
                .await
                .expect("confirmed");
        }
    }
    let handler = Arc::new(SlowFirsts::default());
    let consumer = tokio::spawn(run_consumer(
        test.bus.clone(),
        queue.clone(),
        16,
        handler.clone(),
        test.shutdown.clone(),
    ));
    eventually(Duration::from_secs(30), "100 messages handled", || async {
        let handled = handler.handled.lock().unwrap();
        (handled.values().map(Vec::len).sum::<usize>() >= 100).then_some(())
    })
    .await;

    let handled = handler.handled.lock().unwrap().clone();
    let expected: Vec<u32> = (0..25).collect();
    for key in keys {
        assert_eq!(handled[key], expected, "queue order of {key}");
    }
    let (of_one_key, in_all) = *handler.most.lock().unwrap();
    assert_eq!(of_one_key, 1, "one handler at a time per key");
    assert!(
        in_all > 1,
        "different keys still ran side by side ({in_all} at most)"
    );

    test.shutdown.cancel();
    consumer.await.unwrap().unwrap();
    let test = TestBus::start(test.bus.config().clone()).await;
    test.cleanup(&[queue]).await;
}
