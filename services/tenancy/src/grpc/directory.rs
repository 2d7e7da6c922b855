//! The internal directories: channel accounts with their secrets, and API-key checks for
//! processes without tenancy.

use std::sync::Arc;

use switchboard_domain::{Channel, ChannelAccountId};
use switchboard_postgres::Pool;
use switchboard_proto::tenancy::v1 as proto;
use switchboard_proto::tenancy::v1::api_key_directory_service_server::{
    ApiKeyDirectoryService, ApiKeyDirectoryServiceServer,
};
use switchboard_proto::tenancy::v1::channel_account_directory_service_server::{
    ChannelAccountDirectoryService, ChannelAccountDirectoryServiceServer,
};
use switchboard_server::auth::principal;
use tonic::{Request, Response, Status};

use super::{client, parse_id};
use crate::{TenancyError, store};

/// Builds the internal directory service.
pub(crate) fn directory_server(pool: Pool) -> ChannelAccountDirectoryServiceServer<Directory> {
    ChannelAccountDirectoryServiceServer::new(Directory { pool })
}

/// `ChannelAccountDirectoryService`: internal callers only.
pub(crate) struct Directory {
    pool: Pool,
}

#[tonic::async_trait]
impl ChannelAccountDirectoryService for Directory {
    async fn resolve_channel_account(
        &self,
        request: Request<proto::ResolveChannelAccountRequest>,
    ) -> Result<Response<proto::ResolveChannelAccountResponse>, Status> {
        principal(&request)?.require_internal()?;
        let proto::ResolveChannelAccountRequest { id } = request.into_inner();
        let id = parse_id("id", &id, ChannelAccountId::parse)?;
        let (account, secrets) = store::resolve_channel_account(&client(&self.pool).await?, &id)
            .await?
            .ok_or_else(|| TenancyError::NotFound(format!("channel account {id}")))?;
        Ok(Response::new(proto::ResolveChannelAccountResponse {
            account: Some(account.into()),
            secrets: secrets.into_iter().collect(),
        }))
    }

    async fn find_channel_account(
        &self,
        request: Request<proto::FindChannelAccountRequest>,
    ) -> Result<Response<proto::FindChannelAccountResponse>, Status> {
        principal(&request)?.require_internal()?;
        let proto::FindChannelAccountRequest { channel, external_id } = request.into_inner();
        let channel = Channel::from_proto(channel)
            .map_err(|error| TenancyError::Invalid(format!("channel: {error}")))?;
        let (account, secrets) =
            store::find_channel_account(&client(&self.pool).await?, channel, &external_id)
                .await?
                .ok_or_else(|| {
                    TenancyError::NotFound(format!("{} account {external_id:?}", channel.as_str()))
                })?;
        Ok(Response::new(proto::FindChannelAccountResponse {
            account: Some(account.into()),
            secrets: secrets.into_iter().collect(),
        }))
    }
}

/// The gRPC server of the internal API-key directory.
pub(crate) fn key_directory_server(
    authenticator: Arc<crate::KeyAuthenticator>,
) -> ApiKeyDirectoryServiceServer<KeyDirectory> {
    ApiKeyDirectoryServiceServer::new(KeyDirectory { authenticator })
}

/// `ApiKeyDirectoryService`: API-key checks for processes without tenancy; internal callers only.
pub(crate) struct KeyDirectory {
    authenticator: Arc<crate::KeyAuthenticator>,
}

#[tonic::async_trait]
impl ApiKeyDirectoryService for KeyDirectory {
    async fn authenticate_api_key(
        &self,
        request: Request<proto::AuthenticateApiKeyRequest>,
    ) -> Result<Response<proto::AuthenticateApiKeyResponse>, Status> {
        use switchboard_server::auth::{AuthError, Authenticator as _};
        principal(&request)?.require_internal()?;
        let proto::AuthenticateApiKeyRequest { token } = request.into_inner();
        match self.authenticator.authenticate(&token).await {
            Ok(key) => Ok(Response::new(proto::AuthenticateApiKeyResponse {
                key_id: key.key_id,
                workspace_id: key.workspace_id.map(|id| id.to_string()).unwrap_or_default(),
                role: crate::model::role_to_proto(key.role) as i32,
            })),
            Err(AuthError::InvalidKey) => Err(Status::unauthenticated("invalid or revoked api key")),
            Err(error) => Err(switchboard_server::status_from(error.code(), &error)),
        }
    }
}
