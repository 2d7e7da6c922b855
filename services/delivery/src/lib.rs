//! The delivery component: everything Switchboard says to a customer goes out here.
//!
//! `DeliveryService.Send` checks the channel's policy and content rules, stores the message as
//! `queued` and queues it on its channel account's partition (`delivery.send.pNN`, single
//! active consumer, so one account's rate limiter lives in one process however many replicas
//! run). The send worker paces each account below its provider's limit, calls the provider's
//! API through the adapters of `switchboard-channels`, retries what is retryable with backoff
//! and jitter, and records `sent`, `failed` or an unknown outcome. Status receipts from ingress
//! (`delivery.receipts.pNN`) move messages forward only. Every change leaves as
//! `outbound.message` / `outbound.status` through the transactional outbox (routing shows it
//! in the history). Routing's automatic replies arrive on `delivery.autoreply.pNN`.

pub mod accept;
mod action;
pub mod author;
mod auto_reply;
mod config;
pub mod content;
mod error;
mod grpc;
pub mod lanes;
pub mod lookup;
pub mod metrics;
pub mod outcome;
pub mod policy;
pub mod receipts;
pub mod retry;
pub mod scheduler;
pub mod sender;
pub mod status;
pub mod store;
pub mod transport;

use std::sync::Arc;

use secrecy::SecretString;
use switchboard_egress::{EgressClient, EgressConfig};
use switchboard_messaging::{Bus, ProducerQueues, SeatWatch};
use switchboard_postgres::{Migration, MigrationSet, Pool};
use switchboard_server::{ComponentParts, GrpcClientConfig};
use tokio_util::sync::CancellationToken;

pub use config::DeliveryConfig;
pub use error::DeliveryError;
pub use metrics::DeliveryMetrics;

/// The schema migrations of the delivery component.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    schema: "delivery",
    migrations: &[
        Migration {
            version: 1,
            name: "initial",
            sql: include_str!("../migrations/0001_initial.sql"),
        },
        Migration {
            version: 2,
            name: "outbox_vacuum",
            sql: include_str!("../migrations/0002_outbox_vacuum.sql"),
        },
    ],
};

/// The component name of delivery's queues.
pub const CONSUMER: &str = "delivery";
/// The family of routing's outbound-history queues (`routing.outbound.pNN`).
const OUTBOUND_HISTORY_FAMILY: &str = "outbound";

/// What the delivery component is built from.
pub struct DeliveryDependencies<'a> {
    /// The `[delivery]` section.
    pub config: &'a DeliveryConfig,
    /// How caller-given URLs (attachments) are fetched: public addresses only, unless allowed.
    pub egress: &'a EgressConfig,
    /// Where contacts, routing and tenancy answer.
    pub grpc_client: &'a GrpcClientConfig,
    /// The internal token for those calls.
    pub internal_token: &'a SecretString,
    /// The pool of the `delivery` schema.
    pub pool: Pool,
    /// The bus.
    pub bus: Bus,
    /// This replica's seat among the component's live replicas: the partitions it consumes.
    pub seat: SeatWatch,
    /// Counters.
    pub metrics: Arc<DeliveryMetrics>,
    /// Largest gRPC message.
    pub grpc_max_message_bytes: usize,
    /// Where web chat's internal API answers (`delivery.webchat_endpoint`, else this process).
    pub webchat_endpoint: String,
    /// Cancelled when the process stops.
    pub shutdown: CancellationToken,
}

/// Builds the component: the gRPC API, the send workers, the receipt and auto-reply
/// consumers, the scheduler and the outbox relay.
pub fn build(dependencies: DeliveryDependencies<'_>) -> Result<ComponentParts, String> {
    let DeliveryDependencies {
        config,
        egress,
        grpc_client,
        internal_token,
        pool,
        bus,
        seat,
        metrics,
        grpc_max_message_bytes,
        webchat_endpoint,
        shutdown,
    } = dependencies;
    let config = Arc::new(config.clone());
    let partitions = bus.partitions().clone();
    let outbox_wake = Arc::new(tokio::sync::Notify::new());
    let lookups = lookup::Lookups::new(
        grpc_client,
        config.contacts_endpoint.as_deref(),
        config.routing_endpoint.as_deref(),
        internal_token,
    )?;
    let user_agent = concat!("switchboard/", env!("CARGO_PKG_VERSION"));
    let http = reqwest::Client::builder()
        .user_agent(user_agent)
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|error| format!("cannot build the provider http client: {error}"))?;
    // Attachment URLs come from API callers: fetched only under the egress policy.
    let attachment_http = EgressClient::new(egress, user_agent)?;
    let acceptor = accept::Acceptor {
        pool: pool.clone(),
        lookups: lookups.clone(),
        config: config.clone(),
        partitions: partitions.clone(),
        outbox_wake: outbox_wake.clone(),
        attachments: transport::AttachmentCheck::new(
            attachment_http.clone(),
            std::time::Duration::from_secs(5),
            config.check_attachments,
        ),
    };
    let transport = Arc::new(transport::Transport::new(
        http,
        attachment_http,
        config.send_timeout,
        webchat_endpoint,
        internal_token,
    ));
    let sender = Arc::new(sender::Sender {
        pool: pool.clone(),
        lookups,
        lanes: Arc::new(lanes::Lanes::new(config.clone())),
        transport: transport.clone(),
        config: config.clone(),
        partitions: partitions.clone(),
        outbox_wake: outbox_wake.clone(),
        metrics: metrics.clone(),
    });
    let mut parts = ComponentParts::default();
    parts.add_grpc_service(grpc::server(
        grpc::DeliveryApi {
            acceptor: acceptor.clone(),
            transport,
            pool: pool.clone(),
        },
        grpc_max_message_bytes,
    ));

    // The outbox carries send jobs (to this component's queues) and outbound events (to routing).
    let mut outbox_queues = bus.partitioned_queues(CONSUMER, store::SEND_FAMILY);
    outbox_queues.extend(bus.partitioned_queues("routing", OUTBOUND_HISTORY_FAMILY));
    parts.spawn(
        "delivery outbox relay",
        switchboard_outbox::OutboxRelay {
            outbox: store::OUTBOX,
            pool: pool.clone(),
            publisher: bus.publisher(),
            queues: Arc::new(ProducerQueues::new(bus.clone(), outbox_queues)),
            wake: outbox_wake.clone(),
            interval: std::time::Duration::from_secs(1),
            shutdown: shutdown.clone(),
        }
        .run(),
    );
    parts.spawn(
        "delivery scheduler",
        scheduler::Scheduler {
            pool: pool.clone(),
            config: config.clone(),
            partitions: partitions.clone(),
            outbox_wake: outbox_wake.clone(),
            metrics: metrics.clone(),
        }
        .run(shutdown.clone()),
    );
    let in_flight = config.sends_in_flight;
    let sends = switchboard_messaging::PartitionedConsumers {
        bus: bus.clone(),
        queues: bus.partitioned_queues(CONSUMER, store::SEND_FAMILY),
        handler: sender,
        seat: seat.clone(),
        concurrency: in_flight,
    };
    let sends_shutdown = shutdown.clone();
    parts.spawn("delivery sender", async move {
        sends.run(sends_shutdown).await?;
        Ok(())
    });
    let receipts = Arc::new(receipts::Receipts {
        pool,
        partitions,
        outbox_wake,
        metrics,
        batch_size: usize::from(bus.config().batch_size),
    });
    let receipt_queues =
        bus.partitioned_queues_matching(CONSUMER, receipts::RECEIPTS_FAMILY, receipts::RECEIPT_EVENTS);
    let (receipt_bus, receipt_seat, receipt_shutdown) = (bus.clone(), seat.clone(), shutdown.clone());
    parts.spawn("delivery receipts", async move {
        switchboard_messaging::run_partitioned_consumers(
            receipt_bus,
            receipt_queues,
            receipts,
            receipt_seat,
            receipt_shutdown,
        )
        .await?;
        Ok(())
    });
    let auto_replies = Arc::new(auto_reply::AutoReplies { acceptor });
    let auto_reply_queues = bus.partitioned_queues(CONSUMER, "autoreply");
    parts.spawn("delivery automatic replies", async move {
        switchboard_messaging::run_partitioned_consumers(
            bus,
            auto_reply_queues,
            auto_replies,
            seat,
            shutdown,
        )
        .await?;
        Ok(())
    });
    Ok(parts)
}
