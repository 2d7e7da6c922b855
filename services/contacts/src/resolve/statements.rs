//! The SQL of identity resolution, one statement (or a short sequence) per function, run in the
//! resolving transaction with cached prepared statements.

use chrono::{DateTime, Utc};
use switchboard_domain::{Channel, ChannelAccountId, WorkspaceId};
use switchboard_postgres::Transaction;
use switchboard_proto::common::v1::SenderIdentity;
use switchboard_proto::events::v1::{ConsentAction, Envelope};

use super::profile::Profile;
use super::{Outcome, month_of};
use crate::error::stored_id;
use crate::model::{CONTACT_COLUMNS, Contact};
use crate::settings::Settings;
use crate::{ContactId, ContactsError};

/// The contact of a known sender and whether it is blocked, or `None` for a new sender.
pub(super) async fn known_identity(
    tx: &Transaction<'_>,
    account: &ChannelAccountId,
    channel_user_id: &str,
) -> Result<Option<(ContactId, bool)>, ContactsError> {
    tx.query_opt(
        &tx.prepare_cached(
            "SELECT i.contact_id, c.blocked FROM contacts.identities i
             JOIN contacts.contacts c ON c.id = i.contact_id
             WHERE i.channel_account_id = $1 AND i.channel_user_id = $2",
        )
        .await?,
        &[&account.as_str(), &channel_user_id],
    )
    .await?
    .map(|row| Ok((stored_id("identity contact id", row.get(0))?, row.get(1))))
    .transpose()
}

/// The outcome of an event resolved before, or `None`.
pub(super) async fn replay(tx: &Transaction<'_>, event_id: &str) -> Result<Option<Outcome>, ContactsError> {
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
    let contact_id: Option<ContactId> = row
        .get::<_, Option<&str>>(1)
        .map(|id| stored_id("resolved contact id", id))
        .transpose()?;
    let outcome = match (outcome.as_str(), contact_id) {
        ("created" | "forwarded", Some(contact_id)) => {
            match tx
                .query_opt(
                    &tx.prepare_cached(&format!(
                        "SELECT {CONTACT_COLUMNS} FROM contacts.contacts c WHERE c.id = $1"
                    ))
                    .await?,
                    &[&contact_id.as_str()],
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
pub(super) async fn record_processed(
    tx: &Transaction<'_>,
    envelope: &Envelope,
    contact_id: Option<&ContactId>,
    outcome: &str,
) -> Result<bool, ContactsError> {
    let inserted = tx
        .execute(
            &tx.prepare_cached(
                "INSERT INTO contacts.processed_events (event_id, workspace_id, contact_id, outcome)
             VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING",
            )
            .await?,
            &[
                &envelope.event_id,
                &envelope.workspace_id,
                &contact_id.map(ContactId::as_str),
                &outcome,
            ],
        )
        .await?;
    Ok(inserted == 1)
}

/// Records an event that is not passed on and why, with its encoded envelope when `body` is given.
pub(super) async fn hold(
    tx: &Transaction<'_>,
    envelope: &Envelope,
    channel: Channel,
    contact_id: Option<&ContactId>,
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
            &contact_id.map(ContactId::as_str),
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
pub(super) async fn claim_identity(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    channel: Channel,
    account: &ChannelAccountId,
    sender: &SenderIdentity,
    profile: &Profile,
    settings: &Settings,
    at: DateTime<Utc>,
) -> Result<(ContactId, bool, bool), ContactsError> {
    let same_phone = match &profile.phone {
        Some(phone) => first_contact_with(tx, workspace, "phone", phone).await?,
        None => None,
    };
    let same_email = match &profile.email {
        Some(email) => first_contact_with(tx, workspace, "email", email).await?,
        None => None,
    };
    // Typed, unverified addresses (web chat's pre-chat form) never claim an existing contact.
    let link = match (&same_phone, &same_email) {
        _ if sender.contact_fields_unverified => None,
        (Some(id), _) if settings.link_by_phone => Some(id.clone()),
        (_, Some(id)) if settings.link_by_email => Some(id.clone()),
        _ => None,
    };
    let candidate = link.clone().unwrap_or_else(ContactId::generate);
    // The contact row is inserted after the identity (the foreign key is deferred), so the
    // identity's primary key is what decides a race.
    let claimed = tx
        .query_opt(&tx.prepare_cached("INSERT INTO contacts.identities
                 (channel_account_id, channel_user_id, workspace_id, channel, contact_id, profile, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (channel_account_id, channel_user_id) DO NOTHING
             RETURNING contact_id").await?,
            &[
                &account.as_str(),
                &sender.channel_user_id,
                &workspace.as_str(),
                &channel.as_str(),
                &candidate.as_str(),
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
                &[&account.as_str(), &sender.channel_user_id],
            )
            .await?
            .get(0);
        return Ok((stored_id("identity contact id", &winner)?, false, false));
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
            &candidate.as_str(),
            &workspace.as_str(),
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
                &[&workspace.as_str(), &candidate.as_str(), &other.as_str(), &reason],
            )
            .await?;
        }
    }
    Ok((candidate, true, false))
}

/// The oldest visible contact of the workspace whose `column` is `value`.
pub(super) async fn first_contact_with(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    column: &'static str,
    value: &str,
) -> Result<Option<ContactId>, ContactsError> {
    let sql = format!(
        "SELECT id FROM contacts.contacts
         WHERE workspace_id = $1 AND {column} = $2 AND merged_into IS NULL
         ORDER BY created_at, id LIMIT 1"
    );
    tx.query_opt(&tx.prepare_cached(&sql).await?, &[&workspace.as_str(), &value])
        .await?
        .map(|row| stored_id("contact id", row.get(0)))
        .transpose()
}

/// A contact, locked for the rest of the transaction.
pub(super) async fn lock_contact(
    tx: &Transaction<'_>,
    contact_id: &ContactId,
) -> Result<Contact, ContactsError> {
    let row = tx
        .query_opt(
            &tx.prepare_cached(&format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts.contacts c WHERE c.id = $1 FOR UPDATE"
            ))
            .await?,
            &[&contact_id.as_str()],
        )
        .await?
        .ok_or_else(|| ContactsError::Corrupt(format!("identity points to missing contact {contact_id}")))?;
    Contact::from_row(&row)
}

/// A contact, not locked.
pub(super) async fn load_contact(
    tx: &Transaction<'_>,
    contact_id: &ContactId,
) -> Result<Contact, ContactsError> {
    let row = tx
        .query_one(
            &tx.prepare_cached(&format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts.contacts c WHERE c.id = $1"
            ))
            .await?,
            &[&contact_id.as_str()],
        )
        .await?;
    Contact::from_row(&row)
}

/// Consent keywords and Telegram's bot (un)blocked update the contact's subscription state.
pub(super) async fn apply_consent(
    tx: &Transaction<'_>,
    contact_id: &ContactId,
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
        tx.execute(
            &tx.prepare_cached(sql).await?,
            &[&contact_id.as_str(), &at, &source],
        )
        .await?;
    } else {
        tx.execute(&tx.prepare_cached(sql).await?, &[&contact_id.as_str(), &at])
            .await?;
    }
    Ok(())
}

/// Customer activity: last inbound (never moved backwards by a late event), last channel,
/// the channel set, empty profile fields filled from the channel. Returns the contact.
pub(super) async fn touch(
    tx: &Transaction<'_>,
    contact_id: &ContactId,
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
                &contact_id.as_str(),
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
    Contact::from_row(&row)
}

/// The identity's last inbound and latest profile.
pub(super) async fn touch_identity(
    tx: &Transaction<'_>,
    account: &ChannelAccountId,
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
        &[&account.as_str(), &channel_user_id, &at, &profile.to_json()],
    )
    .await?;
    Ok(())
}

/// Shards of a month's usage counter: each connection increments the shard of its backend
/// (`pg_backend_pid() % USAGE_SHARDS`), so concurrent consumers, whose transactions hold an
/// increment until they commit (a whole batch of events), rarely queue on one row, and a
/// transaction never locks two shards (no deadlock). Readers sum the shards.
const USAGE_SHARDS: i32 = 32;

/// True when the channel's monthly quota has no room for one more new contact. Locks the
/// quota's row, so new senders are admitted one at a time and the count is exact at the
/// boundary (existing contacts never wait on it).
pub(super) async fn over_quota(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    channel: Channel,
    at: DateTime<Utc>,
) -> Result<bool, ContactsError> {
    let limit: Option<i64> = tx
        .query_opt(&tx.prepare_cached("SELECT monthly_limit FROM contacts.quotas WHERE workspace_id = $1 AND channel = $2 FOR UPDATE").await?,
            &[&workspace.as_str(), &channel.as_str()],
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
            &[&workspace.as_str(), &channel.as_str(), &month_of(at)],
        )
        .await?
        .get(0);
    Ok(used >= limit)
}

/// Counts the contact once per channel and calendar month (one statement).
pub(super) async fn count_activity(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    channel: Channel,
    contact_id: &ContactId,
    at: DateTime<Utc>,
) -> Result<(), ContactsError> {
    tx.execute(
        &tx.prepare_cached(
            "WITH first_this_month AS (
             INSERT INTO contacts.monthly_activity (workspace_id, channel, month, contact_id)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1
         )
         INSERT INTO contacts.monthly_usage (workspace_id, channel, month, shard, contacts)
         SELECT $1, $2, $3, (pg_backend_pid() % $5)::smallint, 1 FROM first_this_month
         ON CONFLICT (workspace_id, channel, month, shard)
         DO UPDATE SET contacts = contacts.monthly_usage.contacts + 1",
        )
        .await?,
        &[
            &workspace.as_str(),
            &channel.as_str(),
            &month_of(at),
            &contact_id.as_str(),
            &USAGE_SHARDS,
        ],
    )
    .await?;
    Ok(())
}
