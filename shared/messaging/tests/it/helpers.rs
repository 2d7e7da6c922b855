use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use switchboard_messaging::metrics::MessagingMetrics;
use switchboard_messaging::{Bus, BusConfig, Incoming, Outgoing, QueueSpec};
use switchboard_proto::events::v1::Envelope;
use tokio_util::sync::CancellationToken;

/// A bus on a fresh namespace, with its shutdown token.
pub struct TestBus {
    pub bus: Bus,
    pub shutdown: CancellationToken,
}

impl TestBus {
    pub async fn start(config: BusConfig) -> Self {
        switchboard_testkit::init_tracing();
        let shutdown = CancellationToken::new();
        let bus = Bus::start(config, Arc::new(MessagingMetrics::default()));
        bus.connection(Duration::from_secs(10))
            .await
            .expect("broker reachable");
        Self { bus, shutdown }
    }

    /// Declares `queues` (so publishes are routable before consumers start).
    pub async fn declare(&self, queues: &[QueueSpec]) {
        let connection = self.bus.connection(Duration::from_secs(5)).await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        for queue in queues {
            queue.declare(&channel).await.unwrap();
        }
    }

    /// Deletes `queues` and the namespace's exchanges, then stops the bus.
    pub async fn cleanup(self, queues: &[QueueSpec]) {
        let connection = self.bus.connection(Duration::from_secs(5)).await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        for queue in queues {
            queue.delete(&channel).await.unwrap();
        }
        self.bus.delete_exchanges().await.unwrap();
        self.shutdown.cancel();
        self.bus.close().await;
    }

    /// Messages waiting in `queue` (ready, not unacked).
    pub async fn ready_count(&self, queue: &str) -> u32 {
        self.declare_passive(queue).await.message_count()
    }

    /// Consumers subscribed to `queue` (with single-active-consumer: the active one and those
    /// waiting to take over).
    pub async fn consumer_count(&self, queue: &str) -> u32 {
        self.declare_passive(queue).await.consumer_count()
    }

    /// What the broker says about `queue` (which must exist).
    async fn declare_passive(&self, queue: &str) -> lapin::Queue {
        let connection = self.bus.connection(Duration::from_secs(5)).await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let declared = channel
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await
            .unwrap();
        let _ = channel.close(200, "done".into()).await;
        declared
    }

    /// Takes one message from `queue` (acking it), if any.
    pub async fn get_one(&self, queue: &str) -> Option<lapin::message::BasicGetMessage> {
        let connection = self.bus.connection(Duration::from_secs(5)).await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .basic_get(queue.into(), lapin::options::BasicGetOptions { no_ack: true })
            .await
            .unwrap()
    }
}

/// Returns a header of a raw AMQP message as text.
pub fn header_text(headers: &lapin::types::FieldTable, name: &str) -> Option<String> {
    headers
        .inner()
        .iter()
        .find(|(key, _)| key.as_str() == name)
        .and_then(|(_, value)| match value {
            lapin::types::AMQPValue::LongString(text) => {
                Some(String::from_utf8_lossy(text.as_bytes()).into_owned())
            }
            lapin::types::AMQPValue::ShortString(text) => Some(text.as_str().to_owned()),
            _ => None,
        })
}

/// An envelope of `event_type` whose payload id is `id`, partitioned by `key`.
pub fn envelope(event_type: &str, id: &str, key: &str) -> Envelope {
    Envelope {
        event_id: id.to_owned(),
        event_type: event_type.to_owned(),
        partition_key: key.to_owned(),
        workspace_id: "ws_test".to_owned(),
        ..Envelope::default()
    }
}

pub fn outgoing(bus: &Bus, event_type: &str, id: &str, key: &str) -> Outgoing {
    Outgoing::envelope(&envelope(event_type, id, key), bus.partitions())
}

/// Records every message it sees.
#[derive(Default)]
pub struct Recorder {
    pub seen: Mutex<Vec<Incoming>>,
}

impl Recorder {
    pub fn ids(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|message| message.decode_envelope().unwrap().event_id)
            .collect()
    }
}
