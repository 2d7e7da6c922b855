//! The queues contacts feeds, declared by contacts itself so a publish is never unroutable
//! even before their consumer first ran: `routing.contact.pNN` receives every event of the
//! `contact` family (resolved inbound events and contact lifecycle events), partitioned by
//! contact id so one contact's events stay in order.

use switchboard_messaging::{Bus, ProducerQueues};

/// The component consuming resolved inbound events.
pub const ROUTING_CONSUMER: &str = "routing";
/// The family of every event contacts publishes (`contact.…`).
pub const CONTACT_FAMILY: &str = "contact";

/// `routing.contact.pNN` on `bus`, declared by contacts (not yet).
pub fn routing_queues(bus: &Bus) -> ProducerQueues {
    ProducerQueues::new(
        bus.clone(),
        bus.partitioned_queues(ROUTING_CONSUMER, CONTACT_FAMILY),
    )
}
