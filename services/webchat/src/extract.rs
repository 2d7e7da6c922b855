//! The edge's extractors: ids are parsed here once, the account and the visitor's session or
//! the internal caller are resolved here, and JSON bodies are read here, so handlers start
//! from typed values.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret as _;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq as _;
use switchboard_domain::ChannelAccountId;

use crate::Webchat;
use crate::account::WebchatAccount;
use crate::error::{ApiError, SessionError};
use crate::store::Visitor;

/// The `{account}` of the path, parsed (a malformed id names no account).
pub(crate) struct AccountId(pub(crate) ChannelAccountId);

impl<S: Send + Sync> FromRequestParts<S> for AccountId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::UnknownAccount)?;
        params
            .iter()
            .find(|(name, _)| *name == "account")
            .and_then(|(_, value)| ChannelAccountId::parse(value).ok())
            .map(Self)
            .ok_or(ApiError::UnknownAccount)
    }
}

/// The enabled web chat account of the path.
pub(crate) struct Account(pub(crate) WebchatAccount);

impl FromRequestParts<Arc<Webchat>> for Account {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, webchat: &Arc<Webchat>) -> Result<Self, Self::Rejection> {
        let AccountId(id) = AccountId::from_request_parts(parts, webchat).await?;
        webchat.account(&id).await.map(Self)
    }
}

/// The account and the visitor of an authenticated REST call (`Authorization: Bearer <session
/// token>`).
pub(crate) struct VisitorSession {
    /// The account of the path.
    pub(crate) account: WebchatAccount,
    /// The visitor the token stands for.
    pub(crate) visitor: Visitor,
}

impl FromRequestParts<Arc<Webchat>> for VisitorSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, webchat: &Arc<Webchat>) -> Result<Self, Self::Rejection> {
        let Account(account) = Account::from_request_parts(parts, webchat).await?;
        let token = bearer(&parts.headers)
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(SessionError::Missing)?;
        let visitor = webchat.visitor(&account, token).await?;
        Ok(Self { account, visitor })
    }
}

/// A call of the internal API (`Authorization: Bearer <internal token>`), for the account of
/// the path.
pub(crate) struct InternalCaller(pub(crate) WebchatAccount);

impl FromRequestParts<Arc<Webchat>> for InternalCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, webchat: &Arc<Webchat>) -> Result<Self, Self::Rejection> {
        let presented = bearer(&parts.headers).unwrap_or("");
        let expected = webchat.internal_token.expose_secret();
        let authorized =
            presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()));
        if !authorized {
            return Err(ApiError::NotInternalCaller);
        }
        let Account(account) = Account::from_request_parts(parts, webchat).await?;
        Ok(Self(account))
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
}

/// The client's IP: the configured proxy header's last address, else the TCP peer.
pub(crate) struct ClientIp(pub(crate) Option<IpAddr>);

impl FromRequestParts<Arc<Webchat>> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, webchat: &Arc<Webchat>) -> Result<Self, Self::Rejection> {
        let forwarded = webchat.config.client_ip_header.as_deref().and_then(|name| {
            parts
                .headers
                .get(name)?
                .to_str()
                .ok()?
                // The last address is the one the trusted proxy added; earlier ones are the
                // client's to choose.
                .rsplit(',')
                .next()?
                .trim()
                .parse()
                .ok()
        });
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip());
        Ok(Self(forwarded.or(peer)))
    }
}

/// Why a JSON body was refused: unreadable (over the size limit, …: axum's own answer), or
/// not the expected JSON (400 `invalid_request` saying where).
#[derive(Debug)]
pub(crate) enum JsonRejection {
    /// The body could not be read.
    Read(BytesRejection),
    /// The body is not the expected JSON.
    Invalid(ApiError),
}

impl IntoResponse for JsonRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Read(rejection) => rejection.into_response(),
            Self::Invalid(error) => error.into_response(),
        }
    }
}

/// A JSON body of the expected shape.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = JsonRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_json(request, state, || None).await.map(Self)
    }
}

/// A JSON body that may be left out: an empty body is `T::default()`.
pub(crate) struct JsonOrDefault<T>(pub(crate) T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for JsonOrDefault<T> {
    type Rejection = JsonRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_json(request, state, || Some(T::default())).await.map(Self)
    }
}

/// Reads the body as `T`; an empty body is `when_empty()` when that gives a value.
async fn read_json<T: DeserializeOwned, S: Send + Sync>(
    request: Request,
    state: &S,
    when_empty: impl FnOnce() -> Option<T>,
) -> Result<T, JsonRejection> {
    let body = Bytes::from_request(request, state)
        .await
        .map_err(JsonRejection::Read)?;
    if body.is_empty()
        && let Some(value) = when_empty()
    {
        return Ok(value);
    }
    serde_json::from_slice(&body).map_err(|error| JsonRejection::Invalid(ApiError::BadJson(error)))
}
