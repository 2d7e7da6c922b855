//! SQL of teams: members, the channel accounts whose new conversations they get, and how
//! they hand conversations out.

use switchboard_domain::time::to_timestamp as timestamp;
use switchboard_domain::{AgentId, ChannelAccountId, TeamId, WorkspaceId};
use switchboard_postgres::{CachedStatements as _, GenericClient, Transaction};
use switchboard_proto::routing::v1 as proto;

use super::{After, Page, page, unique_violation};
use crate::RoutingError;
use crate::assignment::Mode;

/// The columns [`team_of`] reads, for `routing.teams t`.
const TEAM_COLUMNS: &str = "t.id, t.name, t.mode, t.created_at,
    coalesce((SELECT array_agg(agent_id ORDER BY agent_id) FROM routing.team_members WHERE team_id = t.id), '{}'),
    coalesce((SELECT array_agg(channel_account_id ORDER BY channel_account_id) FROM routing.team_accounts WHERE team_id = t.id), '{}'),
    (SELECT count(*)::int FROM routing.conversations c
     WHERE c.team_id = t.id AND c.queued_at IS NOT NULL AND c.status = 'open' AND c.assignee_id IS NULL)";

/// The API form of a hand-out mode.
fn mode_to_proto(mode: Mode) -> proto::AssignmentMode {
    match mode {
        Mode::Manual => proto::AssignmentMode::Manual,
        Mode::RoundRobin => proto::AssignmentMode::RoundRobin,
        Mode::LeastOpen => proto::AssignmentMode::LeastOpen,
    }
}

/// A team row selected with [`TEAM_COLUMNS`].
fn team_of(row: &tokio_postgres::Row) -> Result<proto::Team, RoutingError> {
    let mode = Mode::parse(&row.get::<_, String>(2))?;
    Ok(proto::Team {
        id: row.get(0),
        name: row.get(1),
        mode: mode_to_proto(mode) as i32,
        created_at: Some(timestamp(row.get(3))),
        agent_ids: row.get(4),
        channel_account_ids: row.get(5),
        waiting: row.get(6),
    })
}

/// A team's writable fields, checked (members and accounts sorted, without repeats).
#[derive(Debug)]
pub(crate) struct TeamFields {
    /// The unique name.
    pub(crate) name: String,
    /// How it hands conversations out.
    pub(crate) mode: Mode,
    /// Its members.
    pub(crate) agents: Vec<AgentId>,
    /// The channel accounts whose new conversations it gets.
    pub(crate) accounts: Vec<ChannelAccountId>,
}

/// The `AlreadyExists` of a name another team has.
fn name_taken(error: tokio_postgres::Error, name: &str) -> RoutingError {
    unique_violation(error, || format!("a team named {name:?}"))
}

/// Team `id` of `workspace`.
#[tracing::instrument(skip_all, fields(team_id = %id))]
pub(crate) async fn find(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &TeamId,
) -> Result<proto::Team, RoutingError> {
    let row = client
        .query_opt_cached(
            &format!("SELECT {TEAM_COLUMNS} FROM routing.teams t WHERE t.id = $1 AND t.workspace_id = $2"),
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("team {id}")))?;
    team_of(&row)
}

/// Replaces the team's members and accounts.
async fn set_parts(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    team: &TeamId,
    fields: &TeamFields,
) -> Result<(), RoutingError> {
    let team = team.as_str();
    let agents: Vec<&str> = fields.agents.iter().map(AgentId::as_str).collect();
    let accounts: Vec<&str> = fields.accounts.iter().map(ChannelAccountId::as_str).collect();
    let known: i64 = tx
        .query_one_cached(
            "SELECT count(*) FROM routing.agents WHERE workspace_id = $1 AND id = ANY($2)",
            &[&workspace.as_str(), &agents],
        )
        .await?
        .get(0);
    if usize::try_from(known).unwrap_or(0) != agents.len() {
        return Err(RoutingError::NotFound(
            "agent_ids: one or more agents of this workspace".to_owned(),
        ));
    }
    tx.execute_cached("DELETE FROM routing.team_members WHERE team_id = $1", &[&team])
        .await?;
    tx.execute_cached(
        "INSERT INTO routing.team_members (team_id, agent_id) SELECT $1, unnest($2::text[])",
        &[&team, &agents],
    )
    .await?;
    tx.execute_cached("DELETE FROM routing.team_accounts WHERE team_id = $1", &[&team])
        .await?;
    let taken = tx
        .query_cached(
            "SELECT channel_account_id FROM routing.team_accounts WHERE channel_account_id = ANY($1)",
            &[&accounts],
        )
        .await?;
    if let Some(row) = taken.first() {
        return Err(RoutingError::FailedPrecondition(format!(
            "channel account {} belongs to another team already",
            row.get::<_, String>(0)
        )));
    }
    tx.execute_cached(
        "INSERT INTO routing.team_accounts (team_id, channel_account_id) SELECT $1, unnest($2::text[])",
        &[&team, &accounts],
    )
    .await?;
    Ok(())
}

/// Stores a new team with its members and accounts.
#[tracing::instrument(skip_all, fields(team_id = %id))]
pub(crate) async fn insert(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    id: &TeamId,
    fields: &TeamFields,
) -> Result<proto::Team, RoutingError> {
    tx.execute_cached(
        "INSERT INTO routing.teams (id, workspace_id, name, mode) VALUES ($1, $2, $3, $4)",
        &[
            &id.as_str(),
            &workspace.as_str(),
            &fields.name,
            &fields.mode.as_str(),
        ],
    )
    .await
    .map_err(|error| name_taken(error, &fields.name))?;
    set_parts(tx, workspace, id, fields).await?;
    find(tx, workspace, id).await
}

/// A page of `workspace`'s teams, oldest first, each with its members, accounts and queue.
#[tracing::instrument(skip_all, fields(workspace_id = %workspace))]
pub(crate) async fn list(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    after: &After,
    limit: i64,
) -> Result<Page<proto::Team>, RoutingError> {
    let rows = client
        .query_cached(
            &format!(
                "SELECT {TEAM_COLUMNS} FROM routing.teams t
                 WHERE t.workspace_id = $1 AND ($2::timestamptz IS NULL OR (t.created_at, t.id) > ($2, $3))
                 ORDER BY t.created_at, t.id LIMIT $4"
            ),
            &[&workspace.as_str(), &after.at, &after.key, &limit],
        )
        .await?;
    page(&rows, limit, team_of, |last| (last.get(3), last.get(0)))
}

/// Replaces team `id`'s name, mode, members and accounts.
#[tracing::instrument(skip_all, fields(team_id = %id))]
pub(crate) async fn update(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    id: &TeamId,
    fields: &TeamFields,
) -> Result<proto::Team, RoutingError> {
    let updated = tx
        .execute_cached(
            "UPDATE routing.teams SET name = $3, mode = $4 WHERE id = $1 AND workspace_id = $2",
            &[
                &id.as_str(),
                &workspace.as_str(),
                &fields.name,
                &fields.mode.as_str(),
            ],
        )
        .await
        .map_err(|error| name_taken(error, &fields.name))?;
    if updated == 0 {
        return Err(RoutingError::NotFound(format!("team {id}")));
    }
    set_parts(tx, workspace, id, fields).await?;
    find(tx, workspace, id).await
}

/// Deletes team `id`; its waiting conversations leave the queue.
#[tracing::instrument(skip_all, fields(team_id = %id))]
pub(crate) async fn delete(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    id: &TeamId,
) -> Result<(), RoutingError> {
    tx.execute_cached(
        "UPDATE routing.conversations SET queued_at = NULL WHERE team_id = $1 AND workspace_id = $2",
        &[&id.as_str(), &workspace.as_str()],
    )
    .await?;
    let deleted = tx
        .execute_cached(
            "DELETE FROM routing.teams WHERE id = $1 AND workspace_id = $2",
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?;
    if deleted == 0 {
        return Err(RoutingError::NotFound(format!("team {id}")));
    }
    Ok(())
}
