use std::sync::Arc;
use std::time::Duration;

use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use secrecy::ExposeSecret;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::MessagingMetrics;
use crate::{BusConfig, MessagingError, Partitions, Publisher, QueueSpec};

/// How often the supervisor looks at the connection's state.
const SUPERVISE_INTERVAL: Duration = Duration::from_millis(250);
/// First pause after a failed connection attempt.
const INITIAL_RECONNECT_BACKOFF: Duration = Duration::from_millis(250);
/// How often the supervisor checks that a connection reported as up still answers (opens and
/// closes a channel).
const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// Failed probes in a row after which a connection reported as up is abandoned as wedged.
const PROBE_FAILURES: u32 = 2;

/// The process's handle on RabbitMQ: one supervised connection shared by publishers and
/// consumers, plus the names of the installation's exchanges.
///
/// lapin's own recovery handles short blips (it reconnects and replays channels, consumers
/// and confirms). When it gives up, or the first connection never came up, the supervisor
/// builds a new connection with exponential backoff until shutdown; publishers and consumers
/// pick up the new connection on their next use.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<BusInner>,
}

struct BusInner {
    config: BusConfig,
    /// The partition count of every family, from `config`.
    partitions: Partitions,
    closing: CancellationToken,
    supervisor: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    current: watch::Sender<Option<Arc<Connection>>>,
    /// Bumped each time a connection comes (back) up; consumers subscribe again on a change.
    generation: watch::Sender<u64>,
    metrics: Arc<MessagingMetrics>,
    /// Consumers started in this process, and those that subscribed at least once.
    consumers: ConsumerCounts,
}

/// How many consumers a process started, and how many have subscribed at least once.
#[derive(Default)]
pub(crate) struct ConsumerCounts {
    started: std::sync::atomic::AtomicUsize,
    subscribed: std::sync::atomic::AtomicUsize,
}

impl Bus {
    /// Starts the connection supervisor. The connection stays up until [`Bus::close`], so
    /// consumers can still ack what they finish while the process drains.
    pub fn start(config: BusConfig, metrics: Arc<MessagingMetrics>) -> Self {
        let (current, _) = watch::channel(None);
        let (generation, _) = watch::channel(0);
        let closing = CancellationToken::new();
        let bus = Self {
            inner: Arc::new(BusInner {
                partitions: config.partition_counts(),
                config,
                closing: closing.clone(),
                supervisor: std::sync::Mutex::new(None),
                current,
                generation,
                metrics,
                consumers: ConsumerCounts::default(),
            }),
        };
        let supervisor = tokio::spawn(supervise(bus.clone(), closing));
        if let Ok(mut slot) = bus.inner.supervisor.lock() {
            *slot = Some(supervisor);
        }
        bus
    }

    /// Closes the connection and stops the supervisor; call after consumers have drained.
    pub async fn close(&self) {
        self.inner.closing.cancel();
        let supervisor = self.inner.supervisor.lock().ok().and_then(|mut slot| slot.take());
        if let Some(supervisor) = supervisor {
            let _ = supervisor.await;
        }
    }

    /// The configuration the bus runs with.
    pub fn config(&self) -> &BusConfig {
        &self.inner.config
    }

    /// The partition count of every event family (publishers pass it to the outbox and to
    /// [`crate::Outgoing::envelope`]).
    pub fn partitions(&self) -> &Partitions {
        &self.inner.partitions
    }

    /// The metrics the bus reports to.
    pub fn metrics(&self) -> &Arc<MessagingMetrics> {
        &self.inner.metrics
    }

    /// Name of the topic exchange every event is published to.
    pub fn events_exchange(&self) -> String {
        format!("{}switchboard.events", self.inner.config.namespace)
    }

    /// Name of the direct exchange dead-letter queues are bound to.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}switchboard.dlx", self.inner.config.namespace)
    }

    /// How many connections the supervisor has opened (1 + rebuilds after recovery gave up).
    pub fn connections_opened(&self) -> u64 {
        self.inner.metrics.connections_opened.get()
    }

    /// Returns true while a connection is up and not recovering.
    pub fn is_connected(&self) -> bool {
        self.inner
            .current
            .borrow()
            .as_ref()
            .is_some_and(|connection| connection.status().connected())
    }

    /// Readiness probe: `Ok` while connected and once every consumer started in this process
    /// has subscribed (a replica that is not consuming yet is not ready: it would also still
    /// be declaring queues another replica may be declaring), else a reason.
    pub fn check_ready(&self) -> Result<(), String> {
        if !self.is_connected() {
            return Err("rabbitmq is not connected".to_owned());
        }
        use std::sync::atomic::Ordering;
        let started = self.inner.consumers.started.load(Ordering::Acquire);
        let subscribed = self.inner.consumers.subscribed.load(Ordering::Acquire);
        if subscribed < started {
            return Err(format!(
                "{} of {started} rabbitmq consumers have not subscribed yet",
                started - subscribed
            ));
        }
        Ok(())
    }

    /// Counts a consumer that starts; returns the handle that marks its first subscription.
    pub(crate) fn consumer_started(&self) -> FirstSubscription {
        self.inner
            .consumers
            .started
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        FirstSubscription {
            bus: self.clone(),
            done: false,
        }
    }

    /// Watches the connection generation, which changes whenever a connection comes up or
    /// lapin's recovery brings one back. A consumer recovered in place by lapin can stay
    /// silent for good, so consumers take a change as the signal to subscribe again.
    pub fn connection_generation(&self) -> watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// Waits until a connection is up, for at most `timeout`.
    pub async fn connection(&self, timeout: Duration) -> Result<Arc<Connection>, MessagingError> {
        let mut receiver = self.inner.current.subscribe();
        let wait = async {
            loop {
                if let Some(connection) = receiver.borrow_and_update().as_ref()
                    && connection.status().connected()
                {
                    return Ok(connection.clone());
                }
                // Wake on a new connection, or re-check the state of the current one shortly.
                let _ = tokio::time::timeout(SUPERVISE_INTERVAL, receiver.changed()).await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| MessagingError::NotConnected)?
    }

    /// A publisher that shares this bus's connection.
    pub fn publisher(&self) -> Publisher {
        Publisher::new(self.clone())
    }

    /// A plain (non-partitioned) queue of `component` for events matching `family.#`.
    pub fn queue(&self, component: &str, family: &str) -> QueueSpec {
        QueueSpec::new(
            self,
            format!("{component}.{family}"),
            vec![format!("{family}.#")],
            false,
        )
    }

    /// The partitioned queues of `component` for `family`: one per partition, each bound to
    /// its partition's routing keys and consumed by one active consumer at a time.
    pub fn partitioned_queues(&self, component: &str, family: &str) -> Vec<QueueSpec> {
        (0..self.inner.partitions.of_family(family))
            .map(|index| {
                let suffix = crate::partition::partition_suffix(index);
                QueueSpec::new(
                    self,
                    format!("{component}.{family}.{suffix}"),
                    vec![format!("{family}.#.{suffix}")],
                    true,
                )
            })
            .collect()
    }

    /// Like [`Bus::partitioned_queues`], for only the events matching `pattern` (e.g.
    /// `inbound.*.status_received`): queue `<component>.<family>.pNN` bound to `<pattern>.pNN`.
    pub fn partitioned_queues_matching(
        &self,
        component: &str,
        family: &str,
        pattern: &str,
    ) -> Vec<QueueSpec> {
        (0..self.inner.partitions.of_event(pattern))
            .map(|index| {
                let suffix = crate::partition::partition_suffix(index);
                QueueSpec::new(
                    self,
                    format!("{component}.{family}.{suffix}"),
                    vec![format!("{pattern}.{suffix}")],
                    true,
                )
            })
            .collect()
    }

    /// Deletes this installation's exchanges (tests and teardown; queues are deleted per spec).
    pub async fn delete_exchanges(&self) -> Result<(), MessagingError> {
        let connection = self.connection(self.inner.config.connect_timeout).await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(MessagingError::amqp("open channel"))?;
        for exchange in [self.events_exchange(), self.dead_letter_exchange()] {
            channel
                .exchange_delete(exchange.into(), lapin::options::ExchangeDeleteOptions::default())
                .await
                .map_err(MessagingError::amqp("delete exchange"))?;
        }
        let _ = channel.close(200, "deleted".into()).await;
        Ok(())
    }

    /// Declares the exchanges on `connection` (idempotent).
    async fn declare_exchanges(&self, connection: &Connection) -> Result<(), MessagingError> {
        let channel = connection
            .create_channel()
            .await
            .map_err(MessagingError::amqp("open channel"))?;
        // Durable so they survive broker restarts; not auto-deleted when the last queue unbinds.
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                self.events_exchange().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(MessagingError::amqp("declare events exchange"))?;
        channel
            .exchange_declare(
                self.dead_letter_exchange().into(),
                ExchangeKind::Direct,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(MessagingError::amqp("declare dead-letter exchange"))?;
        let _ = channel.close(200, "declared".into()).await;
        Ok(())
    }
}

/// Marks a consumer's first subscription for [`Bus::check_ready`].
pub(crate) struct FirstSubscription {
    bus: Bus,
    done: bool,
}

impl FirstSubscription {
    /// The consumer subscribed (counted once).
    pub(crate) fn subscribed(&mut self) {
        if !self.done {
            self.done = true;
            self.bus
                .inner
                .consumers
                .subscribed
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

impl Drop for FirstSubscription {
    /// A consumer that stops before it ever subscribed no longer holds readiness back.
    fn drop(&mut self) {
        if !self.done {
            self.subscribed();
        }
    }
}

/// Keeps a usable connection in `bus.inner.current` until shutdown.
async fn supervise(bus: Bus, shutdown: CancellationToken) {
    let config = &bus.inner.config;
    let mut backoff = INITIAL_RECONNECT_BACKOFF;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let mut properties =
            ConnectionProperties::default().with_connection_name(config.connection_name.clone().into());
        if config.recovery_attempts > 0 {
            // lapin retries and replays channels, consumers and confirms itself a few times;
            // after that (or with recovery off) the supervisor builds a new connection.
            properties = properties.enable_auto_recover().configure_backoff(|backoff| {
                backoff
                    .with_max_times(config.recovery_attempts as usize)
                    .with_max_delay(config.reconnect_max_backoff)
            });
        }
        let attempt = tokio::time::timeout(
            config.connect_timeout,
            Connection::connect(config.url.expose_secret(), properties),
        );
        let connection: Connection = tokio::select! {
            () = shutdown.cancelled() => break,
            result = attempt => match result {
                Ok(Ok(connection)) => connection,
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, retry_in = ?backoff, "cannot connect to rabbitmq");
                    if sleep_or_cancel(backoff, &shutdown).await { break; }
                    backoff = (backoff * 2).min(config.reconnect_max_backoff);
                    continue;
                }
                Err(_) => {
                    tracing::warn!(timeout = ?config.connect_timeout, retry_in = ?backoff, "rabbitmq connection attempt timed out");
                    if sleep_or_cancel(backoff, &shutdown).await { break; }
                    backoff = (backoff * 2).min(config.reconnect_max_backoff);
                    continue;
                }
            },
        };
        if let Err(error) = bus.declare_exchanges(&connection).await {
            tracing::warn!(error = %error, "declaring exchanges failed; reconnecting");
            let _ = connection.close(320, "declare failed".into()).await;
            if sleep_or_cancel(backoff, &shutdown).await {
                break;
            }
            continue;
        }
        let connection = Arc::new(connection);
        backoff = INITIAL_RECONNECT_BACKOFF;
        bus.inner.metrics.connections_opened.inc();
        tracing::info!("connected to rabbitmq");
        // The generation first: a consumer that sees this connection has seen its generation.
        bus.inner.generation.send_modify(|generation| *generation += 1);
        bus.inner.current.send_replace(Some(connection.clone()));

        let mut down_since: Option<std::time::Instant> = None;
        let mut last_probe = std::time::Instant::now();
        let mut failed_probes = 0;
        loop {
            if sleep_or_cancel(SUPERVISE_INTERVAL, &shutdown).await {
                break;
            }
            let status = connection.status();
            let connected = status.connected();
            // A connection can say it is up and answer nothing (a client library wedged in a
            // lock, a broker that stopped serving it): then subscribes and publishes only time
            // out. Probe it now and then, and replace it when it does not answer.
            if connected && last_probe.elapsed() >= PROBE_INTERVAL {
                last_probe = std::time::Instant::now();
                if probe(&connection, config.connect_timeout).await {
                    failed_probes = 0;
                } else {
                    failed_probes += 1;
                    tracing::warn!(failed_probes, "rabbitmq connection did not answer a probe");
                }
                if failed_probes >= PROBE_FAILURES {
                    tracing::warn!(
                        "rabbitmq connection is up but does not answer; building a new connection"
                    );
                    bus.inner.metrics.connections_wedged.inc();
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        connection.close(320, "not answering".into()),
                    )
                    .await;
                    break;
                }
            }
            bus.inner.metrics.connected.set(i64::from(connected));
            match (connected, down_since) {
                (true, Some(_)) => {
                    tracing::info!("rabbitmq connection recovered");
                    down_since = None;
                    bus.inner.generation.send_modify(|generation| *generation += 1);
                }
                (false, None) => {
                    tracing::warn!("rabbitmq connection lost; recovering");
                    down_since = Some(std::time::Instant::now());
                }
                (true, None) | (false, Some(_)) => {}
            }
            if status.closed() || status.errored() {
                tracing::warn!("rabbitmq connection recovery gave up; building a new connection");
                break;
            }
            if down_since.is_some_and(|since| since.elapsed() > config.recovery_timeout) {
                tracing::warn!(
                    recovery_timeout = ?config.recovery_timeout,
                    "rabbitmq connection recovery stalled; building a new connection"
                );
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    connection.close(320, "recovery stalled".into()),
                )
                .await;
                break;
            }
        }
        bus.inner.metrics.connected.set(0);
        bus.inner.current.send_replace(None);
        if shutdown.is_cancelled() {
            let _ =
                tokio::time::timeout(Duration::from_secs(2), connection.close(200, "shutdown".into())).await;
            break;
        }
    }
    bus.inner.metrics.connected.set(0);
    bus.inner.current.send_replace(None);
}

/// True when `connection` opens and closes a channel within `timeout`.
async fn probe(connection: &Connection, timeout: Duration) -> bool {
    let round_trip = async {
        let channel = connection.create_channel().await?;
        channel.close(200, "probe".into()).await
    };
    matches!(tokio::time::timeout(timeout, round_trip).await, Ok(Ok(())))
}

/// Sleeps for `duration`; returns true when shutdown came first.
pub(crate) async fn sleep_or_cancel(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}
