//! SQL of agents: the people conversations are assigned to, with their status and capacity.

use chrono::{DateTime, Utc};
use switchboard_domain::time::to_timestamp as timestamp;
use switchboard_domain::{AgentId, TeamId, WorkspaceId};
use switchboard_postgres::{CachedStatements as _, GenericClient, Transaction};
use switchboard_proto::routing::v1 as proto;
use tokio_postgres::Row;

use super::{After, Page, page, unique_violation};
use crate::RoutingError;

const AGENT_COLUMNS: &str = "id, name, email, status, max_open, open_count, last_assigned_at, created_at";

/// An agent row (selected with `AGENT_COLUMNS`) as the API shows it.
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

/// The `AlreadyExists` of an e-mail another agent has.
fn email_taken(error: tokio_postgres::Error, email: Option<&str>) -> RoutingError {
    unique_violation(error, || format!("an agent with e-mail {email:?}"))
}

/// An agent's writable fields, checked.
#[derive(Debug)]
pub(crate) struct AgentFields {
    /// The display name.
    pub(crate) name: String,
    /// The e-mail address, lowercased.
    pub(crate) email: Option<String>,
    /// At most this many open conversations.
    pub(crate) max_open: i32,
}

/// Agent `id` of `workspace`.
#[tracing::instrument(skip_all, fields(agent_id = %id))]
pub(crate) async fn find(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &AgentId,
) -> Result<proto::Agent, RoutingError> {
    let row = client
        .query_opt_cached(
            &format!("SELECT {AGENT_COLUMNS} FROM routing.agents WHERE id = $1 AND workspace_id = $2"),
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("agent {id}")))?;
    Ok(agent(&row))
}

/// Stores a new agent.
#[tracing::instrument(skip_all, fields(agent_id = %id))]
pub(crate) async fn insert(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &AgentId,
    fields: &AgentFields,
    status: &str,
) -> Result<proto::Agent, RoutingError> {
    let row = client
        .query_one_cached(
            &format!(
                "INSERT INTO routing.agents (id, workspace_id, name, email, status, max_open)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING {AGENT_COLUMNS}"
            ),
            &[
                &id.as_str(),
                &workspace.as_str(),
                &fields.name,
                &fields.email,
                &status,
                &fields.max_open,
            ],
        )
        .await
        .map_err(|error| email_taken(error, fields.email.as_deref()))?;
    Ok(agent(&row))
}

/// A page of `workspace`'s agents (of `team` when given), oldest first.
#[tracing::instrument(skip_all, fields(workspace_id = %workspace))]
pub(crate) async fn list(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    team: Option<&TeamId>,
    after: &After,
    limit: i64,
) -> Result<Page<proto::Agent>, RoutingError> {
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
            &[
                &workspace.as_str(),
                &team.map(TeamId::as_str),
                &after.at,
                &after.key,
                &limit,
            ],
        )
        .await?;
    page(
        &rows,
        limit,
        |row| Ok(agent(row)),
        |last| (last.get(7), last.get(0)),
    )
}

/// Replaces agent `id`'s name, e-mail and capacity.
#[tracing::instrument(skip_all, fields(agent_id = %id))]
pub(crate) async fn update(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &AgentId,
    fields: &AgentFields,
) -> Result<proto::Agent, RoutingError> {
    let row = client
        .query_opt_cached(
            &format!(
                "UPDATE routing.agents SET name = $3, email = $4, max_open = $5
                 WHERE id = $1 AND workspace_id = $2 RETURNING {AGENT_COLUMNS}"
            ),
            &[
                &id.as_str(),
                &workspace.as_str(),
                &fields.name,
                &fields.email,
                &fields.max_open,
            ],
        )
        .await
        .map_err(|error| email_taken(error, fields.email.as_deref()))?
        .ok_or_else(|| RoutingError::NotFound(format!("agent {id}")))?;
    Ok(agent(&row))
}

/// Sets agent `id`'s status (`online`, `away`, `offline`); an unknown agent changes nothing.
#[tracing::instrument(skip_all, fields(agent_id = %id))]
pub(crate) async fn set_status(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &AgentId,
    status: &str,
) -> Result<(), RoutingError> {
    client
        .execute_cached(
            "UPDATE routing.agents SET status = $3 WHERE id = $1 AND workspace_id = $2",
            &[&id.as_str(), &workspace.as_str(), &status],
        )
        .await?;
    Ok(())
}

/// Deletes agent `id` unless it still has open conversations.
#[tracing::instrument(skip_all, fields(agent_id = %id))]
pub(crate) async fn delete(
    tx: &Transaction<'_>,
    workspace: &WorkspaceId,
    id: &AgentId,
) -> Result<(), RoutingError> {
    let row = tx
        .query_opt_cached(
            "SELECT open_count FROM routing.agents WHERE id = $1 AND workspace_id = $2 FOR UPDATE",
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("agent {id}")))?;
    let open: i32 = row.get(0);
    if open > 0 {
        return Err(RoutingError::FailedPrecondition(format!(
            "agent {id} has {open} open conversations; reassign or close them first"
        )));
    }
    tx.execute_cached("DELETE FROM routing.agents WHERE id = $1", &[&id.as_str()])
        .await?;
    Ok(())
}

/// The name of agent `id` of `workspace`.
#[tracing::instrument(skip_all, fields(agent_id = %id))]
pub(crate) async fn name(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &AgentId,
) -> Result<String, RoutingError> {
    Ok(client
        .query_opt_cached(
            "SELECT name FROM routing.agents WHERE id = $1 AND workspace_id = $2",
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("agent {id}")))?
        .get(0))
}

/// The agents of `ids` that belong to `workspace`.
#[tracing::instrument(skip_all, fields(workspace_id = %workspace))]
pub(crate) async fn known(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    ids: &[&str],
) -> Result<Vec<String>, RoutingError> {
    Ok(client
        .query_cached(
            "SELECT id FROM routing.agents WHERE workspace_id = $1 AND id = ANY($2)",
            &[&workspace.as_str(), &ids],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
}
