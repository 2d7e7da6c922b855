//! Teams: members, the channel accounts whose new conversations they get, and how they hand
//! conversations out (`AssignmentService` team calls).

use switchboard_domain::{AgentId, ChannelAccountId, TeamId, WorkspaceId};
use switchboard_proto::routing::v1 as proto;
use switchboard_server::paging;

use super::agents::{AssignmentApi, name};
use super::parse_id;
use crate::RoutingError;
use crate::assignment::Mode;
use crate::changes::Changes;
use crate::store::teams::TeamFields;
use crate::store::{self, After};

/// The hand-out mode of a request (unspecified is manual).
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

/// Ids of a repeated field, parsed, sorted, without repeats.
fn id_set<T: std::str::FromStr<Err = switchboard_domain::InvalidId> + Ord>(
    field: &str,
    values: &[String],
) -> Result<Vec<T>, RoutingError> {
    let mut ids = values
        .iter()
        .map(|value| parse_id(field, value))
        .collect::<Result<Vec<T>, _>>()?;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// A team's writable fields from a request, checked.
fn team_fields(
    name_value: &str,
    mode_value: i32,
    agent_ids: &[String],
    channel_account_ids: &[String],
) -> Result<TeamFields, RoutingError> {
    let name = name("name", name_value)?;
    let mode = mode(mode_value)?;
    Ok(TeamFields {
        name,
        mode,
        agents: id_set::<AgentId>("agent_ids", agent_ids)?,
        accounts: id_set::<ChannelAccountId>("channel_account_ids", channel_account_ids)?,
    })
}

impl AssignmentApi {
    /// Creates a team with its members and channel accounts.
    pub(super) async fn create_team(
        &self,
        workspace: &WorkspaceId,
        request: proto::CreateTeamRequest,
    ) -> Result<proto::CreateTeamResponse, RoutingError> {
        let fields = team_fields(
            &request.name,
            request.mode,
            &request.agent_ids,
            &request.channel_account_ids,
        )?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let team = store::teams::insert(&tx, workspace, &TeamId::generate(), &fields).await?;
        tx.commit().await?;
        Ok(proto::CreateTeamResponse { team: Some(team) })
    }

    /// Returns one team.
    pub(super) async fn get_team(
        &self,
        workspace: &WorkspaceId,
        request: proto::GetTeamRequest,
    ) -> Result<proto::GetTeamResponse, RoutingError> {
        let id: TeamId = parse_id("id", &request.id)?;
        let client = self.pool.get().await?;
        let team = store::teams::find(&client, workspace, &id).await?;
        Ok(proto::GetTeamResponse { team: Some(team) })
    }

    /// Lists the workspace's teams, oldest first.
    pub(super) async fn list_teams(
        &self,
        workspace: &WorkspaceId,
        request: proto::ListTeamsRequest,
    ) -> Result<proto::ListTeamsResponse, RoutingError> {
        let limit = paging::page_size(request.page.as_ref(), store::DEFAULT_PAGE_SIZE);
        let after = After::of(request.page.as_ref())?;
        let client = self.pool.get().await?;
        let page = store::teams::list(&client, workspace, &after, limit).await?;
        Ok(proto::ListTeamsResponse {
            page: Some(page.response()),
            teams: page.items,
        })
    }

    /// Replaces a team's name, mode, members and accounts, then hands out what it can.
    pub(super) async fn update_team(
        &self,
        workspace: &WorkspaceId,
        request: proto::UpdateTeamRequest,
    ) -> Result<proto::UpdateTeamResponse, RoutingError> {
        let id: TeamId = parse_id("id", &request.id)?;
        let fields = team_fields(
            &request.name,
            request.mode,
            &request.agent_ids,
            &request.channel_account_ids,
        )?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let team = store::teams::update(&tx, workspace, &id, &fields).await?;
        tx.commit().await?;
        // New members or a new mode can take waiting conversations now.
        self.dispatcher.after_commit(&Changes::team_changed(id)).await;
        Ok(proto::UpdateTeamResponse { team: Some(team) })
    }

    /// Deletes a team; its waiting conversations leave the queue.
    pub(super) async fn delete_team(
        &self,
        workspace: &WorkspaceId,
        request: proto::DeleteTeamRequest,
    ) -> Result<proto::DeleteTeamResponse, RoutingError> {
        let id: TeamId = parse_id("id", &request.id)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        store::teams::delete(&tx, workspace, &id).await?;
        tx.commit().await?;
        Ok(proto::DeleteTeamResponse {})
    }
}
