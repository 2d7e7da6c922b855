use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Bus, MessagingError, Outgoing, PublishError, Publisher, QueueSpec};

/// Queues a producer declares itself, so that what it publishes is never unroutable even
/// before their consumer first ran. Declared once, and again after a publish came back
/// unroutable (the queues were deleted meanwhile).
pub struct ProducerQueues {
    bus: Bus,
    queues: Vec<QueueSpec>,
    declared: AtomicBool,
}

impl ProducerQueues {
    /// `queues` on `bus`, not declared yet.
    pub fn new(bus: Bus, queues: Vec<QueueSpec>) -> Self {
        Self {
            bus,
            queues,
            declared: AtomicBool::new(false),
        }
    }

    /// The queues.
    pub fn queues(&self) -> &[QueueSpec] {
        &self.queues
    }

    /// True once the queues were declared (publishing cannot be unroutable).
    pub fn is_declared(&self) -> bool {
        self.declared.load(Ordering::Acquire)
    }

    /// Forgets the declaration when the broker returned a publish as unroutable, so the next
    /// [`declare`](Self::declare) or [`publish`](Self::publish) declares the queues again.
    pub fn note_publish_error(&self, error: &PublishError) {
        if matches!(error, PublishError::Unroutable { .. }) {
            self.declared.store(false, Ordering::Release);
        }
    }

    /// Declares the queues (idempotent).
    pub async fn declare(&self) -> Result<(), MessagingError> {
        let connection = self.bus.connection(self.bus.config().connect_timeout).await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(MessagingError::amqp("open channel"))?;
        for queue in &self.queues {
            queue.declare(&channel).await?;
        }
        let _ = channel.close(200, "declared".into()).await;
        self.declared.store(true, Ordering::Release);
        Ok(())
    }

    /// Publishes with a confirm, declaring the queues first when needed; an unroutable
    /// publish declares them again and is tried once more.
    pub async fn publish(&self, publisher: &Publisher, message: Outgoing) -> Result<(), PublishError> {
        for attempt in 0..2 {
            if !self.is_declared()
                && let Err(error) = self.declare().await
            {
                tracing::warn!(error = %error, "cannot declare the queues published to");
                return Err(PublishError::NotConnected);
            }
            match publisher.publish(message.clone()).await {
                Err(error @ PublishError::Unroutable { .. }) if attempt == 0 => {
                    self.note_publish_error(&error)
                }
                result => return result,
            }
        }
        Err(PublishError::NotConnected)
    }
}
