use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::connection::{FirstSubscription, sleep_or_cancel};
use crate::headers::HeaderExtractor;
use crate::keyed_order::{KeyedOrder, Settled};
use crate::message::text_value;
use crate::metrics::{QueueLabels, queue_group};
use crate::{
    Bus, HEADER_ATTEMPTS, HEADER_DEAD_LETTER_REASON, HEADER_ORIGINAL_QUEUE, HEADER_ORIGINAL_ROUTING_KEY,
    Handler, HandlerError, Incoming, MessagingError, Outgoing, Publisher, QueueSpec,
};

/// Consumes `queue` until shutdown, running at most `concurrency` handlers at once
/// (1 = strictly in order; messages of one [`Handler::order_key`] are always handled one
/// at a time in queue order). Survives broker outages: it re-subscribes on the supervisor's
/// next connection. On shutdown it stops taking messages, lets running handlers finish and
/// ack, and returns the rest to the queue.
pub async fn run_consumer<H: Handler>(
    bus: Bus,
    queue: QueueSpec,
    concurrency: usize,
    handler: Arc<H>,
    shutdown: CancellationToken,
) -> Result<(), MessagingError> {
    let readiness = bus.consumer_started();
    Subscription {
        bus,
        queue,
        concurrency,
        handler,
    }
    .consume(shutdown, FirstSubscribe::Readiness(readiness))
    .await
}

/// What the first successful subscribe of a [`Subscription`] reports.
pub(crate) enum FirstSubscribe {
    /// Readiness waits for it.
    Readiness(FirstSubscription),
    /// A partition given at `given`: its takeover time is recorded.
    Partition {
        /// When the seat gave the partition to this replica.
        given: Instant,
    },
    /// Reported already.
    Done,
}

/// One queue consumed by one replica.
pub(crate) struct Subscription<H> {
    pub(crate) bus: Bus,
    pub(crate) queue: QueueSpec,
    pub(crate) concurrency: usize,
    pub(crate) handler: Arc<H>,
}

impl<H: Handler> Subscription<H> {
    /// Subscribes (again after every broker outage) and handles deliveries until `shutdown`.
    pub(crate) async fn consume(
        &self,
        shutdown: CancellationToken,
        mut first: FirstSubscribe,
    ) -> Result<(), MessagingError> {
        let Self {
            bus,
            queue,
            concurrency,
            handler,
        } = self;
        let concurrency = *concurrency;
        let publisher = bus.publisher();
        let mut backoff = Duration::from_millis(200);
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let connection = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                connection = bus.connection(Duration::from_secs(30)) => match connection {
                    Ok(connection) => connection,
                    Err(_) => continue,
                },
            };
            // Taken before subscribing (and after the connection, whose generation is already
            // counted): a recovery that lands while we subscribe makes us subscribe once more.
            let mut generation = bus.connection_generation();
            generation.borrow_and_update();
            // Running `concurrency` handlers at once needs at least that many unacked messages.
            let batch = if concurrency <= 1 { handler.max_batch() } else { 1 };
            let prefetch = bus
                .config()
                .prefetch
                .max(u16::try_from(concurrency.max(batch)).unwrap_or(u16::MAX));
            // Bounded: on a connection whose recovery stalled, opening a channel or subscribing
            // may never complete; the next try waits for a working connection.
            let limit = bus.config().connect_timeout;
            let subscribed = tokio::time::timeout(limit, subscribe(&connection, queue, prefetch))
                .await
                .unwrap_or(Err(MessagingError::Stalled {
                    operation: "subscribe",
                    after: limit,
                }));
            let (channel, consumer) = match subscribed {
                Ok(subscription) => subscription,
                Err(error) => {
                    tracing::warn!(queue = %queue.name, error = %error, retry_in = ?backoff, "cannot subscribe");
                    if sleep_or_cancel(backoff, &shutdown).await {
                        return Ok(());
                    }
                    backoff = (backoff * 2).min(bus.config().reconnect_max_backoff);
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            match std::mem::replace(&mut first, FirstSubscribe::Done) {
                FirstSubscribe::Readiness(mut readiness) => readiness.subscribed(),
                FirstSubscribe::Partition { given } => bus
                    .metrics()
                    .partition_taken_over(&queue.name, given.elapsed().as_secs_f64()),
                FirstSubscribe::Done => {}
            }
            tracing::debug!(queue = %queue.name, "consuming");
            let context = ConsumeContext {
                bus: bus.clone(),
                publisher: publisher.clone(),
                queue: queue.clone(),
                shutdown: shutdown.clone(),
            };
            if batch > 1 {
                crate::batch::consume_batches(channel, consumer, generation, batch, handler.clone(), context)
                    .await;
            } else {
                consume(
                    channel,
                    consumer,
                    generation,
                    concurrency.max(1),
                    handler.clone(),
                    context,
                )
                .await;
            }
            if !shutdown.is_cancelled() {
                tracing::warn!(queue = %queue.name, "consumer interrupted; re-subscribing");
            }
        }
    }
}

async fn subscribe(
    connection: &lapin::Connection,
    queue: &QueueSpec,
    prefetch: u16,
) -> Result<(Channel, Consumer), MessagingError> {
    let channel = connection
        .create_channel()
        .await
        .map_err(MessagingError::amqp("open channel"))?;
    queue.declare(&channel).await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(MessagingError::amqp("set prefetch"))?;
    let consumer = channel
        .basic_consume(
            queue.name.clone().into(),
            format!("switchboard-{}", uuid::Uuid::new_v4().simple()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(MessagingError::amqp("consume"))?;
    Ok((channel, consumer))
}

#[derive(Clone)]
pub(crate) struct ConsumeContext {
    pub(crate) bus: Bus,
    pub(crate) publisher: Publisher,
    pub(crate) queue: QueueSpec,
    pub(crate) shutdown: CancellationToken,
}

/// Runs deliveries through the handler until the consumer breaks, the connection is
/// recovered (see [`Bus::connection_generation`]) or shutdown.
async fn consume<H: Handler>(
    channel: Channel,
    mut consumer: Consumer,
    mut generation: tokio::sync::watch::Receiver<u64>,
    concurrency: usize,
    handler: Arc<H>,
    context: ConsumeContext,
) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut in_flight = JoinSet::new();
    let mut ordered = KeyedOrder::default();
    loop {
        let next = tokio::select! {
            biased;
            () = context.shutdown.cancelled() => break,
            Some(finished) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Err(error) = finished {
                    tracing::error!(queue = %context.queue.name, error = %error, "message task panicked");
                }
                continue;
            }
            changed = generation.changed() => {
                if changed.is_ok() {
                    tracing::info!(queue = %context.queue.name, "connection recovered; subscribing again on a fresh channel");
                }
                break;
            }
            next = consumer.next() => next,
        };
        let delivery = match next {
            Some(Ok(delivery)) => delivery,
            Some(Err(error)) => {
                // Subscribe again on a fresh channel once a connection is up: a consumer
                // recovered in place was seen to stop delivering (about one broker restart
                // in five), which would stall its queue for good.
                tracing::warn!(queue = %context.queue.name, error = %error, "consumer channel failed");
                break;
            }
            None => break,
        };
        let permit = tokio::select! {
            () = context.shutdown.cancelled() => {
                // Not started: left unacked, it goes back to the queue when the channel
                // closes below, in its place and before anything after it.
                drop(delivery);
                context.bus.metrics().consumed(&context.queue.name, "requeued");
                break;
            }
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        // Taken here, in delivery order, not in the task: tasks may start in any order.
        let incoming = Incoming::from_delivery(&context.queue.name, &delivery);
        let mut turn = ordered.turn(handler.as_ref(), &incoming);
        let handler = handler.clone();
        let context = context.clone();
        in_flight.spawn(async move {
            if turn.previous_handled().await {
                let settled = process(delivery, incoming, handler.as_ref(), &context).await;
                turn.finish(settled);
            } else {
                // The delivery before it with the same key went back to the queue: this one
                // goes back too, behind it (and so do the ones after it). On a stop it is left
                // for the channel's close (see `leave_for_close`); otherwise it is requeued.
                if context.shutdown.is_cancelled() {
                    leave_for_close(delivery);
                } else {
                    let _ = requeue(&delivery).await;
                }
                context.bus.metrics().consumed(&context.queue.name, "requeued");
            }
            drop(permit);
        });
    }
    // No new handler starts from here. The running ones finish (and ack) while this consumer
    // stays subscribed: with single active consumer, cancelling first would hand the queue to
    // the next replica at once, which would start on later messages of the same keys while
    // these still run. Closing the channel afterwards returns what was prefetched but not
    // started and releases the queue in one step, so the next consumer starts with those.
    while let Some(finished) = in_flight.join_next().await {
        if let Err(error) = finished {
            tracing::error!(queue = %context.queue.name, error = %error, "message task panicked");
        }
    }
    // Bounded: on a connection whose recovery stalled this never completes.
    let _ = tokio::time::timeout(SETTLE_TIMEOUT, channel.close(200, "consumer stopped".into())).await;
    drop(consumer);
}

/// How long an ack, nack, cancel or close may take. On a connection whose recovery stalled
/// they would wait for good; an unsettled message is redelivered when the channel goes.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Acks `delivery`, giving up after [`SETTLE_TIMEOUT`].
async fn ack(delivery: &lapin::message::Delivery) -> Result<(), MessagingError> {
    tokio::time::timeout(SETTLE_TIMEOUT, delivery.acker.ack(BasicAckOptions::default()))
        .await
        .map_err(|_| MessagingError::NotConnected)?
        .map(|_| ())
        .map_err(MessagingError::amqp("ack"))
}

/// Leaves `delivery` unacked when its consumer stops (shutdown, or its partition moving
/// away): the consumer closes its channel next, which returns every unacked delivery to the
/// queue in queue order. A `basic.nack` with requeue would not keep that order on every broker
/// version (RabbitMQ 3.10's quorum queues were seen to deliver such a message after later
/// ones), so per-key order would break across the stop.
fn leave_for_close(delivery: lapin::message::Delivery) {
    drop(delivery);
}

/// Returns `delivery` to its queue, giving up after [`SETTLE_TIMEOUT`].
async fn requeue(delivery: &lapin::message::Delivery) -> Result<(), MessagingError> {
    let options = BasicNackOptions {
        requeue: true,
        ..BasicNackOptions::default()
    };
    tokio::time::timeout(SETTLE_TIMEOUT, delivery.acker.nack(options))
        .await
        .map_err(|_| MessagingError::NotConnected)?
        .map(|_| ())
        .map_err(MessagingError::amqp("requeue"))
}

/// Runs one delivery through the handler with retries, then acks or dead-letters it.
pub(crate) async fn process<H: Handler>(
    delivery: lapin::message::Delivery,
    incoming: Incoming,
    handler: &H,
    context: &ConsumeContext,
) -> Settled {
    let span = consume_span(&context.queue.name, &incoming);
    async {
        let config = context.bus.config();
        let metrics = context.bus.metrics();
        let histogram = metrics
            .handler_seconds
            .get_or_create(&QueueLabels {
                queue: queue_group(&context.queue.name),
            })
            .clone();
        let mut attempt: u32 = 1;
        let mut backoff = config.retry_initial_backoff;
        let mut outage_backoff = config.retry_initial_backoff;
        let failure = loop {
            let started = Instant::now();
            let result = handler.handle(&incoming).await;
            histogram.observe(started.elapsed().as_secs_f64());
            match result {
                Ok(()) => {
                    if let Err(error) = ack(&delivery).await {
                        // The channel died after the effects: the broker will redeliver and the
                        // (idempotent) handler will see it again.
                        tracing::warn!(error = %error, "ack failed; the message will be redelivered");
                    }
                    metrics.consumed(&context.queue.name, "acked");
                    return Settled::Handled;
                }
                Err(HandlerError::Permanent(error)) => break format!("permanent failure: {error}"),
                Err(HandlerError::Unavailable(error)) => {
                    // Not the message's fault: wait for the dependency, however long, without
                    // spending the message's attempts. The message stays unacked here, so the
                    // partition's order holds and nothing is redelivered meanwhile.
                    tracing::warn!(error = %error, retry_in = ?outage_backoff, "a dependency is unavailable; waiting");
                    metrics.consumed(&context.queue.name, "dependency_unavailable");
                    if sleep_or_cancel(jittered(outage_backoff), &context.shutdown).await {
                        leave_for_close(delivery);
                        metrics.consumed(&context.queue.name, "requeued");
                        return Settled::Returned;
                    }
                    outage_backoff = (outage_backoff * 2).min(config.retry_max_backoff);
                }
                Err(HandlerError::Retryable(error)) if attempt >= config.max_attempts => {
                    break format!("gave up after {attempt} attempts: {error}");
                }
                Err(HandlerError::Retryable(error)) => {
                    tracing::warn!(attempt, error = %error, retry_in = ?backoff, "handler failed; retrying");
                    metrics.consumed(&context.queue.name, "retried");
                    if sleep_or_cancel(jittered(backoff), &context.shutdown).await {
                        leave_for_close(delivery);
                        metrics.consumed(&context.queue.name, "requeued");
                        return Settled::Returned;
                    }
                    attempt += 1;
                    backoff = (backoff * 2).min(config.retry_max_backoff);
                }
            }
        };
        dead_letter(&delivery, &incoming, attempt, &failure, context).await
    }
    .instrument(span)
    .await
}

/// The span one delivery is handled in, continuing the trace its headers carry.
pub(crate) fn consume_span(queue: &str, incoming: &Incoming) -> tracing::Span {
    let span = tracing::info_span!(
        "bus consume",
        otel.kind = "consumer",
        messaging.system = "rabbitmq",
        messaging.operation.type = "process",
        messaging.destination.name = %queue,
        messaging.rabbitmq.destination.routing_key = %incoming.routing_key,
        messaging.message.id = incoming.message_id.as_deref().unwrap_or(""),
        messaging.message.delivery_count = incoming.previous_deliveries(),
    );
    switchboard_telemetry::propagation::set_remote_parent(&span, &HeaderExtractor(&incoming.headers));
    span
}

/// Publishes the message to the queue's dead-letter queue with the reason, then acks it.
/// If the dead letter cannot be confirmed, the message is returned to its queue instead.
async fn dead_letter(
    delivery: &lapin::message::Delivery,
    incoming: &Incoming,
    attempts: u32,
    reason: &str,
    context: &ConsumeContext,
) -> Settled {
    tracing::error!(attempts, reason, "dead-lettering message");
    let mut headers = incoming.headers.clone();
    headers.insert(
        HEADER_DEAD_LETTER_REASON.into(),
        text_value(truncate(reason, 1_000)),
    );
    headers.insert(HEADER_ATTEMPTS.into(), text_value(attempts.to_string()));
    headers.insert(
        HEADER_ORIGINAL_QUEUE.into(),
        text_value(context.queue.name.clone()),
    );
    headers.insert(
        HEADER_ORIGINAL_ROUTING_KEY.into(),
        text_value(incoming.routing_key.clone()),
    );
    let message = Outgoing {
        routing_key: context.queue.dead_letter_queue(),
        payload: incoming.payload.clone(),
        message_id: incoming.message_id.clone().unwrap_or_default(),
        message_type: incoming.message_type.clone().unwrap_or_default(),
        headers,
    };
    let metrics = context.bus.metrics();
    match context
        .publisher
        .publish_to(&context.bus.dead_letter_exchange(), message)
        .await
    {
        Ok(()) => {
            let _ = ack(delivery).await;
            metrics.consumed(&context.queue.name, "dead_lettered");
            Settled::Handled
        }
        Err(error) => {
            tracing::error!(error = %error, "dead letter not confirmed; returning the message to its queue");
            let _ = sleep_or_cancel(Duration::from_secs(1), &context.shutdown).await;
            let _ = requeue(delivery).await;
            metrics.consumed(&context.queue.name, "requeued");
            Settled::Returned
        }
    }
}

/// Adds up to 20 % random jitter so retries of many consumers do not align.
fn jittered(backoff: Duration) -> Duration {
    let jitter = rand::random_range(0.0..0.2);
    backoff.mul_f64(1.0 + jitter)
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}
