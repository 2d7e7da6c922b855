//! The routing component (first part): conversations and their message history. It consumes
//! contacts' events from `routing.contact.pNN` (partitioned by contact), appends inbound
//! messages to the contact's open conversation on the channel account exactly once, opens a
//! conversation when none is open, writes every change to an ordered event log in the same
//! transaction, and purges an erased contact's history.
//!
//! It serves `RoutingService` (conversations, history, close / reopen) and owns the `routing`
//! schema. Assignment, bot/human control, notes and the resumable event stream come next.

mod error;
mod grpc;
pub mod history;

use std::sync::Arc;

use switchboard_messaging::Bus;
use switchboard_postgres::{Migration, MigrationSet, Pool};
use switchboard_server::ComponentParts;
use tokio_util::sync::CancellationToken;

pub use error::RoutingError;
pub use history::{Appended, History};

/// The schema migrations of the routing component.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    schema: "routing",
    migrations: &[Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/0001_initial.sql"),
    }],
};

/// Builds the component: the `RoutingService` API and the consumer of contacts' events.
pub fn build(pool: Pool, bus: Bus, shutdown: CancellationToken) -> ComponentParts {
    let mut parts = ComponentParts::default();
    parts.grpc.add_service(grpc::routing_server(pool.clone()));
    parts.grpc_service_names.extend(grpc::SERVICE_NAMES);
    let queues = bus.partitioned_queues(history::CONTACT_CONSUMER, history::CONTACT_FAMILY);
    let history = Arc::new(History::new(pool));
    parts.spawn("routing history", async move {
        switchboard_messaging::run_partitioned_consumers(bus, queues, history, shutdown).await?;
        Ok(())
    });
    parts
}
