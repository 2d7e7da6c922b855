//! Which contacts a list, export or bulk job means.

use std::collections::HashMap;

use switchboard_domain::{ViewId, WorkspaceId};
use switchboard_postgres::GenericClient;
use switchboard_proto::contacts::v1 as proto;

use super::ContactsApi;
use crate::fields::FieldType;
use crate::filter::Filter;
use crate::{ContactsError, filter, filter_proto, store};

impl ContactsApi {
    /// Which contacts a request means: its search text, its filter and saved view (by AND,
    /// checked against the workspace's fields), and those fields' types.
    pub(super) async fn selection(
        &self,
        client: &impl GenericClient,
        workspace: &WorkspaceId,
        query: &str,
        filter: Option<&proto::Filter>,
        view_id: &str,
    ) -> Result<(String, Option<Filter>, HashMap<String, FieldType>), ContactsError> {
        let types = store::field_types(&store::field_definitions(client, workspace).await?);
        let mut filters = Vec::new();
        if let Some(filter) = filter {
            filters.push(filter_proto::from_proto(filter)?);
        }
        if !view_id.is_empty() {
            let view_id = ViewId::parse(view_id)
                .map_err(|error| ContactsError::invalid(format!("view_id: {error}")))?;
            filters.push(store::view(client, workspace, &view_id).await?.filter);
        }
        let filter = match filters.len() {
            0 => None,
            1 => filters.pop(),
            _ => Some(Filter::All(filters)),
        };
        if let Some(filter) = &filter {
            filter::validate(filter, &types)
                .map_err(|error| ContactsError::invalid_as("INVALID_FILTER", error.to_string()))?;
        }
        let query = query.trim();
        if query.chars().count() > 200 {
            return Err(ContactsError::invalid("query: at most 200 characters"));
        }
        Ok((query.to_owned(), filter, types))
    }
}
