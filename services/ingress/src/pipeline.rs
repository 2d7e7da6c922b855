//! The path every received payload takes, whichever front end (HTTP webhooks, the SMTP
//! listener) received it: account → verify → normalize → hand-over to the broker, else the
//! spool; a validly signed payload that cannot be understood goes to the dead letters.

use std::sync::Arc;

use switchboard_channels::{
    NormalizeError, Normalized, Verified, VerifyError, WebhookAdapter, WebhookRequest, adapter_for,
};
use switchboard_directory::{AccountDirectory, DirectoryError, ResolvedAccount};
use switchboard_domain::{Channel, ChannelAccountId, ErrorCode};
use switchboard_inbound::InboundTopology;
use switchboard_messaging::{Outgoing, Partitions, Publisher};
use switchboard_postgres::Pool;

use crate::IngressConfig;
use crate::metrics::{ChannelLabels, IngressMetrics};
use crate::rejection::Rejection;
use crate::replay::ReplayGuard;
use crate::spool::Spool;

/// Everything a received payload needs, shared by all requests and sessions.
pub(crate) struct Ingress {
    pub config: IngressConfig,
    pub channels: Vec<Channel>,
    pub directory: AccountDirectory,
    pub publisher: Publisher,
    pub spool: Arc<Spool>,
    pub topology: Arc<InboundTopology>,
    pub pool: Pool,
    pub metrics: Arc<IngressMetrics>,
    pub partitions: Partitions,
    /// Replay keys already accepted (replays inside `mailgun_max_age` are dropped).
    pub replays: ReplayGuard,
}

/// What became of a payload that was not refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every event was confirmed by the broker.
    Accepted,
    /// Some events went to the spool (the relay publishes them).
    Spooled,
    /// Nothing in it needs handling.
    Ignored,
    /// A repeat of a payload accepted before.
    Replayed,
    /// Validly signed but not understood: kept for operators.
    DeadLettered,
}

impl Outcome {
    /// The metrics outcome.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Spooled => "spooled",
            Self::Ignored => "ignored",
            Self::Replayed => "replayed",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// A verified payload of one account, ready to be accepted.
pub(crate) struct Received<'a> {
    /// The channel it arrived on.
    pub channel: Channel,
    /// The account it was sent to.
    pub account: &'a ResolvedAccount,
    /// Its `Content-Type`, kept with a dead letter.
    pub content_type: &'a str,
    /// The raw payload, kept with a dead letter.
    pub body: &'a [u8],
    /// Ties its events together in traces (`x-request-id` or a new id).
    pub correlation_id: &'a str,
}

impl Ingress {
    /// The served channel called `name`.
    pub fn channel(&self, name: &str) -> Result<Channel, Rejection> {
        name.parse::<Channel>()
            .ok()
            .filter(|channel| self.channels.contains(channel))
            .ok_or_else(|| {
                Rejection::unknown_channel(format!("this ingress does not serve channel {name:?}"))
            })
    }

    /// The enabled account `id` of `channel`.
    pub async fn account(
        &self,
        channel: Channel,
        id: &ChannelAccountId,
    ) -> Result<Arc<ResolvedAccount>, Rejection> {
        match self.directory.resolve(id.as_str()).await {
            Ok(account) if account.enabled && account.channel == channel => Ok(account),
            Ok(_) | Err(DirectoryError::NotFound) => Err(Rejection::unknown_account()),
            Err(error @ DirectoryError::Unavailable(_)) => {
                tracing::error!(error = %error, "cannot resolve channel account");
                Err(Rejection::new(
                    ErrorCode::Unavailable,
                    "directory_unavailable",
                    "channel accounts cannot be looked up right now; retry later",
                ))
            }
        }
    }

    /// The webhook adapter for `account` on `channel`.
    pub fn adapter(
        channel: Channel,
        account: &ResolvedAccount,
        headers: &http::HeaderMap,
    ) -> Result<&'static WebhookAdapter, Rejection> {
        adapter_for(channel, account, headers)
            .ok_or_else(|| Rejection::unknown_channel(format!("{} has no webhooks", channel.as_str())))
    }

    /// Checks the request's signature; when it does not match a cached account, checks once
    /// more against a fresh copy (the secret may have been rotated since it was cached).
    /// Returns the account it verified with, its adapter and the verified body.
    pub async fn verify<'a>(
        &self,
        channel: Channel,
        account: Arc<ResolvedAccount>,
        request: &WebhookRequest<'a>,
    ) -> Result<(Arc<ResolvedAccount>, &'static WebhookAdapter, Verified<'a>), Rejection> {
        let adapter = Self::adapter(channel, &account, request.headers)?;
        match adapter.verify(account.as_ref(), request) {
            Ok(verified) => Ok((account, adapter, verified)),
            Err(VerifyError::Mismatch) if account.may_be_stale() => {
                let fresh = match self.directory.fetch(&account.id).await {
                    Ok(fresh) if fresh.enabled && fresh.channel == channel => fresh,
                    Ok(_) | Err(DirectoryError::NotFound) => return Err(Rejection::unknown_account()),
                    Err(_) => return Err(Rejection::unverified(&VerifyError::Mismatch)),
                };
                let adapter = Self::adapter(channel, &fresh, request.headers)?;
                let verified = adapter
                    .verify(fresh.as_ref(), request)
                    .map_err(|error| Rejection::unverified(&error))?;
                Ok((fresh, adapter, verified))
            }
            Err(error) => Err(Rejection::unverified(&error)),
        }
    }

    /// Accepts what a verified payload normalized to: dead-letters it when it could not be
    /// understood, drops a replay (per `adapter`'s replay key), and hands the events over.
    pub async fn accept(
        &self,
        received: &Received<'_>,
        normalized: Result<Normalized, NormalizeError>,
        adapter: Option<&WebhookAdapter>,
    ) -> Result<Outcome, Rejection> {
        let normalized = match normalized {
            Ok(normalized) => normalized,
            Err(error) => {
                let reason = error.to_string();
                self.dead_letter(received, &reason).await?;
                tracing::warn!(reason = %reason, "signed payload could not be understood; dead-lettered");
                return Ok(Outcome::DeadLettered);
            }
        };
        let channel = received.channel;
        for skipped in &normalized.skipped {
            tracing::debug!(location = %skipped.location, reason = %skipped.reason, "payload item skipped");
        }
        if !normalized.skipped.is_empty() {
            self.metrics
                .skipped
                .get_or_create(&ChannelLabels {
                    channel: channel.as_str(),
                })
                .inc_by(normalized.skipped.len() as u64);
        }
        let replay_key = adapter
            .and_then(|adapter| adapter.replay_key(&normalized))
            .map(str::to_owned);
        let account_id = received.account.id.as_str();
        if let Some(key) = &replay_key
            && self.replays.seen_recently(account_id, key)
        {
            return Ok(Outcome::Replayed);
        }
        tracing::Span::current().record("events", normalized.events.len());
        if normalized.events.is_empty() {
            return Ok(Outcome::Ignored);
        }
        let events = normalized
            .events
            .into_iter()
            .map(|event| {
                switchboard_inbound::inbound_outgoing(
                    channel,
                    received.account,
                    event,
                    received.correlation_id,
                    &self.partitions,
                )
            })
            .collect();
        let spooled = self.hand_over(channel, events).await?;
        if let Some(key) = &replay_key {
            self.replays.remember(account_id, key);
        }
        Ok(if spooled > 0 {
            Outcome::Spooled
        } else {
            Outcome::Accepted
        })
    }

    /// Keeps a validly signed payload that could not be understood, for operators.
    async fn dead_letter(&self, received: &Received<'_>, reason: &str) -> Result<(), Rejection> {
        let result = async {
            let client = self.pool.get().await?;
            client
                .execute(
                    "INSERT INTO ingress.dead_letters
                         (channel, channel_account_id, workspace_id, reason, content_type, body)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &received.channel.as_str(),
                        &received.account.id,
                        &received.account.workspace_id,
                        &reason,
                        &received.content_type,
                        &received.body,
                    ],
                )
                .await?;
            Ok::<(), switchboard_postgres::StoreError>(())
        }
        .await;
        result.map_err(|error| {
            tracing::error!(error = %error, "cannot store a dead-letter record");
            Rejection::unavailable("the payload cannot be recorded right now; retry later")
        })
    }

    /// Publishes every event with a confirm, in order; what the broker does not confirm (and
    /// everything after it) goes to the spool. Returns how many were spooled.
    async fn hand_over(&self, channel: Channel, events: Vec<Outgoing>) -> Result<usize, Rejection> {
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
                Err(Rejection::unavailable(
                    "cannot accept webhooks right now (message broker and spool both unavailable); retry later",
                ))
            }
        }
    }
}
