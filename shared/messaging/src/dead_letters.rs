//! The operator's view of dead letters: list what waits in a queue family's dead-letter
//! queues (with the reason the consumer gave), and replay them once the cause is fixed, each
//! published again to the queue it was consumed from (through the default exchange, so no
//! other subscriber of its routing key sees it twice), confirmed before it leaves the
//! dead-letter queue: nothing is lost if a replay stops half-way.
//!
//! A family is named as its metrics name it: `contacts.inbound` covers every partition's
//! `contacts.inbound.pNN.dlq`; a full queue name (`routing.contact.p03`) covers one.

use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

use crate::message::Incoming;
use crate::partition::partition_suffix;
use crate::{
    Bus, HEADER_ATTEMPTS, HEADER_DEAD_LETTER_REASON, HEADER_ORIGINAL_QUEUE, HEADER_ORIGINAL_ROUTING_KEY,
    MessagingError, Outgoing, PublishError,
};

/// Longest wait for the broker connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One message in a dead-letter queue, as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The dead-letter queue holding it.
    pub dead_letter_queue: String,
    /// The message id (the event id).
    pub message_id: String,
    /// The event type.
    pub event_type: String,
    /// Why the consumer gave up on it.
    pub reason: String,
    /// Handler attempts before it was dead-lettered.
    pub attempts: String,
    /// The queue it was consumed from.
    pub original_queue: String,
    /// The routing key it was first published with.
    pub original_routing_key: String,
    /// Its size in bytes.
    pub size: usize,
}

/// Why dead letters could not be listed or replayed.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// The broker did not answer.
    #[error(transparent)]
    Messaging(#[from] MessagingError),
    /// No dead-letter queue exists under that name.
    #[error("no dead-letter queue for {0:?}: name a queue family (e.g. contacts.inbound) or a queue")]
    UnknownQueue(String),
    /// A replayed message was not confirmed; it stays in its dead-letter queue.
    #[error("replaying {message_id} was not confirmed; it stays dead-lettered")]
    Replay {
        /// The message.
        message_id: String,
        /// The publish's failure.
        #[source]
        source: PublishError,
    },
    /// A dead letter does not say which queue it came from (not written by this consumer kit).
    #[error("{0} does not say which queue it came from; it cannot be replayed")]
    NoOriginalQueue(String),
}

/// Lists up to `limit` dead letters of `family` (oldest first per queue). They stay where
/// they are: they are taken without an ack and returned when the listing ends.
pub async fn list_dead_letters(
    bus: &Bus,
    family: &str,
    limit: usize,
) -> Result<Vec<DeadLetter>, DeadLetterError> {
    let connection = bus.connection(CONNECT_TIMEOUT).await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(MessagingError::amqp("open channel"))?;
    let mut listed = Vec::new();
    for (queue, _) in dead_letter_queues(bus, family).await? {
        while listed.len() < limit {
            let Some(message) = get(&channel, &queue).await? else {
                break;
            };
            listed.push(describe(&queue, &message.delivery));
        }
    }
    // Closing the channel returns every message taken, in its place.
    let _ = channel.close(200, "listed".into()).await;
    Ok(listed)
}

/// Replays the dead letters of `family` (those with id `message_id`, or all): each is
/// published to its original routing key, and taken off its dead-letter queue only once the
/// broker confirmed it. Returns how many were replayed.
pub async fn replay_dead_letters(
    bus: &Bus,
    family: &str,
    message_id: Option<&str>,
) -> Result<usize, DeadLetterError> {
    let connection = bus.connection(CONNECT_TIMEOUT).await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(MessagingError::amqp("open channel"))?;
    let publisher = bus.publisher();
    let mut replayed = 0;
    let mut result = Ok(());
    'queues: for (queue, waiting) in dead_letter_queues(bus, family).await? {
        let mut skipped = Vec::new();
        // Only what waits now: a replayed message that fails again comes back to this queue
        // while the replay runs, and must not be replayed twice.
        for _ in 0..waiting {
            let Some(message) = get(&channel, &queue).await? else {
                break;
            };
            let delivery = message.delivery;
            let incoming = Incoming::from_delivery(&queue, &delivery);
            let id = incoming.message_id.clone().unwrap_or_default();
            if message_id.is_some_and(|wanted| wanted != id) {
                skipped.push(delivery);
                continue;
            }
            let Some(original_queue) = incoming.header(HEADER_ORIGINAL_QUEUE).map(str::to_owned) else {
                result = Err(DeadLetterError::NoOriginalQueue(id));
                skipped.push(delivery);
                break 'queues;
            };
            // The trace context and other headers travel on; the dead-letter notes do not.
            let dead_letter_notes = [
                HEADER_DEAD_LETTER_REASON,
                HEADER_ATTEMPTS,
                HEADER_ORIGINAL_QUEUE,
                HEADER_ORIGINAL_ROUTING_KEY,
                "x-delivery-count",
            ];
            let mut headers = FieldTable::default();
            for (name, value) in incoming.headers.inner() {
                if !dead_letter_notes.contains(&name.as_str()) {
                    headers.insert(name.clone(), value.clone());
                }
            }
            let outgoing = Outgoing {
                routing_key: original_queue,
                payload: incoming.payload.clone(),
                message_id: id.clone(),
                message_type: incoming.message_type.clone().unwrap_or_default(),
                headers,
            };
            // The default exchange ("") routes to the queue the routing key names.
            match publisher.publish_to("", outgoing).await {
                Ok(()) => {
                    delivery
                        .acker
                        .ack(BasicAckOptions::default())
                        .await
                        .map_err(MessagingError::amqp("ack a replayed dead letter"))?;
                    replayed += 1;
                    tracing::info!(message_id = %id, queue = %queue, "replayed a dead letter");
                }
                Err(source) => {
                    result = Err(DeadLetterError::Replay {
                        message_id: id,
                        source,
                    });
                    skipped.push(delivery);
                    break 'queues;
                }
            }
        }
        for delivery in skipped {
            let _ = delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await;
        }
    }
    let _ = channel.close(200, "replayed".into()).await;
    result.map(|()| replayed)
}

/// The dead-letter queues `family` names that exist (every partition's, or the one queue's),
/// each with the number of messages waiting in it now.
async fn dead_letter_queues(bus: &Bus, family: &str) -> Result<Vec<(String, u32)>, DeadLetterError> {
    let namespace = &bus.config().namespace;
    let family = family.strip_prefix(namespace.as_str()).unwrap_or(family);
    let family = family.strip_suffix(".dlq").unwrap_or(family);
    let mut candidates: Vec<String> = (0..bus.partitions().most())
        .map(|partition| format!("{namespace}{family}.{}.dlq", partition_suffix(partition)))
        .collect();
    candidates.push(format!("{namespace}{family}.dlq"));
    let connection = bus.connection(CONNECT_TIMEOUT).await?;
    let mut existing = Vec::new();
    for candidate in candidates {
        // A passive declare of a missing queue closes its channel: one channel per look.
        let channel = connection
            .create_channel()
            .await
            .map_err(MessagingError::amqp("open channel"))?;
        let declared = channel
            .queue_declare(
                candidate.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await;
        if let Ok(queue) = declared {
            existing.push((candidate, queue.message_count()));
            let _ = channel.close(200, "looked".into()).await;
        }
    }
    if existing.is_empty() {
        return Err(DeadLetterError::UnknownQueue(family.to_owned()));
    }
    Ok(existing)
}

async fn get(
    channel: &lapin::Channel,
    queue: &str,
) -> Result<Option<lapin::message::BasicGetMessage>, MessagingError> {
    channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await
        .map_err(MessagingError::amqp("get a dead letter"))
}

fn describe(queue: &str, delivery: &lapin::message::Delivery) -> DeadLetter {
    let incoming = Incoming::from_delivery(queue, delivery);
    let header = |name: &str| incoming.header(name).unwrap_or_default().to_owned();
    DeadLetter {
        dead_letter_queue: queue.to_owned(),
        message_id: incoming.message_id.clone().unwrap_or_default(),
        event_type: incoming.message_type.clone().unwrap_or_default(),
        reason: header(HEADER_DEAD_LETTER_REASON),
        attempts: header(HEADER_ATTEMPTS),
        original_queue: header(HEADER_ORIGINAL_QUEUE),
        original_routing_key: header(HEADER_ORIGINAL_ROUTING_KEY),
        size: incoming.payload.len(),
    }
}
