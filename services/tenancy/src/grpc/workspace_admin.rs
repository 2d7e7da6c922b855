//! `WorkspaceAdminService`: workspaces and API keys, for platform admins.

use switchboard_domain::{ApiKeyId, WorkspaceId};
use switchboard_postgres::Pool;
use switchboard_proto::tenancy::v1 as proto;
use switchboard_proto::tenancy::v1::workspace_admin_service_server::{
    WorkspaceAdminService, WorkspaceAdminServiceServer,
};
use switchboard_server::auth::{Role, principal};
use tonic::{Request, Response, Status};

use super::{client, next_page, page_size, parse_id};
use crate::{TenancyError, keys, store, validate};

/// Builds the platform admin service.
pub(crate) fn workspace_admin_server(pool: Pool) -> WorkspaceAdminServiceServer<WorkspaceAdmin> {
    WorkspaceAdminServiceServer::new(WorkspaceAdmin { pool })
}

/// `WorkspaceAdminService`: platform admins only.
pub(crate) struct WorkspaceAdmin {
    pool: Pool,
}

#[tonic::async_trait]
impl WorkspaceAdminService for WorkspaceAdmin {
    async fn create_workspace(
        &self,
        request: Request<proto::CreateWorkspaceRequest>,
    ) -> Result<Response<proto::CreateWorkspaceResponse>, Status> {
        principal(&request)?.require_platform_admin()?;
        let proto::CreateWorkspaceRequest { id, name } = request.into_inner();
        let id = if id.is_empty() {
            WorkspaceId::generate()
        } else {
            parse_id("id", &id, WorkspaceId::parse)?
        };
        let name = validate::name("name", &name)?;
        let workspace = store::insert_workspace(&client(&self.pool).await?, &id, &name).await?;
        tracing::info!(workspace_id = %id, "workspace created");
        Ok(Response::new(proto::CreateWorkspaceResponse {
            workspace: Some(workspace.into()),
        }))
    }

    async fn get_workspace(
        &self,
        request: Request<proto::GetWorkspaceRequest>,
    ) -> Result<Response<proto::GetWorkspaceResponse>, Status> {
        principal(&request)?.require_platform_admin()?;
        let proto::GetWorkspaceRequest { id } = request.into_inner();
        let id = parse_id("id", &id, WorkspaceId::parse)?;
        let workspace = store::get_workspace(&client(&self.pool).await?, &id)
            .await?
            .ok_or_else(|| TenancyError::NotFound(format!("workspace {id}")))?;
        Ok(Response::new(proto::GetWorkspaceResponse {
            workspace: Some(workspace.into()),
        }))
    }

    async fn list_workspaces(
        &self,
        request: Request<proto::ListWorkspacesRequest>,
    ) -> Result<Response<proto::ListWorkspacesResponse>, Status> {
        principal(&request)?.require_platform_admin()?;
        let proto::ListWorkspacesRequest { page } = request.into_inner();
        let limit = page_size(page.as_ref());
        let after = page.map(|page| page.page_token).unwrap_or_default();
        let workspaces = store::list_workspaces(&client(&self.pool).await?, &after, limit).await?;
        let page = next_page(
            workspaces.len(),
            limit,
            workspaces.last().map(|workspace| workspace.id.as_str()),
        );
        Ok(Response::new(proto::ListWorkspacesResponse {
            workspaces: workspaces.into_iter().map(Into::into).collect(),
            page: Some(page),
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<proto::CreateApiKeyRequest>,
    ) -> Result<Response<proto::CreateApiKeyResponse>, Status> {
        principal(&request)?.require_platform_admin()?;
        let proto::CreateApiKeyRequest {
            workspace_id,
            name,
            role,
        } = request.into_inner();
        let name = validate::name("name", &name)?;
        let role = crate::model::role_from_proto(role).ok_or_else(|| {
            Status::invalid_argument(
                "role must be API_KEY_ROLE_PLATFORM_ADMIN, API_KEY_ROLE_WORKSPACE_ADMIN or API_KEY_ROLE_WORKSPACE_MEMBER",
            )
        })?;
        let client = client(&self.pool).await?;
        let workspace = match (role, workspace_id.is_empty()) {
            (Role::PlatformAdmin, true) => None,
            (Role::PlatformAdmin, false) => {
                return Err(Status::invalid_argument(
                    "platform admin keys belong to no workspace; leave workspace_id empty",
                ));
            }
            (_, true) => return Err(Status::invalid_argument("workspace keys need a workspace_id")),
            (_, false) => {
                let id = parse_id("workspace_id", &workspace_id, WorkspaceId::parse)?;
                store::get_workspace(&client, &id)
                    .await?
                    .ok_or_else(|| TenancyError::NotFound(format!("workspace {id}")))?;
                Some(id)
            }
        };
        let generated = keys::generate_key();
        let key = store::insert_api_key(
            &client,
            &generated.id,
            workspace.as_ref(),
            &name,
            role,
            &generated.secret_sha256,
        )
        .await?;
        tracing::info!(key_id = %key.id, workspace_id = ?key.workspace_id, "api key created");
        Ok(Response::new(proto::CreateApiKeyResponse {
            key: Some(key.into()),
            token: generated.token,
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<proto::ListApiKeysRequest>,
    ) -> Result<Response<proto::ListApiKeysResponse>, Status> {
        principal(&request)?.require_platform_admin()?;
        let proto::ListApiKeysRequest { workspace_id } = request.into_inner();
        let workspace = if workspace_id.is_empty() {
            None
        } else {
            Some(parse_id("workspace_id", &workspace_id, WorkspaceId::parse)?)
        };
        let keys = store::list_api_keys(&client(&self.pool).await?, workspace.as_ref()).await?;
        Ok(Response::new(proto::ListApiKeysResponse {
            keys: keys.into_iter().map(Into::into).collect(),
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<proto::RevokeApiKeyRequest>,
    ) -> Result<Response<proto::RevokeApiKeyResponse>, Status> {
        principal(&request)?.require_platform_admin()?;
        let proto::RevokeApiKeyRequest { id } = request.into_inner();
        let id = parse_id("id", &id, ApiKeyId::parse)?;
        let key = store::revoke_api_key(&client(&self.pool).await?, &id)
            .await?
            .ok_or_else(|| TenancyError::NotFound(format!("api key {id}")))?;
        tracing::info!(key_id = %id, "api key revoked");
        Ok(Response::new(proto::RevokeApiKeyResponse {
            key: Some(key.into()),
        }))
    }
}
