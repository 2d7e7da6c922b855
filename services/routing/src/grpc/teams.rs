//! Teams: members, the channel accounts whose new conversations they get, and how they hand
//! conversations out (`AssignmentService` team calls).

use switchboard_domain::time::to_timestamp as timestamp;
use switchboard_domain::{ChannelAccountId, TeamId};
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::{GenericClient, Transaction};
use switchboard_proto::common::v1::PageResponse;
use switchboard_proto::routing::v1 as proto;
use switchboard_server::paging;
use tonic::{Request, Response, Status};

use super::agents::{AssignmentApi, agent_id, name, team_id, unique_violation};
use super::{DEFAULT_PAGE_SIZE, admin_workspace, workspace};
use crate::RoutingError;
use crate::assignment::{Changes, Mode};

fn mode(value: i32) -> Result<Mode, RoutingError> {
    match proto::AssignmentMode::try_from(value) {
        Ok(proto::AssignmentMode::Unspecified | proto::AssignmentMode::Manual) => Ok(Mode::Manual),
        Ok(proto::AssignmentMode::RoundRobin) => Ok(Mode::RoundRobin),
        Ok(proto::AssignmentMode::LeastOpen) => Ok(Mode::LeastOpen),
        Err(_) => Err(RoutingError::Invalid(
            "mode: not an AssignmentMode value".to_owned(),
        )),
    }
}

fn mode_to_proto(mode: Mode) -> proto::AssignmentMode {
    match mode {
        Mode::Manual => proto::AssignmentMode::Manual,
        Mode::RoundRobin => proto::AssignmentMode::RoundRobin,
        Mode::LeastOpen => proto::AssignmentMode::LeastOpen,
    }
}

/// The columns [`team_of`] reads, for `routing.teams t`.
const TEAM_COLUMNS: &str = "t.id, t.name, t.mode, t.created_at,
    coalesce((SELECT array_agg(agent_id ORDER BY agent_id) FROM routing.team_members WHERE team_id = t.id), '{}'),
    coalesce((SELECT array_agg(channel_account_id ORDER BY channel_account_id) FROM routing.team_accounts WHERE team_id = t.id), '{}'),
    (SELECT count(*)::int FROM routing.conversations c
     WHERE c.team_id = t.id AND c.queued_at IS NOT NULL AND c.status = 'open' AND c.assignee_id IS NULL)";

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

async fn find_team(
    client: &impl GenericClient,
    workspace: &str,
    id: &str,
) -> Result<proto::Team, RoutingError> {
    let row = client
        .query_opt_cached(
            &format!("SELECT {TEAM_COLUMNS} FROM routing.teams t WHERE t.id = $1 AND t.workspace_id = $2"),
            &[&id, &workspace],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("team {id}")))?;
    team_of(&row)
}

/// Checks member and account ids of a team request.
fn team_parts(agent_ids: &[String], accounts: &[String]) -> Result<(Vec<String>, Vec<String>), Status> {
    let mut agents = agent_ids
        .iter()
        .map(|id| agent_id("agent_ids", id))
        .collect::<Result<Vec<_>, _>>()?;
    agents.sort();
    agents.dedup();
    let mut accounts = accounts
        .iter()
        .map(|id| {
            ChannelAccountId::parse(id)
                .map(ChannelAccountId::into_string)
                .map_err(|error| Status::invalid_argument(format!("channel_account_ids: {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    accounts.sort();
    accounts.dedup();
    Ok((agents, accounts))
}

/// Replaces the team's members and accounts.
async fn set_team_parts(
    tx: &Transaction<'_>,
    workspace: &str,
    team: &str,
    agents: &[String],
    accounts: &[String],
) -> Result<(), RoutingError> {
    let known: i64 = tx
        .query_one_cached(
            "SELECT count(*) FROM routing.agents WHERE workspace_id = $1 AND id = ANY($2)",
            &[&workspace, &agents],
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

impl AssignmentApi {
    /// Creates a team with its members and channel accounts.
    pub(crate) async fn create_team_rpc(
        &self,
        request: Request<proto::CreateTeamRequest>,
    ) -> Result<Response<proto::CreateTeamResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let request = request.into_inner();
        let name = name("name", &request.name)?;
        let mode = mode(request.mode)?;
        let (agents, accounts) = team_parts(&request.agent_ids, &request.channel_account_ids)?;
        let id = TeamId::generate().into_string();
        let mut client = self.pool.get().await.map_err(RoutingError::from)?;
        let tx = client.transaction().await.map_err(RoutingError::from)?;
        tx.execute_cached(
            "INSERT INTO routing.teams (id, workspace_id, name, mode) VALUES ($1, $2, $3, $4)",
            &[&id, &workspace, &name, &mode.as_str()],
        )
        .await
        .map_err(|error| unique_violation(error, format!("a team named {name:?}")))?;
        set_team_parts(&tx, &workspace, &id, &agents, &accounts).await?;
        let team = find_team(&tx, &workspace, &id).await?;
        tx.commit().await.map_err(RoutingError::from)?;
        Ok(Response::new(proto::CreateTeamResponse { team: Some(team) }))
    }

    /// Returns one team.
    pub(crate) async fn get_team_rpc(
        &self,
        request: Request<proto::GetTeamRequest>,
    ) -> Result<Response<proto::GetTeamResponse>, Status> {
        let workspace = workspace(&request)?;
        let id = team_id("id", &request.get_ref().id)?;
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let team = find_team(&client, &workspace, &id).await?;
        Ok(Response::new(proto::GetTeamResponse { team: Some(team) }))
    }

    /// Lists the workspace's teams, oldest first.
    pub(crate) async fn list_teams_rpc(
        &self,
        request: Request<proto::ListTeamsRequest>,
    ) -> Result<Response<proto::ListTeamsResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let limit = paging::page_size(request.page.as_ref(), DEFAULT_PAGE_SIZE);
        let (after_at, after_id) = paging::parse_cursor(request.page.as_ref())
            .map_err(RoutingError::from)?
            .unzip();
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        // Every team of the page with its members, accounts and queue in one query.
        let rows = client
            .query_cached(
                &format!(
                    "SELECT {TEAM_COLUMNS} FROM routing.teams t
                     WHERE t.workspace_id = $1 AND ($2::timestamptz IS NULL OR (t.created_at, t.id) > ($2, $3))
                     ORDER BY t.created_at, t.id LIMIT $4"
                ),
                &[&workspace, &after_at, &after_id, &limit],
            )
            .await
            .map_err(RoutingError::from)?;
        let teams = rows.iter().map(team_of).collect::<Result<Vec<_>, _>>()?;
        let next_page_token = paging::next_page_token(rows.len(), limit, || {
            let last = &rows[rows.len() - 1];
            (last.get(3), last.get(0))
        });
        Ok(Response::new(proto::ListTeamsResponse {
            teams,
            page: Some(PageResponse { next_page_token }),
        }))
    }

    /// Replaces a team's name, mode, members and accounts, then hands out what it can.
    pub(crate) async fn update_team_rpc(
        &self,
        request: Request<proto::UpdateTeamRequest>,
    ) -> Result<Response<proto::UpdateTeamResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let request = request.into_inner();
        let id = team_id("id", &request.id)?;
        let name = name("name", &request.name)?;
        let mode = mode(request.mode)?;
        let (agents, accounts) = team_parts(&request.agent_ids, &request.channel_account_ids)?;
        let mut client = self.pool.get().await.map_err(RoutingError::from)?;
        let tx = client.transaction().await.map_err(RoutingError::from)?;
        let updated = tx
            .execute_cached(
                "UPDATE routing.teams SET name = $3, mode = $4 WHERE id = $1 AND workspace_id = $2",
                &[&id, &workspace, &name, &mode.as_str()],
            )
            .await
            .map_err(|error| unique_violation(error, format!("a team named {name:?}")))?;
        if updated == 0 {
            return Err(RoutingError::NotFound(format!("team {id}")).into());
        }
        set_team_parts(&tx, &workspace, &id, &agents, &accounts).await?;
        let team = find_team(&tx, &workspace, &id).await?;
        tx.commit().await.map_err(RoutingError::from)?;
        // New members or a new mode can take waiting conversations now.
        self.dispatcher.after_commit(&Changes::team_changed(id)).await;
        Ok(Response::new(proto::UpdateTeamResponse { team: Some(team) }))
    }

    /// Deletes a team; its waiting conversations leave the queue.
    pub(crate) async fn delete_team_rpc(
        &self,
        request: Request<proto::DeleteTeamRequest>,
    ) -> Result<Response<proto::DeleteTeamResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let id = team_id("id", &request.get_ref().id)?;
        let mut client = self.pool.get().await.map_err(RoutingError::from)?;
        let tx = client.transaction().await.map_err(RoutingError::from)?;
        tx.execute_cached(
            "UPDATE routing.conversations SET queued_at = NULL WHERE team_id = $1 AND workspace_id = $2",
            &[&id, &workspace],
        )
        .await
        .map_err(RoutingError::from)?;
        let deleted = tx
            .execute_cached(
                "DELETE FROM routing.teams WHERE id = $1 AND workspace_id = $2",
                &[&id, &workspace],
            )
            .await
            .map_err(RoutingError::from)?;
        if deleted == 0 {
            return Err(RoutingError::NotFound(format!("team {id}")).into());
        }
        tx.commit().await.map_err(RoutingError::from)?;
        Ok(Response::new(proto::DeleteTeamResponse {}))
    }
}
