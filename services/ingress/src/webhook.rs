//! `/webhooks/{channel}/{account_id}`: the HTTP front end of the pipeline. It reads the body
//! under a cap and a deadline, answers Meta's subscription handshake, and turns the
//! pipeline's outcome into the answer the provider expects.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode, Uri, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use switchboard_channels::{Handshake, NormalizeContext, SuccessAnswer, WebhookRequest};
use switchboard_domain::{Channel, ChannelAccountId, ErrorCode, EventId};
use tracing::Instrument;

use crate::metrics::channel_label;
use crate::pipeline::{Ingress, Received};
use crate::rejection::Rejection;

/// The webhook routes.
pub(crate) fn router(ingress: Arc<Ingress>) -> Router {
    Router::new()
        .route("/webhooks/{channel}/{account_id}", get(handshake).post(receive))
        .with_state(ingress)
}

/// The account id of the path; an id that cannot exist is an unknown account.
fn account_id(raw: &str) -> Result<ChannelAccountId, Rejection> {
    ChannelAccountId::parse(raw).map_err(|_| Rejection::unknown_account())
}

impl Ingress {
    fn body_limit(&self, channel: Channel) -> usize {
        if channel == Channel::Email {
            self.config.max_email_body_bytes
        } else {
            self.config.max_body_bytes
        }
    }

    /// Reads the body: refuses a declared length over the cap before reading, stops reading
    /// at the cap, and gives slow senders `body_read_timeout`.
    async fn read_body(&self, channel: Channel, headers: &HeaderMap, body: Body) -> Result<Bytes, Rejection> {
        let limit = self.body_limit(channel);
        let too_large = || {
            Rejection::new(
                ErrorCode::PayloadTooLarge,
                "too_large",
                format!("body larger than {limit} bytes"),
            )
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(too_large());
        }
        let read = Limited::new(body, limit).collect();
        match tokio::time::timeout(self.config.body_read_timeout, read).await {
            Err(_) => Err(Rejection::new(
                ErrorCode::RequestTimeout,
                "read_timeout",
                "the body did not arrive in time",
            )),
            Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
            Ok(Err(error)) => Err(Rejection::new(
                ErrorCode::InvalidArgument,
                "bad_body",
                format!("the body could not be read: {error}"),
            )),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
        }
    }

    /// The URL the provider requested, as seen in front of the proxies.
    fn public_url(&self, headers: &HeaderMap, uri: &Uri) -> String {
        let path = uri.path_and_query().map_or("/", |value| value.as_str());
        if let Some(base) = &self.config.public_base_url {
            return format!("{base}{path}");
        }
        let forwarded = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(',').next())
                .map(str::trim)
        };
        let scheme = forwarded("x-forwarded-proto").unwrap_or("http");
        let host = forwarded("x-forwarded-host")
            .or_else(|| forwarded("host"))
            .unwrap_or("localhost");
        format!("{scheme}://{host}{path}")
    }
}

/// `GET`: a subscription handshake (Meta echoes `hub.challenge` for the right verify token).
async fn handshake(
    State(ingress): State<Arc<Ingress>>,
    Path((channel_name, account_id_raw)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let label = channel_label(&channel_name);
    let result = async {
        let channel = ingress.channel(&channel_name)?;
        let account = ingress.account(channel, &account_id(&account_id_raw)?).await?;
        let adapter = Ingress::adapter(channel, &account, &headers)?;
        match adapter.handshake(query.as_deref().unwrap_or(""), account.as_ref()) {
            Handshake::Answer(challenge) => Ok(challenge),
            Handshake::Unsupported => Err(Rejection::new(
                ErrorCode::MethodNotAllowed,
                "method_not_allowed",
                format!("{} webhooks are POST only", channel.as_str()),
            )),
            Handshake::Refused => Err(Rejection::new(
                ErrorCode::PermissionDenied,
                "handshake_refused",
                "hub.mode must be subscribe and hub.verify_token must match the account's verify token",
            )),
        }
    }
    .await;
    let (outcome, response) = match result {
        Ok(challenge) => (
            "handshake",
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], challenge).into_response(),
        ),
        Err(rejection) => (rejection.outcome, rejection.into_response()),
    };
    ingress
        .metrics
        .webhook(label, outcome, started.elapsed().as_secs_f64());
    response
}

/// `POST`: a provider webhook.
async fn receive(
    State(ingress): State<Arc<Ingress>>,
    Path((channel_name, account_id_raw)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let label = channel_label(&channel_name);
    let span = tracing::info_span!(
        "webhook",
        channel = label,
        channel_account_id = %account_id_raw,
        events = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let result = receive_verified(&ingress, &channel_name, &account_id_raw, &uri, &headers, body)
        .instrument(span.clone())
        .await;
    let (outcome, response) = match result {
        Ok((outcome, answer)) => (outcome, success_response(answer)),
        Err(rejection) => {
            if rejection.is_server_error() {
                tracing::warn!(parent: &span, outcome = rejection.outcome, "webhook not accepted");
            } else {
                let status = switchboard_server::http_status(rejection.code).as_u16();
                tracing::info!(parent: &span, outcome = rejection.outcome, status, "webhook refused");
            }
            (rejection.outcome, rejection.into_response())
        }
    };
    span.record("outcome", outcome);
    ingress
        .metrics
        .webhook(label, outcome, started.elapsed().as_secs_f64());
    response
}

/// The provider's expected 2xx answer.
fn success_response(answer: SuccessAnswer) -> Response {
    match answer.content_type {
        Some(content_type) => ([(header::CONTENT_TYPE, content_type)], answer.body).into_response(),
        None => StatusCode::OK.into_response(),
    }
}

/// Runs one webhook through the pipeline; returns its outcome and the provider's answer.
async fn receive_verified(
    ingress: &Ingress,
    channel_name: &str,
    account_id_raw: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(&'static str, SuccessAnswer), Rejection> {
    let channel = ingress.channel(channel_name)?;
    let channel_account_id = account_id(account_id_raw)?;
    let account = ingress.account(channel, &channel_account_id).await?;
    let body = ingress.read_body(channel, headers, body).await?;
    let url = ingress.public_url(headers, uri);
    let request = WebhookRequest {
        headers,
        url: &url,
        body: &body,
        now: SystemTime::now(),
        signature_max_age: ingress.config.mailgun_max_age,
    };
    let (account, adapter, verified) = ingress.verify(channel, account, &request).await?;
    let max_depth = switchboard_channels::MAX_JSON_DEPTH;
    if adapter.body_is_json() && switchboard_channels::json_too_deep(verified.body(), max_depth) {
        return Err(Rejection::new(
            ErrorCode::InvalidArgument,
            "too_deep",
            format!("JSON nests deeper than {max_depth} levels"),
        ));
    }
    let context = NormalizeContext {
        channel_account_id,
        external_id: account.external_id.clone(),
        received_at: request.now,
    };
    let normalized = adapter.normalize(&request, verified, &context);
    let correlation_id = headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map_or_else(|| EventId::generate().into_string(), str::to_owned);
    let received = Received {
        channel,
        account: &account,
        content_type: request.content_type(),
        body: &body,
        correlation_id: &correlation_id,
    };
    let outcome = ingress.accept(&received, normalized, Some(adapter)).await?;
    Ok((outcome.as_str(), adapter.success_answer()))
}
