use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_messaging::{
    Handler, HandlerError, Incoming, QueueSpec, Seat, fixed_seat, partition_for, run_partitioned_consumers,
};
use switchboard_testkit::eventually;

use crate::helpers::{TestBus, outgoing};

/// One handled message: (replica, key, sequence).
type Handled = (&'static str, String, u32);

/// Records handled messages in handling order, shared by both replicas.
struct OrderRecorder {
    replica: &'static str,
    log: Arc<Mutex<Vec<Handled>>>,
}

impl Handler for OrderRecorder {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let envelope = message.decode_envelope().map_err(HandlerError::permanent)?;
        let (key, sequence) = envelope.event_id.split_once('#').expect("key#seq");
        let sequence: u32 = sequence.parse().expect("sequence");
        // A little work so messages of different partitions interleave.
        tokio::time::sleep(Duration::from_millis(1)).await;
        self.log
            .lock()
            .unwrap()
            .push((self.replica, key.to_owned(), sequence));
        Ok(())
    }
}

fn assert_per_key_order(log: &[Handled]) {
    let mut per_key: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (_, key, sequence) in log {
        per_key.entry(key.as_str()).or_default().push(*sequence);
    }
    for (key, sequences) in per_key {
        let expected: Vec<u32> = (0..u32::try_from(sequences.len()).unwrap()).collect();
        assert_eq!(sequences, expected, "order of key {key}");
    }
}

/// One key per partition (of `partitions`), none of them a test key.
fn sentinel_keys(partitions: u16) -> Vec<String> {
    let mut keys: Vec<Option<String>> = vec![None; usize::from(partitions)];
    for index in 0.. {
        let key = format!("sentinel{index}");
        let slot = &mut keys[usize::from(partition_for(&key, partitions))];
        if slot.is_none() {
            *slot = Some(key);
        }
        if keys.iter().all(Option::is_some) {
            break;
        }
    }
    keys.into_iter().flatten().collect()
}

/// Waits until `replica` has a consumer on every queue of `queues`.
async fn subscribed_everywhere(replica: &TestBus, queues: &[QueueSpec]) {
    eventually(
        Duration::from_secs(10),
        "the replica on every partition",
        || async {
            for queue in queues {
                if replica.consumer_count(&queue.name).await == 0 {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_keep_per_key_order_and_the_survivor_takes_over_without_loss() {
    let config = switchboard_testkit::bus_config();
    let replica_a = TestBus::start(config.clone()).await;
    let replica_b = TestBus::start(config).await;
    let queues = replica_a.bus.partitioned_queues("it", "inbound");
    replica_a.declare(&queues).await;
    let log = Arc::new(Mutex::new(Vec::new()));

    let consumer_a = tokio::spawn(run_partitioned_consumers(
        replica_a.bus.clone(),
        queues.clone(),
        Arc::new(OrderRecorder {
            replica: "a",
            log: log.clone(),
        }),
        fixed_seat(Seat::ALONE),
        replica_a.shutdown.clone(),
    ));
    // Replica a subscribes first everywhere, so it is the active consumer of every partition
    // until it goes away (b's consumers wait behind it).
    subscribed_everywhere(&replica_a, &queues).await;
    let consumer_b = tokio::spawn(run_partitioned_consumers(
        replica_b.bus.clone(),
        queues.clone(),
        Arc::new(OrderRecorder {
            replica: "b",
            log: log.clone(),
        }),
        fixed_seat(Seat::ALONE),
        replica_b.shutdown.clone(),
    ));

    let keys: Vec<String> = (0..10).map(|index| format!("chacc_1:sender{index}")).collect();
    let publisher = replica_b.bus.publisher();
    let publish_round = |range: std::ops::Range<u32>| {
        let publisher = publisher.clone();
        let keys = keys.clone();
        let bus = replica_b.bus.clone();
        async move {
            for sequence in range {
                for key in &keys {
                    let id = format!("{key}#{sequence}");
                    publisher
                        .publish(outgoing(&bus, "inbound.whatsapp.message_received", &id, key))
                        .await
                        .unwrap();
                }
            }
        }
    };

    publish_round(0..20).await;
    eventually(Duration::from_secs(20), "200 messages handled", || async {
        (log.lock().unwrap().len() >= 200).then_some(())
    })
    .await;
    let handled_by_a = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(replica, ..)| *replica == "a")
        .count();
    assert!(handled_by_a > 0, "replica a was active on some partitions");

    // Replica a goes away; b must take over every partition a was active on.
    replica_a.shutdown.cancel();
    consumer_a.await.unwrap().unwrap();
    publish_round(20..40).await;
    eventually(Duration::from_secs(30), "400 messages handled", || async {
        (log.lock().unwrap().len() >= 400).then_some(())
    })
    .await;
    // A sentinel behind everything on every partition (each handled in order): once b handled
    // them all, any message handled twice would have been handled too.
    let sentinels = sentinel_keys(replica_b.bus.config().partitions);
    for key in &sentinels {
        publisher
            .publish(outgoing(
                &replica_b.bus,
                "inbound.whatsapp.message_received",
                &format!("{key}#0"),
                key,
            ))
            .await
            .unwrap();
    }
    eventually(
        Duration::from_secs(30),
        "a sentinel through every partition",
        || async {
            let log = log.lock().unwrap();
            sentinels
                .iter()
                .all(|sentinel| log.iter().any(|(_, key, _)| key == sentinel))
                .then_some(())
        },
    )
    .await;

    let log: Vec<Handled> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, key, _)| !sentinels.contains(key))
        .cloned()
        .collect();
    assert_eq!(log.len(), 400, "no message handled twice");
    let distinct: HashSet<(String, u32)> = log
        .iter()
        .map(|(_, key, sequence)| (key.clone(), *sequence))
        .collect();
    assert_eq!(distinct.len(), 400, "no message lost");
    assert!(
        log[200..].iter().all(|(replica, ..)| *replica == "b"),
        "after a stopped, only b handles messages"
    );
    assert_per_key_order(&log);

    replica_b.shutdown.cancel();
    consumer_b.await.unwrap().unwrap();
    let cleanup = TestBus::start(replica_b.bus.config().clone()).await;
    cleanup.cleanup(&queues).await;
}

/// The queue of every consumer registered on the broker, once per consumer.
async fn registered_consumers() -> Vec<String> {
    let output = tokio::process::Command::new("rabbitmqctl")
        .args(["list_consumers", "--quiet", "--no-table-headers", "queue_name"])
        .output()
        .await
        .expect("rabbitmqctl runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.trim().to_owned())
        .collect()
}

/// One handling: (replica, key, sequence, started, ended).
type Timed = (&'static str, String, u32, std::time::Instant, std::time::Instant);

/// Records each handling with its start and end; slow enough that a shutdown lands mid-work.
struct SlowRecorder {
    replica: &'static str,
    log: Arc<Mutex<Vec<Timed>>>,
}

impl Handler for SlowRecorder {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let envelope = message.decode_envelope().map_err(HandlerError::permanent)?;
        let (key, sequence) = envelope.event_id.split_once('#').expect("key#seq");
        let sequence: u32 = sequence.parse().expect("sequence");
        let started = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(15)).await;
        self.log.lock().unwrap().push((
            self.replica,
            key.to_owned(),
            sequence,
            started,
            std::time::Instant::now(),
        ));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_stopping_mid_work_hands_over_only_after_its_running_handlers_finish() {
    let config = switchboard_testkit::bus_config();
    let replica_a = TestBus::start(config.clone()).await;
    let replica_b = TestBus::start(config).await;
    let queues = replica_a.bus.partitioned_queues("it", "inbound");
    replica_a.declare(&queues).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let consumer_a = tokio::spawn(run_partitioned_consumers(
        replica_a.bus.clone(),
        queues.clone(),
        Arc::new(SlowRecorder {
            replica: "a",
            log: log.clone(),
        }),
        fixed_seat(Seat::ALONE),
        replica_a.shutdown.clone(),
    ));
    subscribed_everywhere(&replica_a, &queues).await;
    let consumer_b = tokio::spawn(run_partitioned_consumers(
        replica_b.bus.clone(),
        queues.clone(),
        Arc::new(SlowRecorder {
            replica: "b",
            log: log.clone(),
        }),
        fixed_seat(Seat::ALONE),
        replica_b.shutdown.clone(),
    ));
    // The broker counts only the active consumer of a single-active-consumer queue: ask it
    // for every registered one.
    eventually(
        Duration::from_secs(20),
        "replica b waiting on every partition",
        || async {
            let listed = registered_consumers().await;
            queues
                .iter()
                .all(|queue| listed.iter().filter(|name| **name == queue.name).count() >= 2)
                .then_some(())
        },
    )
    .await;

    // A backlog on every partition, so a has work running and prefetched when it stops.
    let keys: Vec<String> = (0..12).map(|index| format!("chacc_1:sender{index}")).collect();
    let publisher = replica_b.bus.publisher();
    for sequence in 0..25 {
        for key in &keys {
            publisher
                .publish(outgoing(
                    &replica_b.bus,
                    "inbound.whatsapp.message_received",
                    &format!("{key}#{sequence}"),
                    key,
                ))
                .await
                .unwrap();
        }
    }
    eventually(Duration::from_secs(20), "a at work", || async {
        (log.lock().unwrap().len() >= 40).then_some(())
    })
    .await;
    replica_a.shutdown.cancel();
    consumer_a.await.unwrap().unwrap();
    let total = keys.len() * 25;
    eventually(Duration::from_secs(60), "every message handled", || async {
        (log.lock().unwrap().len() >= total).then_some(())
    })
    .await;

    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), total, "no message handled twice");
    // Per partition: b's first handler starts only once a's last one there has ended.
    let partitions = replica_b.bus.config().partitions;
    for partition in 0..partitions {
        let on_partition = |replica: &'static str| {
            log.iter()
                .filter(move |(who, key, ..)| *who == replica && partition_for(key, partitions) == partition)
        };
        let (Some(a_done), Some(b_first)) = (
            on_partition("a").map(|(.., ended)| *ended).max(),
            on_partition("b").map(|(_, _, _, started, _)| *started).min(),
        ) else {
            continue;
        };
        assert!(
            b_first >= a_done,
            "partition {partition}: b started {:?} before a's last handler there ended: two consumers on one partition",
            a_done - b_first
        );
    }
    let handled: Vec<Handled> = log
        .iter()
        .map(|(replica, key, sequence, ..)| (*replica, key.clone(), *sequence))
        .collect();
    assert_per_key_order(&handled);

    replica_b.shutdown.cancel();
    consumer_b.await.unwrap().unwrap();
    let cleanup = TestBus::start(replica_b.bus.config().clone()).await;
    cleanup.cleanup(&queues).await;
}
