//! Channel accounts with their secrets, resolved through tenancy's internal
//! `ChannelAccountDirectoryService` and cached for a short time.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use switchboard_domain::Channel;
use switchboard_proto::tenancy::v1::channel_account_directory_service_client::ChannelAccountDirectoryServiceClient;
use switchboard_proto::tenancy::v1::{
    ChannelAccount, FindChannelAccountRequest, ResolveChannelAccountRequest,
};
use switchboard_server::GrpcClientConfig;
use switchboard_server::auth::InternalTokenInterceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel as GrpcChannel;

/// Unknown account ids are remembered this long, so a flood of bad URLs does not reach tenancy.
const NOT_FOUND_TTL: Duration = Duration::from_secs(5);
/// A cached account whose secret failed a check is re-fetched only when it is older than this.
const REFRESH_AFTER: Duration = Duration::from_secs(1);
/// Past this many entries the cache starts over (bounded memory under random ids).
const MAX_ENTRIES: usize = 100_000;

/// A channel account as ingress needs it: who owns it, the provider's id and its secrets.
pub struct ResolvedAccount {
    /// `chacc_…`.
    pub id: String,
    /// The owning workspace.
    pub workspace_id: String,
    /// The account's channel.
    pub channel: Channel,
    /// The provider's id of the account (phone_number_id, page id, bot id, number, address).
    pub external_id: String,
    /// Provider API base URL override; empty = the provider's default.
    pub base_url: String,
    /// Disabled accounts answer 404.
    pub enabled: bool,
    /// Non-secret provider settings.
    pub settings: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    fetched_at: Instant,
}

impl ResolvedAccount {
    /// The secret called `name`, when set and non-empty.
    pub fn secret(&self, name: &str) -> Option<&[u8]> {
        self.secrets
            .get(name)
            .filter(|value| !value.is_empty())
            .map(String::as_bytes)
    }

    /// Every secret by name (for building provider requests; never log them).
    pub fn secrets(&self) -> &BTreeMap<String, String> {
        &self.secrets
    }

    /// The setting called `name`, when set.
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings.get(name).map(String::as_str)
    }

    /// True when this copy is old enough to be worth fetching again after a failed check.
    pub fn may_be_stale(&self) -> bool {
        self.fetched_at.elapsed() >= REFRESH_AFTER
    }
}

impl switchboard_channels::WebhookAccount for ResolvedAccount {
    fn secret(&self, name: &str) -> Option<&[u8]> {
        ResolvedAccount::secret(self, name)
    }

    fn setting(&self, name: &str) -> Option<&str> {
        ResolvedAccount::setting(self, name)
    }
}

impl fmt::Debug for ResolvedAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedAccount")
            .field("id", &self.id)
            .field("workspace_id", &self.workspace_id)
            .field("channel", &self.channel)
            .field("enabled", &self.enabled)
            .field("secret_names", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why an account could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// No such account.
    #[error("channel account not found")]
    NotFound,
    /// Tenancy could not be asked (down, misconfigured token).
    #[error("channel account directory unavailable: {0}")]
    Unavailable(String),
}

type DirectoryClient =
    ChannelAccountDirectoryServiceClient<InterceptedService<GrpcChannel, InternalTokenInterceptor>>;

enum Cached {
    Found(Arc<ResolvedAccount>),
    NotFound(Instant),
}

/// Resolves channel accounts, caching them for `ttl`.
pub struct AccountDirectory {
    client: DirectoryClient,
    cache: RwLock<HashMap<String, Cached>>,
    ttl: Duration,
}

impl AccountDirectory {
    /// A directory client for `config.endpoint` authenticating with `internal_token`
    /// (connects lazily, so ingress starts before tenancy does).
    pub fn new(
        config: &GrpcClientConfig,
        internal_token: &SecretString,
        ttl: Duration,
    ) -> Result<Self, String> {
        let client = ChannelAccountDirectoryServiceClient::with_interceptor(
            config.lazy_channel()?,
            InternalTokenInterceptor::new(internal_token)?,
        );
        Ok(Self {
            client,
            cache: RwLock::new(HashMap::new()),
            ttl,
        })
    }

    /// The account `id`, from the cache when fresh.
    pub async fn resolve(&self, id: &str) -> Result<Arc<ResolvedAccount>, DirectoryError> {
        match self.cached(id) {
            Some(result) => result,
            None => self.fetch(id).await,
        }
    }

    /// Fetches `id` from tenancy, bypassing and then updating the cache.
    pub async fn fetch(&self, id: &str) -> Result<Arc<ResolvedAccount>, DirectoryError> {
        let mut client = self.client.clone();
        let response = client
            .resolve_channel_account(ResolveChannelAccountRequest { id: id.to_owned() })
            .await
            .map(|response| {
                let response = response.into_inner();
                (response.account, response.secrets)
            });
        self.remember(id.to_owned(), response)
    }

    /// The account of `channel` whose provider id is `external_id` (e.g. the e-mail address
    /// a message was sent to), from the cache when fresh.
    pub async fn find(
        &self,
        channel: Channel,
        external_id: &str,
    ) -> Result<Arc<ResolvedAccount>, DirectoryError> {
        let key = format!("{}:{}", channel.as_str(), external_id.to_lowercase());
        if let Some(result) = self.cached(&key) {
            return result;
        }
        let mut client = self.client.clone();
        let response = client
            .find_channel_account(FindChannelAccountRequest {
                channel: channel.to_proto() as i32,
                external_id: external_id.to_owned(),
            })
            .await
            .map(|response| {
                let response = response.into_inner();
                (response.account, response.secrets)
            });
        self.remember(key, response)
    }

    fn cached(&self, key: &str) -> Option<Result<Arc<ResolvedAccount>, DirectoryError>> {
        self.cache.read().ok().and_then(|cache| match cache.get(key) {
            Some(Cached::Found(account)) if account.fetched_at.elapsed() < self.ttl => {
                Some(Ok(account.clone()))
            }
            Some(Cached::NotFound(at)) if at.elapsed() < NOT_FOUND_TTL.min(self.ttl) => {
                Some(Err(DirectoryError::NotFound))
            }
            _ => None,
        })
    }

    /// Turns a directory answer into a cache entry under `key`.
    fn remember(
        &self,
        key: String,
        response: Result<(Option<ChannelAccount>, std::collections::HashMap<String, String>), tonic::Status>,
    ) -> Result<Arc<ResolvedAccount>, DirectoryError> {
        let entry = match response {
            Ok((account, secrets)) => {
                let account = account.ok_or_else(|| {
                    DirectoryError::Unavailable("directory answered without an account".to_owned())
                })?;
                let channel = Channel::from_proto(account.channel)
                    .map_err(|error| DirectoryError::Unavailable(error.to_string()))?;
                Cached::Found(Arc::new(ResolvedAccount {
                    id: account.id,
                    workspace_id: account.workspace_id,
                    channel,
                    external_id: account.external_id,
                    base_url: account.base_url,
                    enabled: account.enabled,
                    settings: account.settings.into_iter().collect(),
                    secrets: secrets.into_iter().collect(),
                    fetched_at: Instant::now(),
                }))
            }
            Err(status) if status.code() == tonic::Code::NotFound => Cached::NotFound(Instant::now()),
            Err(status) => {
                return Err(DirectoryError::Unavailable(format!(
                    "{:?}: {}",
                    status.code(),
                    status.message()
                )));
            }
        };
        let result = match &entry {
            Cached::Found(account) => Ok(account.clone()),
            Cached::NotFound(_) => Err(DirectoryError::NotFound),
        };
        if self.ttl > Duration::ZERO
            && let Ok(mut cache) = self.cache.write()
        {
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
            cache.insert(key, entry);
        }
        result
    }
}
