//! The contract of an inbound event on the bus, shared by every producer of inbound events
//! (ingress for provider webhooks, web chat for its widget) and its first consumer (contacts):
//! the event type `inbound.<channel>.<kind>`, an event id that a provider's retry keeps, the
//! partition key (account, sender) that keeps one customer's events in order, and the queues.

use switchboard_directory::ResolvedAccount;
use switchboard_domain::Channel;
use switchboard_messaging::{Bus, Outgoing, Partitions, ProducerQueues};
use switchboard_proto::events::v1::{Envelope, InboundEvent, envelope, inbound_event};

/// The event family of inbound events (`inbound.<channel>.<kind>.pNN`).
pub const INBOUND_FAMILY: &str = "inbound";

/// The component that consumes inbound events first; producers declare its queues so that an
/// accepted event is never unroutable, even before that component has started.
pub const INBOUND_CONSUMER: &str = "contacts";

/// The inbound queues a producer publishes to and declares itself.
pub type InboundTopology = ProducerQueues;

/// The inbound queues on `bus` (`contacts.inbound.pNN`), not declared yet.
pub fn inbound_topology(bus: &Bus) -> InboundTopology {
    ProducerQueues::new(
        bus.clone(),
        bus.partitioned_queues(INBOUND_CONSUMER, INBOUND_FAMILY),
    )
}

/// The bus envelope of one inbound event: type `inbound.<channel>.<kind>`, id a digest of the
/// account and the event (a retry carries the same id), partition key (account, sender).
pub fn inbound_envelope(
    channel: Channel,
    account: &ResolvedAccount,
    event: InboundEvent,
    correlation_id: &str,
) -> Envelope {
    let event_id = inbound_event_id(&account.id, &event);
    let event_type = format!("inbound.{}.{}", channel.as_str(), kind_name(event.kind.as_ref()));
    let sender = event
        .sender
        .as_ref()
        .map_or("", |sender| sender.channel_user_id.as_str());
    Envelope {
        event_id,
        event_type,
        occurred_at: event.provider_timestamp.or(event.received_at),
        workspace_id: account.workspace_id.clone(),
        correlation_id: correlation_id.to_owned(),
        causation_id: String::new(),
        partition_key: format!("{}:{sender}", account.id),
        payload: Some(envelope::Payload::Inbound(event)),
    }
}

/// One inbound event ready to publish or spool: its envelope on its partition of `partitions`.
pub fn inbound_outgoing(
    channel: Channel,
    account: &ResolvedAccount,
    event: InboundEvent,
    correlation_id: &str,
    partitions: &Partitions,
) -> Outgoing {
    Outgoing::envelope(
        &inbound_envelope(channel, account, event, correlation_id),
        partitions,
    )
}

/// The event name of an inbound event kind (the last part of its event type).
fn kind_name(kind: Option<&inbound_event::Kind>) -> &'static str {
    match kind {
        Some(inbound_event::Kind::Message(_)) => "message_received",
        Some(inbound_event::Kind::Status(_)) => "status_received",
        Some(inbound_event::Kind::Reaction(_)) => "reaction_received",
        Some(inbound_event::Kind::Edit(_)) => "message_edited",
        Some(inbound_event::Kind::Delete(_)) => "message_deleted",
        Some(inbound_event::Kind::Referral(_)) => "referral_received",
        Some(inbound_event::Kind::Consent(_)) => "consent_changed",
        None => "unknown",
    }
}

/// The id of an inbound event: a digest of the account and the normalized event (without the
/// time it was received), so a provider's retry of the same webhook, or a replay, carries the
/// same id and consumers (idempotent on event ids) give it no second effect.
fn inbound_event_id(account_id: &str, event: &InboundEvent) -> String {
    use prost::Message as _;
    use sha2::Digest as _;
    let mut identity = event.clone();
    identity.received_at = None;
    let digest = sha2::Sha256::new()
        .chain_update(account_id.as_bytes())
        .chain_update([0])
        .chain_update(identity.encode_to_vec())
        .finalize();
    format!("evt_{}", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::events::v1::InboundMessage;

    fn event(message_id: &str, received_at_seconds: i64) -> InboundEvent {
        InboundEvent {
            channel_account_id: "chacc_a".to_owned(),
            received_at: Some(prost_types::Timestamp {
                seconds: received_at_seconds,
                nanos: 0,
            }),
            kind: Some(inbound_event::Kind::Message(InboundMessage {
                provider_message_id: message_id.to_owned(),
                ..InboundMessage::default()
            })),
            ..InboundEvent::default()
        }
    }

    #[test]
    fn a_retried_webhook_keeps_its_event_ids_and_other_events_get_others() {
        let first = inbound_event_id("chacc_a", &event("wamid.1", 100));
        assert_eq!(first, inbound_event_id("chacc_a", &event("wamid.1", 200)));
        assert_ne!(first, inbound_event_id("chacc_a", &event("wamid.2", 100)));
        assert_ne!(first, inbound_event_id("chacc_b", &event("wamid.1", 100)));
        assert!(switchboard_domain::EventId::parse(&first).is_ok(), "{first}");
    }
}
