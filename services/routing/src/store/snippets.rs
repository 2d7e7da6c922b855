//! SQL of snippets (canned responses).

use switchboard_domain::time::to_timestamp as timestamp;
use switchboard_domain::{SnippetId, WorkspaceId};
use switchboard_postgres::{CachedStatements as _, GenericClient};
use switchboard_proto::routing::v1 as proto;
use tokio_postgres::Row;

use super::{After, Page, page, unique_violation};
use crate::RoutingError;

const SNIPPET_COLUMNS: &str = "id, shortcut, body, created_at, updated_at";

/// A snippet row (selected with `SNIPPET_COLUMNS`) as the API shows it.
fn snippet_of(row: &Row) -> proto::Snippet {
    proto::Snippet {
        id: row.get(0),
        shortcut: row.get(1),
        body: row.get(2),
        created_at: Some(timestamp(row.get(3))),
        updated_at: Some(timestamp(row.get(4))),
    }
}

/// The `AlreadyExists` of a shortcut another snippet has.
fn duplicate_shortcut(error: tokio_postgres::Error, shortcut: &str) -> RoutingError {
    unique_violation(error, || format!("a snippet with shortcut {shortcut:?}"))
}

/// Stores a new snippet.
#[tracing::instrument(skip_all, fields(workspace_id = %workspace))]
pub(crate) async fn insert(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    shortcut: &str,
    body: &str,
) -> Result<proto::Snippet, RoutingError> {
    let row = client
        .query_one_cached(
            &format!(
                "INSERT INTO routing.snippets (id, workspace_id, shortcut, body) VALUES ($1, $2, $3, $4)
                 RETURNING {SNIPPET_COLUMNS}"
            ),
            &[
                &SnippetId::generate().as_str(),
                &workspace.as_str(),
                &shortcut,
                &body,
            ],
        )
        .await
        .map_err(|error| duplicate_shortcut(error, shortcut))?;
    Ok(snippet_of(&row))
}

/// Replaces snippet `id`'s shortcut and body.
#[tracing::instrument(skip_all, fields(snippet_id = %id))]
pub(crate) async fn update(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &SnippetId,
    shortcut: &str,
    body: &str,
) -> Result<proto::Snippet, RoutingError> {
    let row = client
        .query_opt_cached(
            &format!(
                "UPDATE routing.snippets SET shortcut = $3, body = $4, updated_at = now()
                 WHERE id = $1 AND workspace_id = $2 RETURNING {SNIPPET_COLUMNS}"
            ),
            &[&id.as_str(), &workspace.as_str(), &shortcut, &body],
        )
        .await
        .map_err(|error| duplicate_shortcut(error, shortcut))?
        .ok_or_else(|| RoutingError::NotFound(format!("snippet {id}")))?;
    Ok(snippet_of(&row))
}

/// Deletes snippet `id`.
#[tracing::instrument(skip_all, fields(snippet_id = %id))]
pub(crate) async fn delete(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &SnippetId,
) -> Result<(), RoutingError> {
    let deleted = client
        .execute_cached(
            "DELETE FROM routing.snippets WHERE id = $1 AND workspace_id = $2",
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?;
    if deleted == 0 {
        return Err(RoutingError::NotFound(format!("snippet {id}")));
    }
    Ok(())
}

/// A page of `workspace`'s snippets, oldest first.
#[tracing::instrument(skip_all, fields(workspace_id = %workspace))]
pub(crate) async fn list(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    after: &After,
    limit: i64,
) -> Result<Page<proto::Snippet>, RoutingError> {
    let rows = client
        .query_cached(
            &format!(
                "SELECT {SNIPPET_COLUMNS} FROM routing.snippets
                 WHERE workspace_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
                 ORDER BY created_at, id LIMIT $4"
            ),
            &[&workspace.as_str(), &after.at, &after.key, &limit],
        )
        .await?;
    page(
        &rows,
        limit,
        |row| Ok(snippet_of(row)),
        |last| (last.get(3), last.get(0)),
    )
}

/// The body of snippet `id` of `workspace`.
#[tracing::instrument(skip_all, fields(snippet_id = %id))]
pub(crate) async fn body(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &SnippetId,
) -> Result<String, RoutingError> {
    Ok(client
        .query_opt_cached(
            "SELECT body FROM routing.snippets WHERE id = $1 AND workspace_id = $2",
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?
        .ok_or_else(|| RoutingError::NotFound(format!("snippet {id}")))?
        .get(0))
}
