//! gRPC adapters: proto in, validated domain values to the store, proto out.

use std::collections::BTreeMap;
use std::sync::Arc;

use switchboard_domain::{ApiKeyId, Channel, ChannelAccountId, EventId, WorkspaceId};
use switchboard_messaging::{Outgoing, Publisher};
use switchboard_postgres::Pool;
use switchboard_proto::events::v1 as events;
use switchboard_proto::tenancy::v1 as proto;
use switchboard_proto::tenancy::v1::api_key_directory_service_server::{
    ApiKeyDirectoryService, ApiKeyDirectoryServiceServer,
};
use switchboard_proto::tenancy::v1::channel_account_directory_service_server::{
    ChannelAccountDirectoryService, ChannelAccountDirectoryServiceServer,
};
use switchboard_proto::tenancy::v1::channel_account_service_server::{
    ChannelAccountService, ChannelAccountServiceServer,
};
use switchboard_proto::tenancy::v1::workspace_admin_service_server::{
    WorkspaceAdminService, WorkspaceAdminServiceServer,
};
use switchboard_server::auth::{Role, principal};
use tonic::{Request, Response, Status};

use crate::model::{ChannelAccount, ChannelAccountPatch, NewChannelAccount};
use crate::{TenancyError, keys, store, validate};

/// Fully qualified names of the services this component serves.
pub(crate) const SERVICE_NAMES: [&str; 4] = [
    "switchboard.tenancy.v1.WorkspaceAdminService",
    "switchboard.tenancy.v1.ChannelAccountService",
    "switchboard.tenancy.v1.ChannelAccountDirectoryService",
    "switchboard.tenancy.v1.ApiKeyDirectoryService",
];

/// Page size when the caller names none.
const DEFAULT_PAGE_SIZE: u32 = 100;

fn page_size(page: Option<&switchboard_proto::common::v1::PageRequest>) -> i64 {
    switchboard_server::paging::page_size(page, DEFAULT_PAGE_SIZE)
}

fn next_page(len: usize, limit: i64, last_id: Option<&str>) -> switchboard_proto::common::v1::PageResponse {
    let full = i64::try_from(len).unwrap_or(i64::MAX) >= limit;
    switchboard_proto::common::v1::PageResponse {
        next_page_token: if full {
            last_id.unwrap_or_default().to_owned()
        } else {
            String::new()
        },
    }
}

fn parse_id<T>(
    field: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, switchboard_domain::InvalidId>,
) -> Result<T, Status> {
    parse(value).map_err(|error| Status::invalid_argument(format!("{field}: {error}")))
}

async fn client(pool: &Pool) -> Result<switchboard_postgres::PooledClient, Status> {
    pool.get().await.map_err(|error| TenancyError::from(error).into())
}

/// Builds the platform admin service.
pub(crate) fn workspace_admin_server(pool: Pool) -> WorkspaceAdminServiceServer<WorkspaceAdmin> {
    WorkspaceAdminServiceServer::new(WorkspaceAdmin { pool })
}

/// Builds the channel accounts service.
pub(crate) fn channel_account_server(
    pool: Pool,
    notifier: Arc<ChangeNotifier>,
) -> ChannelAccountServiceServer<ChannelAccounts> {
    ChannelAccountServiceServer::new(ChannelAccounts { pool, notifier })
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

/// Announces channel-account changes on the bus so caches (ingress, delivery) refresh.
///
/// Best effort: a change is committed before it is announced, and caches also expire, so a
/// lost announcement only delays a refresh. Published without `mandatory`, because having no
/// subscriber is normal.
pub(crate) struct ChangeNotifier {
    publisher: Publisher,
}

impl ChangeNotifier {
    pub(crate) fn new(publisher: Publisher) -> Self {
        Self { publisher }
    }

    pub(crate) async fn announce(&self, account: &ChannelAccount) {
        let envelope = events::Envelope {
            event_id: EventId::generate().into_string(),
            event_type: format!("tenancy.{}.channel_account_changed", account.channel),
            occurred_at: Some(std::time::SystemTime::now().into()),
            workspace_id: account.workspace_id.to_string(),
            payload: Some(events::envelope::Payload::ChannelAccountChanged(
                events::ChannelAccountChanged {
                    channel_account_id: account.id.to_string(),
                    channel: account.channel.to_proto() as i32,
                    enabled: account.enabled,
                    revision: account.revision,
                },
            )),
            ..events::Envelope::default()
        };
        let message = Outgoing::envelope(&envelope, self.publisher.bus().config().partitions);
        if let Err(error) = self.publisher.publish_optional(message).await {
            tracing::warn!(error = %error, channel_account_id = %account.id, "channel account change not announced");
        }
    }
}

async fn update_in_transaction(
    pool: &Pool,
    workspace: &WorkspaceId,
    id: &ChannelAccountId,
    patch: &ChannelAccountPatch,
) -> Result<ChannelAccount, Status> {
    let mut client = client(pool).await?;
    let transaction = client.transaction().await.map_err(TenancyError::from)?;
    let account = store::update_channel_account(&transaction, workspace, id, patch)
        .await?
        .ok_or_else(|| TenancyError::NotFound(format!("channel account {id}")))?;
    transaction.commit().await.map_err(TenancyError::from)?;
    Ok(account)
}

/// `ChannelAccountService`: scoped to the caller's workspace.
pub(crate) struct ChannelAccounts {
    pool: Pool,
    notifier: Arc<ChangeNotifier>,
}

fn channel_field(value: i32) -> Result<Channel, Status> {
    Channel::from_proto(value).map_err(|_| {
        Status::invalid_argument("channel must be one of CHANNEL_WHATSAPP, CHANNEL_MESSENGER, CHANNEL_INSTAGRAM, CHANNEL_TELEGRAM, CHANNEL_SMS, CHANNEL_EMAIL, CHANNEL_WEBCHAT")
    })
}

#[tonic::async_trait]
impl ChannelAccountService for ChannelAccounts {
    async fn create_channel_account(
        &self,
        request: Request<proto::CreateChannelAccountRequest>,
    ) -> Result<Response<proto::CreateChannelAccountResponse>, Status> {
        let workspace = principal(&request)?.workspace()?.clone();
        let proto::CreateChannelAccountRequest {
            id,
            channel,
            name,
            external_id,
            base_url,
            settings,
            secrets,
        } = request.into_inner();
        let settings: BTreeMap<String, String> = settings.into_iter().collect();
        let secrets: BTreeMap<String, String> = secrets.into_iter().collect();
        validate::settings(&settings)?;
        validate::secrets(&secrets)?;
        let account = NewChannelAccount {
            id: if id.is_empty() {
                ChannelAccountId::generate()
            } else {
                parse_id("id", &id, ChannelAccountId::parse)?
            },
            channel: channel_field(channel)?,
            name: validate::name("name", &name)?,
            external_id: validate::external_id(&external_id)?,
            base_url: validate::base_url(&base_url)?,
            enabled: true,
            settings,
            secrets,
        };
        let account = store::insert_channel_account(&client(&self.pool).await?, &workspace, &account).await?;
        tracing::info!(workspace_id = %workspace, channel_account_id = %account.id, channel = %account.channel, "channel account created");
        self.notifier.announce(&account).await;
        Ok(Response::new(proto::CreateChannelAccountResponse {
            account: Some(account.into()),
        }))
    }

    async fn get_channel_account(
        &self,
        request: Request<proto::GetChannelAccountRequest>,
    ) -> Result<Response<proto::GetChannelAccountResponse>, Status> {
        let workspace = principal(&request)?.workspace()?.clone();
        let proto::GetChannelAccountRequest { id } = request.into_inner();
        let id = parse_id("id", &id, ChannelAccountId::parse)?;
        let account = store::get_channel_account(&client(&self.pool).await?, &workspace, &id)
            .await?
            .ok_or_else(|| TenancyError::NotFound(format!("channel account {id}")))?;
        Ok(Response::new(proto::GetChannelAccountResponse {
            account: Some(account.into()),
        }))
    }

    async fn list_channel_accounts(
        &self,
        request: Request<proto::ListChannelAccountsRequest>,
    ) -> Result<Response<proto::ListChannelAccountsResponse>, Status> {
        let workspace = principal(&request)?.workspace()?.clone();
        let proto::ListChannelAccountsRequest { channel, page } = request.into_inner();
        let channel = if channel == 0 {
            None
        } else {
            Some(channel_field(channel)?)
        };
        let limit = page_size(page.as_ref());
        let after = page.map(|page| page.page_token).unwrap_or_default();
        let accounts =
            store::list_channel_accounts(&client(&self.pool).await?, &workspace, channel, &after, limit)
                .await?;
        let page = next_page(
            accounts.len(),
            limit,
            accounts.last().map(|account| account.id.as_str()),
        );
        Ok(Response::new(proto::ListChannelAccountsResponse {
            accounts: accounts.into_iter().map(Into::into).collect(),
            page: Some(page),
        }))
    }

    async fn update_channel_account(
        &self,
        request: Request<proto::UpdateChannelAccountRequest>,
    ) -> Result<Response<proto::UpdateChannelAccountResponse>, Status> {
        let workspace = principal(&request)?.workspace()?.clone();
        let proto::UpdateChannelAccountRequest {
            id,
            update,
            update_mask,
        } = request.into_inner();
        let id = parse_id("id", &id, ChannelAccountId::parse)?;
        let paths = update_mask.map(|mask| mask.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(Status::invalid_argument(
                "update_mask names no field; list the fields to change (name, external_id, base_url, enabled, settings, secrets)",
            ));
        }
        let proto::ChannelAccountUpdate {
            name,
            external_id,
            base_url,
            enabled,
            settings,
            secrets,
        } = update.unwrap_or_default();
        let mut patch = ChannelAccountPatch::default();
        for path in &paths {
            match path.as_str() {
                "name" => patch.name = Some(validate::name("name", &name)?),
                "external_id" => patch.external_id = Some(validate::external_id(&external_id)?),
                "base_url" => patch.base_url = Some(validate::base_url(&base_url)?),
                "enabled" => patch.enabled = Some(enabled),
                "settings" => {
                    let settings: BTreeMap<String, String> = settings.clone().into_iter().collect();
                    validate::settings(&settings)?;
                    patch.settings = Some(settings);
                }
                "secrets" => {
                    let secrets: BTreeMap<String, String> = secrets.clone().into_iter().collect();
                    validate::secrets(&secrets)?;
                    patch.secrets = Some(secrets);
                }
                other => {
                    return Err(Status::invalid_argument(format!(
                        "update_mask path {other:?} is not writable; use name, external_id, base_url, enabled, settings or secrets"
                    )));
                }
            }
        }
        let account = update_in_transaction(&self.pool, &workspace, &id, &patch).await?;
        self.notifier.announce(&account).await;
        Ok(Response::new(proto::UpdateChannelAccountResponse {
            account: Some(account.into()),
        }))
    }

    async fn disable_channel_account(
        &self,
        request: Request<proto::DisableChannelAccountRequest>,
    ) -> Result<Response<proto::DisableChannelAccountResponse>, Status> {
        let workspace = principal(&request)?.workspace()?.clone();
        let proto::DisableChannelAccountRequest { id } = request.into_inner();
        let id = parse_id("id", &id, ChannelAccountId::parse)?;
        let patch = ChannelAccountPatch {
            enabled: Some(false),
            ..ChannelAccountPatch::default()
        };
        let account = update_in_transaction(&self.pool, &workspace, &id, &patch).await?;
        tracing::info!(workspace_id = %workspace, channel_account_id = %id, "channel account disabled");
        self.notifier.announce(&account).await;
        Ok(Response::new(proto::DisableChannelAccountResponse {
            account: Some(account.into()),
        }))
    }
}

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
