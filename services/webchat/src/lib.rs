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
mod extract;
mod frames;
mod http;
mod hub;
mod metrics;
mod service;
mod socket;
mod store;
mod token;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use secrecy::SecretString;
use switchboard_directory::AccountDirectory;
use switchboard_messaging::{Bus, Publisher};
use switchboard_postgres::{Migration, MigrationSet, Pool};
use switchboard_server::{ComponentParts, GrpcClientConfig};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use account::{AllowedOrigins, FieldRule, WebchatAccount};
pub use config::WebchatConfig;
pub use error::{ApiError, SessionError};
pub use events::VISITOR_TYPING_EVENT;
/// The client's WebSocket frame and message body, public for the fuzz target of their parser.
pub use frames::{ClientFrame, FrameError, Incoming, VisitorSend};
pub use metrics::WebchatMetrics;
pub use store::{StoredMessage, Visitor};
pub use token::{SessionClaims, TokenError, identity_verified};

use crate::hub::Hub;
use crate::store::Store;

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
    let webchat = Arc::new(Webchat {
        config: config.clone(),
        directory,
        store: Store::new(pool.clone(), bus.partitions().clone()),
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
            queues: Arc::new(switchboard_inbound::inbound_topology(&bus)),
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
