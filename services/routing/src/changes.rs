//! The plumbing of one conversation change: the conversation's row lock ([`Locked`]) and what
//! the transaction records and triggers ([`Changes`]: event-log entries, hand-outs to run after
//! the commit, whether the outbox relay needs waking).

use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::Transaction;

use crate::RoutingError;
use crate::event_log::{self, Event};

/// The assignment state of one conversation, read under its row lock.
#[derive(Debug, Clone)]
pub struct Locked {
    /// The conversation.
    pub id: String,
    /// Its workspace.
    pub workspace_id: String,
    /// Its contact.
    pub contact_id: String,
    /// Its channel account.
    pub channel_account_id: String,
    /// `open` or `closed`.
    pub open: bool,
    /// The agent handling it.
    pub assignee_id: Option<String>,
    /// Its team.
    pub team_id: Option<String>,
}

impl Locked {
    /// An event of this conversation.
    pub fn event(&self, event_type: &'static str, payload: serde_json::Value) -> Event {
        Event::conversation(&self.id, &self.contact_id, event_type, payload)
    }
}

/// Locks conversation `id` of `workspace` for an assignment change.
pub async fn lock(tx: &Transaction<'_>, workspace: &str, id: &str) -> Result<Locked, RoutingError> {
    let row = tx
        .query_opt_cached(
            "SELECT id, workspace_id, contact_id, status, assignee_id, team_id, channel_account_id FROM routing.conversations
             WHERE id = $1 AND workspace_id = $2 FOR UPDATE",
            &[&id, &workspace],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("conversation {id}")))?;
    Ok(Locked {
        id: row.get(0),
        workspace_id: row.get(1),
        contact_id: row.get(2),
        open: row.get::<_, String>(3) == "open",
        assignee_id: row.get(4),
        team_id: row.get(5),
        channel_account_id: row.get(6),
    })
}

/// Events of one transaction: the event-log entries and the outbox envelopes.
#[derive(Default)]
pub struct Changes {
    /// Event-log entries, written last.
    pub events: Vec<Event>,
    /// Teams to drain after the commit.
    pub drain_teams: Vec<String>,
    /// Agents whose teams to drain after the commit (capacity freed).
    pub freed_agents: Vec<String>,
    /// Whether an outbox event was written (wake the relay).
    pub published: bool,
}

impl Changes {
    /// Only a hand-out check for `agent`'s teams (capacity freed, or the agent came online).
    pub fn agent_freed(agent: String) -> Self {
        Self {
            freed_agents: vec![agent],
            ..Self::default()
        }
    }

    /// Only a hand-out check for `team`.
    pub fn team_changed(team: String) -> Self {
        Self {
            drain_teams: vec![team],
            ..Self::default()
        }
    }

    /// Writes the event log (the transaction's last statement) and commits.
    pub async fn commit(
        &self,
        tx: Transaction<'_>,
        workspace: &str,
        partitions: u16,
    ) -> Result<(), RoutingError> {
        event_log::append(&tx, workspace, &self.events, partitions).await?;
        tx.commit().await?;
        Ok(())
    }
}
