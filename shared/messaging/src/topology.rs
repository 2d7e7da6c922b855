use lapin::Channel;
use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};

use crate::{Bus, MessagingError};

/// One lock per queue name being declared in this process (see [`QueueSpec::declare`]).
static DECLARING: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
> = std::sync::LazyLock::new(Default::default);

/// A durable quorum queue, its bindings on the events exchange and its dead-letter queue.
///
/// Every argument is explicit, because broker defaults differ between RabbitMQ 3.x and 4.x
/// (4.x sets a delivery limit of 20 on quorum queues; 3.x none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Full queue name (namespace included).
    pub name: String,
    /// Routing-key patterns bound on the events exchange.
    pub bindings: Vec<String>,
    /// One active consumer at a time (per-key order on partitioned queues).
    pub single_active_consumer: bool,
    pub(crate) events_exchange: String,
    pub(crate) dead_letter_exchange: String,
    pub(crate) delivery_limit: u32,
    pub(crate) max_length: u64,
}

impl QueueSpec {
    pub(crate) fn new(bus: &Bus, name: String, bindings: Vec<String>, single_active_consumer: bool) -> Self {
        let config = bus.config();
        Self {
            name: format!("{}{name}", config.namespace),
            bindings,
            single_active_consumer,
            events_exchange: bus.events_exchange(),
            dead_letter_exchange: bus.dead_letter_exchange(),
            delivery_limit: config.broker_delivery_limit,
            max_length: config.max_queue_length,
        }
    }

    /// Name of this queue's dead-letter queue.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dlq", self.name)
    }

    /// Declares the queue, its dead-letter queue and all bindings. Idempotent; a queue that
    /// exists with other arguments is an error naming the queue (delete it or use a policy).
    pub async fn declare(&self, channel: &Channel) -> Result<(), MessagingError> {
        // RabbitMQ answers a second declare of a quorum queue at once while the first declare
        // is still starting the queue's Raft cluster; a consume in that moment crashes the
        // channel and closes the whole connection (541 INTERNAL_ERROR). Components of one
        // process declare the same queues (a producer's outbox and a consumer), so declares of
        // one name wait for each other here: the first returns only once the cluster runs.
        let lock = {
            let mut declaring = DECLARING
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            declaring.entry(self.name.clone()).or_default().clone()
        };
        let _declaring = lock.lock().await;
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };

        let mut dlq_arguments = FieldTable::default();
        // Replicated and durable; survives broker restarts with confirmed messages intact.
        dlq_arguments.insert("x-queue-type".into(), text("quorum"));
        // A full dead-letter queue refuses new dead letters (they stay in the source queue)
        // instead of silently dropping the oldest.
        dlq_arguments.insert("x-overflow".into(), text("reject-publish"));
        dlq_arguments.insert("x-max-length".into(), long(self.max_length));
        // Operators requeue and inspect dead letters by hand; allow many redeliveries.
        dlq_arguments.insert("x-delivery-limit".into(), long(1_000));
        channel
            .queue_declare(self.dead_letter_queue().into(), durable, dlq_arguments)
            .await
            .map_err(MessagingError::amqp("declare dead-letter queue"))?;
        channel
            .queue_bind(
                self.dead_letter_queue().into(),
                self.dead_letter_exchange.clone().into(),
                self.dead_letter_queue().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(MessagingError::amqp("bind dead-letter queue"))?;

        let mut arguments = FieldTable::default();
        arguments.insert("x-queue-type".into(), text("quorum"));
        // Messages that exceed the delivery limit (consumer crash loops) or are rejected go to
        // the dead-letter exchange with this queue's dead-letter queue as routing key.
        arguments.insert("x-dead-letter-exchange".into(), text(&self.dead_letter_exchange));
        arguments.insert(
            "x-dead-letter-routing-key".into(),
            text(&self.dead_letter_queue()),
        );
        // At-least-once dead-lettering (quorum queues, RabbitMQ >= 3.10) needs reject-publish.
        arguments.insert("x-dead-letter-strategy".into(), text("at-least-once"));
        arguments.insert("x-overflow".into(), text("reject-publish"));
        arguments.insert("x-max-length".into(), long(self.max_length));
        arguments.insert("x-delivery-limit".into(), long(u64::from(self.delivery_limit)));
        arguments.insert(
            "x-single-active-consumer".into(),
            AMQPValue::Boolean(self.single_active_consumer),
        );
        channel
            .queue_declare(self.name.clone().into(), durable, arguments)
            .await
            .map_err(MessagingError::amqp("declare queue"))?;
        for pattern in &self.bindings {
            channel
                .queue_bind(
                    self.name.clone().into(),
                    self.events_exchange.clone().into(),
                    pattern.clone().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(MessagingError::amqp("bind queue"))?;
        }
        Ok(())
    }
}

impl QueueSpec {
    /// Deletes the queue and its dead-letter queue, messages included (tests and teardown).
    pub async fn delete(&self, channel: &Channel) -> Result<(), MessagingError> {
        for name in [self.name.clone(), self.dead_letter_queue()] {
            channel
                .queue_delete(name.into(), lapin::options::QueueDeleteOptions::default())
                .await
                .map_err(MessagingError::amqp("delete queue"))?;
        }
        Ok(())
    }
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.to_owned()))
}

fn long(value: u64) -> AMQPValue {
    AMQPValue::LongLongInt(i64::try_from(value).unwrap_or(i64::MAX))
}
