//! Automatic replies: the away message when a customer writes outside business hours (once per
//! conversation per closed period) and the at-capacity message when a conversation joins a
//! team's queue while nobody can take it (once per wait). Routing decides and records them in
//! the transaction of the change; delivery sends them (`AutoReplyRequested`, through the outbox).

use chrono::{DateTime, Utc};
use switchboard_domain::TeamId;
use switchboard_domain::time::to_timestamp;
use switchboard_messaging::Partitions;
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::Transaction;
use switchboard_proto::events::v1::{AutoReplyRequested, Envelope, envelope::Payload};

use crate::RoutingError;
use crate::changes::{Changes, Locked};
use crate::event_log::Event;
use crate::outbox::OUTBOX;
use crate::policy::WorkspacePolicy;

/// The component and family of delivery's auto-reply queues (`delivery.autoreply.pNN`).
pub const AUTO_REPLY_CONSUMER: &str = "delivery";
/// See [`AUTO_REPLY_CONSUMER`].
pub const AUTO_REPLY_FAMILY: &str = "autoreply";

/// One automatic reply to request.
struct Reply<'a> {
    /// The conversation's channel (proto value).
    channel: i32,
    /// `away` or `at_capacity`.
    kind: &'static str,
    text: &'a str,
    /// Names the closed period or the wait it is sent for.
    period: &'a str,
}

/// Records a request once per (conversation, kind, period); returns whether it was new.
async fn request(
    tx: &Transaction<'_>,
    partitions: &Partitions,
    conversation: &Locked,
    reply: Reply<'_>,
    changes: &mut Changes,
) -> Result<bool, RoutingError> {
    let Reply {
        channel,
        kind,
        text,
        period,
    } = reply;
    let inserted = tx
        .execute_cached(
            "INSERT INTO routing.auto_replies (conversation_id, kind, period) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&conversation.id.as_str(), &kind, &period],
        )
        .await?;
    if inserted == 0 {
        return Ok(false);
    }
    let envelope = Envelope {
        event_id: switchboard_domain::EventId::generate().into_string(),
        event_type: "autoreply.requested".to_owned(),
        occurred_at: Some(to_timestamp(Utc::now())),
        workspace_id: conversation.workspace_id.to_string(),
        correlation_id: String::new(),
        causation_id: String::new(),
        partition_key: conversation.id.to_string(),
        payload: Some(Payload::AutoReplyRequested(AutoReplyRequested {
            conversation_id: conversation.id.to_string(),
            contact_id: conversation.contact_id.to_string(),
            channel_account_id: conversation.channel_account_id.to_string(),
            channel,
            kind: kind.to_owned(),
            text: text.to_owned(),
        })),
    };
    OUTBOX.record(tx, &envelope, partitions).await?;
    changes.published = true;
    changes.events.push(Event::conversation(
        &conversation.id,
        &conversation.contact_id,
        "auto_reply.requested",
        serde_json::json!({ "kind": kind, "period": period }),
    ));
    Ok(true)
}

/// After an inbound message: the away message when the workspace is closed at `at`.
pub async fn after_inbound(
    tx: &Transaction<'_>,
    partitions: &Partitions,
    conversation: &Locked,
    channel: i32,
    at: DateTime<Utc>,
    policy: &WorkspacePolicy,
    changes: &mut Changes,
) -> Result<(), RoutingError> {
    let Some(schedule) = &policy.schedule else {
        return Ok(());
    };
    if policy.away_message.is_empty() || schedule.is_open(at) {
        return Ok(());
    }
    // One per closed period: the period is named by when it began (or "closed" when the hours
    // never open).
    let period = schedule
        .closed_since(at)
        .map_or_else(|| "closed".to_owned(), |since| since.to_rfc3339());
    let reply = Reply {
        channel,
        kind: "away",
        text: &policy.away_message,
        period: &period,
    };
    request(tx, partitions, conversation, reply, changes).await?;
    Ok(())
}

/// After a conversation joined `team`'s queue at `now`: the at-capacity message when the
/// workspace is open but the members online cannot take it (their free places are fewer than
/// the conversations waiting, this one included).
pub async fn when_queued(
    tx: &Transaction<'_>,
    partitions: &Partitions,
    conversation: &Locked,
    team: &TeamId,
    policy: &WorkspacePolicy,
    now: DateTime<Utc>,
    changes: &mut Changes,
) -> Result<(), RoutingError> {
    if policy.at_capacity_message.is_empty()
        || policy
            .schedule
            .as_ref()
            .is_some_and(|schedule| !schedule.is_open(now))
    {
        return Ok(());
    }
    let row = tx
        .query_one_cached(
            "SELECT
                 (SELECT coalesce(sum(GREATEST(a.max_open - a.open_count, 0)), 0)::bigint
                  FROM routing.agents a JOIN routing.team_members m ON m.agent_id = a.id
                  WHERE m.team_id = $1 AND a.status = 'online'),
                 (SELECT count(*) FROM routing.conversations c
                  WHERE c.team_id = $1 AND c.queued_at IS NOT NULL AND c.status = 'open'
                    AND c.assignee_id IS NULL AND c.id <> $2),
                 (SELECT channel FROM routing.conversations WHERE id = $2)",
            &[&team.as_str(), &conversation.id.as_str()],
        )
        .await?;
    let (free, waiting_ahead, channel): (i64, i64, String) = (row.get(0), row.get(1), row.get(2));
    if waiting_ahead < free {
        return Ok(());
    }
    let period = now.to_rfc3339();
    let reply = Reply {
        channel: switchboard_domain::Channel::proto_value_of(&channel),
        kind: "at_capacity",
        text: &policy.at_capacity_message,
        period: &period,
    };
    request(tx, partitions, conversation, reply, changes).await?;
    Ok(())
}
