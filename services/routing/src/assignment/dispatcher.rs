//! Hand-out of team queues: oldest waiting conversation first, one per transaction, under the
//! team row's lock; the periodic sweep; waking the outbox relay after commits; the clock
//! business hours are decided at.

use std::sync::Arc;
use std::time::Duration;
use switchboard_messaging::Partitions;
use switchboard_postgres::CachedStatements as _;

use switchboard_domain::{AgentId, TeamId, WorkspaceId};
use switchboard_postgres::{Pool, Transaction};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Mode, announce};
use crate::RoutingError;
use crate::changes::{Changes, Locked};
use crate::clock::Clock;
use crate::error::stored_id;
use crate::event_log::Event;

/// Hands out queued conversations and wakes the outbox relay; carries the installation-wide
/// settings every change needs (bus partitions, the business-hours clock).
#[derive(Clone)]
pub struct Dispatcher {
    pool: Pool,
    partitions: Partitions,
    outbox_wake: Arc<Notify>,
    clock: Clock,
}

impl Dispatcher {
    /// A dispatcher on `pool`, publishing with `partitions`, on the system clock.
    pub fn new(pool: Pool, partitions: Partitions, outbox_wake: Arc<Notify>) -> Self {
        Self {
            pool,
            partitions,
            outbox_wake,
            clock: Clock::system(),
        }
    }

    /// The same dispatcher deciding business hours on `clock`.
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// The clock business hours (away and at-capacity replies) are decided at.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Wakes the outbox relay after a commit that wrote events.
    pub fn events_written(&self) {
        self.outbox_wake.notify_one();
    }

    /// Bus partitions events are spread over.
    pub fn partitions(&self) -> &Partitions {
        &self.partitions
    }

    /// After a commit: wakes the relay and drains what the change made eligible. Failures
    /// are logged; the sweep retries.
    pub async fn after_commit(&self, changes: &Changes) {
        // Every logged event is on the bus too (through the outbox).
        if changes.published || !changes.events.is_empty() {
            self.outbox_wake.notify_one();
        }
        let mut teams = changes.drain_teams.clone();
        for agent in &changes.freed_agents {
            match self.teams_of(agent).await {
                Ok(agent_teams) => teams.extend(agent_teams),
                Err(error) => {
                    tracing::warn!(error = %error, %agent, "cannot list the agent's teams; the sweep will drain them")
                }
            }
        }
        teams.sort();
        teams.dedup();
        for team in teams {
            if let Err(error) = self.drain(&team).await {
                tracing::warn!(error = %error, %team, "hand-out failed; the sweep will retry");
            }
        }
    }

    /// The teams `agent` belongs to.
    pub async fn teams_of(&self, agent: &AgentId) -> Result<Vec<TeamId>, RoutingError> {
        let client = self.pool.get().await?;
        let rows = client
            .query_cached(
                "SELECT team_id FROM routing.team_members WHERE agent_id = $1",
                &[&agent.as_str()],
            )
            .await?;
        rows.iter()
            .map(|row| stored_id("team_members team_id", row.get(0)))
            .collect()
    }

    /// Hands out `team`'s waiting conversations, oldest first, while an agent is eligible.
    /// Returns how many were assigned.
    pub async fn drain(&self, team: &TeamId) -> Result<usize, RoutingError> {
        let mut handed_out = 0;
        while self.hand_out_one(team).await? {
            handed_out += 1;
        }
        if handed_out > 0 {
            self.outbox_wake.notify_one();
        }
        Ok(handed_out)
    }

    /// One hand-out in its own transaction; false when nothing waits or nobody is eligible.
    async fn hand_out_one(&self, team: &TeamId) -> Result<bool, RoutingError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(team_row) = tx
            .query_opt_cached(
                "SELECT mode, workspace_id FROM routing.teams WHERE id = $1 FOR UPDATE",
                &[&team.as_str()],
            )
            .await?
        else {
            return Ok(false);
        };
        let mode = Mode::parse(&team_row.get::<_, String>(0))?;
        if mode == Mode::Manual {
            return Ok(false);
        }
        let workspace: WorkspaceId = stored_id("team workspace_id", team_row.get(1))?;
        let Some(waiting) = tx
            .query_opt_cached(
                "SELECT id, contact_id, channel_account_id FROM routing.conversations
                 WHERE team_id = $1 AND queued_at IS NOT NULL AND status = 'open' AND assignee_id IS NULL
                 ORDER BY queued_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[&team.as_str()],
            )
            .await?
        else {
            return Ok(false);
        };
        let Some(agent) = take_eligible(&tx, team, mode).await? else {
            return Ok(false);
        };
        let conversation = Locked {
            id: stored_id("conversation id", waiting.get(0))?,
            workspace_id: workspace.clone(),
            contact_id: stored_id("conversation contact_id", waiting.get(1))?,
            channel_account_id: stored_id("conversation channel_account_id", waiting.get(2))?,
            open: true,
            assignee_id: None,
            team_id: Some(team.clone()),
        };
        tx.execute_cached(
            "UPDATE routing.conversations SET assignee_id = $2, assigned_at = now(), queued_at = NULL,
                 revision = revision + 1
             WHERE id = $1",
            &[&conversation.id.as_str(), &agent.as_str()],
        )
        .await?;
        let mut changes = Changes::default();
        announce(
            &tx,
            &self.partitions,
            &conversation,
            Some(&agent),
            Some(team),
            &mut changes,
        )
        .await?;
        changes.events.push(Event::conversation(
            &conversation.id,
            &conversation.contact_id,
            "conversation.assigned",
            serde_json::json!({
                "agent_id": agent,
                "previous_agent_id": null,
                "team_id": team,
                "automatic": true,
                "mode": mode.as_str(),
            }),
        ));
        changes.commit(tx, &workspace, &self.partitions).await?;
        Ok(true)
    }

    /// Drains every team with waiting conversations (all workspaces).
    pub async fn sweep(&self) -> Result<usize, RoutingError> {
        let teams: Vec<TeamId> = {
            let client = self.pool.get().await?;
            client
                .query_cached(
                    "SELECT DISTINCT team_id FROM routing.conversations
                     WHERE queued_at IS NOT NULL AND status = 'open' AND assignee_id IS NULL",
                    &[],
                )
                .await?
                .iter()
                // One malformed row must not stop every other team's hand-out.
                .filter_map(|row| {
                    stored_id("conversation team_id", row.get(0))
                        .inspect_err(|error| tracing::warn!(error = %error, "sweep skips a queued team"))
                        .ok()
                })
                .collect()
        };
        let mut handed_out = 0;
        for team in teams {
            handed_out += self.drain(&team).await?;
        }
        Ok(handed_out)
    }

    /// Sweeps every `interval` until shutdown.
    pub async fn run_sweeper(
        self,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> Result<(), switchboard_server::BoxError> {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(interval) => {}
            }
            match self.sweep().await {
                Ok(0) => tracing::debug!("assignment sweep found nothing to hand out"),
                Ok(handed_out) => tracing::info!(handed_out, "sweep handed out waiting conversations"),
                Err(error) => tracing::warn!(error = %error, "assignment sweep failed"),
            }
        }
    }
}

/// Takes the best eligible member of `team` (online, under capacity) for one more
/// conversation, in `mode`'s order; `None` when nobody is eligible.
async fn take_eligible(
    tx: &Transaction<'_>,
    team: &TeamId,
    mode: Mode,
) -> Result<Option<AgentId>, RoutingError> {
    let candidates: Vec<AgentId> = tx
        .query_cached(
            &format!(
                "SELECT a.id FROM routing.agents a JOIN routing.team_members m ON m.agent_id = a.id
                 WHERE m.team_id = $1 AND a.status = 'online' AND a.open_count < a.max_open
                 ORDER BY {} LIMIT 20",
                mode.order_by()
            ),
            &[&team.as_str()],
        )
        .await?
        .iter()
        .map(|row| stored_id("agent id", row.get(0)))
        .collect::<Result<_, _>>()?;
    for candidate in candidates {
        // Waits for, and re-checks, a row another team's hand-out is changing.
        let taken = tx
            .execute_cached(
                "UPDATE routing.agents SET open_count = open_count + 1,
                     last_assigned_seq = nextval('routing.assignment_seq'), last_assigned_at = now()
                 WHERE id = $1 AND status = 'online' AND open_count < max_open",
                &[&candidate.as_str()],
            )
            .await?;
        if taken == 1 {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}
