//! The queues contacts feeds, declared by contacts itself so a publish is never unroutable
//! even before their consumer first ran: `routing.contact.pNN` receives every event of the
//! `contact` family (resolved inbound events and contact lifecycle events), partitioned by
//! contact id so one contact's events stay in order.

use std::sync::atomic::{AtomicBool, Ordering};

use switchboard_messaging::{Bus, MessagingError, Outgoing, PublishError, Publisher, QueueSpec};

/// The component consuming resolved inbound events.
pub const ROUTING_CONSUMER: &str = "routing";
/// The family of every event contacts publishes (`contact.…`).
pub const CONTACT_FAMILY: &str = "contact";
/// The component whose queues contacts consumes.
pub const INBOUND_CONSUMER: &str = "contacts";
/// The family of inbound events.
pub const INBOUND_FAMILY: &str = "inbound";

/// Declares the downstream queues once, and again when a publish comes back unroutable.
pub struct ContactTopology {
    bus: Bus,
    declared: AtomicBool,
}

impl ContactTopology {
    /// Topology on `bus`, not declared yet.
    pub fn new(bus: Bus) -> Self {
        Self {
            bus,
            declared: AtomicBool::new(false),
        }
    }

    /// The queues contacts publishes to.
    pub fn queues(&self) -> Vec<QueueSpec> {
        self.bus.partitioned_queues(ROUTING_CONSUMER, CONTACT_FAMILY)
    }

    /// Declares the downstream queues (idempotent).
    pub async fn declare(&self) -> Result<(), MessagingError> {
        let bus = &self.bus;
        let connection = bus.connection(bus.config().connect_timeout).await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|source| MessagingError::Amqp {
                operation: "open channel",
                source,
            })?;
        for queue in self.queues() {
            queue.declare(&channel).await?;
        }
        let _ = channel.close(200, "declared".into()).await;
        self.declared.store(true, Ordering::Release);
        Ok(())
    }

    /// Publishes with a confirm, declaring the queues first when needed; an unroutable
    /// publish (queues deleted meanwhile) declares them again and is tried once more.
    pub async fn publish(&self, publisher: &Publisher, message: Outgoing) -> Result<(), PublishError> {
        for attempt in 0..2 {
            if !self.declared.load(Ordering::Acquire)
                && let Err(error) = self.declare().await
            {
                tracing::warn!(error = %error, "cannot declare the routing queues");
                return Err(PublishError::NotConnected);
            }
            match publisher.publish(message.clone()).await {
                Err(PublishError::Unroutable { .. }) if attempt == 0 => {
                    self.declared.store(false, Ordering::Release);
                }
                result => return result,
            }
        }
        Err(PublishError::NotConnected)
    }
}
