//! The spool under concurrency: writers spool events while the relay drains, for many rounds,
//! against the real PostgreSQL and RabbitMQ. Every spooled event must reach the bus exactly
//! once, whatever order the writers' transactions commit in relative to the relay's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_ingress::{IngressMetrics, Spool, inbound_topology};
use switchboard_messaging::metrics::MessagingMetrics;
use switchboard_messaging::{Bus, Outgoing};
use switchboard_postgres::Pool;
use switchboard_testkit::TestDatabase;

/// Writers spooling at once.
const WRITERS: usize = 6;
/// Spool transactions per writer.
const ROUNDS: usize = 40;
/// Events per spool transaction (a transaction takes its first `seq` well before it commits).
const EVENTS_PER_INSERT: usize = 8;
/// Most events the relay takes per round (the production default).
const RELAY_BATCH: u32 = 500;

/// Spools `events` in one transaction that stays open a few milliseconds after its first
/// row took its `seq`.
async fn slow_insert(pool: &Pool, events: &[Outgoing]) {
    let mut client = pool.get().await.unwrap();
    let transaction = client.transaction().await.unwrap();
    for (n, event) in events.iter().enumerate() {
        transaction
            .execute(
                "INSERT INTO ingress.spool (event_id, routing_key, event_type, payload)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &event.message_id,
                    &event.routing_key,
                    &event.message_type,
                    &event.payload,
                ],
            )
            .await
            .unwrap();
        if n == 0 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    transaction.commit().await.unwrap();
}

struct Fixture {
    _database: TestDatabase,
    pool: Pool,
    bus: Bus,
}

impl Fixture {
    async fn start() -> Self {
        switchboard_testkit::init_tracing();
        let database = TestDatabase::create().await.unwrap();
        let pool = switchboard_postgres::connect(&database.config()).await.unwrap();
        switchboard_postgres::migrate(&pool, &switchboard_ingress::MIGRATIONS)
            .await
            .unwrap();
        let bus = Bus::start(
            switchboard_testkit::bus_config(),
            Arc::new(MessagingMetrics::default()),
        );
        bus.connection(Duration::from_secs(10)).await.unwrap();
        Self {
            _database: database,
            pool,
            bus,
        }
    }

    /// Consumes the inbound queues until `expected` messages arrived and then nothing more
    /// for a moment (a duplicate would still show up): event id → times seen.
    async fn consume_queues(&self, expected: usize) -> HashMap<String, usize> {
        use futures_util::StreamExt as _;
        use switchboard_messaging::lapin::options::{BasicAckOptions, BasicConsumeOptions};
        let connection = self.bus.connection(Duration::from_secs(5)).await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let mut consumers = Vec::new();
        for queue in inbound_topology(&self.bus).queues() {
            let consumer = channel
                .basic_consume(
                    queue.name.as_str().into(),
                    format!("spool-test-{}", queue.name).as_str().into(),
                    BasicConsumeOptions::default(),
                    Default::default(),
                )
                .await
                .unwrap();
            consumers.push(consumer);
        }
        let mut all = futures_util::stream::select_all(consumers);
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut total = 0;
        loop {
            let quiet = if total < expected {
                Duration::from_secs(30)
            } else {
                Duration::from_secs(1)
            };
            match tokio::time::timeout(quiet, all.next()).await {
                Ok(Some(Ok(delivery))) => {
                    let id = delivery
                        .properties
                        .message_id()
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    delivery.ack(BasicAckOptions::default()).await.unwrap();
                    *seen.entry(id).or_default() += 1;
                    total += 1;
                }
                Ok(other) => panic!("consumer ended: {other:?}"),
                Err(_) => {
                    drop(all);
                    channel.close(200, "consumed".into()).await.unwrap();
                    return seen;
                }
            }
        }
    }

    async fn cleanup(self) {
        let connection = self.bus.connection(Duration::from_secs(5)).await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        for queue in inbound_topology(&self.bus).queues() {
            queue.delete(&channel).await.unwrap();
        }
        self.bus.delete_exchanges().await.unwrap();
        self.bus.close().await;
    }
}

fn event(writer: usize, round: usize, n: usize) -> Outgoing {
    let id = format!("evt-{writer}-{round}-{n}");
    Outgoing {
        routing_key: format!("inbound.whatsapp.message.p{:02}", (writer + n) % 4),
        payload: id.clone().into_bytes(),
        message_id: id,
        message_type: "inbound.whatsapp.message".to_owned(),
        headers: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_spooled_while_the_relay_drains_is_published_exactly_once() {
    let fixture = Fixture::start().await;
    let topology = Arc::new(inbound_topology(&fixture.bus));
    topology.declare().await.unwrap();
    let spool = Arc::new(Spool::new(fixture.pool.clone()));
    let publisher = fixture.bus.publisher();
    let metrics = IngressMetrics::default();

    // Half the writers spool through the API; the other half hold their transaction open a
    // moment after taking a `seq`, as a slow commit does, so the relay keeps meeting rows that
    // commit below what it already selected.
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let spool = spool.clone();
            let pool = fixture.pool.clone();
            tokio::spawn(async move {
                for round in 0..ROUNDS {
                    let events: Vec<Outgoing> =
                        (0..EVENTS_PER_INSERT).map(|n| event(writer, round, n)).collect();
                    if writer % 2 == 0 {
                        spool.insert(&events).await.unwrap();
                    } else {
                        slow_insert(&pool, &events).await;
                    }
                }
            })
        })
        .collect();

    // The relay drains in small batches while the writers write, then until nothing waits.
    let mut writers_done = false;
    let mut handles = writers;
    loop {
        let (_, waiting) = spool
            .relay_once(&publisher, &topology, RELAY_BATCH, &metrics)
            .await
            .unwrap();
        if !writers_done {
            handles.retain(|handle| !handle.is_finished());
            writers_done = handles.is_empty();
        } else if waiting == 0 {
            break;
        }
    }

    let expected = WRITERS * ROUNDS * EVENTS_PER_INSERT;
    let seen = fixture.consume_queues(expected).await;
    let missing: Vec<String> = (0..WRITERS)
        .flat_map(|writer| {
            (0..ROUNDS).flat_map(move |round| (0..EVENTS_PER_INSERT).map(move |n| (writer, round, n)))
        })
        .map(|(writer, round, n)| format!("evt-{writer}-{round}-{n}"))
        .filter(|id| !seen.contains_key(id))
        .collect();
    let doubled: Vec<(&String, &usize)> = seen.iter().filter(|(_, times)| **times > 1).collect();
    assert!(
        missing.is_empty(),
        "{} of {expected} spooled events never reached the bus (deleted unsent), e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(doubled.is_empty(), "events published twice: {doubled:?}");
    assert_eq!(seen.len(), expected);
    fixture.cleanup().await;
}
