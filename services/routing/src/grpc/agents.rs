//! gRPC adapter of `AssignmentService`: agents, teams and assignment, workspace-scoped.
//! Creating, changing and deleting agents and teams needs a workspace admin key; status
//! changes and assignments any workspace key.

use switchboard_domain::{AgentId, ConversationId, TeamId, WorkspaceId};
use switchboard_postgres::Pool;
use switchboard_proto::routing::v1 as proto;
use switchboard_proto::routing::v1::assignment_service_server::{AssignmentService, AssignmentServiceServer};
use switchboard_server::paging;
use tonic::{Request, Response, Status};

use super::{admin_workspace, change, optional_id, parse_id, rpc, workspace};
use crate::RoutingError;
use crate::assignment::{self, Dispatcher};
use crate::changes::Changes;
use crate::policy::WorkspacePolicy;
use crate::store::agents::AgentFields;
use crate::store::{self, After};

/// Longest agent or team name, in characters.
const MAX_NAME_CHARS: usize = 200;
/// Capacity bounds and default.
const MAX_CAPACITY: i32 = 10_000;
const DEFAULT_CAPACITY: i32 = 10;

/// Builds the service.
pub(crate) fn assignment_server(api: AssignmentApi) -> AssignmentServiceServer<AssignmentApi> {
    AssignmentServiceServer::new(api)
}

/// The `AssignmentService` implementation.
pub(crate) struct AssignmentApi {
    /// The pool of the `routing` schema.
    pub(crate) pool: Pool,
    /// Runs hand-outs after changes and carries the bus partitions and the clock.
    pub(crate) dispatcher: Dispatcher,
}

/// An agent or team name, trimmed and checked (`field` names it in the error).
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

/// An agent's e-mail address (empty for none), lowercased.
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

/// An agent's capacity (0 for the default).
fn capacity(value: i32) -> Result<i32, RoutingError> {
    match value {
        0 => Ok(DEFAULT_CAPACITY),
        1..=MAX_CAPACITY => Ok(value),
        _ => Err(RoutingError::Invalid(format!(
            "max_open: 1 to {MAX_CAPACITY} (0 for the default, {DEFAULT_CAPACITY})"
        ))),
    }
}

/// An agent's writable fields from a request, checked.
fn agent_fields(name_value: &str, email_value: &str, max_open: i32) -> Result<AgentFields, RoutingError> {
    Ok(AgentFields {
        name: name("name", name_value)?,
        email: email(email_value)?,
        max_open: capacity(max_open)?,
    })
}

/// The stored name of an agent status (`default` when unspecified).
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

impl AssignmentApi {
    /// Creates an agent.
    async fn create_agent(
        &self,
        workspace: &WorkspaceId,
        request: proto::CreateAgentRequest,
    ) -> Result<proto::CreateAgentResponse, RoutingError> {
        let fields = agent_fields(&request.name, &request.email, request.max_open)?;
        let status = status_name(request.status, "offline")?;
        let client = self.pool.get().await?;
        let agent = store::agents::insert(&client, workspace, &AgentId::generate(), &fields, status).await?;
        Ok(proto::CreateAgentResponse { agent: Some(agent) })
    }

    /// Returns one agent.
    async fn get_agent(
        &self,
        workspace: &WorkspaceId,
        request: proto::GetAgentRequest,
    ) -> Result<proto::GetAgentResponse, RoutingError> {
        let id: AgentId = parse_id("id", &request.id)?;
        let client = self.pool.get().await?;
        let agent = store::agents::find(&client, workspace, &id).await?;
        Ok(proto::GetAgentResponse { agent: Some(agent) })
    }

    /// Lists the workspace's agents (of one team when named), oldest first.
    async fn list_agents(
        &self,
        workspace: &WorkspaceId,
        request: proto::ListAgentsRequest,
    ) -> Result<proto::ListAgentsResponse, RoutingError> {
        let team: Option<TeamId> = optional_id("team_id", &request.team_id)?;
        let limit = paging::page_size(request.page.as_ref(), store::DEFAULT_PAGE_SIZE);
        let after = After::of(request.page.as_ref())?;
        let client = self.pool.get().await?;
        let page = store::agents::list(&client, workspace, team.as_ref(), &after, limit).await?;
        Ok(proto::ListAgentsResponse {
            page: Some(page.response()),
            agents: page.items,
        })
    }

    /// Replaces an agent's name, e-mail and capacity, then hands out what it can take.
    async fn update_agent(
        &self,
        workspace: &WorkspaceId,
        request: proto::UpdateAgentRequest,
    ) -> Result<proto::UpdateAgentResponse, RoutingError> {
        let id: AgentId = parse_id("id", &request.id)?;
        let fields = agent_fields(&request.name, &request.email, request.max_open)?;
        let client = self.pool.get().await?;
        let agent = store::agents::update(&client, workspace, &id, &fields).await?;
        drop(client);
        self.dispatcher.after_commit(&Changes::agent_freed(id)).await;
        Ok(proto::UpdateAgentResponse { agent: Some(agent) })
    }

    /// Sets an agent's status; an agent coming online can take waiting conversations.
    async fn set_agent_status(
        &self,
        workspace: &WorkspaceId,
        request: proto::SetAgentStatusRequest,
    ) -> Result<proto::SetAgentStatusResponse, RoutingError> {
        let id: AgentId = parse_id("id", &request.id)?;
        if request.status == proto::AgentStatus::Unspecified as i32 {
            return Err(RoutingError::Invalid(
                "status: online, away or offline".to_owned(),
            ));
        }
        let status = status_name(request.status, "offline")?;
        let client = self.pool.get().await?;
        store::agents::set_status(&client, workspace, &id, status).await?;
        if status == "online" {
            self.dispatcher
                .after_commit(&Changes::agent_freed(id.clone()))
                .await;
        }
        let agent = store::agents::find(&client, workspace, &id).await?;
        Ok(proto::SetAgentStatusResponse { agent: Some(agent) })
    }

    /// Deletes an agent without open conversations.
    async fn delete_agent(
        &self,
        workspace: &WorkspaceId,
        request: proto::DeleteAgentRequest,
    ) -> Result<proto::DeleteAgentResponse, RoutingError> {
        let id: AgentId = parse_id("id", &request.id)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        store::agents::delete(&tx, workspace, &id).await?;
        tx.commit().await?;
        Ok(proto::DeleteAgentResponse {})
    }

    /// Assigns a conversation to an agent (no capacity check: a person decided).
    async fn assign_conversation(
        &self,
        workspace: &WorkspaceId,
        request: proto::AssignConversationRequest,
    ) -> Result<proto::AssignConversationResponse, RoutingError> {
        let id: ConversationId = parse_id("conversation_id", &request.conversation_id)?;
        let agent: AgentId = parse_id("agent_id", &request.agent_id)?;
        let conversation = change(
            &self.pool,
            &self.dispatcher,
            workspace,
            &id,
            |tx, partitions, locked, changes| {
                Box::pin(
                    async move { assignment::assign(tx, partitions, locked, &agent, false, changes).await },
                )
            },
        )
        .await?;
        Ok(proto::AssignConversationResponse {
            conversation: Some(conversation),
        })
    }

    /// Leaves a conversation unassigned and out of any queue.
    async fn unassign_conversation(
        &self,
        workspace: &WorkspaceId,
        request: proto::UnassignConversationRequest,
    ) -> Result<proto::UnassignConversationResponse, RoutingError> {
        let id: ConversationId = parse_id("conversation_id", &request.conversation_id)?;
        let conversation = change(
            &self.pool,
            &self.dispatcher,
            workspace,
            &id,
            |tx, partitions, locked, changes| {
                Box::pin(async move { assignment::unassign(tx, partitions, locked, changes).await })
            },
        )
        .await?;
        Ok(proto::UnassignConversationResponse {
            conversation: Some(conversation),
        })
    }

    /// Puts a conversation in a team's queue.
    async fn transfer_to_team(
        &self,
        workspace: &WorkspaceId,
        request: proto::TransferToTeamRequest,
    ) -> Result<proto::TransferToTeamResponse, RoutingError> {
        let id: ConversationId = parse_id("conversation_id", &request.conversation_id)?;
        let team: TeamId = parse_id("team_id", &request.team_id)?;
        let now = self.dispatcher.clock().now();
        let conversation = change(
            &self.pool,
            &self.dispatcher,
            workspace,
            &id,
            |tx, partitions, locked, changes| {
                Box::pin(async move {
                    let policy = WorkspacePolicy::load(tx, &locked.workspace_id).await?;
                    assignment::enqueue(tx, partitions, locked, &team, &policy, now, changes).await
                })
            },
        )
        .await?;
        Ok(proto::TransferToTeamResponse {
            conversation: Some(conversation),
        })
    }
}

#[tonic::async_trait]
impl AssignmentService for AssignmentApi {
    async fn create_agent(
        &self,
        request: Request<proto::CreateAgentRequest>,
    ) -> Result<Response<proto::CreateAgentResponse>, Status> {
        rpc!(self, request, admin_workspace, create_agent)
    }

    async fn get_agent(
        &self,
        request: Request<proto::GetAgentRequest>,
    ) -> Result<Response<proto::GetAgentResponse>, Status> {
        rpc!(self, request, workspace, get_agent)
    }

    async fn list_agents(
        &self,
        request: Request<proto::ListAgentsRequest>,
    ) -> Result<Response<proto::ListAgentsResponse>, Status> {
        rpc!(self, request, workspace, list_agents)
    }

    async fn update_agent(
        &self,
        request: Request<proto::UpdateAgentRequest>,
    ) -> Result<Response<proto::UpdateAgentResponse>, Status> {
        rpc!(self, request, admin_workspace, update_agent)
    }

    async fn set_agent_status(
        &self,
        request: Request<proto::SetAgentStatusRequest>,
    ) -> Result<Response<proto::SetAgentStatusResponse>, Status> {
        rpc!(self, request, workspace, set_agent_status)
    }

    async fn delete_agent(
        &self,
        request: Request<proto::DeleteAgentRequest>,
    ) -> Result<Response<proto::DeleteAgentResponse>, Status> {
        rpc!(self, request, admin_workspace, delete_agent)
    }

    async fn create_team(
        &self,
        request: Request<proto::CreateTeamRequest>,
    ) -> Result<Response<proto::CreateTeamResponse>, Status> {
        rpc!(self, request, admin_workspace, create_team)
    }

    async fn get_team(
        &self,
        request: Request<proto::GetTeamRequest>,
    ) -> Result<Response<proto::GetTeamResponse>, Status> {
        rpc!(self, request, workspace, get_team)
    }

    async fn list_teams(
        &self,
        request: Request<proto::ListTeamsRequest>,
    ) -> Result<Response<proto::ListTeamsResponse>, Status> {
        rpc!(self, request, workspace, list_teams)
    }

    async fn update_team(
        &self,
        request: Request<proto::UpdateTeamRequest>,
    ) -> Result<Response<proto::UpdateTeamResponse>, Status> {
        rpc!(self, request, admin_workspace, update_team)
    }

    async fn delete_team(
        &self,
        request: Request<proto::DeleteTeamRequest>,
    ) -> Result<Response<proto::DeleteTeamResponse>, Status> {
        rpc!(self, request, admin_workspace, delete_team)
    }

    async fn assign_conversation(
        &self,
        request: Request<proto::AssignConversationRequest>,
    ) -> Result<Response<proto::AssignConversationResponse>, Status> {
        rpc!(self, request, workspace, assign_conversation)
    }

    async fn unassign_conversation(
        &self,
        request: Request<proto::UnassignConversationRequest>,
    ) -> Result<Response<proto::UnassignConversationResponse>, Status> {
        rpc!(self, request, workspace, unassign_conversation)
    }

    async fn transfer_to_team(
        &self,
        request: Request<proto::TransferToTeamRequest>,
    ) -> Result<Response<proto::TransferToTeamResponse>, Status> {
        rpc!(self, request, workspace, transfer_to_team)
    }
}
