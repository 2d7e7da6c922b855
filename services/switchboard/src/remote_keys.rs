//! API-key checks for processes that do not run tenancy: tenancy's internal
//! `ApiKeyDirectoryService`, with verified keys cached for `auth.key_cache_ttl` (the same
//! revocation delay as in tenancy's own process).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use sha2::{Digest, Sha256};
use switchboard_domain::WorkspaceId;
use switchboard_proto::tenancy::v1 as proto;
use switchboard_proto::tenancy::v1::api_key_directory_service_client::ApiKeyDirectoryServiceClient;
use switchboard_server::GrpcClientConfig;
use switchboard_server::auth::{AuthError, AuthFuture, Authenticator, InternalTokenInterceptor, Principal};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Past this many cached keys the cache starts over.
const MAX_CACHED: usize = 10_000;

type Client = ApiKeyDirectoryServiceClient<InterceptedService<Channel, InternalTokenInterceptor>>;

/// Verifies API keys by asking tenancy.
pub(crate) struct RemoteKeyAuthenticator {
    client: Client,
    ttl: Duration,
    /// Verified keys by the SHA-256 of the token (tokens themselves are not kept).
    cache: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

impl RemoteKeyAuthenticator {
    /// A client of the directory at `config.endpoint`, presenting `internal_token`.
    pub(crate) fn new(
        config: &GrpcClientConfig,
        internal_token: &SecretString,
        ttl: Duration,
    ) -> Result<Self, String> {
        Ok(Self {
            client: ApiKeyDirectoryServiceClient::with_interceptor(
                config.lazy_channel()?,
                InternalTokenInterceptor::new(internal_token)?,
            ),
            ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Ok(cache) = self.cache.lock()
            && let Some((principal, at)) = cache.get(&digest)
            && at.elapsed() < self.ttl
        {
            return Ok(principal.clone());
        }
        let response = self
            .client
            .clone()
            .authenticate_api_key(proto::AuthenticateApiKeyRequest {
                token: token.to_owned(),
            })
            .await;
        let answer = match response {
            Ok(answer) => answer.into_inner(),
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                return Err(AuthError::InvalidKey);
            }
            Err(status) => return Err(AuthError::Unavailable(Box::new(status))),
        };
        let role = switchboard_tenancy::role_from_proto(answer.role).ok_or(AuthError::InvalidKey)?;
        let workspace_id = if answer.workspace_id.is_empty() {
            None
        } else {
            Some(WorkspaceId::parse(&answer.workspace_id).map_err(|_| AuthError::InvalidKey)?)
        };
        let principal = Principal {
            key_id: answer.key_id,
            workspace_id,
            role,
        };
        if !self.ttl.is_zero()
            && let Ok(mut cache) = self.cache.lock()
        {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(digest, (principal.clone(), Instant::now()));
        }
        Ok(principal)
    }
}

impl Authenticator for RemoteKeyAuthenticator {
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a> {
        Box::pin(self.verify(token))
    }
}
