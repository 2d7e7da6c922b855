//! The HTTP side of web chat: the widget script, the demo page, the account's widget config,
//! sessions, the REST fallback and attachments, all behind the account's origin allowlist
//! (CORS), plus the internal API delivery sends through. The WebSocket is in `socket`.

mod attachments;
mod internal;
mod messages;
mod session;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::Webchat;
use crate::error::ApiError;
use crate::extract::{Account, AccountId};

/// The widget script, served as `widget.js`.
const WIDGET_JS: &str = include_str!("../../assets/widget.js");
/// The demo page, served as `demo` on accounts with `demo_page=true`.
const DEMO_HTML: &str = include_str!("../../assets/demo.html");
/// Largest JSON body of the REST endpoints.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// The web chat routes under `/webchat/{account_id}/`.
pub(crate) fn router(webchat: Arc<Webchat>) -> Router {
    let attachment_limit = webchat.config.max_attachment_bytes + 1;
    let public = Router::new()
        .route("/webchat/{account}/config", get(widget_config))
        .route("/webchat/{account}/sessions", post(session::create_session))
        .route(
            "/webchat/{account}/messages",
            get(messages::list_messages).post(messages::post_message),
        )
        .route("/webchat/{account}/typing", post(messages::post_typing))
        .route("/webchat/{account}/read", post(messages::post_read))
        .route("/webchat/{account}/delivered", post(messages::post_delivered))
        .route("/webchat/{account}/ws", get(crate::socket::upgrade))
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .merge(
            Router::new()
                .route(
                    "/webchat/{account}/attachments",
                    post(attachments::upload_attachment),
                )
                .layer(DefaultBodyLimit::max(attachment_limit)),
        )
        .layer(middleware::from_fn_with_state(webchat.clone(), check_origin));
    Router::new()
        .route("/webchat/{account}/widget.js", get(widget_js))
        .route("/webchat/{account}/demo", get(demo_page))
        .route(
            "/webchat/{account}/attachments/{id}",
            get(attachments::download_attachment),
        )
        .merge(internal::router())
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .merge(public)
        .with_state(webchat)
}

/// The account's origin check: a browser request (one with `Origin`) from an origin the
/// account does not allow gets 403 before anything else; preflights are answered here; allowed
/// responses carry `Access-Control-Allow-Origin`.
async fn check_origin(
    State(webchat): State<Arc<Webchat>>,
    account: Result<AccountId, ApiError>,
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
    let account = match account {
        Ok(AccountId(id)) => webchat.account(&id).await,
        Err(error) => Err(error),
    };
    let account = match account {
        Ok(account) => account,
        Err(error) => return error.into_response(),
    };
    // Switchboard's own pages (the demo) are same-origin: the public origin, or the host the
    // request was sent to.
    let own = [webchat.public_base_url.clone(), request_origin(request.headers())];
    if !own
        .iter()
        .flatten()
        .any(|own| account.origins.allows(&origin, Some(own)))
    {
        return ApiError::OriginNotAllowed { origin }.into_response();
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

/// The origin a request was sent to (`X-Forwarded-Proto` or http, and `Host`).
fn request_origin(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .map_or("http", |value| value.split(',').next().unwrap_or("http").trim());
    Some(format!("{scheme}://{host}"))
}

async fn widget_js(Account(_): Account) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        WIDGET_JS,
    )
        .into_response()
}

async fn demo_page(Account(account): Account) -> Result<Html<&'static str>, ApiError> {
    if account.demo_page {
        Ok(Html(DEMO_HTML))
    } else {
        Err(ApiError::NoDemoPage)
    }
}

async fn widget_config(State(webchat): State<Arc<Webchat>>, Account(account): Account) -> Json<Value> {
    let config = &webchat.config;
    Json(json!({
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
}
