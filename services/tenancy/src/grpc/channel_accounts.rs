//! `ChannelAccountService` (scoped to the caller's workspace) and the announcement of its
//! changes on the bus.

use std::collections::BTreeMap;
use std::sync::Arc;

use switchboard_domain::{Channel, ChannelAccountId, EventId, WorkspaceId};
use switchboard_messaging::{Outgoing, Publisher};
use switchboard_postgres::Pool;
use switchboard_proto::events::v1 as events;
use switchboard_proto::tenancy::v1 as proto;
use switchboard_proto::tenancy::v1::channel_account_service_server::{
    ChannelAccountService, ChannelAccountServiceServer,
};
use switchboard_server::auth::principal;
use tonic::{Request, Response, Status};

use super::{client, next_page, page_size, parse_id};
use crate::model::{ChannelAccount, ChannelAccountPatch, NewChannelAccount};
use crate::{TenancyError, store, validate};

/// Builds the channel accounts service.
pub(crate) fn channel_account_server(
    pool: Pool,
    notifier: Arc<ChangeNotifier>,
) -> ChannelAccountServiceServer<ChannelAccounts> {
    ChannelAccountServiceServer::new(ChannelAccounts { pool, notifier })
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
    /// A notifier publishing with `publisher`.
    pub(crate) fn new(publisher: Publisher) -> Self {
        Self { publisher }
    }

    /// Publishes `account`'s new state (best effort: a failure is logged).
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
        let message = Outgoing::envelope(&envelope, self.publisher.bus().partitions());
        if let Err(error) = self.publisher.publish_optional(message).await {
            tracing::warn!(error = %error, channel_account_id = %account.id, "channel account change not announced");
        }
    }
}

/// Applies `patch` to channel account `id` of `workspace` in a transaction.
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

/// The `channel` argument, checked.
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
