//! gRPC adapter of `ContactsService`: proto in, checked values to the store, proto out.
//! Every call acts in the caller's workspace; changes write their event to the outbox in the
//! same transaction.

mod bulk;
mod changes;
mod consent;
mod contacts;
mod selection;
mod workspace;

use std::sync::Arc;

use switchboard_domain::{ContactId, WorkspaceId};
use switchboard_messaging::Partitions;
use switchboard_postgres::Pool;
use switchboard_proto::contacts::v1 as proto;
use switchboard_proto::contacts::v1::contacts_service_server::{ContactsService, ContactsServiceServer};
use switchboard_server::auth::principal;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::ContactsError;

/// Builds the service.
pub(crate) fn contacts_server(api: ContactsApi) -> ContactsServiceServer<ContactsApi> {
    ContactsServiceServer::new(api)
}

/// The `ContactsService` implementation.
pub(crate) struct ContactsApi {
    pub(crate) pool: Pool,
    /// Wakes the outbox relay after a commit.
    pub(crate) wake: Arc<Notify>,
    /// Wakes the job runner after a job was started.
    pub(crate) jobs_wake: Arc<Notify>,
    pub(crate) partitions: Partitions,
}

/// The caller's workspace (platform keys act on no workspace's contacts).
fn workspace<T>(request: &Request<T>) -> Result<WorkspaceId, Status> {
    Ok(principal(request)?.workspace()?.clone())
}

/// The caller's workspace, for calls that need a workspace admin key.
fn admin_workspace<T>(request: &Request<T>) -> Result<WorkspaceId, Status> {
    Ok(principal(request)?.admin_workspace()?.clone())
}

/// A contact id argument, checked (`field` names it in the error).
fn contact_id(field: &str, value: &str) -> Result<ContactId, Status> {
    ContactId::parse(value).map_err(|error| Status::invalid_argument(format!("{field}: {error}")))
}

/// A change's source argument, checked; empty means `api`.
fn source(value: &str) -> Result<String, ContactsError> {
    let value = value.trim();
    if value.chars().count() > 100 || value.chars().any(char::is_control) {
        return Err(ContactsError::invalid("source: at most 100 characters"));
    }
    Ok(if value.is_empty() {
        "api".to_owned()
    } else {
        value.to_owned()
    })
}

impl ContactsApi {
    /// A pooled database connection.
    async fn client(&self) -> Result<switchboard_postgres::PooledClient, ContactsError> {
        Ok(self.pool.get().await?)
    }
}

#[tonic::async_trait]
impl ContactsService for ContactsApi {
    async fn create_contact(
        &self,
        request: Request<proto::CreateContactRequest>,
    ) -> Result<Response<proto::CreateContactResponse>, Status> {
        self.create_contact_rpc(request).await
    }

    async fn get_contact(
        &self,
        request: Request<proto::GetContactRequest>,
    ) -> Result<Response<proto::GetContactResponse>, Status> {
        self.get_contact_rpc(request).await
    }

    async fn update_contact(
        &self,
        request: Request<proto::UpdateContactRequest>,
    ) -> Result<Response<proto::UpdateContactResponse>, Status> {
        self.update_contact_rpc(request).await
    }

    async fn list_contacts(
        &self,
        request: Request<proto::ListContactsRequest>,
    ) -> Result<Response<proto::ListContactsResponse>, Status> {
        self.list_contacts_rpc(request).await
    }

    async fn add_tags(
        &self,
        request: Request<proto::ChangeTagsRequest>,
    ) -> Result<Response<proto::ChangeTagsResponse>, Status> {
        self.change_tags(request, true).await
    }

    async fn remove_tags(
        &self,
        request: Request<proto::ChangeTagsRequest>,
    ) -> Result<Response<proto::ChangeTagsResponse>, Status> {
        self.change_tags(request, false).await
    }

    async fn block_contact(
        &self,
        request: Request<proto::BlockContactRequest>,
    ) -> Result<Response<proto::BlockContactResponse>, Status> {
        self.set_blocked(request, true).await
    }

    async fn unblock_contact(
        &self,
        request: Request<proto::BlockContactRequest>,
    ) -> Result<Response<proto::BlockContactResponse>, Status> {
        self.set_blocked(request, false).await
    }

    async fn set_bot_subscription(
        &self,
        request: Request<proto::SetBotSubscriptionRequest>,
    ) -> Result<Response<proto::SetBotSubscriptionResponse>, Status> {
        self.set_bot_subscription_rpc(request).await
    }

    async fn set_email_state(
        &self,
        request: Request<proto::SetEmailStateRequest>,
    ) -> Result<Response<proto::SetEmailStateResponse>, Status> {
        self.set_email_state_rpc(request).await
    }

    async fn define_field(
        &self,
        request: Request<proto::DefineFieldRequest>,
    ) -> Result<Response<proto::DefineFieldResponse>, Status> {
        self.define_field_rpc(request).await
    }

    async fn list_fields(
        &self,
        request: Request<proto::ListFieldsRequest>,
    ) -> Result<Response<proto::ListFieldsResponse>, Status> {
        self.list_fields_rpc(request).await
    }

    async fn create_view(
        &self,
        request: Request<proto::CreateViewRequest>,
    ) -> Result<Response<proto::CreateViewResponse>, Status> {
        self.create_view_rpc(request).await
    }

    async fn list_views(
        &self,
        request: Request<proto::ListViewsRequest>,
    ) -> Result<Response<proto::ListViewsResponse>, Status> {
        self.list_views_rpc(request).await
    }

    async fn update_view(
        &self,
        request: Request<proto::UpdateViewRequest>,
    ) -> Result<Response<proto::UpdateViewResponse>, Status> {
        self.update_view_rpc(request).await
    }

    async fn delete_view(
        &self,
        request: Request<proto::DeleteViewRequest>,
    ) -> Result<Response<proto::DeleteViewResponse>, Status> {
        self.delete_view_rpc(request).await
    }

    async fn merge_contacts(
        &self,
        request: Request<proto::MergeContactsRequest>,
    ) -> Result<Response<proto::MergeContactsResponse>, Status> {
        self.merge_contacts_rpc(request).await
    }

    async fn unmerge_contact(
        &self,
        request: Request<proto::UnmergeContactRequest>,
    ) -> Result<Response<proto::UnmergeContactResponse>, Status> {
        self.unmerge_contact_rpc(request).await
    }

    async fn erase_contact(
        &self,
        request: Request<proto::EraseContactRequest>,
    ) -> Result<Response<proto::EraseContactResponse>, Status> {
        self.erase_contact_rpc(request).await
    }

    async fn start_bulk_tag_job(
        &self,
        request: Request<proto::StartBulkTagJobRequest>,
    ) -> Result<Response<proto::StartBulkTagJobResponse>, Status> {
        self.start_bulk_tag_job_rpc(request).await
    }

    async fn import_contacts(
        &self,
        request: Request<proto::ImportContactsRequest>,
    ) -> Result<Response<proto::ImportContactsResponse>, Status> {
        self.import_contacts_rpc(request).await
    }

    async fn get_job(
        &self,
        request: Request<proto::GetJobRequest>,
    ) -> Result<Response<proto::GetJobResponse>, Status> {
        self.get_job_rpc(request).await
    }

    type ExportContactsStream = std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<proto::ExportContactsResponse, Status>> + Send>,
    >;

    async fn export_contacts(
        &self,
        request: Request<proto::ExportContactsRequest>,
    ) -> Result<Response<Self::ExportContactsStream>, Status> {
        self.export_contacts_rpc(request).await
    }

    async fn list_merge_suggestions(
        &self,
        request: Request<proto::ListMergeSuggestionsRequest>,
    ) -> Result<Response<proto::ListMergeSuggestionsResponse>, Status> {
        self.list_merge_suggestions_rpc(request).await
    }

    async fn list_held_events(
        &self,
        request: Request<proto::ListHeldEventsRequest>,
    ) -> Result<Response<proto::ListHeldEventsResponse>, Status> {
        self.list_held_events_rpc(request).await
    }

    async fn get_settings(
        &self,
        request: Request<proto::GetSettingsRequest>,
    ) -> Result<Response<proto::GetSettingsResponse>, Status> {
        self.get_settings_rpc(request).await
    }

    async fn update_settings(
        &self,
        request: Request<proto::UpdateSettingsRequest>,
    ) -> Result<Response<proto::UpdateSettingsResponse>, Status> {
        self.update_settings_rpc(request).await
    }

    async fn set_quota(
        &self,
        request: Request<proto::SetQuotaRequest>,
    ) -> Result<Response<proto::SetQuotaResponse>, Status> {
        self.set_quota_rpc(request).await
    }

    async fn get_quota_usage(
        &self,
        request: Request<proto::GetQuotaUsageRequest>,
    ) -> Result<Response<proto::GetQuotaUsageResponse>, Status> {
        self.get_quota_usage_rpc(request).await
    }
}
