//! The routing component: conversations, their message history, who handles them, and the
//! ordered event stream agent tools watch.
//!
//! It consumes contacts' events from `routing.contact.pNN` (partitioned by contact), appends
//! inbound messages to the contact's open conversation on the channel account exactly once,
//! opens (and routes) a conversation when none is open, writes every change to an ordered
//! per-workspace event log in the same transaction, and purges an erased contact's history.
//! Agents and teams hand conversations out automatically (round-robin or least-open, FIFO
//! queue), and `assignment.changed` leaves through the transactional outbox.
//!
//! It serves `RoutingService` (conversations, history, close / reopen, settings,
//! `WatchEvents`) and `AssignmentService` (agents, teams, assignment), and owns the `routing`
//! schema. Bot/human control, notes and outbound history come next.

pub mod assignment;
pub mod auto_reply;
pub mod bot;
pub mod business_hours;
pub mod changes;
pub mod clock;
mod config;
pub mod delivery_status;
mod error;
pub mod event_log;
mod grpc;
pub mod history;
pub mod outbox;
pub mod policy;
pub mod snippet;
mod store;

use std::sync::Arc;

use switchboard_messaging::{Bus, ProducerQueues, SeatWatch};
use switchboard_postgres::{DatabaseConfig, Migration, MigrationSet, Pool};
use switchboard_server::ComponentParts;
use tokio_util::sync::CancellationToken;

pub use assignment::Dispatcher;
pub use clock::Clock;
pub use config::RoutingConfig;
pub use error::RoutingError;
pub use history::{Appended, History};

/// The schema migrations of the routing component.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    schema: "routing",
    migrations: &[
        Migration {
            version: 1,
            name: "initial",
            sql: include_str!("../migrations/0001_initial.sql"),
        },
        Migration {
            version: 2,
            name: "assignment",
            sql: include_str!("../migrations/0002_assignment.sql"),
        },
        Migration {
            version: 3,
            name: "conversation_work",
            sql: include_str!("../migrations/0003_conversation_work.sql"),
        },
        Migration {
            version: 4,
            name: "outbox_vacuum",
            sql: include_str!("../migrations/0004_outbox_vacuum.sql"),
        },
    ],
};

/// What the routing component is built from.
pub struct RoutingDependencies<'a> {
    /// The `[routing]` section.
    pub config: &'a RoutingConfig,
    /// Where the event listener connects (its own connection, outside the pool).
    pub database: &'a DatabaseConfig,
    /// The pool of the `routing` schema.
    pub pool: Pool,
    /// The bus.
    pub bus: Bus,
    /// This replica's seat among the component's live replicas: the partitions it consumes.
    pub seat: SeatWatch,
    /// Cancelled when the process stops.
    pub shutdown: CancellationToken,
}

/// Builds the component: the gRPC APIs, the consumer of contacts' events, the hand-out sweep,
/// the outbox relay, the event listener and the event-log pruning.
pub fn build(dependencies: RoutingDependencies<'_>) -> ComponentParts {
    let RoutingDependencies {
        config,
        database,
        pool,
        bus,
        seat,
        shutdown,
    } = dependencies;
    let mut parts = ComponentParts::default();
    let outbox_wake = Arc::new(tokio::sync::Notify::new());
    if let Some(start) = config.clock_start {
        tracing::warn!(%start, "routing.clock_start is set: business hours follow a shifted clock (a test setting)");
    }
    let dispatcher = Dispatcher::new(pool.clone(), bus.partitions().clone(), outbox_wake.clone())
        .with_clock(Clock::from_start(config.clock_start));
    let feed = event_log::EventFeed::new(1024);
    parts.add_grpc_service(grpc::routing_server(grpc::RoutingApi {
        pool: pool.clone(),
        dispatcher: dispatcher.clone(),
        feed: feed.clone(),
        shutdown: shutdown.clone(),
    }));
    parts.add_grpc_service(grpc::assignment_server(grpc::AssignmentApi {
        pool: pool.clone(),
        dispatcher: dispatcher.clone(),
    }));
    parts.add_grpc_service(grpc::notes_server(grpc::NotesApi {
        pool: pool.clone(),
        dispatcher: dispatcher.clone(),
    }));

    let listener = switchboard_postgres::run_listener(
        database.clone(),
        vec![event_log::NOTIFY_CHANNEL.to_owned()],
        feed.sender(),
        shutdown.clone(),
    );
    parts.spawn("routing event listener", async move {
        listener.await;
        Ok(())
    });
    parts.spawn(
        "routing hand-out sweep",
        dispatcher
            .clone()
            .run_sweeper(config.assignment_sweep_interval, shutdown.clone()),
    );
    // The outbox carries assignment.changed (to contacts), bot turns (to the bot runtime) and
    // automatic-reply requests (to delivery).
    let mut outbox_queues =
        bus.partitioned_queues(assignment::ASSIGNMENT_CONSUMER, assignment::ASSIGNMENT_FAMILY);
    outbox_queues.extend(bus.partitioned_queues(bot::BOT_CONSUMER, bot::BOT_FAMILY));
    outbox_queues
        .extend(bus.partitioned_queues(auto_reply::AUTO_REPLY_CONSUMER, auto_reply::AUTO_REPLY_FAMILY));
    let assignment_queues = Arc::new(ProducerQueues::new(bus.clone(), outbox_queues));
    parts.spawn(
        "routing outbox relay",
        switchboard_outbox::OutboxRelay {
            outbox: outbox::OUTBOX,
            pool: pool.clone(),
            publisher: bus.publisher(),
            queues: assignment_queues,
            wake: outbox_wake,
            interval: std::time::Duration::from_secs(1),
            shutdown: shutdown.clone(),
        }
        .run(),
    );
    let (prune_pool, retention, prune_interval, prune_shutdown) = (
        pool.clone(),
        config.event_retention,
        config.prune_interval,
        shutdown.clone(),
    );
    parts.spawn("routing event pruning", async move {
        loop {
            tokio::select! {
                () = prune_shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(prune_interval) => {}
            }
            let pruned = match prune_pool.get().await {
                Ok(client) => event_log::prune(&client, retention).await,
                Err(error) => Err(RoutingError::from(error)),
            };
            match pruned {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "old routing events pruned"),
                Err(error) => tracing::warn!(error = %error, "pruning routing events failed"),
            }
        }
    });
    let history =
        Arc::new(History::new(pool, dispatcher).with_batch_size(usize::from(bus.config().batch_size)));
    let outbound_queues = bus.partitioned_queues(history::CONTACT_CONSUMER, history::OUTBOUND_FAMILY);
    let (outbound_bus, outbound_history, outbound_seat, outbound_shutdown) =
        (bus.clone(), history.clone(), seat.clone(), shutdown.clone());
    parts.spawn("routing outbound history", async move {
        switchboard_messaging::run_partitioned_consumers(
            outbound_bus,
            outbound_queues,
            outbound_history,
            outbound_seat,
            outbound_shutdown,
        )
        .await?;
        Ok(())
    });
    let queues = bus.partitioned_queues(history::CONTACT_CONSUMER, history::CONTACT_FAMILY);
    parts.spawn("routing history", async move {
        switchboard_messaging::run_partitioned_consumers(bus, queues, history, seat, shutdown).await?;
        Ok(())
    });
    parts
}
