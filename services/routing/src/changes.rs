//! The plumbing of one conversation change: the conversation's row lock ([`Locked`]) and what
//! the transaction records and triggers ([`Changes`]: event-log entries, hand-outs to run after
//! the commit, whether the outbox relay needs waking).

use switchboard_domain::{AgentId, ChannelAccountId, ContactId, ConversationId, TeamId, WorkspaceId};
use switchboard_messaging::Partitions;
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::Transaction;

use crate::RoutingError;
use crate::error::stored_id;
use crate::event_log::{self, Event};

/// The assignment state of one conversation, read under its row lock.
#[derive(Debug, Clone)]
pub struct Locked {
    /// The conversation.
    pub id: ConversationId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// Its contact.
    pub contact_id: ContactId,
    /// Its channel account.
    pub channel_account_id: ChannelAccountId,
    /// `open` or `closed`.
    pub open: bool,
    /// The agent handling it.
    pub assignee_id: Option<AgentId>,
    /// Its team.
    pub team_id: Option<TeamId>,
}

impl Locked {
    /// An event of this conversation.
    pub fn event(&self, event_type: &'static str, payload: serde_json::Value) -> Event {
        Event::conversation(&self.id, &self.contact_id, event_type, payload)
    }
}

/// Locks conversation `id` of `workspace` for an assignment change.
pub async fn lock(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    id: &ConversationId,
) -> Result<Locked, RoutingError> {
    let row = tx
        .query_opt_cached(
            "SELECT id, workspace_id, contact_id, status, assignee_id, team_id, channel_account_id FROM routing.conversations
             WHERE id = $1 AND workspace_id = $2 FOR UPDATE",
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("conversation {id}")))?;
    Ok(Locked {
        id: stored_id("conversation id", row.get(0))?,
        workspace_id: stored_id("conversation workspace id", row.get(1))?,
        contact_id: stored_id("conversation contact id", row.get(2))?,
        open: row.get::<_, String>(3) == "open",
        assignee_id: row
            .get::<_, Option<&str>>(4)
            .map(|id| stored_id("conversation assignee id", id))
            .transpose()?,
        team_id: row
            .get::<_, Option<&str>>(5)
            .map(|id| stored_id("conversation team id", id))
            .transpose()?,
        channel_account_id: stored_id("conversation channel account id", row.get(6))?,
    })
}

/// Events of one transaction: the event-log entries and the outbox envelopes.
#[derive(Default)]
pub struct Changes {
    /// Event-log entries, written last.
    pub events: Vec<Event>,
    /// Teams to drain after the commit.
    pub drain_teams: Vec<TeamId>,
    /// Agents whose teams to drain after the commit (capacity freed).
    pub freed_agents: Vec<AgentId>,
    /// Whether an outbox event was written (wake the relay).
    pub published: bool,
}

impl Changes {
    /// Only a hand-out check for `agent`'s teams (capacity freed, or the agent came online).
    pub fn agent_freed(agent: AgentId) -> Self {
        Self {
            freed_agents: vec![agent],
            ..Self::default()
        }
    }

    /// Only a hand-out check for `team`.
    pub fn team_changed(team: TeamId) -> Self {
        Self {
            drain_teams: vec![team],
            ..Self::default()
        }
    }

    /// Writes the event log (the transaction's last statement) and commits.
    pub async fn commit(
        &self,
        tx: Transaction<'_>,
        workspace: &WorkspaceId,
        partitions: &Partitions,
    ) -> Result<(), RoutingError> {
        event_log::append(&tx, workspace, &self.events, partitions).await?;
        tx.commit().await?;
        Ok(())
    }
}
