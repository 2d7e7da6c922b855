//! Batches of one partition: the deliveries already prefetched are handled together (up to the
//! handler's [`Handler::max_batch`]), their effects committed at once by the handler, and acked
//! with one multiple-ack. A failed batch falls back to handling its deliveries one by one,
//! with the usual retries and dead-lettering, so a poison message never holds back the rest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{FutureExt as _, StreamExt as _};
use lapin::options::BasicAckOptions;
use lapin::{Channel, Consumer};
use tracing::Instrument as _;

use crate::consumer::{ConsumeContext, SETTLE_TIMEOUT, consume_span, process};
use crate::keyed_order::Settled;
use crate::metrics::{QueueLabels, queue_group};
use crate::{Batched, Handler, Incoming};

/// Handles deliveries in batches until the consumer breaks, the connection is recovered or
/// shutdown; then closes the channel, which returns what was prefetched, in order.
pub(crate) async fn consume_batches<H: Handler>(
    channel: Channel,
    mut consumer: Consumer,
    mut generation: tokio::sync::watch::Receiver<u64>,
    max_batch: usize,
    handler: Arc<H>,
    context: ConsumeContext,
) {
    loop {
        let next = tokio::select! {
            biased;
            () = context.shutdown.cancelled() => break,
            changed = generation.changed() => {
                if changed.is_ok() {
                    tracing::info!(queue = %context.queue.name, "connection recovered; subscribing again on a fresh channel");
                }
                break;
            }
            next = consumer.next() => next,
        };
        let first = match next {
            Some(Ok(delivery)) => delivery,
            Some(Err(error)) => {
                tracing::warn!(queue = %context.queue.name, error = %error, "consumer channel failed");
                break;
            }
            None => break,
        };
        // What else is prefetched already: no waiting, so a lone message goes at once and a
        // backlog goes in batches as large as the handler takes.
        let mut deliveries = vec![first];
        while deliveries.len() < max_batch {
            match consumer.next().now_or_never() {
                Some(Some(Ok(delivery))) => deliveries.push(delivery),
                _ => break,
            }
        }
        if !handle(deliveries, handler.as_ref(), &context).await {
            break;
        }
    }
    // Nothing runs any more; closing returns the prefetched rest to the queue, in order.
    let _ = tokio::time::timeout(SETTLE_TIMEOUT, channel.close(200, "consumer stopped".into())).await;
    drop(consumer);
}

/// Handles `deliveries` as one batch, or one by one when the batch fails; false when one
/// went back to the queue (shutdown), so the rest must follow it by closing the channel.
async fn handle<H: Handler>(
    deliveries: Vec<lapin::message::Delivery>,
    handler: &H,
    context: &ConsumeContext,
) -> bool {
    let name = &context.queue.name;
    context
        .bus
        .metrics()
        .batch_messages
        .get_or_create(&QueueLabels {
            queue: queue_group(name),
        })
        .observe(deliveries.len() as f64);
    let incoming: Vec<Incoming> = deliveries
        .iter()
        .map(|delivery| Incoming::from_delivery(name, delivery))
        .collect();
    if deliveries.len() > 1 {
        let batch: Vec<Batched> = incoming
            .iter()
            .map(|message| Batched {
                span: consume_span(name, message),
                message: message.clone(),
            })
            .collect();
        let size = batch.len();
        let span = tracing::info_span!("bus consume batch", messaging.destination.name = %name, messaging.batch.message_count = size);
        let started = Instant::now();
        let handled = handler.handle_batch(&batch).instrument(span).await;
        match handled {
            Ok(()) => {
                settle_batch(&deliveries, started.elapsed(), context).await;
                return true;
            }
            Err(error) => {
                tracing::warn!(queue = %name, size, error = %error, "batch failed; handling its messages one by one");
                context.bus.metrics().consumed(name, "batch_failed");
            }
        }
    }
    for (delivery, message) in deliveries.into_iter().zip(incoming) {
        if process(delivery, message, handler, context).await == Settled::Returned {
            return false;
        }
    }
    true
}

/// Acks a handled batch with one multiple-ack of its last delivery (nothing else of this
/// channel is unacked: batches run one at a time) and records each message's share of the time.
async fn settle_batch(deliveries: &[lapin::message::Delivery], elapsed: Duration, context: &ConsumeContext) {
    let metrics = context.bus.metrics();
    if let Some(last) = deliveries.last() {
        let options = BasicAckOptions { multiple: true };
        let acked = tokio::time::timeout(SETTLE_TIMEOUT, last.acker.ack(options)).await;
        if !matches!(acked, Ok(Ok(_))) {
            // The channel died after the effects: the broker redelivers, the handler is idempotent.
            tracing::warn!(queue = %context.queue.name, "batch ack failed; its messages will be redelivered");
        }
    }
    let histogram = metrics
        .handler_seconds
        .get_or_create(&QueueLabels {
            queue: queue_group(&context.queue.name),
        })
        .clone();
    let share = elapsed.as_secs_f64() / deliveries.len().max(1) as f64;
    for _ in deliveries {
        histogram.observe(share);
        metrics.consumed(&context.queue.name, "acked");
    }
}
