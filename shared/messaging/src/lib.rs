//! RabbitMQ kit (lapin): a supervised connection that rebuilds itself, topology declared
//! idempotently with every queue argument explicit, a publisher that awaits broker confirms,
//! a consumer runner that acks only after the handler's effects, and partitioned queues with
//! single-active-consumer for per-key ordering across replicas, each replica consuming the
//! partitions its [`Seat`] gives it.
//!
//! Trace context travels in AMQP headers (`traceparent`, `tracestate`). This crate knows no
//! service and no HTTP or gRPC; it depends on the domain, the proto messages and telemetry.

mod batch;
mod config;
mod connection;
mod consumer;
pub mod dead_letters;
mod error;
mod handler;
mod headers;
mod keyed_order;
mod message;
pub mod metrics;
mod partition;
mod partitioned;
mod producer_queues;
mod publisher;
mod seat;
mod topology;

pub use config::BusConfig;
pub use connection::Bus;
pub use consumer::run_consumer;
pub use error::{MessagingError, PublishError};
pub use handler::{Batched, Failure, Handler, HandlerError, groups_by_key};
pub use message::{Incoming, Outgoing};
pub use partition::{Partitions, partition_for};
pub use partitioned::{PartitionedConsumers, run_partitioned_consumers};
pub use producer_queues::ProducerQueues;
pub use publisher::Publisher;
pub use seat::{Seat, SeatWatch, fixed_seat};
pub use topology::QueueSpec;

/// Re-exported so callers use the same lapin version.
pub use lapin;

/// AMQP header carrying why a message was dead-lettered by a consumer.
pub const HEADER_DEAD_LETTER_REASON: &str = "x-switchboard-dead-letter-reason";
/// AMQP header carrying how many handler attempts a dead-lettered message had.
pub const HEADER_ATTEMPTS: &str = "x-switchboard-attempts";
/// AMQP header carrying the queue a dead-lettered message came from.
pub const HEADER_ORIGINAL_QUEUE: &str = "x-switchboard-original-queue";
/// AMQP header carrying the routing key a dead-lettered message was first published with.
pub const HEADER_ORIGINAL_ROUTING_KEY: &str = "x-switchboard-original-routing-key";
