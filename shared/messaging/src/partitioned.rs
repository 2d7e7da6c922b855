//! Partitioned families as one replica consumes them: every partition queue declared, and
//! each consumed while the replica's seat holds it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::connection::sleep_or_cancel;
use crate::consumer::{FirstSubscribe, Subscription};
use crate::metrics::queue_group;
use crate::seat::SeatWatch;
use crate::{Bus, Handler, MessagingError, ProducerQueues, QueueSpec};

/// Consumes the partition queues of a family that this replica's [`Seat`](crate::Seat) gives it, each in
/// order, until shutdown; see [`PartitionedConsumers`]. One message at a time per partition.
pub async fn run_partitioned_consumers<H: Handler>(
    bus: Bus,
    queues: Vec<QueueSpec>,
    handler: Arc<H>,
    seat: SeatWatch,
    shutdown: CancellationToken,
) -> Result<(), MessagingError> {
    PartitionedConsumers {
        bus,
        queues,
        handler,
        seat,
        concurrency: 1,
    }
    .run(shutdown)
    .await
}

/// The partition queues of one family as one replica consumes them: every queue is declared
/// at start (so publishes are routable and readiness does not wait on membership), then each
/// partition is consumed while the replica's [`Seat`](crate::Seat) holds it. A partition the seat stops
/// holding is drained (running handlers finish and ack) and its channel closed, which returns
/// what was prefetched to the queue in order; the replica it went to subscribed already and,
/// because every partition queue has single active consumer, becomes active only then. So a
/// partition never has two active consumers, and per-key order holds across hand-overs.
pub struct PartitionedConsumers<H> {
    /// The bus.
    pub bus: Bus,
    /// One queue per partition, in partition order (as [`Bus::partitioned_queues`] makes them).
    pub queues: Vec<QueueSpec>,
    /// What each message goes through.
    pub handler: Arc<H>,
    /// This replica's seat among the live replicas of its component.
    pub seat: SeatWatch,
    /// Handlers at once per partition (1 = strictly in order; see [`run_consumer`]).
    pub concurrency: usize,
}

impl<H: Handler> PartitionedConsumers<H> {
    /// Runs until shutdown.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), MessagingError> {
        let Self {
            bus,
            queues,
            handler,
            seat,
            concurrency,
        } = self;
        let mut declared = bus.consumer_started();
        if !declare_until_done(&bus, &queues, &shutdown).await {
            return Ok(());
        }
        declared.subscribed();
        let mut tasks = JoinSet::new();
        for (index, queue) in queues.into_iter().enumerate() {
            let partition = u16::try_from(index).unwrap_or(u16::MAX);
            tasks.spawn(hold_partition(
                Subscription {
                    bus: bus.clone(),
                    queue,
                    concurrency,
                    handler: handler.clone(),
                },
                partition,
                seat.clone(),
                shutdown.clone(),
            ));
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(error),
                Err(join_error) => {
                    tracing::error!(error = %join_error, "partition consumer task failed");
                    return Err(MessagingError::NotConnected);
                }
            }
        }
        Ok(())
    }
}

/// Declares `queues` (with backoff while the broker is away); false on shutdown.
async fn declare_until_done(bus: &Bus, queues: &[QueueSpec], shutdown: &CancellationToken) -> bool {
    // The same declaration a producer makes of the queues it publishes to.
    let producer_queues = ProducerQueues::new(bus.clone(), queues.to_vec());
    let mut backoff = Duration::from_millis(200);
    loop {
        let limit = bus.config().connect_timeout;
        let declared = tokio::select! {
            () = shutdown.cancelled() => return false,
            declared = tokio::time::timeout(limit, producer_queues.declare()) => declared.unwrap_or(Err(
                MessagingError::Stalled { operation: "declare", after: limit },
            )),
        };
        match declared {
            Ok(()) => return true,
            Err(error) => {
                let family = queues
                    .first()
                    .map(|queue| queue_group(&queue.name))
                    .unwrap_or_default();
                tracing::warn!(queues = %family, error = %error, retry_in = ?backoff, "cannot declare partition queues");
                if sleep_or_cancel(backoff, shutdown).await {
                    return false;
                }
                backoff = (backoff * 2).min(bus.config().reconnect_max_backoff);
            }
        }
    }
}

/// Consumes `partition` whenever `seat` holds it, until shutdown.
async fn hold_partition<H: Handler>(
    subscription: Subscription<H>,
    partition: u16,
    mut seat: SeatWatch,
    shutdown: CancellationToken,
) -> Result<(), MessagingError> {
    let metrics = subscription.bus.metrics().clone();
    let name = subscription.queue.name.clone();
    loop {
        if !wait_until_held(&mut seat, partition, &shutdown).await {
            return Ok(());
        }
        let given = Instant::now();
        metrics.partition_changed(&name, true);
        tracing::debug!(queue = %name, "partition acquired");
        // Cancelled when the seat stops holding the partition (or on shutdown): the consumer
        // then drains and closes, as it does on shutdown.
        let release = shutdown.child_token();
        let watcher = tokio::spawn(release_when_not_held(seat.clone(), partition, release.clone()));
        let consumed = subscription
            .consume(release, FirstSubscribe::Partition { given })
            .await;
        watcher.abort();
        metrics.partition_changed(&name, false);
        tracing::debug!(queue = %name, "partition released");
        consumed?;
    }
}

/// Waits until `seat` holds `partition`; false on shutdown.
async fn wait_until_held(seat: &mut SeatWatch, partition: u16, shutdown: &CancellationToken) -> bool {
    loop {
        if shutdown.is_cancelled() {
            return false;
        }
        if seat.borrow_and_update().holds(partition) {
            return true;
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            changed = seat.changed() => if changed.is_err() {
                // A fixed seat that does not hold it never will.
                shutdown.cancelled().await;
                return false;
            },
        }
    }
}

/// Cancels `release` once `seat` no longer holds `partition`.
async fn release_when_not_held(mut seat: SeatWatch, partition: u16, release: CancellationToken) {
    loop {
        tokio::select! {
            () = release.cancelled() => return,
            changed = seat.changed() => {
                if changed.is_err() {
                    // The seat is fixed from here on: what holds now holds for good.
                    return;
                }
                if !seat.borrow_and_update().holds(partition) {
                    release.cancel();
                    return;
                }
            }
        }
    }
}
