//! Who handles each conversation: manual assignment, team queues and automatic hand-out.
//!
//! Every change runs in one transaction with its event-log events and its `assignment.changed`
//! outbox event. An agent's `open_count` (open conversations assigned) changes in the same
//! transaction, so capacity checks are exact.
//!
//! Hand-out: a team's queue is drained under a lock on the team's row, one conversation per
//! transaction (so a transaction never holds two agents' rows), oldest first. The agent is
//! taken with a conditional update (`online`, under capacity), which waits for and re-checks a
//! row another team's hand-out is changing. Because every replica drains under the same lock,
//! round-robin order holds across replicas. A drain runs after every change that can make
//! someone eligible (a conversation queued, closed or unassigned, an agent online or with more
//! capacity), and a periodic sweep drains every team with waiting conversations, so a crash
//! between a commit and its drain only delays the hand-out.

mod dispatcher;

pub use dispatcher::Dispatcher;

use chrono::{DateTime, Utc};
use switchboard_domain::time::to_timestamp;
use switchboard_domain::{AgentId, TeamId};
use switchboard_messaging::Partitions;
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::Transaction;
use switchboard_proto::events::v1::{AssignmentChanged, Envelope, envelope::Payload};

use crate::RoutingError;
use crate::changes::{Changes, Locked};
use crate::error::stored_id;
use crate::event_log::Event;
use crate::outbox::OUTBOX;
use crate::policy::WorkspacePolicy;

/// The consumer and family of the `assignment.changed` queues (declared by contacts too).
pub const ASSIGNMENT_CONSUMER: &str = "contacts";
/// See [`ASSIGNMENT_CONSUMER`].
pub const ASSIGNMENT_FAMILY: &str = "assignment";

/// How a team hands out conversations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Waits for a person.
    Manual,
    /// The eligible member assigned longest ago.
    RoundRobin,
    /// The eligible member with the fewest open conversations.
    LeastOpen,
}

impl Mode {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::RoundRobin => "round_robin",
            Self::LeastOpen => "least_open",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Result<Self, RoutingError> {
        match value {
            "manual" => Ok(Self::Manual),
            "round_robin" => Ok(Self::RoundRobin),
            "least_open" => Ok(Self::LeastOpen),
            other => Err(RoutingError::Corrupt(format!("team mode {other}"))),
        }
    }

    /// Order of eligible agents, best first.
    pub(crate) fn order_by(self) -> &'static str {
        match self {
            Self::Manual | Self::RoundRobin => "a.last_assigned_seq NULLS FIRST, a.id",
            Self::LeastOpen => "a.open_count, a.last_assigned_seq NULLS FIRST, a.id",
        }
    }
}

/// Records `assignment.changed` for `conversation` in the outbox.
pub(crate) async fn announce(
    tx: &Transaction<'_>,
    partitions: &Partitions,
    conversation: &Locked,
    assignee: Option<&AgentId>,
    team: Option<&TeamId>,
    changes: &mut Changes,
) -> Result<(), RoutingError> {
    let envelope = Envelope {
        event_id: switchboard_domain::EventId::generate().into_string(),
        event_type: "assignment.changed".to_owned(),
        occurred_at: Some(to_timestamp(chrono::Utc::now())),
        workspace_id: conversation.workspace_id.to_string(),
        correlation_id: String::new(),
        causation_id: String::new(),
        partition_key: conversation.contact_id.to_string(),
        payload: Some(Payload::AssignmentChanged(AssignmentChanged {
            contact_id: conversation.contact_id.to_string(),
            conversation_id: conversation.id.to_string(),
            assignee_id: assignee.map(AgentId::to_string).unwrap_or_default(),
            team_id: team.map(TeamId::to_string).unwrap_or_default(),
        })),
    };
    OUTBOX.record(tx, &envelope, partitions).await?;
    changes.published = true;
    Ok(())
}

/// Frees one unit of `agent`'s capacity.
async fn release(tx: &Transaction<'_>, agent: &AgentId) -> Result<(), RoutingError> {
    tx.execute_cached(
        "UPDATE routing.agents SET open_count = GREATEST(open_count - 1, 0) WHERE id = $1",
        &[&agent.as_str()],
    )
    .await?;
    Ok(())
}

/// Counts a new assignment for `agent` (capacity and round-robin position).
async fn take(tx: &Transaction<'_>, agent: &AgentId) -> Result<(), RoutingError> {
    tx.execute_cached(
        "UPDATE routing.agents SET open_count = open_count + 1,
             last_assigned_seq = nextval('routing.assignment_seq'), last_assigned_at = now()
         WHERE id = $1",
        &[&agent.as_str()],
    )
    .await?;
    Ok(())
}

/// Assigns the locked open conversation to `agent` (no capacity check: a person decided, or
/// the contact's previous agent keeps it). `automatic` is recorded in the event.
pub async fn assign(
    tx: &Transaction<'_>,
    partitions: &Partitions,
    conversation: &Locked,
    agent: &AgentId,
    automatic: bool,
    changes: &mut Changes,
) -> Result<(), RoutingError> {
    if !conversation.open {
        return Err(RoutingError::FailedPrecondition(format!(
            "conversation {} is closed; reopen it first",
            conversation.id
        )));
    }
    if conversation.assignee_id.as_ref() == Some(agent) {
        return Ok(());
    }
    let exists = tx
        .query_opt_cached(
            "SELECT 1 FROM routing.agents WHERE id = $1 AND workspace_id = $2",
            &[&agent.as_str(), &conversation.workspace_id.as_str()],
        )
        .await?;
    if exists.is_none() {
        return Err(RoutingError::NotFound(format!("agent {agent}")));
    }
    // Agents' rows in id order, so two opposite reassignments cannot deadlock.
    let previous = conversation.assignee_id.as_ref();
    match previous {
        Some(previous) if previous < agent => {
            release(tx, previous).await?;
            take(tx, agent).await?;
        }
        Some(previous) => {
            take(tx, agent).await?;
            release(tx, previous).await?;
        }
        None => take(tx, agent).await?,
    }
    tx.execute_cached(
        "UPDATE routing.conversations SET assignee_id = $2, assigned_at = now(), queued_at = NULL,
             revision = revision + 1
         WHERE id = $1",
        &[&conversation.id.as_str(), &agent.as_str()],
    )
    .await?;
    announce(
        tx,
        partitions,
        conversation,
        Some(agent),
        conversation.team_id.as_ref(),
        changes,
    )
    .await?;
    changes.events.push(Event::conversation(
        &conversation.id,
        &conversation.contact_id,
        "conversation.assigned",
        serde_json::json!({
            "agent_id": agent,
            "previous_agent_id": previous,
            "team_id": conversation.team_id,
            "automatic": automatic,
        }),
    ));
    if let Some(previous) = previous {
        changes.freed_agents.push(previous.clone());
    }
    Ok(())
}

/// Leaves the locked conversation unassigned and out of any queue.
pub async fn unassign(
    tx: &Transaction<'_>,
    partitions: &Partitions,
    conversation: &Locked,
    changes: &mut Changes,
) -> Result<(), RoutingError> {
    let Some(previous) = conversation.assignee_id.as_ref() else {
        tx.execute_cached(
            "UPDATE routing.conversations SET queued_at = NULL, revision = revision + 1 WHERE id = $1",
            &[&conversation.id.as_str()],
        )
        .await?;
        return Ok(());
    };
    if conversation.open {
        release(tx, previous).await?;
        changes.freed_agents.push(previous.clone());
    }
    tx.execute_cached(
        "UPDATE routing.conversations SET assignee_id = NULL, assigned_at = NULL, queued_at = NULL,
             revision = revision + 1
         WHERE id = $1",
        &[&conversation.id.as_str()],
    )
    .await?;
    announce(tx, partitions, conversation, None, None, changes).await?;
    changes.events.push(Event::conversation(
        &conversation.id,
        &conversation.contact_id,
        "conversation.unassigned",
        serde_json::json!({ "previous_agent_id": previous }),
    ));
    Ok(())
}

/// Puts the locked open conversation in `team`'s queue (unassigning it first), under the
/// workspace's `policy` (the at-capacity reply, decided at `now`).
pub async fn enqueue(
    tx: &Transaction<'_>,
    partitions: &Partitions,
    conversation: &Locked,
    team_id: &TeamId,
    policy: &WorkspacePolicy,
    now: DateTime<Utc>,
    changes: &mut Changes,
) -> Result<(), RoutingError> {
    let team = team_id.as_str();
    if !conversation.open {
        return Err(RoutingError::FailedPrecondition(format!(
            "conversation {} is closed; reopen it first",
            conversation.id
        )));
    }
    let exists = tx
        .query_opt_cached(
            "SELECT 1 FROM routing.teams WHERE id = $1 AND workspace_id = $2",
            &[&team, &conversation.workspace_id.as_str()],
        )
        .await?;
    if exists.is_none() {
        return Err(RoutingError::NotFound(format!("team {team}")));
    }
    if conversation.assignee_id.is_some() {
        unassign(tx, partitions, conversation, changes).await?;
    }
    tx.execute_cached(
        "UPDATE routing.conversations SET team_id = $2, queued_at = clock_timestamp(), revision = revision + 1
         WHERE id = $1",
        &[&conversation.id.as_str(), &team],
    )
    .await?;
    changes.events.push(Event::conversation(
        &conversation.id,
        &conversation.contact_id,
        "conversation.queued",
        serde_json::json!({ "team_id": team }),
    ));
    changes.drain_teams.push(team_id.clone());
    crate::auto_reply::when_queued(tx, partitions, conversation, team_id, policy, now, changes).await?;
    Ok(())
}

/// Closing: the conversation leaves its queue and frees its agent's capacity; with
/// `unassign` (the workspace's unassign-on-close) it is also unassigned.
pub async fn on_close(
    tx: &Transaction<'_>,
    partitions: &Partitions,
    conversation: &Locked,
    unassign_on_close: bool,
    changes: &mut Changes,
) -> Result<(), RoutingError> {
    if unassign_on_close && conversation.assignee_id.is_some() {
        // Counted as open still: `unassign` releases the capacity.
        unassign(tx, partitions, conversation, changes).await?;
        return Ok(());
    }
    if let Some(agent) = conversation.assignee_id.as_ref() {
        release(tx, agent).await?;
        changes.freed_agents.push(agent.clone());
    }
    tx.execute_cached(
        "UPDATE routing.conversations SET queued_at = NULL WHERE id = $1",
        &[&conversation.id.as_str()],
    )
    .await?;
    Ok(())
}

/// Reopening: the assigned agent carries it again; an unassigned one of a team queues again.
pub async fn on_reopen(
    tx: &Transaction<'_>,
    conversation: &Locked,
    changes: &mut Changes,
) -> Result<(), RoutingError> {
    if let Some(agent) = conversation.assignee_id.as_ref() {
        tx.execute_cached(
            "UPDATE routing.agents SET open_count = open_count + 1 WHERE id = $1",
            &[&agent.as_str()],
        )
        .await?;
    } else if let Some(team) = conversation.team_id.as_ref() {
        tx.execute_cached(
            "UPDATE routing.conversations SET queued_at = clock_timestamp() WHERE id = $1",
            &[&conversation.id.as_str()],
        )
        .await?;
        changes.events.push(Event::conversation(
            &conversation.id,
            &conversation.contact_id,
            "conversation.queued",
            serde_json::json!({ "team_id": team }),
        ));
        changes.drain_teams.push(team.clone());
    }
    Ok(())
}

/// Routes a conversation just opened by an inbound message at `now`: to the agent who had the
/// contact's previous conversation on the account (contacts stay assigned after close, unless
/// the workspace unassigns on close), else into the queue of the account's team.
pub async fn route_new(
    tx: &Transaction<'_>,
    partitions: &Partitions,
    conversation: &Locked,
    policy: &WorkspacePolicy,
    now: DateTime<Utc>,
    changes: &mut Changes,
) -> Result<(), RoutingError> {
    let channel_account_id = conversation.channel_account_id.as_str();
    let previous = if policy.unassign_on_close {
        None
    } else {
        tx.query_opt_cached(
            "SELECT c.assignee_id FROM routing.conversations c
             JOIN routing.agents a ON a.id = c.assignee_id
             WHERE c.workspace_id = $4 AND c.contact_id = $1 AND c.channel_account_id = $2 AND c.id <> $3
               AND c.status = 'closed'
             ORDER BY c.closed_at DESC NULLS LAST LIMIT 1",
            &[
                &conversation.contact_id.as_str(),
                &channel_account_id,
                &conversation.id.as_str(),
                &conversation.workspace_id.as_str(),
            ],
        )
        .await?
    };
    if let Some(row) = previous {
        let agent: AgentId = stored_id("previous assignee_id", row.get::<_, &str>(0))?;
        return assign(tx, partitions, conversation, &agent, true, changes).await;
    }
    let team = tx
        .query_opt_cached(
            "SELECT team_id FROM routing.team_accounts WHERE channel_account_id = $1",
            &[&channel_account_id],
        )
        .await?;
    if let Some(row) = team {
        let team: TeamId = stored_id("team_accounts team_id", row.get::<_, &str>(0))?;
        return enqueue(tx, partitions, conversation, &team, policy, now, changes).await;
    }
    Ok(())
}
