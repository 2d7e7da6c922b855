//! The public HTTP side of web chat: the widget script, the demo page, the account's widget
//! config, sessions, the REST fallback and attachments, all behind the account's origin
//! allowlist (CORS). The WebSocket is in `socket`, the internal API for delivery in `internal`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sha2::Digest as _;

use crate::account::{FieldRule, WebchatAccount};
use crate::store::{Attachment, Visitor};
use crate::{ApiError, VisitorSend, Webchat, token};

/// The widget script, served as `widget.js`.
const WIDGET_JS: &str = include_str!("../assets/widget.js");
/// The demo page, served as `demo` on accounts with `demo_page=true`.
const DEMO_HTML: &str = include_str!("../assets/demo.html");
/// Largest JSON body of the REST endpoints.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// The web chat routes under `/webchat/{account_id}/`.
pub(crate) fn router(webchat: Arc<Webchat>) -> Router {
    let attachment_limit = webchat.config.max_attachment_bytes + 1;
    let public = Router::new()
        .route("/webchat/{account}/config", get(widget_config))
        .route("/webchat/{account}/sessions", post(create_session))
        .route(
            "/webchat/{account}/messages",
            get(list_messages).post(post_message),
        )
        .route("/webchat/{account}/typing", post(post_typing))
        .route(
            "/webchat/{account}/read",
            post(|State(webchat), Path(account), headers, body| {
                post_mark(webchat, account, headers, body, true)
            }),
        )
        .route(
            "/webchat/{account}/delivered",
            post(|State(webchat), Path(account), headers, body| {
                post_mark(webchat, account, headers, body, false)
            }),
        )
        .route("/webchat/{account}/ws", get(crate::socket::upgrade))
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .merge(
            Router::new()
                .route("/webchat/{account}/attachments", post(upload_attachment))
                .layer(DefaultBodyLimit::max(attachment_limit)),
        )
        .layer(middleware::from_fn_with_state(webchat.clone(), check_origin));
    Router::new()
        .route("/webchat/{account}/widget.js", get(widget_js))
        .route("/webchat/{account}/demo", get(demo_page))
        .route("/webchat/{account}/attachments/{id}", get(download_attachment))
        .merge(crate::internal::router())
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .merge(public)
        .with_state(webchat)
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

/// The account's origin check: a browser request (one with `Origin`) from an origin the
/// account does not allow gets 403 before anything else; preflights are answered here; allowed
/// responses carry `Access-Control-Allow-Origin`.
async fn check_origin(
    State(webchat): State<Arc<Webchat>>,
    Path(params): Path<Vec<(String, String)>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(origin) = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(request).await;
    };
    let account_id = params
        .iter()
        .find(|(name, _)| name == "account")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    let account = match webchat.account(&account_id).await {
        Ok(account) => account,
        Err(error) => return error.into_response(),
    };
    // Switchboard's own pages (the demo) are same-origin: the public origin, or the host the
    // request was sent to.
    let own = [
        webchat.public_base_url.clone(),
        crate::request_origin(request.headers()),
    ];
    if !own
        .iter()
        .flatten()
        .any(|own| account.origins.allows(&origin, Some(own)))
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            format!("{origin} may not embed this chat; add it to the account's allowed_origins"),
        )
        .into_response();
    }
    let preflight = request.method() == Method::OPTIONS;
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    response
}

async fn widget_js(State(webchat): State<Arc<Webchat>>, Path(account): Path<String>) -> Response {
    if let Err(error) = webchat.account(&account).await {
        return error.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        WIDGET_JS,
    )
        .into_response()
}

async fn demo_page(State(webchat): State<Arc<Webchat>>, Path(account): Path<String>) -> Response {
    match webchat.account(&account).await {
        Ok(account) if account.demo_page => Html(DEMO_HTML).into_response(),
        Ok(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "no_demo_page",
            "this account has no demo page (setting demo_page=true turns it on)",
        )
        .into_response(),
        Err(error) => error.into_response(),
    }
}

async fn widget_config(
    State(webchat): State<Arc<Webchat>>,
    Path(account): Path<String>,
) -> Result<Response, ApiError> {
    let account = webchat.account(&account).await?;
    let config = &webchat.config;
    Ok(Json(json!({
        "account_id": account.id(),
        "title": account.title,
        "greeting": account.greeting,
        "primary_color": account.primary_color,
        "prechat": account.prechat,
        "limits": {
            "max_message_chars": config.max_message_chars,
            "max_attachment_bytes": config.max_attachment_bytes,
            "messages_per_second": config.messages_per_second,
        },
    }))
    .into_response())
}

/// The body of `POST sessions`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SessionRequest {
    name: String,
    email: String,
    phone: String,
    session_token: String,
    user_id: String,
    user_hash: String,
}

/// Parses a JSON body with a message that says where it is wrong.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("the body is not the expected JSON: {error}")))
}

async fn create_session(
    State(webchat): State<Arc<Webchat>>,
    Path(account): Path<String>,
    ClientIp(ip): ClientIp,
    body: Bytes,
) -> Result<Response, ApiError> {
    let created = start_session(&webchat, &account, ip, &body).await;
    webchat.metrics.session(match &created {
        Ok((_, true)) => "resumed",
        Ok((_, false)) => "created",
        Err(error) => error.code,
    });
    created.map(|(response, _)| response)
}

/// Creates or resumes a session; the answer and whether it resumed an earlier visitor.
async fn start_session(
    webchat: &Webchat,
    account: &str,
    ip: Option<IpAddr>,
    body: &[u8],
) -> Result<(Response, bool), ApiError> {
    let account = webchat.account(account).await?;
    let request: SessionRequest = if body.is_empty() {
        SessionRequest::default()
    } else {
        parse_json(body)?
    };
    let secret = account.session_secret().ok_or_else(crate::not_configured)?;
    let user_id = verified_user(&account, &request)?;
    // A stored session resumes only for the same signed-in user (or for no one): after a
    // sign-out or a user switch on a shared browser, the old user's chat is not shown.
    let resumable = if request.session_token.is_empty() {
        None
    } else {
        match webchat.visitor(&account, &request.session_token).await {
            Ok(visitor) if visitor.user_id == user_id => Some(visitor),
            Ok(_) | Err(_) if user_id.is_some() => None,
            Ok(_) => {
                return Err(ApiError::session_invalid(
                    "this session belongs to a signed-in user; sign in again",
                ));
            }
            Err(error) => return Err(error),
        }
    };
    let (visitor, resumed) = if let Some(visitor) = resumable {
        (visitor, true)
    } else {
        limit_new_session(webchat, ip)?;
        let profile = profile(&account, &request)?;
        let new = Visitor {
            account_id: account.id().to_owned(),
            visitor_id: format!("wcv_{}", uuid::Uuid::new_v4().simple()),
            workspace_id: account.resolved.workspace_id.clone(),
            user_id,
            name: profile.0,
            email: profile.1,
            phone: profile.2,
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
            acc: account.id().to_owned(),
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
    webchat.session_limiter.check_key(&ip).map_err(|_| {
        ApiError::rate_limited(
            "too_many_sessions",
            format!(
                "more than {} new chat sessions per minute from this address; try again in a minute",
                webchat.config.sessions_per_ip_per_minute
            ),
            60,
        )
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
    if request.user_id.is_empty() || request.user_id.len() > 200 || !verified {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "identity_not_verified",
            "user_hash is not the HMAC-SHA256 of user_id under this account's identity_secret",
        ));
    }
    Ok(Some(request.user_id.clone()))
}

/// The pre-chat fields, checked against the account's form: (name, e-mail, E.164 phone).
fn profile(account: &WebchatAccount, request: &SessionRequest) -> Result<(String, String, String), ApiError> {
    let field = |rule: FieldRule, name: &'static str, value: &str| -> Result<String, ApiError> {
        let value = value.trim();
        match rule {
            FieldRule::Hidden => Ok(String::new()),
            FieldRule::Required if value.is_empty() => Err(ApiError::field(
                "field_required",
                name,
                format!("{name} is required"),
            )),
            _ if value.chars().count() > 200 => Err(ApiError::field(
                "invalid_field",
                name,
                format!("{name} is longer than 200 characters"),
            )),
            _ => Ok(value.to_owned()),
        }
    };
    let name = field(account.prechat.name, "name", &request.name)?;
    let email = field(account.prechat.email, "email", &request.email)?;
    let phone = field(account.prechat.phone, "phone", &request.phone)?;
    if !email.is_empty() && !plausible_email(&email) {
        return Err(ApiError::field(
            "invalid_field",
            "email",
            "email is not an e-mail address",
        ));
    }
    let phone = if phone.is_empty() {
        phone
    } else {
        e164(&phone).ok_or_else(|| {
            ApiError::field(
                "invalid_field",
                "phone",
                "phone must be an international number with country code, e.g. +14155550100",
            )
        })?
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

/// The session token of an authenticated REST call (`Authorization: Bearer …`).
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| ApiError::session_invalid("send the session token as Authorization: Bearer <token>"))
}

async fn authenticated(
    webchat: &Webchat,
    account: &str,
    headers: &HeaderMap,
) -> Result<(WebchatAccount, Visitor), ApiError> {
    let account = webchat.account(account).await?;
    let visitor = webchat.visitor(&account, bearer(headers)?).await?;
    Ok((account, visitor))
}

async fn post_message(
    State(webchat): State<Arc<Webchat>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (account, visitor) = authenticated(&webchat, &account, &headers).await?;
    let send: VisitorSend = parse_json(&body)?;
    let (message, created) = webchat.accept(&account, &visitor, &send).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"message": message.to_wire()}))).into_response())
}

/// The query of `GET messages`.
#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    after_seq: i64,
    limit: Option<i64>,
    #[serde(default)]
    wait: u64,
}

async fn list_messages(
    State(webchat): State<Arc<Webchat>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let (account, visitor) = authenticated(&webchat, &account, &headers).await?;
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    let wait = Duration::from_secs(query.wait).min(webchat.config.long_poll_max);
    // Subscribe before reading, so a message stored in between wakes the poll.
    let mut subscription = webchat.hub.subscribe(account.id(), &visitor.visitor_id);
    let mut deadline = tokio::time::Instant::now() + wait;
    loop {
        let mut messages = webchat
            .store
            .messages_after(account.id(), &visitor.visitor_id, query.after_seq, limit + 1)
            .await?;
        let has_more = messages.len() as i64 > limit;
        messages.truncate(limit as usize);
        let now = tokio::time::Instant::now();
        if !messages.is_empty() || now >= deadline {
            let current = webchat
                .store
                .visitor(account.id(), &visitor.visitor_id)
                .await?
                .unwrap_or(visitor);
            return Ok(Json(json!({
                "messages": messages.iter().map(crate::store::StoredMessage::to_wire).collect::<Vec<_>>(),
                "last_seq": current.last_seq,
                "agent_read_seq": current.agent_read_seq,
                "has_more": has_more,
            }))
            .into_response());
        }
        // Wake on any signal of this visitor, or poll every few seconds; answer at once when
        // the server shuts down.
        tokio::select! {
            () = webchat.shutdown.cancelled() => deadline = tokio::time::Instant::now(),
            _ = tokio::time::timeout((deadline - now).min(Duration::from_secs(3)), subscription.receiver.recv()) => {}
        }
    }
}

/// The body of `POST typing`.
#[derive(Debug, Deserialize)]
struct TypingBody {
    state: String,
}

async fn post_typing(
    State(webchat): State<Arc<Webchat>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (account, visitor) = authenticated(&webchat, &account, &headers).await?;
    let typing: TypingBody = parse_json(&body)?;
    let on = typing_state(&typing.state)?;
    webchat.visitor_typing(&account, &visitor, on).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `on` / `off`.
pub(crate) fn typing_state(state: &str) -> Result<bool, ApiError> {
    match state {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(ApiError::field(
            "invalid_frame",
            "state",
            format!("typing state must be \"on\" or \"off\", not {other:?}"),
        )),
    }
}

/// The body of `POST read` and `POST delivered`.
#[derive(Debug, Deserialize)]
struct ReadBody {
    up_to_seq: i64,
}

/// `POST read` (`read`) or `POST delivered`: the visitor's mark up to a seq.
async fn post_mark(
    webchat: Arc<Webchat>,
    account: String,
    headers: HeaderMap,
    body: Bytes,
    read: bool,
) -> Result<Response, ApiError> {
    let (account, visitor) = authenticated(&webchat, &account, &headers).await?;
    let mark: ReadBody = parse_json(&body)?;
    webchat.mark(&account, &visitor, read, mark.up_to_seq).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The query of `POST attachments`.
#[derive(Debug, Deserialize)]
struct UploadQuery {
    #[serde(default)]
    filename: String,
}

async fn upload_attachment(
    State(webchat): State<Arc<Webchat>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Query(query): Query<UploadQuery>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let (account, visitor) = authenticated(&webchat, &account, &headers).await?;
    if webchat.upload_limiter.check_key(&visitor.visitor_id).is_err() {
        return Err(ApiError::rate_limited(
            "rate_limited",
            format!(
                "more than {} uploads per minute; try again in a minute",
                webchat.config.uploads_per_minute
            ),
            60,
        ));
    }
    let limit = webchat.config.max_attachment_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "attachment_too_large",
            format!("attachments may be at most {limit} bytes"),
        )
    };
    let content = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        _ => ApiError::bad_request(format!("the upload could not be read: {rejection}")),
    })?;
    if content.len() > limit {
        return Err(too_large());
    }
    if content.is_empty() {
        return Err(ApiError::bad_request("the upload is empty"));
    }
    let filename = sanitize_filename(&query.filename);
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/octet-stream")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    // Served back as the Content-Type: only a plain `type/subtype` is kept.
    let declared = if is_media_type(&declared) {
        declared
    } else {
        "application/octet-stream".to_owned()
    };
    if let Some(reason) = crate::internal::executable(&content, &filename, &declared) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "attachment_refused",
            format!("executable files are not accepted ({reason})"),
        ));
    }
    let attachment = Attachment {
        id: format!("att_{}", uuid::Uuid::new_v4().simple()),
        account_id: account.id().to_owned(),
        visitor_id: visitor.visitor_id.clone(),
        mime_type: if declared.is_empty() {
            "application/octet-stream".to_owned()
        } else {
            declared
        },
        filename,
        size_bytes: content.len() as i64,
        sha256: hex::encode(sha2::Sha256::digest(&content)),
    };
    webchat.store.insert_attachment(&attachment, &content).await?;
    let body = json!({"attachment": {
        "id": attachment.id,
        "url": webchat.attachment_url(account.id(), &attachment.id),
        "mime_type": attachment.mime_type,
        "filename": attachment.filename,
        "size": attachment.size_bytes,
    }});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// True for a bare `type/subtype` of RFC 6838 name characters.
fn is_media_type(value: &str) -> bool {
    let name = |part: &str| {
        !part.is_empty()
            && part.len() <= 127
            && part
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&byte))
    };
    value
        .split_once('/')
        .is_some_and(|(kind, subtype)| name(kind) && name(subtype))
}

/// A file name without paths or control characters, at most 200 characters.
fn sanitize_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(200)
        .collect();
    if clean.trim().is_empty() {
        "attachment".to_owned()
    } else {
        clean
    }
}

async fn download_attachment(
    State(webchat): State<Arc<Webchat>>,
    Path((account, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "unknown_attachment", "no such attachment");
    let (attachment, content) = webchat
        .store
        .attachment(&account, &id)
        .await?
        .ok_or_else(not_found)?;
    // Images are shown inline; anything else downloads (never rendered as a page of ours).
    let inline = attachment.mime_type.starts_with("image/") && attachment.mime_type != "image/svg+xml";
    let disposition = format!(
        "{}; filename=\"{}\"",
        if inline { "inline" } else { "attachment" },
        attachment
            .filename
            .replace(|c: char| !c.is_ascii() || c == '\\', "_")
    );
    let mut response = content.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&attachment.mime_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    Ok(response)
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

    #[test]
    fn only_plain_media_types_are_kept() {
        assert!(is_media_type("image/png"));
        assert!(is_media_type("application/vnd.ms-excel"));
        assert!(!is_media_type("image/png,text/html"));
        assert!(!is_media_type("text/html\r\nx: y"));
        assert!(!is_media_type("image"));
    }

    #[test]
    fn file_names_lose_their_paths() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("C:\\x\\report.pdf"), "report.pdf");
        assert_eq!(sanitize_filename(""), "attachment");
    }
}
