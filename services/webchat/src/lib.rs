//! The web chat channel (`ingress-webchat`): Switchboard's own embeddable widget, sessions
//! signed per account, a WebSocket protocol that survives reconnects (client ids, per-thread
//! `seq`, resume), a REST fallback, and delivery of agent replies to whichever replica holds
//! the visitor's socket. See `PROTOCOL.md` beside this crate for the wire protocol.
//!
//! Visitor messages are stored with their bus event in one transaction (the outbox), so an
//! accepted message is never lost and goes to contacts and routing like any channel's.
//! Delivery sends replies through the internal API (`/webchat/{account}/internal/…`), and the
//! visitor's delivered and read marks flow back to it as status receipts.

mod account;
mod config;
mod error;
mod events;
mod http;
mod hub;
mod internal;
mod metrics;
mod socket;
mod store;
mod token;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use secrecy::SecretString;
use serde::Deserialize;
use switchboard_directory::AccountDirectory;
use switchboard_domain::Channel;
use switchboard_messaging::{Bus, Publisher};
use switchboard_postgres::{Migration, MigrationSet, Pool};
use switchboard_server::{ComponentParts, GrpcClientConfig};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use account::{AllowedOrigins, FieldRule, WebchatAccount};
pub use config::WebchatConfig;
pub use error::ApiError;
pub use events::VISITOR_TYPING_EVENT;
pub use metrics::WebchatMetrics;
/// The client's WebSocket frame `{"type", "data"}`, public for the fuzz target of its parser.
pub use socket::ClientFrame;
pub use store::{StoredMessage, Visitor};
pub use token::{SessionClaims, TokenError, identity_verified};

use crate::hub::{Hub, Signal};
use crate::store::{NewMessage, Store, Watermark};

/// The schema migrations of the web chat component.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    schema: "webchat",
    migrations: &[
        Migration {
            version: 1,
            name: "initial",
            sql: include_str!("../migrations/0001_initial.sql"),
        },
        Migration {
            version: 2,
            name: "outbox_vacuum",
            sql: include_str!("../migrations/0002_outbox_vacuum.sql"),
        },
    ],
};

/// What web chat needs from the rest of the process.
pub struct WebchatDependencies<'a> {
    /// Web chat limits.
    pub config: &'a WebchatConfig,
    /// The origin the widget's host pages reach Switchboard at (`ingress.public_base_url`):
    /// attachment URLs start with it (without it they are paths, never built from a request's
    /// `Host`, which the client chooses).
    pub public_base_url: Option<String>,
    /// How to reach tenancy's account directory.
    pub grpc_client: &'a GrpcClientConfig,
    /// The internal token (the directory needs it; delivery presents it).
    pub internal_token: &'a SecretString,
    /// The `webchat` schema's database.
    pub pool: Pool,
    /// The broker.
    pub bus: Bus,
    /// Web chat metrics (registered by the caller).
    pub metrics: Arc<WebchatMetrics>,
    /// Closes sockets (1001) and stops the background tasks.
    pub shutdown: CancellationToken,
}

/// Why web chat could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WebchatError {
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
}

/// The web chat component's shared state.
pub(crate) struct Webchat {
    pub(crate) config: WebchatConfig,
    pub(crate) directory: AccountDirectory,
    pub(crate) store: Store,
    pub(crate) hub: Arc<Hub>,
    pub(crate) outbox_wake: Arc<Notify>,
    pub(crate) internal_token: SecretString,
    pub(crate) public_base_url: Option<String>,
    pub(crate) publisher: Publisher,
    pub(crate) session_limiter: DefaultKeyedRateLimiter<IpAddr>,
    pub(crate) message_limiter: DefaultKeyedRateLimiter<String>,
    pub(crate) upload_limiter: DefaultKeyedRateLimiter<String>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) metrics: Arc<WebchatMetrics>,
}

/// A visitor's message as sent over the socket or the REST fallback.
#[derive(Debug, Clone, Deserialize)]
pub struct VisitorSend {
    /// The client's id of the message (a UUID); resends carry the same one.
    #[serde(default)]
    pub(crate) client_id: String,
    /// The text.
    #[serde(default)]
    pub(crate) text: String,
    /// Uploaded attachments (`att_…`).
    #[serde(default)]
    pub(crate) attachment_ids: Vec<String>,
}

/// Most attachments on one message.
const MAX_ATTACHMENTS: usize = 10;
/// Longest client id.
const MAX_CLIENT_ID: usize = 100;

impl Webchat {
    /// The enabled web chat account `id`.
    pub(crate) async fn account(&self, id: &str) -> Result<WebchatAccount, ApiError> {
        match self.directory.resolve(id).await {
            Ok(resolved) if resolved.channel == Channel::Webchat && resolved.enabled => {
                Ok(WebchatAccount::new(resolved))
            }
            Ok(_) | Err(switchboard_directory::DirectoryError::NotFound) => Err(ApiError::unknown_account()),
            Err(error) => {
                tracing::warn!(error = %error, "cannot resolve a web chat account");
                Err(ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the chat service cannot look up this account right now; retry in a moment",
                ))
            }
        }
    }

    /// The claims of a session token of `account`.
    pub(crate) fn claims(&self, account: &WebchatAccount, token: &str) -> Result<SessionClaims, ApiError> {
        let secret = account.session_secret().ok_or_else(not_configured)?;
        token::verify(secret, account.id(), token, chrono::Utc::now().timestamp()).map_err(|error| {
            ApiError::session_invalid(match error {
                TokenError::Invalid => "the session token is not valid; start a new session",
                TokenError::Expired => "the session has expired; start a new session",
            })
        })
    }

    /// The visitor a session token stands for (marked seen now).
    pub(crate) async fn visitor(&self, account: &WebchatAccount, token: &str) -> Result<Visitor, ApiError> {
        let claims = self.claims(account, token)?;
        self.store
            .touch_visitor(account.id(), &claims.vis)
            .await?
            .ok_or_else(|| {
                ApiError::session_invalid("this session's visitor no longer exists; start a new session")
            })
    }

    /// Stores a visitor's message (or finds the earlier one with its client id) and wakes
    /// every socket of the visitor. Returns the message and whether it is new.
    pub(crate) async fn accept(
        &self,
        account: &WebchatAccount,
        visitor: &Visitor,
        send: &VisitorSend,
    ) -> Result<(StoredMessage, bool), ApiError> {
        let accepted = self.accept_counted(account, visitor, send).await;
        let outcome = match &accepted {
            Ok((_, true)) => "accepted",
            Ok((_, false)) => "duplicate",
            Err(error) => error.code,
        };
        self.metrics.message("inbound", outcome);
        accepted
    }

    async fn accept_counted(
        &self,
        account: &WebchatAccount,
        visitor: &Visitor,
        send: &VisitorSend,
    ) -> Result<(StoredMessage, bool), ApiError> {
        if send.client_id.trim().is_empty() || send.client_id.chars().count() > MAX_CLIENT_ID {
            return Err(ApiError::field(
                "invalid_frame",
                "client_id",
                format!("client_id must be 1 to {MAX_CLIENT_ID} characters (a UUID)"),
            ));
        }
        let chars = send.text.chars().count();
        if chars > self.config.max_message_chars {
            return Err(ApiError::field(
                "message_too_large",
                "text",
                format!(
                    "the message has {chars} characters; the limit is {}",
                    self.config.max_message_chars
                ),
            ));
        }
        if send.text.trim().is_empty() && send.attachment_ids.is_empty() {
            return Err(ApiError::field(
                "empty_message",
                "text",
                "the message has no text and no attachment",
            ));
        }
        if send.attachment_ids.len() > MAX_ATTACHMENTS {
            return Err(ApiError::field(
                "too_many_attachments",
                "attachment_ids",
                format!("a message carries at most {MAX_ATTACHMENTS} attachments"),
            ));
        }
        // A resend of an accepted message costs nothing (a reconnecting client resends its
        // pending messages at once).
        if let Some(existing) = self
            .store
            .by_client_id(account.id(), &visitor.visitor_id, &send.client_id)
            .await?
        {
            return Ok((existing, false));
        }
        if let Err(not_until) = self.message_limiter.check_key(&visitor.visitor_id) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            return Err(ApiError::rate_limited(
                "rate_limited",
                format!(
                    "more than {} messages per second; resend the same client_id later",
                    self.config.messages_per_second
                ),
                wait.as_secs_f64().ceil() as u64,
            ));
        }
        let attachments = self
            .attachment_refs(account, visitor, &send.attachment_ids)
            .await?;
        let message = NewMessage {
            author: "visitor",
            author_name: String::new(),
            client_id: Some(send.client_id.clone()),
            outbound_id: None,
            body: send.text.clone(),
            attachments,
            buttons: serde_json::json!([]),
        };
        let resolved = account.resolved.clone();
        let events = move |visitor: &Visitor, stored: &StoredMessage| {
            vec![events::visitor_message(&resolved, visitor, stored)]
        };
        let (stored, created) = self
            .store
            .append(account.id(), &visitor.visitor_id, &message, &events)
            .await?
            .ok_or_else(|| {
                ApiError::session_invalid("this session's visitor no longer exists; start a new session")
            })?;
        if created {
            self.outbox_wake.notify_one();
            self.hub.signal(
                account.id(),
                &visitor.visitor_id,
                Signal::Message { seq: stored.seq },
            );
        }
        Ok((stored, created))
    }

    async fn attachment_refs(
        &self,
        account: &WebchatAccount,
        visitor: &Visitor,
        ids: &[String],
    ) -> Result<serde_json::Value, ApiError> {
        if ids.is_empty() {
            return Ok(serde_json::json!([]));
        }
        let found = self
            .store
            .attachments_of(account.id(), &visitor.visitor_id, ids)
            .await?;
        let mut refs = Vec::with_capacity(ids.len());
        for id in ids {
            let attachment = found
                .iter()
                .find(|attachment| &attachment.id == id)
                .ok_or_else(|| {
                    ApiError::field(
                        "unknown_attachment",
                        "attachment_ids",
                        format!("attachment {id:?} was not uploaded in this session; upload it first"),
                    )
                })?;
            refs.push(serde_json::json!({
                "id": attachment.id,
                "url": self.attachment_url(account.id(), &attachment.id),
                "mime_type": attachment.mime_type,
                "filename": attachment.filename,
                "size": attachment.size_bytes,
                "sha256": attachment.sha256,
            }));
        }
        Ok(serde_json::Value::Array(refs))
    }

    /// Raises the visitor's delivered or read mark and sends receipts for the outbound
    /// messages it passes.
    pub(crate) async fn mark(
        &self,
        account: &WebchatAccount,
        visitor: &Visitor,
        read: bool,
        up_to_seq: i64,
    ) -> Result<(), ApiError> {
        let resolved = account.resolved.clone();
        let receipt = move |visitor: &Visitor, message: &StoredMessage| {
            events::receipt(&resolved, visitor, message, read)
        };
        let watermark = if read {
            Watermark::VisitorRead
        } else {
            Watermark::Delivered
        };
        self.store
            .advance_visitor_watermark(account.id(), &visitor.visitor_id, watermark, up_to_seq, &receipt)
            .await?;
        self.outbox_wake.notify_one();
        Ok(())
    }

    /// Tells subscribers (an agent desk) that the visitor started or stopped typing.
    pub(crate) async fn visitor_typing(&self, account: &WebchatAccount, visitor: &Visitor, on: bool) {
        let envelope = events::visitor_typing(&account.resolved, visitor, on);
        let outgoing =
            switchboard_messaging::Outgoing::envelope(&envelope, self.publisher.bus().config().partitions);
        if let Err(error) = self.publisher.publish_optional(outgoing).await {
            tracing::debug!(error = %error, "visitor typing not published");
        }
    }
}

/// The origin a request was sent to (`X-Forwarded-Proto` or http, and `Host`).
pub(crate) fn request_origin(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(axum::http::header::HOST)?.to_str().ok()?;
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .map_or("http", |value| value.split(',').next().unwrap_or("http").trim());
    Some(format!("{scheme}://{host}"))
}

impl Webchat {
    /// The URL of an uploaded attachment: on `ingress.public_base_url`, else a path.
    pub(crate) fn attachment_url(&self, account: &str, id: &str) -> String {
        format!(
            "{}/webchat/{account}/attachments/{id}",
            self.public_base_url.as_deref().unwrap_or("")
        )
    }
}

fn not_configured() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "account_not_configured",
        "this web chat account has no session_secret; its administrator must set one",
    )
}

/// Builds web chat: its routes (public and internal), the outbox relay and the hint consumer.
pub fn build(dependencies: WebchatDependencies<'_>) -> Result<ComponentParts, WebchatError> {
    let WebchatDependencies {
        config,
        public_base_url,
        grpc_client,
        internal_token,
        pool,
        bus,
        metrics,
        shutdown,
    } = dependencies;
    config.validate().map_err(WebchatError::Config)?;
    let directory = AccountDirectory::new(grpc_client, internal_token, config.account_cache_ttl)
        .map_err(WebchatError::Config)?;
    let per_second = NonZeroU32::new(config.messages_per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(config.message_burst).unwrap_or(per_second);
    let per_minute = NonZeroU32::new(config.sessions_per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
    let hub = Hub::new(bus.clone());
    let outbox_wake = Arc::new(Notify::new());
    let partitions = bus.config().partitions;
    let webchat = Arc::new(Webchat {
        config: config.clone(),
        directory,
        store: Store::new(pool.clone(), partitions),
        hub: hub.clone(),
        outbox_wake: outbox_wake.clone(),
        internal_token: internal_token.clone(),
        public_base_url,
        publisher: bus.publisher(),
        session_limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
        message_limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
        upload_limiter: RateLimiter::keyed(Quota::per_minute(
            NonZeroU32::new(config.uploads_per_minute).unwrap_or(NonZeroU32::MIN),
        )),
        shutdown: shutdown.clone(),
        metrics,
    });
    let mut parts = ComponentParts {
        router: Some(http::router(webchat.clone())),
        ..ComponentParts::default()
    };
    parts.spawn("web chat hints", hub.run(shutdown.clone()));
    parts.spawn(
        "web chat outbox relay",
        switchboard_outbox::OutboxRelay {
            outbox: store::OUTBOX,
            pool,
            publisher: bus.publisher(),
            queues: Arc::new(switchboard_ingress::inbound_topology(&bus)),
            wake: outbox_wake,
            interval: config.relay_interval,
            shutdown: shutdown.clone(),
        }
        .run(),
    );
    parts.spawn("web chat cleanup", forget_idle_limits(webchat, shutdown));
    Ok(parts)
}

/// Drops rate-limiter state of idle sessions and IPs once a minute, so memory follows the
/// active visitors rather than every visitor ever seen, and deletes uploads no message took.
async fn forget_idle_limits(
    webchat: Arc<Webchat>,
    shutdown: CancellationToken,
) -> Result<(), switchboard_server::BoxError> {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        webchat.session_limiter.retain_recent();
        webchat.session_limiter.shrink_to_fit();
        webchat.message_limiter.retain_recent();
        webchat.message_limiter.shrink_to_fit();
        webchat.upload_limiter.retain_recent();
        webchat.upload_limiter.shrink_to_fit();
        match webchat
            .store
            .delete_unsent_attachments(webchat.config.unsent_attachment_ttl)
            .await
        {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "unsent web chat attachments deleted"),
            Err(error) => tracing::warn!(error = %error, "cannot delete unsent web chat attachments"),
        }
    }
}
