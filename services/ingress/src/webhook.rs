//! `/webhooks/{channel}/{account_id}`: the account from the path, the body read under a cap,
//! the provider's signature checked on the raw bytes, the payload normalized, and every event
//! confirmed by the broker (or spooled) before the provider gets its 2xx.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode, Uri, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use switchboard_channels::{NormalizeContext, NormalizeError, Normalized, Verified, VerifyError};
use switchboard_domain::{Channel, ChannelAccountId, EventId};
use switchboard_messaging::{Outgoing, Publisher};
use switchboard_postgres::Pool;
use switchboard_proto::events::v1::{Envelope, InboundEvent, envelope, inbound_event};
use tracing::Instrument;

use crate::IngressConfig;
use crate::metrics::IngressMetrics;
use crate::spool::Spool;
use switchboard_directory::{AccountDirectory, DirectoryError, ResolvedAccount};

/// Everything a webhook request needs, shared by all requests.
pub(crate) struct Ingress {
    pub config: IngressConfig,
    pub channels: Vec<Channel>,
    pub directory: AccountDirectory,
    pub publisher: Publisher,
    pub spool: Arc<Spool>,
    pub topology: Arc<crate::InboundTopology>,
    pub pool: Pool,
    pub metrics: Arc<IngressMetrics>,
    pub partitions: u16,
    /// Mailgun tokens already accepted, with when (replays inside `mailgun_max_age` are dropped).
    pub mailgun_tokens: Mutex<HashMap<String, Instant>>,
}

/// The webhook routes.
pub(crate) fn router(ingress: Arc<Ingress>) -> Router {
    Router::new()
        .route("/webhooks/{channel}/{account_id}", get(handshake).post(receive))
        .with_state(ingress)
}

/// A request that ends without events: its status, a metrics outcome and a message for the sender.
#[derive(Debug)]
pub(crate) struct Rejection {
    status: StatusCode,
    outcome: &'static str,
    message: String,
}

impl Rejection {
    fn new(status: StatusCode, outcome: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            outcome,
            message: message.into(),
        }
    }

    fn unknown_account() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_account",
            "no enabled channel account with this id for this channel",
        )
    }

    fn unverified(error: &VerifyError) -> Self {
        // The sender learns only that it was not authenticated; the reason goes to metrics.
        Self::new(
            StatusCode::UNAUTHORIZED,
            error.reason(),
            "webhook signature missing or invalid",
        )
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "reason": self.outcome, "message": self.message } });
        (self.status, axum::Json(body)).into_response()
    }
}

/// The `channel` label of a channel name (bounded: unknown names count as `other`).
pub(crate) fn channel_label(name: &str) -> &'static str {
    name.parse::<Channel>().map_or("other", Channel::as_str)
}

impl Ingress {
    fn channel(&self, name: &str) -> Result<Channel, Rejection> {
        name.parse::<Channel>()
            .ok()
            .filter(|channel| self.channels.contains(channel))
            .ok_or_else(|| {
                Rejection::new(
                    StatusCode::NOT_FOUND,
                    "unknown_channel",
                    format!("this ingress does not serve channel {name:?}"),
                )
            })
    }

    async fn account(&self, channel: Channel, id: &str) -> Result<Arc<ResolvedAccount>, Rejection> {
        if ChannelAccountId::parse(id).is_err() {
            return Err(Rejection::unknown_account());
        }
        match self.directory.resolve(id).await {
            Ok(account) if account.enabled && account.channel == channel => Ok(account),
            Ok(_) | Err(DirectoryError::NotFound) => Err(Rejection::unknown_account()),
            Err(error @ DirectoryError::Unavailable(_)) => {
                tracing::error!(error = %error, "cannot resolve channel account");
                Err(Rejection::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "directory_unavailable",
                    "channel accounts cannot be looked up right now; retry later",
                ))
            }
        }
    }

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
                StatusCode::PAYLOAD_TOO_LARGE,
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
                StatusCode::REQUEST_TIMEOUT,
                "read_timeout",
                "the body did not arrive in time",
            )),
            Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
            Ok(Err(error)) => Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("the body could not be read: {error}"),
            )),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
        }
    }

    /// The URL Twilio requested, as seen in front of the proxies.
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

    /// Checks the provider's signature with the account's secret.
    fn verify<'a>(
        &self,
        format: WireFormat,
        account: &ResolvedAccount,
        headers: &HeaderMap,
        uri: &Uri,
        body: &'a [u8],
    ) -> Result<Verified<'a>, VerifyError> {
        use switchboard_channels::{email, meta, telegram, twilio};
        let secret = |name: &'static str| account.secret(name).ok_or(VerifyError::Mismatch);
        let basic_auth_user = || account.setting("webhook_username").unwrap_or("");
        match format {
            WireFormat::Whatsapp | WireFormat::Messenger | WireFormat::Instagram => {
                meta::verify_signature(headers, body, secret("app_secret")?)
            }
            WireFormat::Telegram => telegram::verify_secret_token(headers, body, secret("webhook_secret")?),
            WireFormat::Twilio => twilio::verify_signature(
                headers,
                &self.public_url(headers, uri),
                body,
                secret("auth_token")?,
            ),
            WireFormat::Mailgun => email::verify_mailgun_signature(
                body,
                content_type(headers),
                secret("signing_key")?,
                SystemTime::now(),
                self.config.mailgun_max_age,
            ),
            WireFormat::Postmark => email::verify_postmark_basic_auth(
                headers,
                body,
                basic_auth_user(),
                secret("webhook_password")?,
            ),
            WireFormat::Sendgrid => email::verify_sendgrid_basic_auth(
                headers,
                body,
                basic_auth_user(),
                secret("webhook_password")?,
            ),
        }
    }

    fn normalize(
        format: WireFormat,
        headers: &HeaderMap,
        verified: Verified<'_>,
        context: &NormalizeContext,
    ) -> Result<Normalized, NormalizeError> {
        use switchboard_channels::{email, instagram, messenger, telegram, twilio, whatsapp};
        match format {
            WireFormat::Whatsapp => whatsapp::normalize(verified, context),
            WireFormat::Messenger => messenger::normalize(verified, context),
            WireFormat::Instagram => instagram::normalize(verified, context),
            WireFormat::Telegram => telegram::normalize(verified, context),
            WireFormat::Twilio => twilio::normalize(verified, context),
            WireFormat::Mailgun => email::normalize_mailgun(verified, content_type(headers), context),
            WireFormat::Postmark => email::normalize_postmark(verified, context),
            WireFormat::Sendgrid => email::normalize_sendgrid(verified, content_type(headers), context),
        }
    }

    /// Keeps a validly signed body that could not be understood, for operators.
    pub(crate) async fn dead_letter(
        &self,
        channel: Channel,
        account: &ResolvedAccount,
        content_type: &str,
        body: &[u8],
        reason: &str,
    ) -> Result<(), Rejection> {
        let result = async {
            let client = self.pool.get().await?;
            client
                .execute(
                    "INSERT INTO ingress.dead_letters
                         (channel, channel_account_id, workspace_id, reason, content_type, body)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &channel.as_str(),
                        &account.id,
                        &account.workspace_id,
                        &reason,
                        &content_type,
                        &body,
                    ],
                )
                .await?;
            Ok::<(), switchboard_postgres::StoreError>(())
        }
        .await;
        result.map_err(|error| {
            tracing::error!(error = %error, "cannot store a dead-letter record");
            Rejection::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the payload cannot be recorded right now; retry later",
            )
        })
    }

    /// Publishes every event with a confirm, in order; what the broker does not confirm (and
    /// everything after it) goes to the spool. Returns how many were spooled.
    pub(crate) async fn hand_over(
        &self,
        channel: Channel,
        events: Vec<Outgoing>,
    ) -> Result<usize, Rejection> {
        let mut pending = events.into_iter().peekable();
        if !self.spool.has_pending() && self.topology.is_declared() && self.publisher.bus().is_connected() {
            while let Some(outgoing) = pending.peek() {
                let outgoing = outgoing.clone();
                let published =
                    tokio::time::timeout(self.config.publish_timeout, self.publisher.publish(outgoing)).await;
                match published {
                    Ok(Ok(())) => {
                        pending.next();
                        self.metrics.events(channel.as_str(), "published", 1);
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(error = %error, "broker did not confirm; spooling");
                        self.topology.note_publish_error(&error);
                        break;
                    }
                    Err(_) => {
                        tracing::warn!(timeout = ?self.config.publish_timeout, "broker confirm timed out; spooling");
                        break;
                    }
                }
            }
        }
        let rest: Vec<Outgoing> = pending.collect();
        if rest.is_empty() {
            return Ok(0);
        }
        match self.spool.insert(&rest).await {
            Ok(()) => {
                self.metrics
                    .events(channel.as_str(), "spooled", rest.len() as u64);
                Ok(rest.len())
            }
            Err(error) => {
                tracing::error!(error = %error, "neither the broker nor the spool took the events");
                Err(Rejection::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "cannot accept webhooks right now (message broker and spool both unavailable); retry later",
                ))
            }
        }
    }

    /// True when this Mailgun delivery token was accepted within `mailgun_max_age` (a replay).
    fn mailgun_replayed(&self, account: &ResolvedAccount, token: &str) -> bool {
        let key = format!("{}:{token}", account.id);
        self.mailgun_tokens.lock().is_ok_and(|seen| {
            seen.get(&key)
                .is_some_and(|at| at.elapsed() < self.config.mailgun_max_age)
        })
    }

    /// Remembers an accepted Mailgun delivery token.
    fn remember_mailgun_token(&self, account: &ResolvedAccount, token: &str) {
        if let Ok(mut seen) = self.mailgun_tokens.lock() {
            let max_age = self.config.mailgun_max_age;
            if seen.len() > 100_000 {
                seen.retain(|_, at| at.elapsed() < max_age);
            }
            seen.insert(format!("{}:{token}", account.id), Instant::now());
        }
    }
}

/// The wire format of one webhook: which verifier and parser apply. Chosen once per request
/// from the channel and, for e-mail, the account's inbound-parse service: its
/// `inbound_provider` setting (`mailgun`, `postmark`, `sendgrid`); else Mailgun when the account
/// has a Mailgun `signing_key`, Postmark for JSON posts, SendGrid otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WireFormat {
    Whatsapp,
    Messenger,
    Instagram,
    Telegram,
    Twilio,
    Mailgun,
    Postmark,
    Sendgrid,
}

impl WireFormat {
    /// The format of a webhook to `account` on `channel` (`None` for web chat, which has none).
    fn of(channel: Channel, account: &ResolvedAccount, headers: &HeaderMap) -> Option<Self> {
        Some(match channel {
            Channel::Whatsapp => Self::Whatsapp,
            Channel::Messenger => Self::Messenger,
            Channel::Instagram => Self::Instagram,
            Channel::Telegram => Self::Telegram,
            Channel::Sms => Self::Twilio,
            Channel::Email => match account.setting("inbound_provider") {
                Some("postmark") => Self::Postmark,
                Some("mailgun") => Self::Mailgun,
                Some("sendgrid") => Self::Sendgrid,
                _ if account.secret("signing_key").is_some() => Self::Mailgun,
                _ if content_type(headers).starts_with("application/json") => Self::Postmark,
                _ => Self::Sendgrid,
            },
            Channel::Webchat => return None,
        })
    }

    /// True for JSON bodies (bounded in nesting before any parser sees them).
    fn is_json(self) -> bool {
        matches!(
            self,
            Self::Whatsapp | Self::Messenger | Self::Instagram | Self::Telegram | Self::Postmark
        )
    }
}

/// The request's `Content-Type` ("" when absent or not text).
fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

/// The event name of an inbound event kind (the last part of its event type).
fn kind_name(kind: Option<&inbound_event::Kind>) -> &'static str {
    match kind {
        Some(inbound_event::Kind::Message(_)) => "message_received",
        Some(inbound_event::Kind::Status(_)) => "status_received",
        Some(inbound_event::Kind::Reaction(_)) => "reaction_received",
        Some(inbound_event::Kind::Edit(_)) => "message_edited",
        Some(inbound_event::Kind::Delete(_)) => "message_deleted",
        Some(inbound_event::Kind::Referral(_)) => "referral_received",
        Some(inbound_event::Kind::Consent(_)) => "consent_changed",
        None => "unknown",
    }
}

/// The id of an inbound event: a digest of the account and the normalized event (without the
/// time ingress received it), so a provider's retry of the same webhook, or a replay, carries
/// the same id and consumers (idempotent on event ids) give it no second effect.
fn inbound_event_id(account_id: &str, event: &InboundEvent) -> String {
    use prost::Message as _;
    use sha2::Digest as _;
    let mut identity = event.clone();
    identity.received_at = None;
    let digest = sha2::Sha256::new()
        .chain_update(account_id.as_bytes())
        .chain_update([0])
        .chain_update(identity.encode_to_vec())
        .finalize();
    format!("evt_{}", hex::encode(&digest[..16]))
}

/// Wraps one normalized event for the bus: `inbound.<channel>.<kind>`, partitioned by
/// (account, sender) so one customer's events stay in order.
pub(crate) fn envelope_for(
    channel: Channel,
    account: &ResolvedAccount,
    event: InboundEvent,
    correlation_id: &str,
    partitions: u16,
) -> Outgoing {
    Outgoing::envelope(
        &inbound_envelope(channel, account, event, correlation_id),
        partitions,
    )
}

/// The bus envelope of one inbound event: type `inbound.<channel>.<kind>`, id a digest of the
/// account and the event (a retry carries the same id), partition key (account, sender).
pub fn inbound_envelope(
    channel: Channel,
    account: &ResolvedAccount,
    event: InboundEvent,
    correlation_id: &str,
) -> Envelope {
    let event_id = inbound_event_id(&account.id, &event);
    let event_type = format!("inbound.{}.{}", channel.as_str(), kind_name(event.kind.as_ref()));
    let sender = event
        .sender
        .as_ref()
        .map_or("", |sender| sender.channel_user_id.as_str());
    Envelope {
        event_id,
        event_type,
        occurred_at: event.provider_timestamp.or(event.received_at),
        workspace_id: account.workspace_id.clone(),
        correlation_id: correlation_id.to_owned(),
        causation_id: String::new(),
        partition_key: format!("{}:{sender}", account.id),
        payload: Some(envelope::Payload::Inbound(event)),
    }
}

/// `GET`: Meta's subscription handshake (echo `hub.challenge` only for the right verify token).
async fn handshake(
    State(ingress): State<Arc<Ingress>>,
    Path((channel_name, account_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let started = Instant::now();
    let label = channel_label(&channel_name);
    let result = async {
        let channel = ingress.channel(&channel_name)?;
        if !matches!(
            channel,
            Channel::Whatsapp | Channel::Messenger | Channel::Instagram
        ) {
            return Err(Rejection::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} webhooks are POST only", channel.as_str()),
            ));
        }
        let account = ingress.account(channel, &account_id).await?;
        let token = account.secret("verify_token").unwrap_or_default();
        switchboard_channels::meta::verification_challenge(query.as_deref().unwrap_or(""), token).ok_or_else(
            || {
                Rejection::new(
                    StatusCode::FORBIDDEN,
                    "handshake_refused",
                    "hub.mode must be subscribe and hub.verify_token must match the account's verify token",
                )
            },
        )
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
    Path((channel_name, account_id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let label = channel_label(&channel_name);
    let span = tracing::info_span!(
        "webhook",
        channel = label,
        channel_account_id = %account_id,
        events = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let result = receive_verified(&ingress, &channel_name, &account_id, &uri, &headers, body)
        .instrument(span.clone())
        .await;
    let (outcome, response) = match result {
        Ok((outcome, channel)) => {
            let response = if channel == Channel::Sms {
                // Empty TwiML: Twilio sends no automatic reply.
                (
                    [(header::CONTENT_TYPE, "text/xml")],
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
                )
                    .into_response()
            } else {
                StatusCode::OK.into_response()
            };
            (outcome, response)
        }
        Err(rejection) => {
            if rejection.status.is_server_error() {
                tracing::warn!(parent: &span, outcome = rejection.outcome, "webhook not accepted");
            } else {
                tracing::info!(parent: &span, outcome = rejection.outcome, status = rejection.status.as_u16(), "webhook refused");
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

async fn receive_verified(
    ingress: &Ingress,
    channel_name: &str,
    account_id: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(&'static str, Channel), Rejection> {
    let channel = ingress.channel(channel_name)?;
    let mut account = ingress.account(channel, account_id).await?;
    let body = ingress.read_body(channel, headers, body).await?;
    let format_of = |account: &ResolvedAccount| {
        WireFormat::of(channel, account, headers).ok_or_else(|| {
            Rejection::new(
                StatusCode::NOT_FOUND,
                "unknown_channel",
                format!("{} has no webhooks", channel.as_str()),
            )
        })
    };
    let mut format = format_of(&account)?;
    let verified = match ingress.verify(format, &account, headers, uri, &body) {
        Ok(verified) => verified,
        Err(VerifyError::Mismatch) if account.may_be_stale() => {
            // The secret may have been rotated since it was cached: check once against a fresh copy.
            account = match ingress.directory.fetch(account_id).await {
                Ok(fresh) if fresh.enabled && fresh.channel == channel => fresh,
                Ok(_) | Err(DirectoryError::NotFound) => return Err(Rejection::unknown_account()),
                Err(_) => return Err(Rejection::unverified(&VerifyError::Mismatch)),
            };
            format = format_of(&account)?;
            ingress
                .verify(format, &account, headers, uri, &body)
                .map_err(|error| Rejection::unverified(&error))?
        }
        Err(error) => return Err(Rejection::unverified(&error)),
    };
    if format.is_json()
        && switchboard_channels::json_too_deep(verified.body(), switchboard_channels::MAX_JSON_DEPTH)
    {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "too_deep",
            format!(
                "JSON nests deeper than {} levels",
                switchboard_channels::MAX_JSON_DEPTH
            ),
        ));
    }
    let context = NormalizeContext {
        channel_account_id: ChannelAccountId::parse(&account.id).map_err(|_| Rejection::unknown_account())?,
        external_id: account.external_id.clone(),
        received_at: SystemTime::now(),
    };
    let normalized = match Ingress::normalize(format, headers, verified, &context) {
        Ok(normalized) => normalized,
        Err(error) => {
            let reason = error.to_string();
            ingress
                .dead_letter(channel, &account, content_type(headers), &body, &reason)
                .await?;
            tracing::warn!(reason = %reason, "signed webhook could not be understood; dead-lettered");
            return Ok(("dead_lettered", channel));
        }
    };
    for skipped in &normalized.skipped {
        tracing::debug!(location = %skipped.location, reason = %skipped.reason, "payload item skipped");
    }
    if !normalized.skipped.is_empty() {
        ingress
            .metrics
            .skipped
            .get_or_create(&crate::metrics::ChannelLabels {
                channel: channel.as_str(),
            })
            .inc_by(normalized.skipped.len() as u64);
    }
    let mailgun_token = normalized
        .events
        .first()
        .map(|event| event.provider_event_id.clone())
        .filter(|token| format == WireFormat::Mailgun && !token.is_empty());
    if let Some(token) = &mailgun_token
        && ingress.mailgun_replayed(&account, token)
    {
        return Ok(("replayed", channel));
    }
    tracing::Span::current().record("events", normalized.events.len());
    if normalized.events.is_empty() {
        return Ok(("ignored", channel));
    }
    let correlation_id = headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map_or_else(|| EventId::generate().into_string(), str::to_owned);
    let events = normalized
        .events
        .into_iter()
        .map(|event| envelope_for(channel, &account, event, &correlation_id, ingress.partitions))
        .collect();
    let spooled = ingress.hand_over(channel, events).await?;
    if let Some(token) = &mailgun_token {
        ingress.remember_mailgun_token(&account, token);
    }
    Ok((if spooled > 0 { "spooled" } else { "accepted" }, channel))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_proto::events::v1::InboundMessage;

    fn event(message_id: &str, received_at_seconds: i64) -> InboundEvent {
        InboundEvent {
            channel_account_id: "chacc_a".to_owned(),
            received_at: Some(prost_types::Timestamp {
                seconds: received_at_seconds,
                nanos: 0,
            }),
            kind: Some(inbound_event::Kind::Message(InboundMessage {
                provider_message_id: message_id.to_owned(),
                ..InboundMessage::default()
            })),
            ..InboundEvent::default()
        }
    }

    #[test]
    fn a_retried_webhook_keeps_its_event_ids_and_other_events_get_others() {
        let first = inbound_event_id("chacc_a", &event("wamid.1", 100));
        assert_eq!(first, inbound_event_id("chacc_a", &event("wamid.1", 200)));
        assert_ne!(first, inbound_event_id("chacc_a", &event("wamid.2", 100)));
        assert_ne!(first, inbound_event_id("chacc_b", &event("wamid.1", 100)));
        assert!(switchboard_domain::EventId::parse(&first).is_ok(), "{first}");
    }
}
