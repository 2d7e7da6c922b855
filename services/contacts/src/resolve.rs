//! Identity resolution: the consumer of `contacts.inbound.pNN`. Each inbound event's sender
//! (channel account, channel user id) maps to exactly one contact of the workspace; new senders
//! become contacts within the monthly quota; blocked contacts' events are dropped with a
//! record; consent keywords update the contact; the event goes on to routing with the contact.
//!
//! Exactly-once effect: the event id is recorded in `processed_events` in the same transaction
//! as the effects. A redelivery (or a provider's retry, which carries the same derived id)
//! finds it and only publishes again what the first run published (same ids, so routing
//! dedupes), which also covers a crash between commit and publish.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use prost::Message as _;
use switchboard_domain::Channel;
use switchboard_messaging::{Handler, HandlerError, Incoming, Outgoing, Publisher};
use switchboard_postgres::Pool;
use switchboard_postgres::Transaction;
use switchboard_proto::common::v1::SenderIdentity;
use switchboard_proto::events::v1::{
    self as events, ConsentAction, ContactChange, Envelope, InboundEvent, envelope::Payload,
    inbound_event::Kind,
};
use tracing::Instrument;

use crate::metrics::ContactsMetrics;
use crate::model::{CONTACT_COLUMNS, Contact, from_timestamp};
use crate::normalize::{PhoneOrigin, normalize_email, normalize_phone, parse_country};
use crate::settings::Settings;
use crate::topology::ContactTopology;
use crate::{ContactId, ContactsError};

/// The consumer of inbound events (a [`Handler`] for `contacts.inbound.pNN`).
pub struct Resolver {
    pool: Pool,
    publisher: Publisher,
    topology: Arc<ContactTopology>,
    metrics: Arc<ContactsMetrics>,
    partitions: u16,
}

impl Resolver {
    /// A resolver storing in `pool` and publishing on `bus`.
    pub fn new(pool: Pool, bus: &switchboard_messaging::Bus, metrics: Arc<ContactsMetrics>) -> Self {
        Self {
            pool,
            publisher: bus.publisher(),
            topology: Arc::new(ContactTopology::new(bus.clone())),
            metrics,
            partitions: bus.config().partitions,
        }
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

/// Whether an event is something the customer did, or only about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    /// A message, reaction, edit, delete, referral or consent change: counts as activity
    /// (last inbound, monthly quota) and may create the contact.
    Customer,
    /// A status receipt or an echo of our own message: forwarded when the sender is known.
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

impl Handler for Resolver {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let started = Instant::now();
        let envelope = message.decode_envelope().map_err(HandlerError::permanent)?;
        let Some(Payload::Inbound(event)) = &envelope.payload else {
            return Err(HandlerError::permanent(format!(
                "{} is not an inbound event",
                envelope.event_type
            )));
        };
        let channel = Channel::from_proto(event.channel).map_err(HandlerError::permanent)?;
        let sender = event
            .sender
            .as_ref()
            .filter(|sender| !sender.channel_user_id.is_empty())
            .ok_or_else(|| HandlerError::permanent("inbound event without a sender"))?;
        if envelope.workspace_id.is_empty() || event.channel_account_id.is_empty() {
            return Err(HandlerError::permanent(
                "inbound event without workspace or channel account",
            ));
        }
        let span = tracing::info_span!(
            "resolve contact",
            channel = channel.as_str(),
            channel_account_id = %event.channel_account_id,
            event_id = %envelope.event_id,
            outcome = tracing::field::Empty,
            contact_id = tracing::field::Empty,
        );
        let outcome = self
            .resolve(&envelope, event, channel, sender)
            .instrument(span.clone())
            .await
            .map_err(|error| {
                if error.is_retryable() {
                    HandlerError::retryable(error)
                } else {
                    HandlerError::permanent(error)
                }
            })?;
        let label = match &outcome {
            Outcome::Forward { replayed: true, .. } => "replayed",
            Outcome::Forward { created: true, .. } => "created",
            Outcome::Forward { linked: true, .. } => "linked",
            Outcome::Forward { .. } => "existing",
            Outcome::Held(reason) => reason,
            Outcome::Skipped(reason) => reason,
        };
        span.record("outcome", label);
        if let Outcome::Forward { contact, created, .. } = &outcome {
            span.record("contact_id", contact.id.as_str());
            self.forward(&envelope, event, contact, *created)
                .instrument(span)
                .await
                .map_err(HandlerError::retryable)?;
        }
        self.metrics.resolved(channel, label, started.elapsed());
        Ok(())
    }
}

impl Resolver {
    /// Publishes `contact.created` (when this event created the contact) and the resolved
    /// event on the contact's partition of the `contact` family.
    async fn forward(
        &self,
        envelope: &Envelope,
        event: &InboundEvent,
        contact: &Contact,
        created: bool,
    ) -> Result<(), switchboard_messaging::PublishError> {
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
                partition_key: contact.id.clone(),
                payload: Some(Payload::ContactChanged(events::ContactChanged {
                    change: ContactChange::Created as i32,
                    contact_id: contact.id.clone(),
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
            partition_key: contact.id.clone(),
            payload: Some(Payload::ContactInbound(events::ContactResolvedInbound {
                event: Some(event.clone()),
                contact_id: contact.id.clone(),
                contact: Some(snapshot),
                new_contact: created,
            })),
        });
        for message in messages {
            self.topology
                .publish(&self.publisher, Outgoing::envelope(&message, self.partitions))
                .await?;
        }
        Ok(())
    }

    /// Applies the event to the contacts store in one transaction and says what to do next.
    async fn resolve(
        &self,
        envelope: &Envelope,
        event: &InboundEvent,
        channel: Channel,
        sender: &SenderIdentity,
    ) -> Result<Outcome, ContactsError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let workspace = envelope.workspace_id.as_str();
        let account = event.channel_account_id.as_str();
        // Independent reads, pipelined on the connection: one round trip, not three.
        let (replayed, settings, known) = tokio::try_join!(
            replay(&tx, &envelope.event_id),
            Settings::load(&tx, workspace),
            known_identity(&tx, account, &sender.channel_user_id),
        )?;
        if let Some(outcome) = replayed {
            tx.commit().await?;
            return Ok(outcome);
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
                record_processed(&tx, envelope, None, "skipped").await?;
                tx.commit().await?;
                return Ok(Outcome::Skipped("unknown_sender"));
            }
            None => {
                let (contact_id, created, linked) =
                    claim_identity(&tx, workspace, channel, account, sender, &profile, &settings, at).await?;
                let blocked = !created && lock_contact(&tx, &contact_id).await?.blocked;
                (contact_id, blocked, created, linked)
            }
        };
        if let Some(action) = consent {
            apply_consent(&tx, &contact_id, channel, action, at).await?;
        }
        if blocked {
            tokio::try_join!(
                hold(&tx, envelope, channel, Some(&contact_id), "blocked", None),
                record_processed(&tx, envelope, Some(&contact_id), "blocked"),
            )?;
            tx.commit().await?;
            return Ok(Outcome::Held("blocked"));
        }
        // An opt-out from a new sender is recorded whatever the quota: it must be honoured.
        let exempt = consent == Some(ConsentAction::OptOut);
        if created && !exempt && over_quota(&tx, workspace, channel, at).await? {
            // Nothing of this event may remain: undo the contact, keep only the record.
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
                    channel,
                    None,
                    "quota_exceeded",
                    Some(envelope.encode_to_vec())
                ),
                record_processed(&tx, envelope, None, "quota_exceeded"),
            )?;
            tx.commit().await?;
            return Ok(Outcome::Held("quota_exceeded"));
        }
        let outcome = if created { "created" } else { "forwarded" };
        // The writes, pipelined too; the contact comes back from its update.
        let (contact, recorded) = if activity == Activity::Customer {
            let (contact, (), (), recorded) = tokio::try_join!(
                touch(&tx, &contact_id, channel, &profile, at),
                touch_identity(&tx, account, &sender.channel_user_id, &profile, at),
                count_activity(&tx, workspace, channel, &contact_id, at),
                record_processed(&tx, envelope, Some(&contact_id), outcome),
            )?;
            (contact, recorded)
        } else {
            tokio::try_join!(
                load_contact(&tx, &contact_id),
                record_processed(&tx, envelope, Some(&contact_id), outcome),
            )?
        };
        if !recorded {
            // Another consumer resolved the same event meanwhile: do what it did.
            tx.rollback().await?;
            let tx = client.transaction().await?;
            let replayed = replay(&tx, &envelope.event_id).await?;
            tx.commit().await?;
            return Ok(replayed.unwrap_or(Outcome::Skipped("concurrent")));
        }
        tx.commit().await?;
        Ok(Outcome::Forward {
            contact: Box::new(contact),
            created,
            linked,
            replayed: false,
        })
    }
}

/// What a channel said about a sender, normalized.
#[derive(Debug, Default)]
struct Profile {
    display_name: String,
    first_name: String,
    last_name: String,
    phone: Option<String>,
    email: Option<String>,
    username: Option<String>,
    avatar_url: Option<String>,
    locale: Option<String>,
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl Profile {
    fn of(channel: Channel, sender: &SenderIdentity, settings: &Settings) -> Self {
        let country = parse_country(&settings.default_country).ok();
        let phone_text = match (sender.phone_e164.is_empty(), channel) {
            (false, _) => Some(sender.phone_e164.as_str()),
            (true, Channel::Sms | Channel::Whatsapp) => Some(sender.channel_user_id.as_str()),
            _ => None,
        };
        let phone = phone_text.and_then(|text| normalize_phone(text, PhoneOrigin::Channel, country).ok());
        let email_text = match (sender.email.is_empty(), channel) {
            (false, _) => Some(sender.email.as_str()),
            (true, Channel::Email) => Some(sender.channel_user_id.as_str()),
            _ => None,
        };
        let email = email_text.and_then(|text| normalize_email(text).ok());
        let display_name = sender.display_name.trim().to_owned();
        let (first_name, last_name) = match display_name.split_once(char::is_whitespace) {
            Some((first, last)) => (first.to_owned(), last.trim().to_owned()),
            None => (display_name.clone(), String::new()),
        };
        Self {
            display_name,
            first_name,
            last_name,
            phone,
            email,
            username: non_empty(&sender.username),
            avatar_url: non_empty(&sender.avatar_url),
            locale: non_empty(&sender.locale),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "display_name": self.display_name,
            "phone": self.phone,
            "email": self.email,
            "username": self.username,
            "avatar_url": self.avatar_url,
            "locale": self.locale,
        })
    }
}

/// The contact of a known sender and whether it is blocked, or `None` for a new sender.
async fn known_identity(
    tx: &Transaction<'_>,
    account: &str,
    channel_user_id: &str,
) -> Result<Option<(String, bool)>, ContactsError> {
    Ok(tx
        .query_opt(
            &tx.prepare_cached(
                "SELECT i.contact_id, c.blocked FROM contacts.identities i
             JOIN contacts.contacts c ON c.id = i.contact_id
             WHERE i.channel_account_id = $1 AND i.channel_user_id = $2",
            )
            .await?,
            &[&account, &channel_user_id],
        )
        .await?
        .map(|row| (row.get(0), row.get(1))))
}

/// The outcome of an event resolved before, or `None`.
async fn replay(tx: &Transaction<'_>, event_id: &str) -> Result<Option<Outcome>, ContactsError> {
    let Some(row) = tx
        .query_opt(
            &tx.prepare_cached(
                "SELECT outcome, contact_id FROM contacts.processed_events WHERE event_id = $1",
            )
            .await?,
            &[&event_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let outcome: String = row.get(0);
    let contact_id: Option<String> = row.get(1);
    let outcome = match (outcome.as_str(), contact_id) {
        ("created" | "forwarded", Some(contact_id)) => {
            match tx
                .query_opt(
                    &tx.prepare_cached(&format!(
                        "SELECT {CONTACT_COLUMNS} FROM contacts.contacts c WHERE c.id = $1"
                    ))
                    .await?,
                    &[&contact_id],
                )
                .await?
            {
                Some(row) => Outcome::Forward {
                    contact: Box::new(Contact::from_row(&row)?),
                    created: outcome == "created",
                    linked: false,
                    replayed: true,
                },
                // Erased since: an old webhook retried must not bring it back.
                None => Outcome::Skipped("erased"),
            }
        }
        ("erased", _) => Outcome::Skipped("erased"),
        ("blocked", _) => Outcome::Skipped("replayed_blocked"),
        ("quota_exceeded", _) => Outcome::Skipped("replayed_quota_exceeded"),
        _ => Outcome::Skipped("replayed"),
    };
    Ok(Some(outcome))
}

/// Records the event as resolved; false when it was already (a concurrent consumer).
async fn record_processed(
    tx: &Transaction<'_>,
    envelope: &Envelope,
    contact_id: Option<&str>,
    outcome: &str,
) -> Result<bool, ContactsError> {
    let inserted = tx
        .execute(
            &tx.prepare_cached(
                "INSERT INTO contacts.processed_events (event_id, workspace_id, contact_id, outcome)
             VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING",
            )
            .await?,
            &[&envelope.event_id, &envelope.workspace_id, &contact_id, &outcome],
        )
        .await?;
    Ok(inserted == 1)
}

async fn hold(
    tx: &Transaction<'_>,
    envelope: &Envelope,
    channel: Channel,
    contact_id: Option<&str>,
    reason: &str,
    body: Option<Vec<u8>>,
) -> Result<(), ContactsError> {
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO contacts.held_events (event_id, workspace_id, channel, contact_id, reason, envelope)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
        )
        .await?,
        &[
            &envelope.event_id,
            &envelope.workspace_id,
            &channel.as_str(),
            &contact_id,
            &reason,
            &body,
        ],
    )
    .await?;
    Ok(())
}

/// Finds or creates the contact of a sender seen for the first time. Two consumers racing on
/// the same new sender: the identity's primary key lets one insert win; the other waits for
/// its commit, inserts nothing and uses the winner's contact.
#[allow(clippy::too_many_arguments)]
async fn claim_identity(
    tx: &Transaction<'_>,
    workspace: &str,
    channel: Channel,
    account: &str,
    sender: &SenderIdentity,
    profile: &Profile,
    settings: &Settings,
    at: DateTime<Utc>,
) -> Result<(String, bool, bool), ContactsError> {
    let same_phone = match &profile.phone {
        Some(phone) => first_contact_with(tx, workspace, "phone", phone).await?,
        None => None,
    };
    let same_email = match &profile.email {
        Some(email) => first_contact_with(tx, workspace, "email", email).await?,
        None => None,
    };
    let link = match (&same_phone, &same_email) {
        (Some(id), _) if settings.link_by_phone => Some(id.clone()),
        (_, Some(id)) if settings.link_by_email => Some(id.clone()),
        _ => None,
    };
    let candidate = link
        .clone()
        .unwrap_or_else(|| ContactId::generate().into_string());
    // The contact row is inserted after the identity (the foreign key is deferred), so the
    // identity's primary key is what decides a race.
    let claimed = tx
        .query_opt(&tx.prepare_cached("INSERT INTO contacts.identities
                 (channel_account_id, channel_user_id, workspace_id, channel, contact_id, profile, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (channel_account_id, channel_user_id) DO NOTHING
             RETURNING contact_id").await?,
            &[
                &account,
                &sender.channel_user_id,
                &workspace,
                &channel.as_str(),
                &candidate,
                &profile.to_json(),
                &at,
            ],
        )
        .await?;
    if claimed.is_none() {
        let winner: String = tx
            .query_one(
                &tx.prepare_cached(
                    "SELECT contact_id FROM contacts.identities
                 WHERE channel_account_id = $1 AND channel_user_id = $2",
                )
                .await?,
                &[&account, &sender.channel_user_id],
            )
            .await?
            .get(0);
        return Ok((winner, false, false));
    }
    if link.is_some() {
        return Ok((candidate, false, true));
    }
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO contacts.contacts
             (id, workspace_id, first_name, last_name, display_name, email, phone, username, avatar_url,
              locale, channels, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, ARRAY[$11::text], $12, $12)",
        )
        .await?,
        &[
            &candidate,
            &workspace,
            &profile.first_name,
            &profile.last_name,
            &profile.display_name,
            &profile.email,
            &profile.phone,
            &profile.username,
            &profile.avatar_url,
            &profile.locale,
            &channel.as_str(),
            &at,
        ],
    )
    .await?;
    for (other, reason) in [(same_phone, "same_phone"), (same_email, "same_email")] {
        if let Some(other) = other {
            tx.execute(
                &tx.prepare_cached(
                    "INSERT INTO contacts.merge_suggestions (workspace_id, contact_id, candidate_id, reason)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .await?,
                &[&workspace, &candidate, &other, &reason],
            )
            .await?;
        }
    }
    Ok((candidate, true, false))
}

async fn first_contact_with(
    tx: &Transaction<'_>,
    workspace: &str,
    column: &'static str,
    value: &str,
) -> Result<Option<String>, ContactsError> {
    let sql = format!(
        "SELECT id FROM contacts.contacts
         WHERE workspace_id = $1 AND {column} = $2 AND merged_into IS NULL
         ORDER BY created_at, id LIMIT 1"
    );
    Ok(tx
        .query_opt(&tx.prepare_cached(&sql).await?, &[&workspace, &value])
        .await?
        .map(|row| row.get(0)))
}

async fn lock_contact(tx: &Transaction<'_>, contact_id: &str) -> Result<Contact, ContactsError> {
    let row = tx
        .query_opt(
            &tx.prepare_cached(&format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts.contacts c WHERE c.id = $1 FOR UPDATE"
            ))
            .await?,
            &[&contact_id],
        )
        .await?
        .ok_or_else(|| ContactsError::Corrupt(format!("identity points to missing contact {contact_id}")))?;
    Ok(Contact::from_row(&row)?)
}

async fn load_contact(tx: &Transaction<'_>, contact_id: &str) -> Result<Contact, ContactsError> {
    let row = tx
        .query_one(
            &tx.prepare_cached(&format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts.contacts c WHERE c.id = $1"
            ))
            .await?,
            &[&contact_id],
        )
        .await?;
    Ok(Contact::from_row(&row)?)
}

/// Consent keywords and Telegram's bot (un)blocked update the contact's subscription state.
async fn apply_consent(
    tx: &Transaction<'_>,
    contact_id: &str,
    channel: Channel,
    action: ConsentAction,
    at: DateTime<Utc>,
) -> Result<(), ContactsError> {
    let sql = match (action, channel) {
        (ConsentAction::OptOut, Channel::Sms) => {
            "UPDATE contacts.contacts SET sms_opted_out = true, sms_opt_change_at = $2,
                 updated_at = now(), revision = revision + 1 WHERE id = $1"
        }
        (ConsentAction::OptIn, Channel::Sms) => {
            "UPDATE contacts.contacts SET sms_opted_out = false, sms_opt_change_at = $2,
                 updated_at = now(), revision = revision + 1 WHERE id = $1"
        }
        (ConsentAction::OptOut | ConsentAction::BotBlocked, _) => {
            "UPDATE contacts.contacts SET bot_subscribed = false, bot_subscription_at = $2,
                 bot_subscription_source = $3, updated_at = now(), revision = revision + 1 WHERE id = $1"
        }
        (ConsentAction::OptIn | ConsentAction::BotUnblocked, _) => {
            "UPDATE contacts.contacts SET bot_subscribed = true, bot_subscription_at = $2,
                 bot_subscription_source = $3, updated_at = now(), revision = revision + 1 WHERE id = $1"
        }
        (ConsentAction::Help | ConsentAction::Unspecified, _) => return Ok(()),
    };
    let source = match action {
        ConsentAction::BotBlocked => format!("{channel}:bot_blocked"),
        ConsentAction::BotUnblocked => format!("{channel}:bot_unblocked"),
        ConsentAction::OptOut => format!("{channel}:opt_out_keyword"),
        _ => format!("{channel}:opt_in_keyword"),
    };
    if sql.contains("$3") {
        tx.execute(&tx.prepare_cached(sql).await?, &[&contact_id, &at, &source])
            .await?;
    } else {
        tx.execute(&tx.prepare_cached(sql).await?, &[&contact_id, &at])
            .await?;
    }
    Ok(())
}

/// Customer activity: last inbound (never moved backwards by a late event), last channel,
/// the channel set, empty profile fields filled from the channel. Returns the contact.
async fn touch(
    tx: &Transaction<'_>,
    contact_id: &str,
    channel: Channel,
    profile: &Profile,
    at: DateTime<Utc>,
) -> Result<Contact, ContactsError> {
    let row = tx
        .query_one(&tx.prepare_cached(&format!(
                "UPDATE contacts.contacts AS c SET
                     last_channel = CASE WHEN c.last_inbound_at IS NULL OR c.last_inbound_at <= $2 THEN $3
                                         ELSE c.last_channel END,
                     last_inbound_at = GREATEST(c.last_inbound_at, $2),
                     channels = CASE WHEN $3 = ANY(c.channels) THEN c.channels ELSE array_append(c.channels, $3) END,
                     display_name = CASE WHEN c.display_name = '' THEN $4 ELSE c.display_name END,
                     first_name = CASE WHEN c.first_name = '' AND c.last_name = '' THEN $5 ELSE c.first_name END,
                     last_name = CASE WHEN c.first_name = '' AND c.last_name = '' THEN $6 ELSE c.last_name END,
                     phone = COALESCE(c.phone, $7),
                     email = COALESCE(c.email, $8),
                     username = COALESCE(c.username, $9),
                     avatar_url = COALESCE($10, c.avatar_url),
                     locale = COALESCE(c.locale, $11),
                     updated_at = now(),
                     revision = c.revision + 1
                 WHERE c.id = $1
                 RETURNING {CONTACT_COLUMNS}"
            )).await?,
            &[
                &contact_id,
                &at,
                &channel.as_str(),
                &profile.display_name,
                &profile.first_name,
                &profile.last_name,
                &profile.phone,
                &profile.email,
                &profile.username,
                &profile.avatar_url,
                &profile.locale,
            ],
        )
        .await?;
    Ok(Contact::from_row(&row)?)
}

/// The identity's last inbound and latest profile.
async fn touch_identity(
    tx: &Transaction<'_>,
    account: &str,
    channel_user_id: &str,
    profile: &Profile,
    at: DateTime<Utc>,
) -> Result<(), ContactsError> {
    tx.execute(
        &tx.prepare_cached(
            "UPDATE contacts.identities SET last_seen_at = GREATEST(last_seen_at, $3), profile = $4
         WHERE channel_account_id = $1 AND channel_user_id = $2",
        )
        .await?,
        &[&account, &channel_user_id, &at, &profile.to_json()],
    )
    .await?;
    Ok(())
}

/// Shards of a month's usage counter: activity increments spread over them, so concurrent
/// consumers do not queue on one row.
const USAGE_SHARDS: u16 = 16;

/// True when the channel's monthly quota has no room for one more new contact. Locks the
/// quota's row, so new senders are admitted one at a time and the count is exact at the
/// boundary (existing contacts never wait on it).
async fn over_quota(
    tx: &Transaction<'_>,
    workspace: &str,
    channel: Channel,
    at: DateTime<Utc>,
) -> Result<bool, ContactsError> {
    let limit: Option<i64> = tx
        .query_opt(&tx.prepare_cached("SELECT monthly_limit FROM contacts.quotas WHERE workspace_id = $1 AND channel = $2 FOR UPDATE").await?,
            &[&workspace, &channel.as_str()],
        )
        .await?
        .map(|row| row.get(0));
    let Some(limit) = limit else {
        return Ok(false);
    };
    let used: i64 = tx
        .query_one(
            &tx.prepare_cached(
                "SELECT coalesce(sum(contacts), 0)::bigint FROM contacts.monthly_usage
             WHERE workspace_id = $1 AND channel = $2 AND month = $3",
            )
            .await?,
            &[&workspace, &channel.as_str(), &month_of(at)],
        )
        .await?
        .get(0);
    Ok(used >= limit)
}

/// Counts the contact once per channel and calendar month (one statement).
async fn count_activity(
    tx: &Transaction<'_>,
    workspace: &str,
    channel: Channel,
    contact_id: &str,
    at: DateTime<Utc>,
) -> Result<(), ContactsError> {
    let shard = i16::try_from(switchboard_messaging::partition_for(contact_id, USAGE_SHARDS)).unwrap_or(0);
    tx.execute(
        &tx.prepare_cached(
            "WITH first_this_month AS (
             INSERT INTO contacts.monthly_activity (workspace_id, channel, month, contact_id)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1
         )
         INSERT INTO contacts.monthly_usage (workspace_id, channel, month, shard, contacts)
         SELECT $1, $2, $3, $5, 1 FROM first_this_month
         ON CONFLICT (workspace_id, channel, month, shard)
         DO UPDATE SET contacts = contacts.monthly_usage.contacts + 1",
        )
        .await?,
        &[&workspace, &channel.as_str(), &month_of(at), &contact_id, &shard],
    )
    .await?;
    Ok(())
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
