//! `POST sessions`: a new visitor, or the visitor of a stored session token (for the same
//! signed-in user), with the pre-chat form checked and a fresh session token.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::Webchat;
use crate::account::{FieldRule, WebchatAccount};
use crate::error::{ApiError, SessionError};
use crate::extract::{Account, ClientIp, JsonOrDefault, JsonRejection};
use crate::store::Visitor;
use crate::token;

/// Longest pre-chat field and host-site user id.
const MAX_FIELD_CHARS: usize = 200;

/// The body of `POST sessions`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SessionRequest {
    name: String,
    email: String,
    phone: String,
    session_token: String,
    user_id: String,
    user_hash: String,
}

/// `POST sessions`, counted by outcome.
pub(super) async fn create_session(
    State(webchat): State<Arc<Webchat>>,
    ClientIp(ip): ClientIp,
    account: Result<Account, ApiError>,
    body: Result<JsonOrDefault<SessionRequest>, JsonRejection>,
) -> Result<Response, Response> {
    let request = match body {
        Ok(JsonOrDefault(request)) => Ok(request),
        // An unreadable body is refused before anything else (not a session outcome).
        Err(JsonRejection::Read(rejection)) => return Err(rejection.into_response()),
        Err(JsonRejection::Invalid(error)) => Err(error),
    };
    let created = match (account, request) {
        (Ok(Account(account)), Ok(request)) => start_session(&webchat, &account, ip, &request).await,
        (Err(error), _) | (_, Err(error)) => Err(error),
    };
    webchat.metrics.session(match &created {
        Ok((_, true)) => "resumed",
        Ok((_, false)) => "created",
        Err(error) => error.wire_code(),
    });
    created
        .map(|(response, _)| response)
        .map_err(IntoResponse::into_response)
}

/// Creates or resumes a session; the answer and whether it resumed an earlier visitor.
async fn start_session(
    webchat: &Webchat,
    account: &WebchatAccount,
    ip: Option<IpAddr>,
    request: &SessionRequest,
) -> Result<(Response, bool), ApiError> {
    let secret = webchat.session_secret(account)?;
    let user_id = verified_user(account, request)?;
    // A stored session resumes only for the same signed-in user (or for no one): after a
    // sign-out or a user switch on a shared browser, the old user's chat is not shown.
    let resumable = if request.session_token.is_empty() {
        None
    } else {
        match webchat.visitor(account, &request.session_token).await {
            Ok(visitor) if visitor.user_id == user_id => Some(visitor),
            Ok(_) | Err(_) if user_id.is_some() => None,
            Ok(_) => return Err(SessionError::SignedInUser.into()),
            Err(error) => return Err(error),
        }
    };
    let (visitor, resumed) = if let Some(visitor) = resumable {
        (visitor, true)
    } else {
        limit_new_session(webchat, ip)?;
        let (name, email, phone) = profile(account, request)?;
        let new = Visitor {
            account_id: account.id().clone(),
            visitor_id: format!("wcv_{}", uuid::Uuid::new_v4().simple()),
            workspace_id: account.resolved.workspace_id.clone(),
            user_id,
            name,
            email,
            phone,
            last_seq: 0,
            delivered_seq: 0,
            visitor_read_seq: 0,
            agent_read_seq: 0,
        };
        let stored = webchat.store.create_visitor(&new).await?;
        let resumed = stored.visitor_id != new.visitor_id;
        (stored, resumed)
    };
    let expires = chrono::Utc::now() + webchat.config.session_ttl;
    let session_token = token::issue(
        secret,
        &token::SessionClaims {
            acc: account.id().to_string(),
            vis: visitor.visitor_id.clone(),
            exp: expires.timestamp(),
        },
    );
    let body = json!({
        "session_token": session_token,
        "visitor_id": visitor.visitor_id,
        "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "resumed": resumed,
        "last_seq": visitor.last_seq,
        "agent_read_seq": visitor.agent_read_seq,
        "visitor": {"name": visitor.name, "email": visitor.email, "phone": visitor.phone},
    });
    Ok(((StatusCode::CREATED, Json(body)).into_response(), resumed))
}

fn limit_new_session(webchat: &Webchat, ip: Option<IpAddr>) -> Result<(), ApiError> {
    let ip = ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    webchat
        .session_limiter
        .check_key(&ip)
        .map_err(|_| ApiError::TooManySessions {
            per_minute: webchat.config.sessions_per_ip_per_minute,
        })
}

/// The host site's user id, when the request proves it with `user_hash`.
fn verified_user(account: &WebchatAccount, request: &SessionRequest) -> Result<Option<String>, ApiError> {
    if request.user_id.is_empty() && request.user_hash.is_empty() {
        return Ok(None);
    }
    let verified = account
        .identity_secret()
        .is_some_and(|secret| token::identity_verified(secret, &request.user_id, &request.user_hash));
    if request.user_id.is_empty() || request.user_id.len() > MAX_FIELD_CHARS || !verified {
        return Err(ApiError::IdentityNotVerified);
    }
    Ok(Some(request.user_id.clone()))
}

/// A pre-chat field checked against its rule: trimmed, empty when hidden.
fn field(rule: FieldRule, name: &'static str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    match rule {
        FieldRule::Hidden => Ok(String::new()),
        FieldRule::Required if value.is_empty() => Err(ApiError::FieldRequired(name)),
        _ if value.chars().count() > MAX_FIELD_CHARS => Err(ApiError::FieldTooLong(name)),
        _ => Ok(value.to_owned()),
    }
}

/// The pre-chat fields, checked against the account's form: (name, e-mail, E.164 phone).
fn profile(account: &WebchatAccount, request: &SessionRequest) -> Result<(String, String, String), ApiError> {
    let name = field(account.prechat.name, "name", &request.name)?;
    let email = field(account.prechat.email, "email", &request.email)?;
    let phone = field(account.prechat.phone, "phone", &request.phone)?;
    if !email.is_empty() && !plausible_email(&email) {
        return Err(ApiError::InvalidEmail);
    }
    let phone = if phone.is_empty() {
        phone
    } else {
        e164(&phone).ok_or(ApiError::InvalidPhone)?
    };
    Ok((name, email.to_ascii_lowercase(), phone))
}

fn plausible_email(email: &str) -> bool {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email
                    .chars()
                    .any(|c| c.is_whitespace() || c == ',' || c == '<' || c == '>')
        }
        None => false,
    }
}

fn e164(phone: &str) -> Option<String> {
    let parsed = phonenumber::parse(None, phone).ok()?;
    phonenumber::is_valid(&parsed).then(|| parsed.format().mode(phonenumber::Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_phones_are_checked() {
        assert!(plausible_email("ada@example.com"));
        assert!(!plausible_email("ada@localhost"));
        assert!(!plausible_email("ada example.com"));
        assert!(!plausible_email("@example.com"));
        assert_eq!(e164("+1 415 555 0100").as_deref(), Some("+14155550100"));
        assert_eq!(e164("0415 555 0100"), None);
        assert_eq!(e164("+999"), None);
    }
}
