//! The workspace RPCs: custom fields, saved views, settings, quotas, merge suggestions and
//! held events.

use std::collections::HashMap;
use switchboard_server::paging;

use chrono::Utc;
use switchboard_domain::{Channel, ViewId, WorkspaceId};
use switchboard_postgres::GenericClient;
use switchboard_proto::contacts::v1 as proto;
use tonic::{Request, Response, Status};

use super::{ContactsApi, admin_workspace, workspace};
use crate::fields::{FieldDefinition, FieldType};
use crate::filter::Filter;
use crate::settings::Settings;
use crate::{ContactsError, filter, filter_proto, store};

impl ContactsApi {
    /// Defines or redefines a custom field (workspace admin).
    pub(super) async fn define_field_rpc(
        &self,
        request: Request<proto::DefineFieldRequest>,
    ) -> Result<Response<proto::DefineFieldResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let field = request
            .into_inner()
            .field
            .ok_or_else(|| Status::invalid_argument("field: required"))?;
        let definition = FieldDefinition::from_proto(field)?;
        let client = self.client().await?;
        store::define_field(&client, &workspace, &definition).await?;
        Ok(Response::new(proto::DefineFieldResponse {
            field: Some(definition.to_proto()),
        }))
    }

    /// The workspace's custom fields, by key.
    pub(super) async fn list_fields_rpc(
        &self,
        request: Request<proto::ListFieldsRequest>,
    ) -> Result<Response<proto::ListFieldsResponse>, Status> {
        let workspace = workspace(&request)?;
        let client = self.client().await?;
        let mut definitions: Vec<FieldDefinition> = store::field_definitions(&client, &workspace)
            .await?
            .into_values()
            .collect();
        definitions.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Response::new(proto::ListFieldsResponse {
            fields: definitions.iter().map(FieldDefinition::to_proto).collect(),
        }))
    }

    /// Saves a named filter as a view.
    pub(super) async fn create_view_rpc(
        &self,
        request: Request<proto::CreateViewRequest>,
    ) -> Result<Response<proto::CreateViewResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let client = self.client().await?;
        let (name, filter) = self
            .checked_view(&client, &workspace, &request.name, request.filter.as_ref())
            .await?;
        let id = ViewId::generate();
        let view = store::insert_view(&client, &workspace, &id, &name, &filter).await?;
        Ok(Response::new(proto::CreateViewResponse {
            view: Some(view.to_proto()),
        }))
    }

    /// The workspace's saved views, by name.
    pub(super) async fn list_views_rpc(
        &self,
        request: Request<proto::ListViewsRequest>,
    ) -> Result<Response<proto::ListViewsResponse>, Status> {
        let workspace = workspace(&request)?;
        let client = self.client().await?;
        let views = store::views(&client, &workspace).await?;
        Ok(Response::new(proto::ListViewsResponse {
            views: views.iter().map(store::View::to_proto).collect(),
        }))
    }

    /// Replaces a view's name and filter.
    pub(super) async fn update_view_rpc(
        &self,
        request: Request<proto::UpdateViewRequest>,
    ) -> Result<Response<proto::UpdateViewResponse>, Status> {
        let workspace = workspace(&request)?;
        let view = request
            .into_inner()
            .view
            .ok_or_else(|| Status::invalid_argument("view: required"))?;
        let id =
            ViewId::parse(&view.id).map_err(|error| Status::invalid_argument(format!("view.id: {error}")))?;
        let client = self.client().await?;
        let (name, filter) = self
            .checked_view(&client, &workspace, &view.name, view.filter.as_ref())
            .await?;
        let view = store::update_view(&client, &workspace, &id, &name, &filter).await?;
        Ok(Response::new(proto::UpdateViewResponse {
            view: Some(view.to_proto()),
        }))
    }

    /// Deletes a view.
    pub(super) async fn delete_view_rpc(
        &self,
        request: Request<proto::DeleteViewRequest>,
    ) -> Result<Response<proto::DeleteViewResponse>, Status> {
        let workspace = workspace(&request)?;
        let id = ViewId::parse(&request.get_ref().id)
            .map_err(|error| Status::invalid_argument(format!("id: {error}")))?;
        let client = self.client().await?;
        store::delete_view(&client, &workspace, &id).await?;
        Ok(Response::new(proto::DeleteViewResponse {}))
    }

    /// Checks a view's name and filter (against the workspace's fields).
    async fn checked_view(
        &self,
        client: &impl GenericClient,
        workspace: &WorkspaceId,
        name: &str,
        filter: Option<&proto::Filter>,
    ) -> Result<(String, Filter), ContactsError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(ContactsError::invalid("name: 1 to 100 characters"));
        }
        let filter = filter.ok_or_else(|| ContactsError::invalid_as("INVALID_FILTER", "filter: required"))?;
        let filter = filter_proto::from_proto(filter)?;
        let types: HashMap<String, FieldType> =
            store::field_types(&store::field_definitions(client, workspace).await?);
        filter::validate(&filter, &types)
            .map_err(|error| ContactsError::invalid_as("INVALID_FILTER", error.to_string()))?;
        Ok((name.to_owned(), filter))
    }

    /// The workspace's settings.
    pub(super) async fn get_settings_rpc(
        &self,
        request: Request<proto::GetSettingsRequest>,
    ) -> Result<Response<proto::GetSettingsResponse>, Status> {
        let workspace = workspace(&request)?;
        let client = self.client().await?;
        let settings = Settings::load(&client, &workspace).await?;
        Ok(Response::new(proto::GetSettingsResponse {
            settings: Some(settings.to_proto()),
        }))
    }

    /// Replaces the workspace's settings (workspace admin).
    pub(super) async fn update_settings_rpc(
        &self,
        request: Request<proto::UpdateSettingsRequest>,
    ) -> Result<Response<proto::UpdateSettingsResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let settings = request
            .into_inner()
            .settings
            .ok_or_else(|| Status::invalid_argument("settings: required"))?;
        let settings = Settings::from_proto(&settings)?;
        let client = self.client().await?;
        settings.save(&client, &workspace).await?;
        Ok(Response::new(proto::UpdateSettingsResponse {
            settings: Some(settings.to_proto()),
        }))
    }

    /// Sets or removes a channel's monthly quota of new contacts (workspace admin).
    pub(super) async fn set_quota_rpc(
        &self,
        request: Request<proto::SetQuotaRequest>,
    ) -> Result<Response<proto::SetQuotaResponse>, Status> {
        let workspace = admin_workspace(&request)?;
        let request = request.into_inner();
        let channel = Channel::from_proto(request.channel)
            .map_err(|_| Status::invalid_argument("channel: choose a channel"))?;
        let limit = if request.unlimited {
            None
        } else if request.monthly_limit < 0 {
            return Err(Status::invalid_argument(
                "monthly_limit: 0 or more (or set unlimited)",
            ));
        } else {
            Some(request.monthly_limit)
        };
        let client = self.client().await?;
        store::set_quota(&client, &workspace, channel, limit).await?;
        let quota = store::quota_usage(&client, &workspace, Utc::now())
            .await?
            .into_iter()
            .find(|usage| usage.channel == channel.to_proto() as i32)
            .unwrap_or_else(|| proto::QuotaUsage {
                channel: channel.to_proto() as i32,
                monthly_limit: limit,
                used: 0,
                month: crate::resolve::month_of(Utc::now())
                    .format("%Y-%m-%d")
                    .to_string(),
            });
        Ok(Response::new(proto::SetQuotaResponse { quota: Some(quota) }))
    }

    /// Quotas and this month's usage of every channel that has either.
    pub(super) async fn get_quota_usage_rpc(
        &self,
        request: Request<proto::GetQuotaUsageRequest>,
    ) -> Result<Response<proto::GetQuotaUsageResponse>, Status> {
        let workspace = workspace(&request)?;
        let client = self.client().await?;
        let quotas = store::quota_usage(&client, &workspace, Utc::now()).await?;
        Ok(Response::new(proto::GetQuotaUsageResponse { quotas }))
    }

    /// One page of merge suggestions, newest first.
    pub(super) async fn list_merge_suggestions_rpc(
        &self,
        request: Request<proto::ListMergeSuggestionsRequest>,
    ) -> Result<Response<proto::ListMergeSuggestionsResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let limit = paging::page_size(request.page.as_ref(), 100);
        let after = paging::parse_cursor(request.page.as_ref()).map_err(ContactsError::from)?;
        let client = self.client().await?;
        let (suggestions, next_page_token) =
            store::merge_suggestions(&client, &workspace, after.as_ref(), limit).await?;
        Ok(Response::new(proto::ListMergeSuggestionsResponse {
            suggestions,
            page: Some(switchboard_proto::common::v1::PageResponse { next_page_token }),
        }))
    }

    /// One page of held inbound events, newest first.
    pub(super) async fn list_held_events_rpc(
        &self,
        request: Request<proto::ListHeldEventsRequest>,
    ) -> Result<Response<proto::ListHeldEventsResponse>, Status> {
        let workspace = workspace(&request)?;
        let request = request.into_inner();
        let limit = paging::page_size(request.page.as_ref(), 100);
        let after = paging::parse_cursor(request.page.as_ref()).map_err(ContactsError::from)?;
        let client = self.client().await?;
        let (events, next_page_token) =
            store::held_events(&client, &workspace, after.as_ref(), limit).await?;
        Ok(Response::new(proto::ListHeldEventsResponse {
            events,
            page: Some(switchboard_proto::common::v1::PageResponse { next_page_token }),
        }))
    }
}
