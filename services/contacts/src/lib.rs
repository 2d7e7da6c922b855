//! The contacts component: who a customer is. It consumes normalized inbound events from
//! `contacts.inbound.pNN`, resolves each sender to exactly one contact of the workspace
//! (creating it within the monthly quota, dropping blocked contacts' events with a record,
//! applying consent keywords) and passes the event on to routing's partition with the contact
//! (`routing.contact.pNN`). It serves `ContactsService` over gRPC.
//!
//! It owns the `contacts` schema; other services see contacts only through its API and events.

pub mod assignment;
mod config;
mod csv_import;
mod editable;
mod error;
mod export;
pub mod fields;
pub mod filter;
mod filter_proto;
mod grpc;
mod jobs;
mod merge;
mod metrics;
mod model;
mod outbox;
mod reset;
mod resolve;
mod settings;
mod store;
pub mod topology;

use std::sync::Arc;
use std::time::Duration;
use switchboard_postgres::CachedStatements as _;

use switchboard_messaging::{Bus, SeatWatch};
use switchboard_postgres::{Migration, MigrationSet, Pool};
use switchboard_server::{BoxError, ComponentParts};
use tokio_util::sync::CancellationToken;

pub use config::ContactsConfig;
pub use error::ContactsError;
pub use metrics::ContactsMetrics;
pub use model::Contact;
pub use reset::month_end_reset;
pub use resolve::Resolver;
pub use settings::Settings;
pub use switchboard_domain::ContactId;

/// The schema migrations of the contacts component.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    schema: "contacts",
    migrations: &[
        Migration {
            version: 1,
            name: "initial",
            sql: include_str!("../migrations/0001_initial.sql"),
        },
        Migration {
            version: 2,
            name: "outbox_optional",
            sql: include_str!("../migrations/0002_outbox_optional.sql"),
        },
        Migration {
            version: 3,
            name: "outbox_vacuum",
            sql: include_str!("../migrations/0003_outbox_vacuum.sql"),
        },
    ],
};

/// What the contacts component needs from the process.
pub struct ContactsDependencies<'a> {
    /// The `[contacts]` section.
    pub config: &'a ContactsConfig,
    /// The contacts store.
    pub pool: Pool,
    /// The bus.
    pub bus: Bus,
    /// This replica's seat among the component's live replicas: the partitions it consumes.
    pub seat: SeatWatch,
    /// Where its metrics go.
    pub metrics: Arc<ContactsMetrics>,
    /// Largest gRPC message accepted or sent.
    pub grpc_max_message_bytes: usize,
    /// Cancelled when the process stops.
    pub shutdown: CancellationToken,
}

/// Builds the component: the `ContactsService` gRPC API, the outbox relay of its change events,
/// the identity-resolution consumer and the pruning of old event ids.
pub fn build(dependencies: ContactsDependencies<'_>) -> ComponentParts {
    let ContactsDependencies {
        config,
        pool,
        bus,
        seat,
        metrics,
        grpc_max_message_bytes,
        shutdown,
    } = dependencies;
    let mut parts = ComponentParts::default();
    let wake = Arc::new(tokio::sync::Notify::new());
    let jobs_wake = Arc::new(tokio::sync::Notify::new());
    let partitions = bus.partitions().clone();
    parts.add_grpc_service(
        grpc::contacts_server(grpc::ContactsApi {
            pool: pool.clone(),
            wake: wake.clone(),
            jobs_wake: jobs_wake.clone(),
            partitions: partitions.clone(),
        })
        .max_decoding_message_size(grpc_max_message_bytes)
        .max_encoding_message_size(grpc_max_message_bytes),
    );
    parts.spawn(
        "contacts jobs",
        jobs::JobRunner {
            pool: pool.clone(),
            partitions: partitions.clone(),
            wake: jobs_wake,
            outbox_wake: wake.clone(),
            interval: Duration::from_secs(2),
            shutdown: shutdown.clone(),
        }
        .run(),
    );
    let resolver = Arc::new(Resolver::new(pool.clone(), &bus, metrics));
    parts.spawn(
        "contacts outbox relay",
        switchboard_outbox::OutboxRelay {
            outbox: outbox::OUTBOX,
            pool: pool.clone(),
            publisher: bus.publisher(),
            queues: resolver.routing_queues(),
            wake,
            interval: Duration::from_secs(1),
            shutdown: shutdown.clone(),
        }
        .run(),
    );
    let assignment_queues =
        bus.partitioned_queues(assignment::ASSIGNMENT_CONSUMER, assignment::ASSIGNMENT_FAMILY);
    let (assignment_bus, assignment_seat, assignment_shutdown) =
        (bus.clone(), seat.clone(), shutdown.clone());
    let assignments = Arc::new(assignment::AssignmentSync::new(pool.clone()));
    parts.spawn("contacts assignment sync", async move {
        switchboard_messaging::run_partitioned_consumers(
            assignment_bus,
            assignment_queues,
            assignments,
            assignment_seat,
            assignment_shutdown,
        )
        .await?;
        Ok(())
    });
    let queues = bus.partitioned_queues(
        switchboard_inbound::INBOUND_CONSUMER,
        switchboard_inbound::INBOUND_FAMILY,
    );
    let consumer_shutdown = shutdown.clone();
    parts.spawn("contacts resolver", async move {
        switchboard_messaging::run_partitioned_consumers(bus, queues, resolver, seat, consumer_shutdown)
            .await?;
        Ok(())
    });
    parts.spawn("contacts month-end reset", {
        let (pool, shutdown, interval) = (pool.clone(), shutdown.clone(), config.reset_interval);
        async move {
            loop {
                if let Err(error) = month_end_reset(&pool, &partitions, chrono::Utc::now()).await {
                    tracing::warn!(error = %error, "month-end reset failed; trying again later");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(interval) => {}
                }
            }
        }
    });
    let (retention, interval) = (config.dedupe_retention, config.prune_interval);
    parts.spawn(
        "contacts pruning",
        prune_processed_events(pool, retention, interval, shutdown),
    );
    parts
}

/// Deletes resolved-event ids older than `retention`, every `interval`.
async fn prune_processed_events(
    pool: Pool,
    retention: Duration,
    interval: Duration,
    shutdown: CancellationToken,
) -> Result<(), BoxError> {
    let seconds = retention.as_secs_f64();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(interval) => {}
        }
        let pruned = async {
            let client = pool.get().await?;
            let count = client
                .execute_cached(
                    "DELETE FROM contacts.processed_events
                     WHERE processed_at < now() - make_interval(secs => $1)",
                    &[&seconds],
                )
                .await?;
            Ok::<u64, ContactsError>(count)
        }
        .await;
        match pruned {
            Ok(count) if count > 0 => tracing::info!(count, "pruned old resolved-event ids"),
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "cannot prune resolved-event ids"),
        }
    }
}
