use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation};
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::headers::HeaderInjector;
use crate::message::CONTENT_TYPE_PROTOBUF;
use crate::{Bus, Outgoing, PublishError};

/// Publishes with publisher confirms: `publish` returns only once the broker has taken
/// responsibility for the message (persisted to a quorum of replicas), and every other outcome
/// (nack, return of an unroutable message, timeout, no connection) is an error the caller sees.
///
/// Clones share one confirm channel; publishes on it are pipelined, each awaiting its own confirm.
#[derive(Clone)]
pub struct Publisher {
    bus: Bus,
    /// The current confirm channel, read without locking on every publish.
    channel: Arc<ArcSwapOption<Channel>>,
    /// Serializes opening a replacement channel.
    reopening: Arc<Mutex<()>>,
}

impl Publisher {
    pub(crate) fn new(bus: Bus) -> Self {
        Self {
            bus,
            channel: Arc::new(ArcSwapOption::empty()),
            reopening: Arc::new(Mutex::new(())),
        }
    }

    /// The bus this publisher uses.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Publishes to the events exchange and waits for the confirm.
    pub async fn publish(&self, message: Outgoing) -> Result<(), PublishError> {
        let exchange = self.bus.events_exchange();
        self.publish_to(&exchange, message).await
    }

    /// Publishes a notification whose subscribers are optional: having no queue bound for it
    /// is not an error (no `mandatory` flag). Still waits for the confirm.
    pub async fn publish_optional(&self, message: Outgoing) -> Result<(), PublishError> {
        let exchange = self.bus.events_exchange();
        self.publish_with(&exchange, message, false).await
    }

    /// Publishes to `exchange` and waits for the confirm (bounded by `bus.confirm_timeout`).
    pub async fn publish_to(&self, exchange: &str, message: Outgoing) -> Result<(), PublishError> {
        self.publish_with(exchange, message, true).await
    }

    async fn publish_with(
        &self,
        exchange: &str,
        message: Outgoing,
        mandatory: bool,
    ) -> Result<(), PublishError> {
        let span = tracing::info_span!(
            "bus publish",
            otel.kind = "producer",
            messaging.system = "rabbitmq",
            messaging.operation.type = "send",
            messaging.destination.name = %exchange,
            messaging.rabbitmq.destination.routing_key = %message.routing_key,
            messaging.message.id = %message.message_id,
            error.type = tracing::field::Empty,
        );
        let timeout = self.bus.config().confirm_timeout;
        let started = Instant::now();
        let result = tokio::time::timeout(
            timeout,
            self.publish_confirmed(exchange, message, mandatory, &span),
        )
        .instrument(span.clone())
        .await
        .unwrap_or(Err(PublishError::Timeout(timeout)));
        let metrics = self.bus.metrics();
        metrics.publish_seconds.observe(started.elapsed().as_secs_f64());
        let outcome = result.as_ref().map_or_else(outcome_label, |()| "confirmed");
        metrics.published(outcome);
        if result.is_err() {
            span.record("error.type", outcome);
        }
        result
    }

    async fn publish_confirmed(
        &self,
        exchange: &str,
        message: Outgoing,
        mandatory: bool,
        span: &tracing::Span,
    ) -> Result<(), PublishError> {
        let channel = self.confirm_channel().await?;
        let (routing_key, payload, properties) = prepare(message, span);
        // mandatory: the broker returns the message when no queue is bound, instead of dropping it.
        let options = BasicPublishOptions {
            mandatory,
            ..BasicPublishOptions::default()
        };
        let confirm = channel
            .basic_publish(
                exchange.into(),
                routing_key.clone().into(),
                options,
                &payload,
                properties,
            )
            .await?;
        match confirm.await? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) => Err(PublishError::Unroutable {
                exchange: exchange.to_owned(),
                routing_key,
                reply_code: returned.reply_code,
                reply_text: returned.reply_text.as_str().to_owned(),
            }),
            Confirmation::Nack(_) => Err(PublishError::Nacked),
            // Cannot happen: the channel is always in confirm mode.
            Confirmation::NotRequested => Err(PublishError::Nacked),
        }
    }

    /// Publishes `messages` (each with its `mandatory` flag and the span whose trace context
    /// it carries) in order on the confirm channel without waiting between them, then waits
    /// for their confirms. Returns how many from the start were confirmed and, when that is
    /// not all, the error of the first one that was not. One broker round trip for the whole
    /// batch instead of one per message; the order on the channel is the order given.
    pub async fn publish_pipelined(
        &self,
        messages: Vec<(Outgoing, bool, tracing::Span)>,
    ) -> (usize, Option<PublishError>) {
        let exchange = self.bus.events_exchange();
        let timeout = self.bus.config().confirm_timeout;
        let metrics = self.bus.metrics().clone();
        let started = Instant::now();
        let channel = match self.confirm_channel().await {
            Ok(channel) => channel,
            Err(error) => return (0, Some(error)),
        };
        let mut pending = Vec::with_capacity(messages.len());
        let mut failure = None;
        for (message, mandatory, span) in messages {
            let (routing_key, payload, properties) = prepare(message, &span);
            let options = BasicPublishOptions {
                mandatory,
                ..BasicPublishOptions::default()
            };
            let published = tokio::time::timeout(
                timeout,
                channel.basic_publish(
                    exchange.clone().into(),
                    routing_key.clone().into(),
                    options,
                    &payload,
                    properties,
                ),
            )
            .await;
            match published {
                Ok(Ok(confirm)) => pending.push((routing_key, confirm)),
                Ok(Err(error)) => {
                    failure = Some(PublishError::from(error));
                    break;
                }
                Err(_) => {
                    failure = Some(PublishError::Timeout(timeout));
                    break;
                }
            }
        }
        let mut confirmed = 0;
        for (routing_key, confirm) in pending {
            let outcome = match tokio::time::timeout(timeout, confirm).await {
                Err(_) => Err(PublishError::Timeout(timeout)),
                Ok(Err(error)) => Err(PublishError::from(error)),
                Ok(Ok(Confirmation::Ack(None))) => Ok(()),
                Ok(Ok(Confirmation::Ack(Some(returned)))) => Err(PublishError::Unroutable {
                    exchange: exchange.clone(),
                    routing_key,
                    reply_code: returned.reply_code,
                    reply_text: returned.reply_text.as_str().to_owned(),
                }),
                Ok(Ok(Confirmation::Nack(_) | Confirmation::NotRequested)) => Err(PublishError::Nacked),
            };
            match outcome {
                Ok(()) => {
                    confirmed += 1;
                    metrics.published("confirmed");
                }
                Err(error) => {
                    // Later confirms may still arrive, but order is what the caller relies on:
                    // everything from here on is published again.
                    failure = Some(error);
                    break;
                }
            }
        }
        metrics.publish_seconds.observe(started.elapsed().as_secs_f64());
        if let Some(error) = &failure {
            metrics.published(outcome_label(error));
        }
        (confirmed, failure)
    }

    /// Returns the shared confirm channel, opening a new one when the old one is gone.
    async fn confirm_channel(&self) -> Result<Arc<Channel>, PublishError> {
        if let Some(channel) = self.channel.load_full()
            && channel.status().connected()
        {
            return Ok(channel);
        }
        let _reopening = self.reopening.lock().await;
        // Another publish may have reopened it while we waited.
        if let Some(channel) = self.channel.load_full()
            && channel.status().connected()
        {
            return Ok(channel);
        }
        let connection = self
            .bus
            .connection(self.bus.config().confirm_timeout)
            .await
            .map_err(|_| PublishError::NotConnected)?;
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        let channel = Arc::new(channel);
        self.channel.store(Some(channel.clone()));
        Ok(channel)
    }
}

/// Splits a message into routing key, body and AMQP properties, with `span`'s trace context
/// in its headers.
fn prepare(message: Outgoing, span: &tracing::Span) -> (String, Vec<u8>, BasicProperties) {
    let Outgoing {
        routing_key,
        payload,
        message_id,
        message_type,
        mut headers,
    } = message;
    switchboard_telemetry::propagation::inject_span(span, &mut HeaderInjector(&mut headers));
    let properties = BasicProperties::default()
        .with_message_id(message_id.into())
        .with_type(message_type.into())
        .with_content_type(CONTENT_TYPE_PROTOBUF.into())
        .with_app_id("switchboard".into())
        // 2 = persistent (quorum queues persist regardless; explicit for other queue types).
        .with_delivery_mode(2)
        .with_timestamp(unix_seconds())
        .with_headers(headers);
    (routing_key, payload, properties)
}

/// The metrics label of a failed publish.
fn outcome_label(error: &PublishError) -> &'static str {
    match error {
        PublishError::Nacked => "nacked",
        PublishError::Unroutable { .. } => "unroutable",
        PublishError::Timeout(_) => "timeout",
        PublishError::NotConnected => "not_connected",
        PublishError::Channel(_) => "channel_error",
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}
