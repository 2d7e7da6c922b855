//! The control API under `/_sim/`: configure accounts, queue faults, read the call log, the
//! SMTP sink's messages and the counters, reset.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::model::{AccountConfig, CallsQuery, Fault, Provider, SmtpFault};
use crate::state::SimState;

/// The control routes.
pub(crate) fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/_sim/health", get(health))
        .route("/_sim/accounts/{provider}/{external_id}", put(configure))
        .route("/_sim/accounts/{provider}/{external_id}/faults", post(add_faults))
        .route("/_sim/calls", get(calls))
        .route("/_sim/smtp/faults", post(add_smtp_faults))
        .route("/_sim/smtp/messages", get(smtp_messages))
        .route("/_sim/stats", get(stats))
        .route("/_sim/reset", post(reset))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

fn provider(name: &str) -> Result<Provider, Box<Response>> {
    name.parse::<Provider>()
        .map_err(|unknown| Box::new(error(StatusCode::NOT_FOUND, unknown.to_string())))
}

async fn health() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

async fn configure(
    State(state): State<Arc<SimState>>,
    Path((provider_name, external_id)): Path<(String, String)>,
    config: Result<axum::Json<AccountConfig>, JsonRejection>,
) -> Response {
    let provider = match provider(&provider_name) {
        Ok(provider) => provider,
        Err(response) => return *response,
    };
    let config = match config {
        Ok(axum::Json(config)) => config,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    match state.configure(provider, &external_id, config) {
        Ok(configured) => {
            tracing::info!(%provider, account = %external_id, "account configured");
            axum::Json(configured).into_response()
        }
        Err(invalid) => error(StatusCode::BAD_REQUEST, invalid.to_string()),
    }
}

/// One fault or a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum Faults {
    Many(Vec<Fault>),
    One(Fault),
}

async fn add_faults(
    State(state): State<Arc<SimState>>,
    Path((provider_name, external_id)): Path<(String, String)>,
    faults: Result<axum::Json<Faults>, JsonRejection>,
) -> Response {
    let provider = match provider(&provider_name) {
        Ok(provider) => provider,
        Err(response) => return *response,
    };
    let faults = match faults {
        Ok(axum::Json(Faults::Many(faults))) => faults,
        Ok(axum::Json(Faults::One(fault))) => vec![fault],
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    match state.add_faults(provider, &external_id, faults) {
        Some(queued) => axum::Json(json!({ "faults_queued": queued })).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no {provider} account {external_id:?} is configured"),
        ),
    }
}

async fn calls(State(state): State<Arc<SimState>>, RawQuery(query): RawQuery) -> Response {
    let mut filter = CallsQuery::default();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if value.is_empty() {
            continue;
        }
        match name.as_ref() {
            "provider" => match provider(&value) {
                Ok(provider) => filter.provider = Some(provider),
                Err(response) => return *response,
            },
            "account" => filter.account = Some(value.into_owned()),
            "since" => match value.parse::<u64>() {
                Ok(since) => filter.since = Some(since),
                Err(_) => return error(StatusCode::BAD_REQUEST, "since must be a call seq number"),
            },
            _ => {}
        }
    }
    axum::Json(state.calls(&filter)).into_response()
}

/// One SMTP fault or a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum SmtpFaults {
    Many(Vec<SmtpFault>),
    One(SmtpFault),
}

async fn add_smtp_faults(
    State(state): State<Arc<SimState>>,
    faults: Result<axum::Json<SmtpFaults>, JsonRejection>,
) -> Response {
    let faults = match faults {
        Ok(axum::Json(SmtpFaults::Many(faults))) => faults,
        Ok(axum::Json(SmtpFaults::One(fault))) => vec![fault],
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    if let Some(invalid) = faults.iter().find_map(|fault| fault.validate().err()) {
        return error(StatusCode::BAD_REQUEST, invalid);
    }
    let queued = state.smtp.add_faults(faults);
    axum::Json(json!({ "faults_queued": queued })).into_response()
}

async fn smtp_messages(State(state): State<Arc<SimState>>, RawQuery(query): RawQuery) -> Response {
    let mut since = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name == "since" && !value.is_empty() {
            match value.parse::<u64>() {
                Ok(seq) => since = Some(seq),
                Err(_) => return error(StatusCode::BAD_REQUEST, "since must be a message seq number"),
            }
        }
    }
    axum::Json(state.smtp.messages(since)).into_response()
}

async fn stats(State(state): State<Arc<SimState>>) -> Response {
    axum::Json(state.stats()).into_response()
}

async fn reset(State(state): State<Arc<SimState>>) -> Response {
    state.reset();
    tracing::info!("simulator reset");
    StatusCode::NO_CONTENT.into_response()
}
