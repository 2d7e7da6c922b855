//! SQL of saved views: named filters of a workspace.

use chrono::{DateTime, Utc};
use switchboard_domain::{ViewId, WorkspaceId};
use switchboard_postgres::CachedStatements as _;
use switchboard_postgres::GenericClient;
use switchboard_proto::contacts::v1 as proto;

use crate::ContactsError;
use crate::error::stored_id;
use crate::filter::Filter;
use crate::model::timestamp;

/// A saved view.
pub(crate) struct View {
    pub(crate) id: ViewId,
    pub(crate) name: String,
    pub(crate) filter: Filter,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

impl View {
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, ContactsError> {
        let id: ViewId = stored_id("view id", row.get(0))?;
        let json: serde_json::Value = row.get(2);
        let filter = serde_json::from_value(json)
            .map_err(|error| ContactsError::Corrupt(format!("view {id} filter: {error}")))?;
        Ok(Self {
            id,
            name: row.get(1),
            filter,
            created_at: row.get(3),
            updated_at: row.get(4),
        })
    }

    /// The proto form.
    pub(crate) fn to_proto(&self) -> proto::View {
        proto::View {
            id: self.id.to_string(),
            name: self.name.clone(),
            filter: Some(crate::filter_proto::to_proto(&self.filter)),
            created_at: Some(timestamp(self.created_at)),
            updated_at: Some(timestamp(self.updated_at)),
        }
    }
}

fn filter_json(filter: &Filter) -> Result<serde_json::Value, ContactsError> {
    serde_json::to_value(filter).map_err(|error| ContactsError::Corrupt(format!("filter to JSON: {error}")))
}

fn name_taken(error: tokio_postgres::Error, name: &str) -> ContactsError {
    if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        ContactsError::Conflict(format!("a view named {name:?} exists already"))
    } else {
        error.into()
    }
}

/// Stores a new view.
pub(crate) async fn insert_view(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &ViewId,
    name: &str,
    filter: &Filter,
) -> Result<View, ContactsError> {
    let row = client
        .query_one_cached(
            "INSERT INTO contacts.saved_views (id, workspace_id, name, filter) VALUES ($1, $2, $3, $4)
             RETURNING id, name, filter, created_at, updated_at",
            &[&id.as_str(), &workspace.as_str(), &name, &filter_json(filter)?],
        )
        .await
        .map_err(|error| name_taken(error, name))?;
    View::from_row(&row)
}

/// Replaces a view's name and filter.
pub(crate) async fn update_view(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &ViewId,
    name: &str,
    filter: &Filter,
) -> Result<View, ContactsError> {
    let row = client
        .query_opt_cached(
            "UPDATE contacts.saved_views SET name = $3, filter = $4, updated_at = now()
             WHERE id = $1 AND workspace_id = $2
             RETURNING id, name, filter, created_at, updated_at",
            &[&id.as_str(), &workspace.as_str(), &name, &filter_json(filter)?],
        )
        .await
        .map_err(|error| name_taken(error, name))?
        .ok_or_else(|| ContactsError::NotFound(format!("view {id}")))?;
    View::from_row(&row)
}

/// One view.
pub(crate) async fn view(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &ViewId,
) -> Result<View, ContactsError> {
    let row = client
        .query_opt_cached(
            "SELECT id, name, filter, created_at, updated_at FROM contacts.saved_views
             WHERE id = $1 AND workspace_id = $2",
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?
        .ok_or_else(|| ContactsError::NotFound(format!("view {id}")))?;
    View::from_row(&row)
}

/// Every view of the workspace, by name.
pub(crate) async fn views(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
) -> Result<Vec<View>, ContactsError> {
    let rows = client
        .query_cached(
            "SELECT id, name, filter, created_at, updated_at FROM contacts.saved_views
             WHERE workspace_id = $1 ORDER BY name",
            &[&workspace.as_str()],
        )
        .await?;
    rows.iter().map(View::from_row).collect()
}

/// Deletes a view.
pub(crate) async fn delete_view(
    client: &impl GenericClient,
    workspace: &WorkspaceId,
    id: &ViewId,
) -> Result<(), ContactsError> {
    let deleted = client
        .execute_cached(
            "DELETE FROM contacts.saved_views WHERE id = $1 AND workspace_id = $2",
            &[&id.as_str(), &workspace.as_str()],
        )
        .await?;
    if deleted == 0 {
        return Err(ContactsError::NotFound(format!("view {id}")));
    }
    Ok(())
}
