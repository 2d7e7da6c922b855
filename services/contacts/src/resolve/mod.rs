//! Identity resolution: the consumer of `contacts.inbound.pNN`. Each inbound event's sender
//! (channel account, channel user id) maps to exactly one contact of the workspace; new senders
//! become contacts within the monthly quota; blocked contacts' events are dropped with a
//! record; consent keywords update the contact; the event goes on to routing with the contact.
//! Status receipts are only counted: delivery applies them, and nothing here keeps them.
//!
//! Exactly-once effect: the event id is recorded in `processed_events` in the same transaction
//! as the effects. A redelivery (or a provider's retry, which carries the same derived id)
//! finds it and only publishes again what the first run published (same ids, so routing
//! dedupes), which also covers a crash between commit and publish.

mod batch;
mod profile;
mod statements;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use prost::Message as _;
use switchboard_domain::{Channel, ChannelAccountId, WorkspaceId};
use switchboard_messaging::{Batched, Handler, HandlerError, Incoming, Outgoing, Partitions, Publisher};
use switchboard_postgres::{Pool, Transaction};
use switchboard_proto::common::v1::SenderIdentity;
use switchboard_proto::events::v1::{
    self as events, ConsentAction, ContactChange, Envelope, InboundEvent, envelope::Payload,
    inbound_event::Kind,
};
use tracing::Instrument;

use self::profile::Profile;
use self::statements::{
    apply_consent, claim_identity, count_activity, hold, known_identity, load_contact, lock_contact,
    over_quota, record_processed, replay, touch, touch_identity,
};
use crate::ContactsError;
use crate::metrics::ContactsMetrics;
use crate::model::{Contact, from_timestamp};
use crate::settings::Settings;
use switchboard_messaging::ProducerQueues;

/// The consumer of inbound events (a [`Handler`] for `contacts.inbound.pNN`).
pub struct Resolver {
    pool: Pool,
    publisher: Publisher,
    topology: Arc<ProducerQueues>,
    metrics: Arc<ContactsMetrics>,
    partitions: Partitions,
    /// Most events of one partition resolved in one transaction (`bus.batch_size`).
    batch_size: usize,
}

impl Resolver {
    /// A resolver storing in `pool` and publishing on `bus`.
    pub fn new(pool: Pool, bus: &switchboard_messaging::Bus, metrics: Arc<ContactsMetrics>) -> Self {
        Self {
            pool,
            publisher: bus.publisher(),
            topology: Arc::new(crate::topology::routing_queues(bus)),
            metrics,
            partitions: bus.partitions().clone(),
            batch_size: usize::from(bus.config().batch_size),
        }
    }

    /// The routing queues it publishes to (shared with the outbox relay: one declaration).
    pub(crate) fn routing_queues(&self) -> Arc<ProducerQueues> {
        self.topology.clone()
    }
}

/// What resolving one event decided.
#[derive(Debug)]
enum Outcome {
    /// Pass it on to routing with this contact.
    Forward {
        /// The contact after the event.
        contact: Box<Contact>,
        /// This event created the contact.
        created: bool,
        /// Linked to an existing contact by a workspace rule (same phone / e-mail).
        linked: bool,
        /// Already resolved before (redelivery, provider retry): published again, same ids.
        replayed: bool,
    },
    /// Not passed on; recorded in `held_events` with this reason.
    Held(&'static str),
    /// Nothing to do (a receipt about an unknown sender, an erased contact's old event).
    Skipped(&'static str),
}

/// The outcome label of a status receipt, which contacts leaves to delivery.
const RECEIPT: &str = "receipt";

/// Whether an event is something the customer did, or only about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    /// A message, reaction, edit, delete, referral or consent change: counts as activity
    /// (last inbound, monthly quota) and may create the contact.
    Customer,
    /// An echo of our own message (status receipts never get here): forwarded when the
    /// sender is known.
    Passive,
}

fn activity(event: &InboundEvent) -> Activity {
    match &event.kind {
        Some(Kind::Status(_)) => Activity::Passive,
        Some(Kind::Message(message)) if message.echo => Activity::Passive,
        _ => Activity::Customer,
    }
}

/// The first day of `at`'s calendar month (UTC): the quota period.
pub(crate) fn month_of(at: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(at.year(), at.month(), 1).unwrap_or(at.date_naive())
}

/// An inbound event, decoded and checked: what resolving it needs.
pub(crate) struct Decoded {
    envelope: Envelope,
    channel: Channel,
    workspace: WorkspaceId,
    account: ChannelAccountId,
}

impl Decoded {
    /// Decodes `message`; an event that can never resolve is a permanent failure.
    fn of(message: &Incoming) -> Result<Self, HandlerError> {
        let envelope = message.decode_envelope().map_err(HandlerError::permanent)?;
        let Some(Payload::Inbound(event)) = &envelope.payload else {
            return Err(HandlerError::permanent(format!(
                "{} is not an inbound event",
                envelope.event_type
            )));
        };
        let channel = Channel::from_proto(event.channel).map_err(HandlerError::permanent)?;
        if event
            .sender
            .as_ref()
            .is_none_or(|sender| sender.channel_user_id.is_empty())
        {
            return Err(HandlerError::permanent("inbound event without a sender"));
        }
        if envelope.workspace_id.is_empty() || event.channel_account_id.is_empty() {
            return Err(HandlerError::permanent(
                "inbound event without workspace or channel account",
            ));
        }
        let workspace = WorkspaceId::parse(&envelope.workspace_id).map_err(HandlerError::permanent)?;
        let account = ChannelAccountId::parse(&event.channel_account_id).map_err(HandlerError::permanent)?;
        Ok(Self {
            envelope,
            channel,
            workspace,
            account,
        })
    }

    /// The inbound event (checked present by [`Decoded::of`]).
    fn event(&self) -> &InboundEvent {
        match &self.envelope.payload {
            Some(Payload::Inbound(event)) => event,
            _ => unreachable_event(),
        }
    }

    /// The sender (checked present by [`Decoded::of`]).
    fn sender(&self) -> &SenderIdentity {
        self.event()
            .sender
            .as_ref()
            .unwrap_or_else(|| unreachable_sender())
    }

    /// True for a status receipt: delivery's business (it consumes `delivery.receipts`), and
    /// nothing a contact or the history keeps, so it is neither resolved nor passed on.
    fn is_receipt(&self) -> bool {
        matches!(self.event().kind, Some(Kind::Status(_)))
    }

    /// The span resolving it runs in.
    fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "resolve contact",
            channel = self.channel.as_str(),
            channel_account_id = %self.account,
            event_id = %self.envelope.event_id,
            outcome = tracing::field::Empty,
            contact_id = tracing::field::Empty,
        )
    }
}

/// [`Decoded::of`] checked the payload; an empty one stands in should that ever change.
fn unreachable_event() -> &'static InboundEvent {
    static EMPTY: std::sync::OnceLock<InboundEvent> = std::sync::OnceLock::new();
    EMPTY.get_or_init(InboundEvent::default)
}

/// [`Decoded::of`] checked the sender; an empty one stands in should that ever change.
fn unreachable_sender() -> &'static SenderIdentity {
    static EMPTY: std::sync::OnceLock<SenderIdentity> = std::sync::OnceLock::new();
    EMPTY.get_or_init(SenderIdentity::default)
}

/// The metric and span label of an outcome.
fn label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Forward { replayed: true, .. } => "replayed",
        Outcome::Forward { created: true, .. } => "created",
        Outcome::Forward { linked: true, .. } => "linked",
        Outcome::Forward { .. } => "existing",
        Outcome::Held(reason) => reason,
        Outcome::Skipped(reason) => reason,
    }
}

impl Handler for Resolver {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let started = Instant::now();
        let decoded = Decoded::of(message)?;
        if decoded.is_receipt() {
            self.metrics.resolved(decoded.channel, RECEIPT, started.elapsed());
            return Ok(());
        }
        let span = decoded.span();
        let outcome = self
            .resolve(&decoded)
            .instrument(span.clone())
            .await
            .map_err(|error| HandlerError::classified(error.failure(), error))?;
        span.record("outcome", label(&outcome));
        if let Outcome::Forward { contact, created, .. } = &outcome {
            span.record("contact_id", contact.id.as_str());
            let messages = forwarded(
                &decoded.envelope,
                decoded.event(),
                contact,
                *created,
                &self.partitions,
            );
            let publishing = async {
                for message in messages {
                    self.topology.publish(&self.publisher, message).await?;
                }
                Ok::<(), switchboard_messaging::PublishError>(())
            };
            publishing
                .instrument(span)
                .await
                .map_err(|error| HandlerError::classified(error.failure(), error))?;
        }
        self.metrics
            .resolved(decoded.channel, label(&outcome), started.elapsed());
        Ok(())
    }

    fn max_batch(&self) -> usize {
        self.batch_size
    }

    async fn handle_batch(&self, batch: &[Batched]) -> Result<(), HandlerError> {
        self.resolve_batch(batch).await
    }
}

/// `contact.created` (when the event created the contact) and the resolved event, on the
/// contact's partition of the `contact` family.
fn forwarded(
    envelope: &Envelope,
    event: &InboundEvent,
    contact: &Contact,
    created: bool,
    partitions: &Partitions,
) -> Vec<Outgoing> {
    let snapshot = contact.to_proto(&Default::default(), Vec::new());
    let kind = envelope
        .event_type
        .strip_prefix("inbound.")
        .unwrap_or(&envelope.event_type);
    let mut messages = Vec::with_capacity(2);
    if created {
        messages.push(Envelope {
            event_id: format!("{}.contact-created", envelope.event_id),
            event_type: "contact.created".to_owned(),
            occurred_at: envelope.occurred_at,
            workspace_id: envelope.workspace_id.clone(),
            correlation_id: envelope.correlation_id.clone(),
            causation_id: envelope.event_id.clone(),
            partition_key: contact.id.to_string(),
            payload: Some(Payload::ContactChanged(events::ContactChanged {
                change: ContactChange::Created as i32,
                contact_id: contact.id.to_string(),
                contact: Some(snapshot.clone()),
                source: "inbound".to_owned(),
                ..Default::default()
            })),
        });
    }
    messages.push(Envelope {
        event_id: envelope.event_id.clone(),
        event_type: format!("contact.inbound.{kind}"),
        occurred_at: envelope.occurred_at,
        workspace_id: envelope.workspace_id.clone(),
        correlation_id: envelope.correlation_id.clone(),
        causation_id: envelope.event_id.clone(),
        partition_key: contact.id.to_string(),
        payload: Some(Payload::ContactInbound(events::ContactResolvedInbound {
            event: Some(event.clone()),
            contact_id: contact.id.to_string(),
            contact: Some(snapshot),
            new_contact: created,
        })),
    });
    messages
        .iter()
        .map(|message| Outgoing::envelope(message, partitions))
        .collect()
}

/// What applying one event in a transaction came to.
enum Applied {
    /// Decided: commit the transaction.
    Done(Outcome),
    /// A new contact over the monthly quota: nothing of the event may remain (roll back).
    OverQuota,
    /// Another consumer resolved the same event meanwhile (roll back and replay).
    Concurrent,
}

impl Resolver {
    /// Resolves one event in its own transaction.
    async fn resolve(&self, decoded: &Decoded) -> Result<Outcome, ContactsError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let applied = apply(&tx, decoded).await?;
        let envelope = &decoded.envelope;
        match applied {
            Applied::Done(outcome) => {
                tx.commit().await?;
                Ok(outcome)
            }
            Applied::OverQuota => {
                tx.rollback().await?;
                let tx = client.transaction().await?;
                if let Some(outcome) = replay(&tx, &envelope.event_id).await? {
                    tx.commit().await?;
                    return Ok(outcome);
                }
                tokio::try_join!(
                    hold(
                        &tx,
                        envelope,
                        decoded.channel,
                        None,
                        "quota_exceeded",
                        Some(envelope.encode_to_vec())
                    ),
                    record_processed(&tx, envelope, None, "quota_exceeded"),
                )?;
                tx.commit().await?;
                Ok(Outcome::Held("quota_exceeded"))
            }
            Applied::Concurrent => {
                tx.rollback().await?;
                let tx = client.transaction().await?;
                let replayed = replay(&tx, &envelope.event_id).await?;
                tx.commit().await?;
                Ok(replayed.unwrap_or(Outcome::Skipped("concurrent")))
            }
        }
    }
}

/// Applies one event to the contacts store in `tx` and says what to do next.
async fn apply(tx: &Transaction<'_>, decoded: &Decoded) -> Result<Applied, ContactsError> {
    let Decoded {
        envelope,
        channel,
        workspace,
        account,
    } = decoded;
    let (event, sender, channel) = (decoded.event(), decoded.sender(), *channel);
    // Independent reads, pipelined on the connection: one round trip, not three.
    let (replayed, settings, known) = tokio::try_join!(
        replay(tx, &envelope.event_id),
        Settings::load(tx, workspace),
        known_identity(tx, account, &sender.channel_user_id),
    )?;
    if let Some(outcome) = replayed {
        return Ok(Applied::Done(outcome));
    }
    let at = event
        .received_at
        .as_ref()
        .or(envelope.occurred_at.as_ref())
        .and_then(from_timestamp)
        .unwrap_or_else(Utc::now);
    let activity = activity(event);
    let consent = match &event.kind {
        Some(Kind::Consent(change)) => ConsentAction::try_from(change.action).ok(),
        _ => None,
    };
    let profile = Profile::of(channel, sender, &settings);
    let (contact_id, blocked, created, linked) = match known {
        Some((contact_id, blocked)) => (contact_id, blocked, false, false),
        // A receipt or an echo says nothing about who a new sender is.
        None if activity == Activity::Passive => {
            record_processed(tx, envelope, None, "skipped").await?;
            return Ok(Applied::Done(Outcome::Skipped("unknown_sender")));
        }
        None => {
            let (contact_id, created, linked) =
                claim_identity(tx, workspace, channel, account, sender, &profile, &settings, at).await?;
            let blocked = !created && lock_contact(tx, &contact_id).await?.blocked;
            (contact_id, blocked, created, linked)
        }
    };
    if let Some(action) = consent {
        apply_consent(tx, &contact_id, channel, action, at).await?;
    }
    if blocked {
        tokio::try_join!(
            hold(tx, envelope, channel, Some(&contact_id), "blocked", None),
            record_processed(tx, envelope, Some(&contact_id), "blocked"),
        )?;
        return Ok(Applied::Done(Outcome::Held("blocked")));
    }
    // An opt-out from a new sender is recorded whatever the quota: it must be honoured.
    let exempt = consent == Some(ConsentAction::OptOut);
    if created && !exempt && over_quota(tx, workspace, channel, at).await? {
        return Ok(Applied::OverQuota);
    }
    let outcome = if created { "created" } else { "forwarded" };
    // The writes, pipelined too; the contact comes back from its update.
    let (contact, recorded) = if activity == Activity::Customer {
        let (contact, (), (), recorded) = tokio::try_join!(
            touch(tx, &contact_id, channel, &profile, at),
            touch_identity(tx, account, &sender.channel_user_id, &profile, at),
            count_activity(tx, workspace, channel, &contact_id, at),
            record_processed(tx, envelope, Some(&contact_id), outcome),
        )?;
        (contact, recorded)
    } else {
        tokio::try_join!(
            load_contact(tx, &contact_id),
            record_processed(tx, envelope, Some(&contact_id), outcome),
        )?
    };
    if !recorded {
        return Ok(Applied::Concurrent);
    }
    Ok(Applied::Done(Outcome::Forward {
        contact: Box::new(contact),
        created,
        linked,
        replayed: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_start_on_the_first_in_utc() {
        let at = DateTime::parse_from_rfc3339("2026-11-30T23:59:59-02:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(month_of(at), NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
    }
}
