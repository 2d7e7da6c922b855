//! Bearer API-key authentication for gRPC: a tower layer that resolves
//! `authorization: Bearer <key>` to a [`Principal`] before any handler runs, and helpers that
//! scope a call to the principal's workspace.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use switchboard_domain::{ErrorCode, WorkspaceId};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Administers the platform (workspaces, keys); has no workspace.
    PlatformAdmin,
    /// Everything inside one workspace, including admin-only operations.
    WorkspaceAdmin,
    /// Day-to-day operations inside one workspace.
    WorkspaceMember,
    /// Another Switchboard component (`auth.internal_token`): may resolve channel-account
    /// secrets, and nothing a customer's key may do.
    Internal,
}

/// The authenticated caller of a gRPC request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Id of the key used (`bootstrap` for the bootstrap token).
    pub key_id: String,
    /// The workspace the key belongs to; `None` for platform keys.
    pub workspace_id: Option<WorkspaceId>,
    /// What the key may do.
    pub role: Role,
}

impl Principal {
    /// Refuses anyone but a platform admin.
    pub fn require_platform_admin(&self) -> Result<(), tonic::Status> {
        match self.role {
            Role::PlatformAdmin => Ok(()),
            Role::WorkspaceAdmin | Role::WorkspaceMember | Role::Internal => {
                Err(tonic::Status::permission_denied(
                    "this call needs a platform admin key; workspace keys cannot use it",
                ))
            }
        }
    }

    /// Refuses anyone but another Switchboard component.
    pub fn require_internal(&self) -> Result<(), tonic::Status> {
        match self.role {
            Role::Internal => Ok(()),
            Role::PlatformAdmin | Role::WorkspaceAdmin | Role::WorkspaceMember => {
                Err(tonic::Status::permission_denied(
                    "this call is internal to Switchboard; api keys cannot use it",
                ))
            }
        }
    }

    /// The caller's workspace, for calls that need a workspace admin key.
    pub fn admin_workspace(&self) -> Result<&WorkspaceId, tonic::Status> {
        let workspace = self.workspace()?;
        match self.role {
            Role::WorkspaceAdmin => Ok(workspace),
            Role::PlatformAdmin | Role::WorkspaceMember | Role::Internal => Err(
                tonic::Status::permission_denied("this call needs a workspace admin key"),
            ),
        }
    }

    /// The caller's workspace; platform keys are refused (they act on no workspace's data).
    pub fn workspace(&self) -> Result<&WorkspaceId, tonic::Status> {
        self.workspace_id.as_ref().ok_or_else(|| {
            tonic::Status::permission_denied("this call acts inside a workspace; use a workspace api key")
        })
    }
}

/// Returns the principal the auth layer attached to `request`.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<&Principal, tonic::Status> {
    request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| tonic::Status::unauthenticated("missing authorization: Bearer <api key>"))
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown, malformed or revoked key.
    #[error("invalid or revoked api key")]
    InvalidKey,
    /// The key store could not be asked.
    #[error("api keys cannot be checked right now")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AuthError {
    /// Classifies the failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidKey => ErrorCode::Unauthenticated,
            Self::Unavailable(_) => ErrorCode::Unavailable,
        }
    }
}

/// Boxed future returned by [`Authenticator::authenticate`].
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Principal, AuthError>> + Send + 'a>>;

/// Resolves a bearer token to a principal (implemented by the tenancy component).
pub trait Authenticator: Send + Sync + 'static {
    /// Verifies `token`.
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a>;
}

/// Metadata with which a call made with the internal token acts inside one workspace, with
/// the rights of a workspace member (never an admin's).
pub const ACT_FOR_WORKSPACE_HEADER: &str = "x-switchboard-workspace";

/// Makes an internal call act inside `workspace` (see [`ACT_FOR_WORKSPACE_HEADER`]).
pub fn act_for_workspace<T>(request: &mut tonic::Request<T>, workspace: &WorkspaceId) {
    if let Ok(value) = workspace.as_str().parse() {
        request.metadata_mut().insert(ACT_FOR_WORKSPACE_HEADER, value);
    }
}

/// A tonic client interceptor for calls between components: adds `authorization: Bearer
/// <internal token>` and the current span's trace context.
#[derive(Clone)]
pub struct InternalTokenInterceptor {
    authorization: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl InternalTokenInterceptor {
    /// An interceptor presenting `internal_token`; fails when the token is not printable ASCII.
    pub fn new(internal_token: &SecretString) -> Result<Self, String> {
        let authorization = format!("Bearer {}", internal_token.expose_secret())
            .parse()
            .map_err(|_| "auth.internal_token must be printable ASCII".to_owned())?;
        Ok(Self { authorization })
    }
}

impl tonic::service::Interceptor for InternalTokenInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        switchboard_telemetry::propagation::TraceContextInterceptor.call(request)
    }
}

/// The authenticator of processes that run no key-verifying component (e.g. ingress alone):
/// every API key is refused; the bootstrap and internal tokens still work.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoApiKeys;

impl Authenticator for NoApiKeys {
    fn authenticate<'a>(&'a self, _token: &'a str) -> AuthFuture<'a> {
        Box::pin(async { Err(AuthError::InvalidKey) })
    }
}

/// Tower layer that authenticates every gRPC call except health and reflection.
#[derive(Clone)]
pub struct GrpcAuthLayer {
    authenticator: Arc<dyn Authenticator>,
    bootstrap_token: Option<SecretString>,
    internal_token: Option<SecretString>,
}

impl GrpcAuthLayer {
    /// A layer that asks `authenticator`, and also accepts `bootstrap_token` as a platform
    /// admin and `internal_token` as another Switchboard component.
    pub fn new(
        authenticator: Arc<dyn Authenticator>,
        bootstrap_token: Option<SecretString>,
        internal_token: Option<SecretString>,
    ) -> Self {
        Self {
            authenticator,
            bootstrap_token,
            internal_token,
        }
    }
}

/// Returns true when `token` equals the configured secret (constant time).
fn matches_secret(secret: &Option<SecretString>, token: &str) -> bool {
    secret
        .as_ref()
        .is_some_and(|secret| bool::from(secret.expose_secret().as_bytes().ct_eq(token.as_bytes())))
}

impl<S> tower::Layer<S> for GrpcAuthLayer {
    type Service = GrpcAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcAuth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service produced by [`GrpcAuthLayer`].
#[derive(Clone)]
pub struct GrpcAuth<S> {
    inner: S,
    layer: GrpcAuthLayer,
}

/// Paths reachable without a key: health checks and reflection.
fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.")
}

fn bearer_token(headers: &http::HeaderMap) -> Result<&str, &'static str> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let value = values.next().ok_or("missing authorization: Bearer <api key>")?;
    if values.next().is_some() {
        return Err("more than one authorization header");
    }
    let value = value.to_str().map_err(|_| "authorization header is not text")?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("authorization must be `Bearer <api key>`")?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err("authorization must be `Bearer <api key>`");
    }
    Ok(token.trim())
}

impl<S, B> tower::Service<http::Request<B>> for GrpcAuth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The ready service goes into the future; a fresh clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if is_public(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        let layer = self.layer.clone();
        Box::pin(async move {
            let token = match bearer_token(request.headers()) {
                Ok(token) => token.to_owned(),
                Err(reason) => return Ok(tonic::Status::unauthenticated(reason).into_http()),
            };
            let fixed_principal = if matches_secret(&layer.bootstrap_token, &token) {
                Some(("bootstrap", Role::PlatformAdmin))
            } else if matches_secret(&layer.internal_token, &token) {
                Some(("internal", Role::Internal))
            } else {
                None
            };
            if let Some((key_id, role)) = fixed_principal {
                // Another component may act inside one workspace (delivery reading a contact).
                let workspace_id = match (role, request.headers().get(ACT_FOR_WORKSPACE_HEADER)) {
                    (Role::Internal, Some(value)) => {
                        match value
                            .to_str()
                            .ok()
                            .and_then(|value| WorkspaceId::parse(value).ok())
                        {
                            Some(workspace) => Some(workspace),
                            None => {
                                return Ok(tonic::Status::invalid_argument(format!(
                                    "{ACT_FOR_WORKSPACE_HEADER} must be a workspace id (ws_…)"
                                ))
                                .into_http());
                            }
                        }
                    }
                    _ => None,
                };
                request.extensions_mut().insert(Principal {
                    key_id: key_id.to_owned(),
                    workspace_id,
                    role,
                });
                return inner.call(request).await;
            }
            match layer.authenticator.authenticate(&token).await {
                Ok(principal) => {
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                Err(error) => Ok(crate::status_from(error.code(), &error).into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        let mut headers = http::HeaderMap::new();
        assert!(bearer_token(&headers).is_err());
        headers.insert(http::header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), Ok("abc"));
        headers.insert(http::header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer_token(&headers).is_err());
        headers.insert(http::header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        headers.append(http::header::AUTHORIZATION, "Bearer def".parse().unwrap());
        assert!(
            bearer_token(&headers).is_err(),
            "ambiguous duplicate headers are refused"
        );
    }
}
