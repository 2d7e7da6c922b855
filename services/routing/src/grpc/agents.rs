//! gRPC adapter of `AssignmentService`: agents, teams and assignment, workspace-scoped.
//! Creating, changing and deleting agents and teams needs a workspace admin key; status
//! changes and assignments any workspace key.

use chrono::{DateTime, Utc};
use switchboard_domain::time::to_timestamp as timestamp;
use switchboard_domain::{AgentId, TeamId};
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::{GenericClient, Pool};
use switchboard_proto::common::v1::PageResponse;
use switchboard_proto::routing::v1 as proto;
use switchboard_proto::routing::v1::assignment_service_server::{AssignmentService, AssignmentServiceServer};
use switchboard_server::paging;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tonic::{Request, Response, Status};

use super::{DEFAULT_PAGE_SIZE, admin_workspace, change, conversation_id, workspace};
use crate::RoutingError;
use crate::assignment::{self, Changes, Dispatcher};
use crate::policy::WorkspacePolicy;

/// Longest agent or team name, in characters.
const MAX_NAME_CHARS: usize = 200;
/// Capacity bounds and default.
const MAX_CAPACITY: i32 = 10_000;
const DEFAULT_CAPACITY: i32 = 10;

const AGENT_COLUMNS: &str = "id, name, email, status, max_open, open_count, last_assigned_at, created_at";

/// Builds the service.
pub(crate) fn assignment_server(api: AssignmentApi) -> AssignmentServiceServer<AssignmentApi> {
    AssignmentServiceServer::new(api)
}

/// The `AssignmentService` implementation.
pub(crate) struct AssignmentApi {
    pub(crate) pool: Pool,
    pub(crate) dispatcher: Dispatcher,
}

pub(super) fn agent_id(field: &str, value: &str) -> Result<String, Status> {
    AgentId::parse(value)
        .map(AgentId::into_string)
        .map_err(|error| Status::invalid_argument(format!("{field}: {error}")))
}

pub(super) fn team_id(field: &str, value: &str) -> Result<String, Status> {
    TeamId::parse(value)
        .map(TeamId::into_string)
        .map_err(|error| Status::invalid_argument(format!("{field}: {error}")))
}

pub(super) fn name(field: &str, value: &str) -> Result<String, RoutingError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_NAME_CHARS || trimmed.chars().any(char::is_control)
    {
        return Err(RoutingError::Invalid(format!(
            "{field}: 1 to {MAX_NAME_CHARS} characters, no control characters"
        )));
    }
    Ok(trimmed.to_owned())
}

fn email(value: &str) -> Result<Option<String>, RoutingError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    match trimmed.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !trimmed.contains(char::is_whitespace) =>
        {
            Ok(Some(trimmed.to_lowercase()))
        }
        _ => Err(RoutingError::Invalid(format!(
            "email: {trimmed:?} is not an e-mail address"
        ))),
    }
}

fn capacity(value: i32) -> Result<i32, RoutingError> {
    match value {
        0 => Ok(DEFAULT_CAPACITY),
        1..=MAX_CAPACITY => Ok(value),
        _ => Err(RoutingError::Invalid(format!(
            "max_open: 1 to {MAX_CAPACITY} (0 for the default, {DEFAULT_CAPACITY})"
        ))),
    }
}

fn status_name(value: i32, default: &'static str) -> Result<&'static str, RoutingError> {
    match proto::AgentStatus::try_from(value) {
        Ok(proto::AgentStatus::Unspecified) => Ok(default),
        Ok(proto::AgentStatus::Online) => Ok("online"),
        Ok(proto::AgentStatus::Away) => Ok("away"),
        Ok(proto::AgentStatus::Offline) => Ok("offline"),
        Err(_) => Err(RoutingError::Invalid(
            "status: not an AgentStatus value".to_owned(),
        )),
    }
}

fn agent(row: &Row) -> proto::Agent {
    let status = match row.get::<_, String>(3).as_str() {
        "online" => proto::AgentStatus::Online,
        "away" => proto::AgentStatus::Away,
        _ => proto::AgentStatus::Offline,
    };
    proto::Agent {
        id: row.get(0),
        name: row.get(1),
        email: row.get::<_, Option<String>>(2).unwrap_or_default(),
        status: status as i32,
        max_open: row.get(4),
        open_count: row.get(5),
        last_assigned_at: row.get::<_, Option<DateTime<Utc>>>(6).map(timestamp),
        created_at: Some(timestamp(row.get(7))),
    }
}

async fn find_agent(
    client: &impl GenericClient,
    workspace: &str,
    id: &str,
) -> Result<proto::Agent, RoutingError> {
    let row = client
        .query_opt_cached(
            &format!("SELECT {AGENT_COLUMNS} FROM routing.agents WHERE id = $1 AND workspace_id = $2"),
            &[&id, &workspace],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("agent {id}")))?;
    Ok(agent(&row))
}

pub(super) fn unique_violation(error: tokio_postgres::Error, message: String) -> RoutingError {
    if error.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        RoutingError::AlreadyExists(message)
    } else {
        RoutingError::from(error)
    }
}

#[tonic::async_trait]
impl AssignmentService for AssignmentApi {
    async fn create_agent(
        &self,
        request: Request<proto::CreateAgentRequest>,
    ) -> Result<Response<proto::CreateAgentResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let request = request.into_inner();
        let name = name("name", &request.name)?;
        let email = email(&request.email)?;
        let max_open = capacity(request.max_open)?;
        let status = status_name(request.status, "offline")?;
        let id = AgentId::generate().into_string();
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let row = client
            .query_one_cached(
                &format!(
                    "INSERT INTO routing.agents (id, workspace_id, name, email, status, max_open)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {AGENT_COLUMNS}"
                ),
                &[&id, &workspace, &name, &email, &status, &max_open],
            )
            .await
            .map_err(|error| unique_violation(error, format!("an agent with e-mail {email:?}")))?;
        Ok(Response::new(proto::CreateAgentResponse {
            agent: Some(agent(&row)),
        }))
    }

    async fn get_agent(
        &self,
        request: Request<proto::GetAgentRequest>,
    ) -> Result<Response<proto::GetAgentResponse>, Status> {
        let workspace = workspace(&request)?;
        let id = agent_id("id", &request.get_ref().id)?;
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let agent = find_agent(&client, &workspace, &id).await?;
        Ok(Response::new(proto::GetAgentResponse { agent: Some(agent) }))
    }

    async fn list_agents(
        &self,
        request: Request<proto::ListAgentsRequest>,
    ) -> Result<Response<proto::ListAgentsResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let team = if request.team_id.is_empty() {
            None
        } else {
            Some(team_id("team_id", &request.team_id)?)
        };
        let limit = paging::page_size(request.page.as_ref(), DEFAULT_PAGE_SIZE);
        let (after_at, after_id) = paging::parse_cursor(request.page.as_ref())
            .map_err(RoutingError::from)?
            .unzip();
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let rows = client
            .query_cached(
                &format!(
                    "SELECT {AGENT_COLUMNS} FROM routing.agents a
                     WHERE workspace_id = $1
                       AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM routing.team_members m
                                                       WHERE m.team_id = $2 AND m.agent_id = a.id))
                       AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4))
                     ORDER BY created_at, id LIMIT $5"
                ),
                &[&workspace, &team, &after_at, &after_id, &limit],
            )
            .await
            .map_err(RoutingError::from)?;
        let next_page_token = paging::next_page_token(rows.len(), limit, || {
            let last = &rows[rows.len() - 1];
            (last.get(7), last.get(0))
        });
        Ok(Response::new(proto::ListAgentsResponse {
            agents: rows.iter().map(agent).collect(),
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn update_agent(
        &self,
        request: Request<proto::UpdateAgentRequest>,
    ) -> Result<Response<proto::UpdateAgentResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let request = request.into_inner();
        let id = agent_id("id", &request.id)?;
        let name = name("name", &request.name)?;
        let email = email(&request.email)?;
        let max_open = capacity(request.max_open)?;
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let row = client
            .query_opt_cached(
                &format!(
                    "UPDATE routing.agents SET name = $3, email = $4, max_open = $5
                     WHERE id = $1 AND workspace_id = $2 RETURNING {AGENT_COLUMNS}"
                ),
                &[&id, &workspace, &name, &email, &max_open],
            )
            .await
            .map_err(|error| unique_violation(error, format!("an agent with e-mail {email:?}")))?
            .ok_or_else(|| RoutingError::NotFound(format!("agent {id}")))?;
        drop(client);
        self.dispatcher.after_commit(&Changes::agent_freed(id)).await;
        Ok(Response::new(proto::UpdateAgentResponse {
            agent: Some(agent(&row)),
        }))
    }

    async fn set_agent_status(
        &self,
        request: Request<proto::SetAgentStatusRequest>,
    ) -> Result<Response<proto::SetAgentStatusResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let id = agent_id("id", &request.id)?;
        if request.status == proto::AgentStatus::Unspecified as i32 {
            return Err(Status::invalid_argument("status: online, away or offline"));
        }
        let status = status_name(request.status, "offline")?;
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        client
            .execute_cached(
                "UPDATE routing.agents SET status = $3 WHERE id = $1 AND workspace_id = $2",
                &[&id, &workspace, &status],
            )
            .await
            .map_err(RoutingError::from)?;
        if status == "online" {
            self.dispatcher
                .after_commit(&Changes::agent_freed(id.clone()))
                .await;
        }
        let agent = find_agent(&client, &workspace, &id).await?;
        Ok(Response::new(proto::SetAgentStatusResponse {
            agent: Some(agent),
        }))
    }

    async fn delete_agent(
        &self,
        request: Request<proto::DeleteAgentRequest>,
    ) -> Result<Response<proto::DeleteAgentResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let id = agent_id("id", &request.get_ref().id)?;
        let mut client = self.pool.get().await.map_err(RoutingError::from)?;
        let tx = client.transaction().await.map_err(RoutingError::from)?;
        let row = tx
            .query_opt_cached(
                "SELECT open_count FROM routing.agents WHERE id = $1 AND workspace_id = $2 FOR UPDATE",
                &[&id, &workspace],
            )
            .await
            .map_err(RoutingError::from)?
            .ok_or_else(|| RoutingError::NotFound(format!("agent {id}")))?;
        let open: i32 = row.get(0);
        if open > 0 {
            return Err(RoutingError::FailedPrecondition(format!(
                "agent {id} has {open} open conversations; reassign or close them first"
            ))
            .into());
        }
        tx.execute_cached("DELETE FROM routing.agents WHERE id = $1", &[&id])
            .await
            .map_err(RoutingError::from)?;
        tx.commit().await.map_err(RoutingError::from)?;
        Ok(Response::new(proto::DeleteAgentResponse {}))
    }

    async fn create_team(
        &self,
        request: Request<proto::CreateTeamRequest>,
    ) -> Result<Response<proto::CreateTeamResponse>, Status> {
        self.create_team_rpc(request).await
    }

    async fn get_team(
        &self,
        request: Request<proto::GetTeamRequest>,
    ) -> Result<Response<proto::GetTeamResponse>, Status> {
        self.get_team_rpc(request).await
    }

    async fn list_teams(
        &self,
        request: Request<proto::ListTeamsRequest>,
    ) -> Result<Response<proto::ListTeamsResponse>, Status> {
        self.list_teams_rpc(request).await
    }

    async fn update_team(
        &self,
        request: Request<proto::UpdateTeamRequest>,
    ) -> Result<Response<proto::UpdateTeamResponse>, Status> {
        self.update_team_rpc(request).await
    }

    async fn delete_team(
        &self,
        request: Request<proto::DeleteTeamRequest>,
    ) -> Result<Response<proto::DeleteTeamResponse>, Status> {
        self.delete_team_rpc(request).await
    }

    async fn assign_conversation(
        &self,
        request: Request<proto::AssignConversationRequest>,
    ) -> Result<Response<proto::AssignConversationResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let id = conversation_id("conversation_id", &request.conversation_id)?;
        let agent = agent_id("agent_id", &request.agent_id)?;
        let conversation = change(
            &self.pool,
            &self.dispatcher,
            &workspace,
            &id,
            |tx, partitions, locked, changes| {
                Box::pin(
                    async move { assignment::assign(tx, partitions, locked, &agent, false, changes).await },
                )
            },
        )
        .await?;
        Ok(Response::new(proto::AssignConversationResponse {
            conversation: Some(conversation),
        }))
    }

    async fn unassign_conversation(
        &self,
        request: Request<proto::UnassignConversationRequest>,
    ) -> Result<Response<proto::UnassignConversationResponse>, Status> {
        let workspace = workspace(&request)?;
        let id = conversation_id("conversation_id", &request.get_ref().conversation_id)?;
        let conversation = change(
            &self.pool,
            &self.dispatcher,
            &workspace,
            &id,
            |tx, partitions, locked, changes| {
                Box::pin(async move { assignment::unassign(tx, partitions, locked, changes).await })
            },
        )
        .await?;
        Ok(Response::new(proto::UnassignConversationResponse {
            conversation: Some(conversation),
        }))
    }

    async fn transfer_to_team(
        &self,
        request: Request<proto::TransferToTeamRequest>,
    ) -> Result<Response<proto::TransferToTeamResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let id = conversation_id("conversation_id", &request.conversation_id)?;
        let team = team_id("team_id", &request.team_id)?;
        let now = self.dispatcher.clock().now();
        let conversation = change(
            &self.pool,
            &self.dispatcher,
            &workspace,
            &id,
            |tx, partitions, locked, changes| {
                Box::pin(async move {
                    let policy = WorkspacePolicy::load(tx, &locked.workspace_id).await?;
                    assignment::enqueue(tx, partitions, locked, &team, &policy, now, changes).await
                })
            },
        )
        .await?;
        Ok(Response::new(proto::TransferToTeamResponse {
            conversation: Some(conversation),
        }))
    }
}
