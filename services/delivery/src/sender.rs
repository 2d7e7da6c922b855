//! The send worker: consumes send jobs from the account partitions (`delivery.send.pNN`),
//! waits for the account's lane, claims the attempt, calls the provider and records what it
//! said: `sent` with the provider id (applying receipts that arrived first), a retry with
//! backoff and jitter never sooner than the provider's retry-after, `failed` with the
//! provider's code, or an unknown outcome when the call timed out after the request went out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use switchboard_postgres::CachedStatements as _;

use chrono::{DateTime, Utc};
use switchboard_channels::outbound::{self, BuildError, SendOutcome};
use switchboard_directory::ResolvedAccount;
use switchboard_messaging::{Handler, HandlerError, Incoming};
use switchboard_postgres::Pool;
use switchboard_proto::common::v1::ProviderError;
use switchboard_proto::events::v1::envelope::Payload;
use tokio::sync::Notify;
use tracing::Instrument as _;

use crate::lanes::Lanes;
use crate::lookup::Lookups;
use crate::metrics::DeliveryMetrics;
use crate::retry::{self, NextAttempt};
use crate::store::{self, MESSAGE_COLUMNS, MessageRow, StatusUpdate};
use crate::{DeliveryConfig, DeliveryError, receipts};

/// What one provider call came to.
#[derive(Debug)]
pub enum CallOutcome {
    /// The provider answered; `status` is its HTTP status.
    Answered {
        /// HTTP status.
        status: u16,
        /// The classified answer.
        outcome: SendOutcome,
    },
    /// The request went out and no answer came in time: maybe sent.
    Unknown(String),
    /// The request never reached the provider (connection refused, DNS).
    NotSent(String),
    /// The message cannot be sent on this channel as it is.
    Unbuildable(BuildError),
}

/// Sends jobs of the partitions this process consumes.
pub struct Sender {
    /// The `delivery` schema.
    pub pool: Pool,
    /// Accounts with secrets.
    pub lookups: Lookups,
    /// Rate limits.
    pub lanes: Arc<Lanes>,
    /// The provider HTTP client.
    pub http: reqwest::Client,
    /// The `[delivery]` section.
    pub config: Arc<DeliveryConfig>,
    /// Bus partitions.
    pub partitions: u16,
    /// Wakes the outbox relay.
    pub outbox_wake: Arc<Notify>,
    /// Counters.
    pub metrics: Arc<DeliveryMetrics>,
    /// E-mail over SMTP.
    pub mailer: crate::smtp::Mailer,
    /// Web chat's internal API.
    pub webchat: crate::webchat::WebchatLink,
}

impl Handler for Sender {
    /// Live replies to one recipient are handed over one at a time in queue order (the job's
    /// order key), so a customer sees them in the order they were sent; the lane's
    /// `Turn` then keeps any two calls to one recipient, broadcasts too, apart.
    fn order_key(&self, incoming: &Incoming) -> Option<String> {
        match incoming.decode_envelope().ok()?.payload {
            Some(Payload::SendRequested(job)) if !job.order_key.is_empty() => Some(job.order_key),
            _ => None,
        }
    }

    async fn handle(&self, incoming: &Incoming) -> Result<(), HandlerError> {
        let envelope = incoming.decode_envelope().map_err(HandlerError::permanent)?;
        let job_id = envelope.event_id.clone();
        let Some(Payload::SendRequested(job)) = envelope.payload else {
            return Err(HandlerError::permanent("not a send job"));
        };
        self.send(&job_id, &job.message_id, job.attempt)
            .await
            .map_err(|error| HandlerError::classified(error.failure(), error))
    }
}

impl Sender {
    async fn send(&self, job_id: &str, message_id: &str, attempt: u32) -> Result<(), DeliveryError> {
        let client = self.pool.get().await?;
        let Some(row) = client
            .query_opt_cached(
                &format!("SELECT {MESSAGE_COLUMNS} FROM delivery.messages WHERE id = $1"),
                &[&message_id],
            )
            .await?
        else {
            return Ok(());
        };
        drop(client);
        let row = MessageRow::from_row(&row)?;
        let previous = i32::try_from(attempt).unwrap_or(i32::MAX) - 1;
        if row.status != "queued"
            || row.attempts != previous
            || row.next_attempt_at.is_some()
            || row.deleted_at.is_some()
        {
            tracing::debug!(job_id, message_id, status = %row.status, attempts = row.attempts, attempt, "stale send job skipped");
            return Ok(());
        }
        let account = self.lookups.account(&row.channel_account_id).await?;
        let lane = self.lanes.lane(&account);
        let live = row.priority == 0;
        let _held = if live {
            None
        } else {
            match self.lanes.hold_broadcast(&lane) {
                Some(held) => Some(held),
                None => return self.defer(&row, previous, lane.broadcast_slot()).await,
            }
        };
        let _turn = lane.turn(&row.recipient).await;
        lane.acquire(&row.recipient).await;
        let client = self.pool.get().await?;
        let claimed = client
            .execute_cached(
                "UPDATE delivery.messages SET attempts = attempts + 1, status = 'sending', updated_at = now()
                 WHERE id = $1 AND status = 'queued' AND attempts = $2 AND next_attempt_at IS NULL AND deleted_at IS NULL",
                &[&row.id, &previous],
            )
            .await?;
        drop(client);
        if claimed == 0 {
            tracing::debug!(job_id, message_id, "another job claimed this attempt");
            return Ok(());
        }
        let number = previous + 1;
        let span = tracing::info_span!(
            "provider.send",
            channel = %row.channel,
            account = %row.channel_account_id,
            message_id = %row.id,
            attempt = number,
            provider_message_id = tracing::field::Empty,
        );
        lane.space(&row.recipient).await;
        let slot = lane.pace(live, &row.recipient).await;
        let started = Utc::now();
        let outcome = self.call(&account, &row).instrument(span.clone()).await;
        drop(slot);
        if let CallOutcome::Answered {
            outcome: SendOutcome::Accepted { provider_message_id },
            ..
        } = &outcome
        {
            span.record("provider_message_id", provider_message_id.as_str());
        }
        if let CallOutcome::Answered {
            outcome:
                SendOutcome::Retryable {
                    retry_after: Some(wait),
                    ..
                },
            status,
        } = &outcome
            && *status == 429
        {
            lane.pause(retry::bounded_wait(&self.config, *wait));
        }
        self.metrics.attempt(&row.channel, outcome_label(&outcome));
        // The attempt is claimed: its result must be recorded, so a passing database failure
        // is retried here rather than by redelivery (which would skip the claimed attempt).
        let mut backoff = Duration::from_millis(100);
        loop {
            match self
                .record(&row, number, started, &outcome)
                .instrument(span.clone())
                .await
            {
                Ok(()) => return Ok(()),
                Err(error) if error.is_retryable() && backoff < Duration::from_secs(30) => {
                    tracing::warn!(error = %error, message_id = %row.id, "recording a send failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Leaves a broadcast in the database for `wait`: the scheduler queues it again when due,
    /// with the same attempt number, and this job is acked.
    async fn defer(&self, row: &MessageRow, previous: i32, wait: Duration) -> Result<(), DeliveryError> {
        let wait = wait.as_secs_f64();
        let client = self.pool.get().await?;
        client
            .execute_cached(
                "UPDATE delivery.messages SET next_attempt_at = now() + make_interval(secs => $3), updated_at = now()
                 WHERE id = $1 AND status = 'queued' AND attempts = $2 AND next_attempt_at IS NULL AND deleted_at IS NULL",
                &[&row.id, &previous, &wait],
            )
            .await?;
        self.metrics.attempt(&row.channel, "deferred");
        Ok(())
    }

    /// Makes the provider call.
    async fn call(&self, account: &ResolvedAccount, row: &MessageRow) -> CallOutcome {
        if account.channel == switchboard_domain::Channel::Email {
            return self.mailer.send(account, row).await;
        }
        let provider_account = if account.channel == switchboard_domain::Channel::Webchat {
            self.webchat.provider_account(account)
        } else {
            crate::store::provider_account(account)
        };
        let message = row.outbound();
        let request = match outbound::build_send(&provider_account, &message) {
            Ok(request) => request,
            Err(error) => return CallOutcome::Unbuildable(error),
        };
        let channel = account.channel;
        self.execute(request, |status, headers, body| {
            outbound::classify_send(channel, status, headers, body)
        })
        .await
    }

    /// Sends a built request with the trace context and the send timeout, and classifies the
    /// answer with `classify`.
    pub async fn execute(
        &self,
        request: outbound::ProviderRequest,
        classify: impl FnOnce(u16, &http::HeaderMap, &[u8]) -> SendOutcome,
    ) -> CallOutcome {
        let mut headers = request.headers.clone();
        let mut carrier: HashMap<String, String> = HashMap::new();
        switchboard_telemetry::propagation::inject_span(&tracing::Span::current(), &mut carrier);
        for (name, value) in carrier {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(&value),
            ) {
                headers.insert(name, value);
            }
        }
        let sent = self
            .http
            .request(request.method.clone(), &request.url)
            .headers(headers)
            .body(request.body)
            .timeout(self.config.send_timeout)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) if error.is_connect() => {
                return CallOutcome::NotSent(format!(
                    "connection failed to {}",
                    outbound::redact_url(&request.url)
                ));
            }
            Err(error) if error.is_timeout() => {
                return CallOutcome::Unknown("the provider did not answer in time".to_owned());
            }
            Err(_) => return CallOutcome::Unknown("the connection broke before an answer".to_owned()),
        };
        let status = response.status().as_u16();
        let response_headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(_) => return CallOutcome::Unknown(format!("the answer (HTTP {status}) broke off")),
        };
        CallOutcome::Answered {
            status,
            outcome: classify(status, &response_headers, &body),
        }
    }

    /// Records attempt `number`'s outcome and moves the message on.
    async fn record(
        &self,
        row: &MessageRow,
        number: i32,
        started: DateTime<Utc>,
        outcome: &CallOutcome,
    ) -> Result<(), DeliveryError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let (label, status, error, retry_after) = match outcome {
            CallOutcome::Answered { status, outcome } => match outcome {
                SendOutcome::Accepted { .. } => ("accepted", *status, None, None),
                SendOutcome::Retryable { error, retry_after } => {
                    ("retryable", *status, Some(error.clone()), *retry_after)
                }
                SendOutcome::Permanent { error } => ("permanent", *status, Some(error.clone()), None),
            },
            CallOutcome::Unknown(why) => ("unknown", 0, Some(local_error("timeout", why)), None),
            CallOutcome::NotSent(why) => ("retryable", 0, Some(local_error("unreachable", why)), None),
            CallOutcome::Unbuildable(error) => (
                "permanent",
                0,
                Some(local_error(build_code(error), &error.to_string())),
                None,
            ),
        };
        let empty = ProviderError::default();
        let shown = error.as_ref().unwrap_or(&empty);
        let retry_after_ms =
            retry_after.map_or(0, |wait| i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
        tx.execute_cached(
            "INSERT INTO delivery.attempts (message_id, number, started_at, outcome, provider_status,
                     error_code, error_title, error_message, error_details, retry_after_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            &[
                &row.id,
                &number,
                &started,
                &label,
                &i32::from(status),
                &shown.code,
                &shown.title,
                &shown.message,
                &shown.details,
                &retry_after_ms,
            ],
        )
        .await?;
        match (label, outcome) {
            (
                "accepted",
                CallOutcome::Answered {
                    outcome: SendOutcome::Accepted { provider_message_id },
                    ..
                },
            ) => {
                receipts::lock_provider_id(&tx, &row.channel_account_id, provider_message_id).await?;
                let update = StatusUpdate {
                    status: "sent",
                    source: "send",
                    provider_message_id: Some(provider_message_id),
                    ..StatusUpdate::default()
                };
                store::advance(&tx, self.partitions, &row.id, &update).await?;
                receipts::apply_parked(
                    &tx,
                    self.partitions,
                    &row.channel_account_id,
                    provider_message_id,
                    &row.id,
                )
                .await?;
            }
            ("retryable", _) => {
                let jitter: f64 = rand::random_range(0.5..1.0);
                let next = retry::next_attempt(
                    &self.config,
                    number,
                    retry_after,
                    jitter,
                    Utc::now(),
                    row.created_at,
                );
                if let NextAttempt::At(next) = next {
                    tx.execute_cached(
                        "UPDATE delivery.messages SET status = 'queued', next_attempt_at = $2, error_code = $3,
                             error_title = $4, error_message = $5, error_details = $6, updated_at = now()
                         WHERE id = $1 AND status = 'sending'",
                        &[&row.id, &next, &shown.code, &shown.title, &shown.message, &shown.details],
                    )
                    .await?;
                } else {
                    let update = StatusUpdate {
                        status: "failed",
                        source: "retry",
                        provider_status: "retries_exhausted",
                        error: error.as_ref(),
                        provider_message_id: None,
                    };
                    store::advance(&tx, self.partitions, &row.id, &update).await?;
                }
            }
            ("permanent", _) => {
                let update = StatusUpdate {
                    status: "failed",
                    source: "send",
                    provider_status: "",
                    error: error.as_ref(),
                    provider_message_id: None,
                };
                store::advance(&tx, self.partitions, &row.id, &update).await?;
            }
            _ => {
                tx.execute_cached(
                    "UPDATE delivery.messages SET outcome_unknown = true, updated_at = now() WHERE id = $1 AND status = 'sending'",
                    &[&row.id],
                )
                .await?;
            }
        }
        tx.commit().await?;
        self.outbox_wake.notify_one();
        Ok(())
    }
}

fn local_error(code: &str, message: &str) -> ProviderError {
    ProviderError {
        code: code.to_owned(),
        title: String::new(),
        message: message.to_owned(),
        details: String::new(),
    }
}

fn build_code(error: &BuildError) -> &'static str {
    match error {
        BuildError::MissingCredential(_) => "missing_credential",
        BuildError::Unsupported(_) => "unsupported_content",
    }
}

fn outcome_label(outcome: &CallOutcome) -> &'static str {
    match outcome {
        CallOutcome::Answered { outcome, .. } => match outcome {
            SendOutcome::Accepted { .. } => "accepted",
            SendOutcome::Retryable { .. } => "retryable",
            SendOutcome::Permanent { .. } => "permanent",
        },
        CallOutcome::Unknown(_) => "unknown",
        CallOutcome::NotSent(_) => "not_sent",
        CallOutcome::Unbuildable(_) => "unbuildable",
    }
}
