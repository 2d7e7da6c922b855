//! Snippets (canned responses) with checked `{{contact.first_name}}`-style variables
//! (`NotesService` snippet calls).

use std::collections::{BTreeSet, HashMap};
use switchboard_postgres::CachedStatements as _;

use switchboard_domain::time::to_timestamp as timestamp;
use switchboard_domain::{AgentId, SnippetId};
use switchboard_proto::common::v1::PageResponse;
use switchboard_proto::routing::v1 as proto;
use switchboard_server::paging;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use super::notes::NotesApi;
use super::{DEFAULT_PAGE_SIZE, admin_workspace, conversation_id, workspace};
use crate::RoutingError;
use crate::snippet::{self, Template};

const SNIPPET_COLUMNS: &str = "id, shortcut, body, created_at, updated_at";

fn snippet_of(row: &Row) -> proto::Snippet {
    proto::Snippet {
        id: row.get(0),
        shortcut: row.get(1),
        body: row.get(2),
        created_at: Some(timestamp(row.get(3))),
        updated_at: Some(timestamp(row.get(4))),
    }
}

fn snippet_id(field: &str, value: &str) -> Result<String, Status> {
    SnippetId::parse(value)
        .map(SnippetId::into_string)
        .map_err(|error| Status::invalid_argument(format!("{field}: {error}")))
}

fn duplicate_shortcut(error: tokio_postgres::Error, shortcut: &str) -> RoutingError {
    if error.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        RoutingError::AlreadyExists(format!("a snippet with shortcut {shortcut:?}"))
    } else {
        RoutingError::from(error)
    }
}

impl NotesApi {
    /// Creates a snippet after checking its variables.
    pub(crate) async fn create_snippet_rpc(
        &self,
        request: Request<proto::CreateSnippetRequest>,
    ) -> Result<Response<proto::CreateSnippetResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let request = request.into_inner();
        let shortcut = snippet::shortcut(&request.shortcut)?;
        Template::parse(&request.body)?;
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let row = client
            .query_one_cached(
                &format!(
                    "INSERT INTO routing.snippets (id, workspace_id, shortcut, body) VALUES ($1, $2, $3, $4)
                     RETURNING {SNIPPET_COLUMNS}"
                ),
                &[
                    &SnippetId::generate().into_string(),
                    &workspace,
                    &shortcut,
                    &request.body,
                ],
            )
            .await
            .map_err(|error| duplicate_shortcut(error, &shortcut))?;
        Ok(Response::new(proto::CreateSnippetResponse {
            snippet: Some(snippet_of(&row)),
        }))
    }

    /// Replaces a snippet's shortcut and body.
    pub(crate) async fn update_snippet_rpc(
        &self,
        request: Request<proto::UpdateSnippetRequest>,
    ) -> Result<Response<proto::UpdateSnippetResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let request = request.into_inner();
        let id = snippet_id("id", &request.id)?;
        let shortcut = snippet::shortcut(&request.shortcut)?;
        Template::parse(&request.body)?;
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let row = client
            .query_opt_cached(
                &format!(
                    "UPDATE routing.snippets SET shortcut = $3, body = $4, updated_at = now()
                     WHERE id = $1 AND workspace_id = $2 RETURNING {SNIPPET_COLUMNS}"
                ),
                &[&id, &workspace, &shortcut, &request.body],
            )
            .await
            .map_err(|error| duplicate_shortcut(error, &shortcut))?
            .ok_or_else(|| RoutingError::NotFound(format!("snippet {id}")))?;
        Ok(Response::new(proto::UpdateSnippetResponse {
            snippet: Some(snippet_of(&row)),
        }))
    }

    /// Deletes a snippet.
    pub(crate) async fn delete_snippet_rpc(
        &self,
        request: Request<proto::DeleteSnippetRequest>,
    ) -> Result<Response<proto::DeleteSnippetResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let id = snippet_id("id", &request.get_ref().id)?;
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let deleted = client
            .execute_cached(
                "DELETE FROM routing.snippets WHERE id = $1 AND workspace_id = $2",
                &[&id, &workspace],
            )
            .await
            .map_err(RoutingError::from)?;
        if deleted == 0 {
            return Err(RoutingError::NotFound(format!("snippet {id}")).into());
        }
        Ok(Response::new(proto::DeleteSnippetResponse {}))
    }

    /// Lists the workspace's snippets, oldest first.
    pub(crate) async fn list_snippets_rpc(
        &self,
        request: Request<proto::ListSnippetsRequest>,
    ) -> Result<Response<proto::ListSnippetsResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let limit = paging::page_size(request.page.as_ref(), DEFAULT_PAGE_SIZE);
        let (after_at, after_id) = paging::parse_cursor(request.page.as_ref())
            .map_err(RoutingError::from)?
            .unzip();
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let rows = client
            .query_cached(
                &format!(
                    "SELECT {SNIPPET_COLUMNS} FROM routing.snippets
                     WHERE workspace_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
                     ORDER BY created_at, id LIMIT $4"
                ),
                &[&workspace, &after_at, &after_id, &limit],
            )
            .await
            .map_err(RoutingError::from)?;
        let next_page_token = paging::next_page_token(rows.len(), limit, || {
            let last = &rows[rows.len() - 1];
            (last.get(3), last.get(0))
        });
        Ok(Response::new(proto::ListSnippetsResponse {
            snippets: rows.iter().map(snippet_of).collect(),
            page: Some(PageResponse { next_page_token }),
        }))
    }

    /// Fills a snippet's variables for a conversation, or names the missing ones.
    pub(crate) async fn render_snippet_rpc(
        &self,
        request: Request<proto::RenderSnippetRequest>,
    ) -> Result<Response<proto::RenderSnippetResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let id = snippet_id("snippet_id", &request.snippet_id)?;
        let conversation = conversation_id("conversation_id", &request.conversation_id)?;
        let client = self.pool.get().await.map_err(RoutingError::from)?;
        let body: String = client
            .query_opt_cached(
                "SELECT body FROM routing.snippets WHERE id = $1 AND workspace_id = $2",
                &[&id, &workspace],
            )
            .await
            .map_err(RoutingError::from)?
            .ok_or_else(|| RoutingError::NotFound(format!("snippet {id}")))?
            .get(0);
        let snapshot: serde_json::Value = client
            .query_opt_cached(
                "SELECT contact_snapshot FROM routing.conversations WHERE id = $1 AND workspace_id = $2",
                &[&conversation, &workspace],
            )
            .await
            .map_err(RoutingError::from)?
            .ok_or_else(|| RoutingError::NotFound(format!("conversation {conversation}")))?
            .get(0);
        let mut values: HashMap<String, String> = HashMap::new();
        for field in snippet::CONTACT_FIELDS {
            if let Some(value) = snapshot[field].as_str().filter(|value| !value.trim().is_empty()) {
                values.insert(format!("contact.{field}"), value.to_owned());
            }
        }
        if !request.agent_id.is_empty() {
            let agent = AgentId::parse(&request.agent_id)
                .map(AgentId::into_string)
                .map_err(|error| Status::invalid_argument(format!("agent_id: {error}")))?;
            let name: String = client
                .query_opt_cached(
                    "SELECT name FROM routing.agents WHERE id = $1 AND workspace_id = $2",
                    &[&agent, &workspace],
                )
                .await
                .map_err(RoutingError::from)?
                .ok_or_else(|| RoutingError::NotFound(format!("agent {agent}")))?
                .get(0);
            values.insert("agent.name".to_owned(), name);
        }
        let template = Template::parse(&body)?;
        match template.render(&values) {
            Ok(text) => Ok(Response::new(proto::RenderSnippetResponse { text })),
            Err(missing) => {
                let missing: BTreeSet<String> = missing.into_iter().collect();
                let list = missing.into_iter().collect::<Vec<_>>().join(",");
                Err(Status::with_error_details(
                    tonic::Code::FailedPrecondition,
                    format!("the snippet needs values this conversation does not have: {list}"),
                    ErrorDetails::with_error_info(
                        "MISSING_VARIABLE",
                        "routing.switchboard",
                        HashMap::from([("variables".to_owned(), list)]),
                    ),
                ))
            }
        }
    }
}
