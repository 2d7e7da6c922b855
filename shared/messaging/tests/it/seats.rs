//! Replicas whose seats move while keyed traffic flows: each consumes only the partitions its
//! seat holds, a partition never has two handlers at once, and per-key order and completeness
//! hold across every hand-over.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_messaging::{Handler, HandlerError, Incoming, Seat, partition_for};
use switchboard_testkit::eventually;
use tokio::sync::watch;

use crate::helpers::{TestBus, outgoing};

/// What the replicas saw, shared between them.
#[derive(Default)]
struct Seen {
    /// (replica, key, sequence) in handling order.
    handled: Vec<(&'static str, String, u32)>,
    /// Handlers running now, per partition.
    running: HashMap<u16, u32>,
    /// Times a partition had two handlers at once.
    overlaps: u32,
}

struct Recorder {
    replica: &'static str,
    partitions: u16,
    seen: Arc<Mutex<Seen>>,
}

impl Handler for Recorder {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let envelope = message.decode_envelope().map_err(HandlerError::permanent)?;
        let (key, sequence) = envelope.event_id.split_once('#').expect("key#seq");
        let sequence: u32 = sequence.parse().expect("sequence");
        let partition = partition_for(key, self.partitions);
        {
            let mut seen = self.seen.lock().unwrap();
            let running = seen.running.entry(partition).or_default();
            *running += 1;
            if *running > 1 {
                seen.overlaps += 1;
            }
        }
        // Long enough that hand-overs land while handlers run.
        tokio::time::sleep(Duration::from_millis(3)).await;
        let mut seen = self.seen.lock().unwrap();
        if let Some(running) = seen.running.get_mut(&partition) {
            *running -= 1;
        }
        seen.handled.push((self.replica, key.to_owned(), sequence));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_that_move_under_traffic_keep_one_handler_per_partition_and_per_key_order() {
    let config = switchboard_testkit::bus_config();
    let partitions = config.partitions;
    let replica_a = TestBus::start(config.clone()).await;
    let replica_b = TestBus::start(config).await;
    let queues = replica_a.bus.partitioned_queues("it", "inbound");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (seat_a, watch_a) = watch::channel(Seat::ALONE);
    let (seat_b, watch_b) = watch::channel(Seat::NONE);
    let consumer = |replica: &'static str, test_bus: &TestBus, seat| {
        tokio::spawn(switchboard_messaging::run_partitioned_consumers(
            test_bus.bus.clone(),
            queues.clone(),
            Arc::new(Recorder {
                replica,
                partitions,
                seen: seen.clone(),
            }),
            seat,
            test_bus.shutdown.clone(),
        ))
    };
    let consumer_a = consumer("a", &replica_a, watch_a);
    let consumer_b = consumer("b", &replica_b, watch_b);
    let held = |test_bus: &TestBus| test_bus.bus.metrics().partitions_held(&queues[0].name);
    eventually(Duration::from_secs(10), "a holds every partition", || async {
        (held(&replica_a) == i64::from(partitions) && held(&replica_b) == 0).then_some(())
    })
    .await;

    // Keyed traffic the whole time, while the seats move: b joins, a leaves, a comes back.
    let keys: Vec<String> = (0..16).map(|index| format!("chacc_1:sender{index}")).collect();
    let rounds = 60_u32;
    let publishing = {
        let (bus, keys) = (replica_b.bus.clone(), keys.clone());
        tokio::spawn(async move {
            let publisher = bus.publisher();
            for sequence in 0..rounds {
                for key in &keys {
                    let id = format!("{key}#{sequence}");
                    publisher
                        .publish(outgoing(&bus, "inbound.whatsapp.message_received", &id, key))
                        .await
                        .unwrap();
                }
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let moves = [
        (Seat { index: 0, members: 2 }, Seat { index: 1, members: 2 }),
        (Seat::NONE, Seat::ALONE),
        (Seat { index: 1, members: 2 }, Seat { index: 0, members: 2 }),
    ];
    for (a, b) in moves {
        tokio::time::sleep(Duration::from_millis(250)).await;
        seat_a.send_replace(a);
        seat_b.send_replace(b);
        eventually(Duration::from_secs(10), "the seats' partitions held", || async {
            (held(&replica_a) == i64::from(a.held(partitions))
                && held(&replica_b) == i64::from(b.held(partitions)))
            .then_some(())
        })
        .await;
    }
    publishing.await.unwrap();
    let total = keys.len() * usize::try_from(rounds).unwrap();
    eventually(Duration::from_secs(30), "every message handled", || async {
        (seen.lock().unwrap().handled.len() >= total).then_some(())
    })
    .await;
    // Anything handled twice would show up after a short wait.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(seen.overlaps, 0, "a partition had two handlers at once");
    assert_eq!(seen.handled.len(), total, "no message handled twice");
    let distinct: HashSet<(&str, u32)> = seen
        .handled
        .iter()
        .map(|(_, key, sequence)| (key.as_str(), *sequence))
        .collect();
    assert_eq!(distinct.len(), total, "no message lost");
    let mut per_key: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (_, key, sequence) in &seen.handled {
        per_key.entry(key.as_str()).or_default().push(*sequence);
    }
    for (key, sequences) in per_key {
        assert_eq!(sequences, (0..rounds).collect::<Vec<_>>(), "order of key {key}");
    }
    let by_b = seen
        .handled
        .iter()
        .filter(|(replica, ..)| *replica == "b")
        .count();
    assert!(
        by_b > 0 && by_b < total,
        "both replicas handled messages ({by_b} of {total} by b)"
    );
    drop(seen);

    replica_a.shutdown.cancel();
    replica_b.shutdown.cancel();
    consumer_a.await.unwrap().unwrap();
    consumer_b.await.unwrap().unwrap();
    let cleanup = TestBus::start(replica_b.bus.config().clone()).await;
    cleanup.cleanup(&queues).await;
}
