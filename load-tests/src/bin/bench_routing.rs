//! Figures of the routing component, measured through the real `switchboard` binary
//! (`--target tenancy,routing`):
//!
//! 1. inbound events per second through routing (with PostgreSQL): a backlog of contacts'
//!    resolved WhatsApp messages (`routing.contact.pNN`) published before the process starts,
//!    each stored once in its contact's conversation with its event-log entries, next to the
//!    same machine's floors in the same run (a bare lapin consume + ack, PostgreSQL
//!    single-row inserts over 16 connections);
//! 2. `WatchEvents` latency from commit to a connected client: messages published at a steady
//!    rate, each event's commit-side timestamp (`occurred_at`, taken by the transaction's last
//!    statement) against the time the client received it.
//!
//! Usage: `bench-routing --binary target/release/switchboard` (see `make bench`). Loopback
//! only; it creates its own database and bus namespace and removes them at the end.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use futures_util::StreamExt as _;
use hdrhistogram::Histogram;
use switchboard_load_tests::floors::{INSERT_CONNECTIONS, consume_floor, insert_floor};
use switchboard_load_tests::process::{Launch, Switchboard};
use switchboard_load_tests::{
    CommonArgs, Report, Run, parse_duration, publish_all, timestamp, until_interrupted,
};
use switchboard_messaging::{Outgoing, Partitions};
use switchboard_proto::common::v1::{Channel, ContentPart, SenderIdentity, TextPart, content_part::Part};
use switchboard_proto::events::v1::envelope::Payload;
use switchboard_proto::events::v1::inbound_event::Kind;
use switchboard_proto::events::v1::{ContactResolvedInbound, Envelope, InboundEvent, InboundMessage};
use switchboard_proto::routing::v1 as routing;
use switchboard_proto::routing::v1::routing_service_client::RoutingServiceClient;
use switchboard_proto::tenancy::v1 as tenancy;
use switchboard_proto::tenancy::v1::workspace_admin_service_client::WorkspaceAdminServiceClient;

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// Options every bench shares.
    #[command(flatten)]
    common: CommonArgs,
    /// Messages in the backlog routing works through (and messages of the consume floor).
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Distinct contacts among them (each contact's first message opens its conversation).
    #[arg(long, default_value_t = 2_000)]
    contacts: u64,
    /// Messages whose events are timed on the way to a WatchEvents client.
    #[arg(long, default_value_t = 2_000)]
    watched: u64,
    /// Messages per second while timing WatchEvents.
    #[arg(long, default_value_t = 200)]
    watch_rate: u64,
    /// Longest time routing may take to work through the backlog.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    timeout: Duration,
}

/// Workspace of every event.
const WORKSPACE: &str = "ws_routebench";
/// Channel account the messages arrived on.
const ACCOUNT: &str = "chacc_routebench";
/// Platform-admin token of the process.
const BOOTSTRAP_TOKEN: &str = "bench-bootstrap-token-0123456789abcdef0123";
/// How often progress is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Contacts' resolved event for message `sequence`, from contact `sequence % contacts`.
fn resolved_envelope(run: &str, sequence: u64, contacts: u64) -> Envelope {
    let contact = sequence % contacts.max(1);
    let contact_id = format!("ct_bench{run}{contact:06}");
    let now = timestamp(chrono::Utc::now());
    let event_id = format!("evt_route{run}{sequence:08}");
    let event = InboundEvent {
        channel: Channel::Whatsapp as i32,
        channel_account_id: ACCOUNT.to_owned(),
        provider_timestamp: Some(now),
        received_at: Some(now),
        sender: Some(SenderIdentity {
            channel_user_id: format!("1650555{contact:04}"),
            ..SenderIdentity::default()
        }),
        kind: Some(Kind::Message(InboundMessage {
            provider_message_id: format!("wamid.ROUTE-{run}-{sequence}"),
            parts: vec![ContentPart {
                part: Some(Part::Text(TextPart {
                    body: format!("message {sequence} from contact {contact}"),
                    subject: String::new(),
                })),
            }],
            ..InboundMessage::default()
        })),
        ..InboundEvent::default()
    };
    Envelope {
        event_id: event_id.clone(),
        event_type: "contact.inbound.whatsapp.message".to_owned(),
        occurred_at: Some(now),
        workspace_id: WORKSPACE.to_owned(),
        correlation_id: event_id,
        causation_id: String::new(),
        partition_key: contact_id.clone(),
        payload: Some(Payload::ContactInbound(ContactResolvedInbound {
            event: Some(event),
            contact_id,
            contact: None,
            new_contact: false,
        })),
    }
}

async fn stored_messages(client: &tokio_postgres::Client) -> anyhow::Result<i64> {
    Ok(client
        .query_one("SELECT count(*) FROM routing.messages", &[])
        .await?
        .get(0))
}

/// Phase 1: floors, then routing over the published backlog; leaves routing running.
async fn throughput_phase(args: &Args, run: &Run, report: &mut Report) -> anyhow::Result<Switchboard> {
    let create =
        "CREATE TABLE IF NOT EXISTS floor_rows (id bigint PRIMARY KEY, workspace_id text, payload text)";
    let inserts = insert_floor(&run.database_url, create, "floor_rows", args.common.inserts).await?;
    let floor_queue = run.bus.queue("bench", "floor");
    let (elapsed, failed) = publish_all(&run.bus, args.events, args.common.in_flight, |sequence| {
        let mut outgoing = Outgoing::envelope(
            &resolved_envelope(&run.token, sequence, args.contacts),
            &Partitions::uniform(1),
        );
        outgoing.routing_key = "floor.bench".to_owned();
        outgoing
    })
    .await;
    anyhow::ensure!(failed == 0, "{failed} floor publishes failed");
    eprintln!("bench-routing: floor backlog published in {elapsed:.1?}");
    let consume = consume_floor(&args.common.amqp_url, &floor_queue.name, args.events).await?;

    let partitions = run.bus.partitions().clone();
    let (elapsed, failed) = publish_all(&run.bus, args.events, args.common.in_flight, |sequence| {
        Outgoing::envelope(
            &resolved_envelope(&run.token, sequence, args.contacts),
            &partitions,
        )
    })
    .await;
    anyhow::ensure!(failed == 0, "{failed} backlog publishes failed");
    eprintln!(
        "bench-routing: backlog of {} messages ({} contacts) published in {elapsed:.1?}",
        args.events, args.contacts
    );

    let (client, connection) = tokio_postgres::connect(&run.database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let http = reqwest::Client::new();
    let spawned = Instant::now();
    let mut switchboard = Switchboard::start(&launch(args, run), "tenancy,routing")?;
    let deadline = spawned + args.timeout;
    let mut first: Option<(Instant, i64)> = None;
    let done = loop {
        switchboard.check_running()?;
        // The schema appears once the process has migrated.
        let stored = stored_messages(&client).await.unwrap_or(0);
        if stored > 0 && first.is_none() {
            first = Some((Instant::now(), stored));
        }
        if u64::try_from(stored).unwrap_or(0) >= args.events {
            break Instant::now();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "routing stored {stored} of {} messages within {:?}",
            args.events,
            args.timeout
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    let (first_at, first_count) = first.context("nothing was stored")?;
    let window = done.duration_since(first_at).as_secs_f64().max(0.001);
    let counted = u64::try_from(first_count).unwrap_or(0);
    let rate = args.events.saturating_sub(counted) as f64 / window;
    // The bus copies of the event log leave through the outbox relay: how far behind it is.
    let backlog: i64 = client
        .query_one("SELECT count(*) FROM routing.outbox", &[])
        .await?
        .get(0);
    let drained = loop {
        let pending: i64 = client
            .query_one("SELECT count(*) FROM routing.outbox", &[])
            .await?
            .get(0);
        if pending == 0 {
            break Instant::now();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the outbox still holds {pending} events after {:?}",
            args.timeout
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    let conversations: i64 = client
        .query_one("SELECT count(*) FROM routing.conversations", &[])
        .await?
        .get(0);
    let logged: i64 = client
        .query_one("SELECT count(*) FROM routing.event_log", &[])
        .await?
        .get(0);
    anyhow::ensure!(
        u64::try_from(conversations).unwrap_or(0) == args.contacts,
        "{conversations} conversations for {} contacts",
        args.contacts
    );
    report.line(format!(
        "inbound events through routing (--target tenancy,routing, {} partitions): {rate:.0}/s stored \
         (first->last stored, {} messages in {window:.1}s); {:.0}/s from process spawn; {conversations} conversations, \
         {logged} event-log entries (each also published to the bus)",
        partitions.of_family("contact"),
        args.events - counted,
        args.events as f64 / done.duration_since(spawned).as_secs_f64()
    ));
    report.line(format!(
        "outbox (event-log copies to the bus, confirmed one by one): {backlog} events behind when the last message was stored, drained {:.1}s later",
        drained.duration_since(done).as_secs_f64()
    ));
    report.line(format!(
        "floor consume + ack (1 lapin consumer, 1 quorum queue, prefetch 8): {consume:.0} msg/s; ratio routing/floor {:.3}",
        rate / consume
    ));
    report.line(format!(
        "floor PostgreSQL single-row insert, {INSERT_CONNECTIONS} conns, {} rows: {inserts:.0}/s; ratio routing/floor {:.3}",
        args.common.inserts,
        rate / inserts
    ));
    let (handler_sum, handler_count) = switchboard
        .histogram_totals(&http, "switchboard_bus_handler_duration_seconds")
        .await;
    if handler_count > 0.0 {
        report.line(format!(
            "routing handler mean {:.2} ms over {handler_count:.0} deliveries",
            handler_sum / handler_count * 1000.0
        ));
    }
    Ok(switchboard)
}

/// How the run starts the binary.
fn launch<'a>(args: &'a Args, run: &'a Run) -> Launch<'a> {
    Launch {
        binary: &args.common.binary,
        database_url: &run.database_url,
        amqp_url: &args.common.amqp_url,
        namespace: &run.namespace,
        bootstrap_token: BOOTSTRAP_TOKEN,
        extra_env: &[],
    }
}

/// Phase 2: WatchEvents latency while messages arrive at a steady rate.
async fn watch_phase(
    args: &Args,
    run: &Run,
    switchboard: &mut Switchboard,
    report: &mut Report,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    switchboard.wait_ready(&http, Duration::from_secs(30)).await?;
    let channel = tonic::transport::Endpoint::from_shared(switchboard.grpc.clone())?
        .connect()
        .await?;
    let bootstrap: tonic::metadata::MetadataValue<tonic::metadata::Ascii> =
        format!("Bearer {BOOTSTRAP_TOKEN}").parse()?;
    let mut admin = WorkspaceAdminServiceClient::new(channel.clone());
    let mut call = tonic::Request::new(tenancy::CreateWorkspaceRequest {
        id: WORKSPACE.to_owned(),
        name: "Bench routing".to_owned(),
    });
    call.metadata_mut().insert("authorization", bootstrap.clone());
    admin.create_workspace(call).await?;
    let mut call = tonic::Request::new(tenancy::CreateApiKeyRequest {
        workspace_id: WORKSPACE.to_owned(),
        name: "bench".to_owned(),
        role: tenancy::ApiKeyRole::WorkspaceMember as i32,
    });
    call.metadata_mut().insert("authorization", bootstrap);
    let key = admin.create_api_key(call).await?.into_inner().token;
    let mut watch = tonic::Request::new(routing::WatchEventsRequest::default());
    watch
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse()?);
    let mut stream = RoutingServiceClient::new(channel)
        .watch_events(watch)
        .await?
        .into_inner();

    let partitions = run.bus.partitions().clone();
    let publisher = run.bus.publisher();
    let (token, contacts, watched, rate) = (
        run.token.clone(),
        args.contacts,
        args.watched,
        args.watch_rate.max(1),
    );
    let first_sequence = args.events;
    let producer = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        for sequence in first_sequence..first_sequence + watched {
            ticker.tick().await;
            // Known contacts: each message is one `message.added`.
            let envelope = resolved_envelope(&token, sequence, contacts);
            publisher
                .publish(Outgoing::envelope(&envelope, &partitions))
                .await
                .map_err(|error| anyhow::anyhow!("publish: {error}"))?;
        }
        Ok::<(), anyhow::Error>(())
    });
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut received = 0;
    while received < args.watched {
        let event = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .context("WatchEvents went quiet")?
            .context("WatchEvents ended")??;
        let now = chrono::Utc::now();
        if event.event_type != "message.added" {
            continue;
        }
        let occurred = event.occurred_at.context("event without occurred_at")?;
        let at =
            chrono::DateTime::from_timestamp(occurred.seconds, u32::try_from(occurred.nanos).unwrap_or(0))
                .context("occurred_at out of range")?;
        let micros = (now - at).num_microseconds().unwrap_or(0).max(1);
        latencies.record(u64::try_from(micros).unwrap_or(1))?;
        received += 1;
    }
    producer.await??;
    let quantile = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    report.line(format!(
        "WatchEvents commit->client latency ({} events at {} msg/s, 1 watcher): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.watched,
        args.watch_rate,
        quantile(0.5),
        quantile(0.99),
        latencies.max() as f64 / 1000.0
    ));
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let run = until_interrupted(Run::prepare(
        "bench-routing",
        &args.common.database_server,
        &args.common.amqp_url,
        |bus| {
            let mut queues = bus.partitioned_queues("routing", "contact");
            queues.extend(bus.partitioned_queues("routing", "outbound"));
            queues.extend(bus.partitioned_queues("contacts", "assignment"));
            queues.extend(bus.partitioned_queues("bots", "bot"));
            queues.extend(bus.partitioned_queues("delivery", "autoreply"));
            let floor = bus.queue("bench", "floor");
            queues.push(floor);
            queues
        },
    ))
    .await?;
    let mut report = Report::new("bench-routing");
    let started = Instant::now();
    let result = until_interrupted(async {
        let mut switchboard = Box::pin(throughput_phase(&args, &run, &mut report)).await?;
        let watched = Box::pin(watch_phase(&args, &run, &mut switchboard, &mut report)).await;
        switchboard.stop().await;
        watched
    })
    .await;
    let cleaned = run.cleanup(args.common.keep_database).await;
    println!(
        "== bench-routing ({} cores, {:.0}s) ==",
        std::thread::available_parallelism().map_or(0, usize::from),
        started.elapsed().as_secs_f64()
    );
    for line in &report.lines {
        println!("{line}");
    }
    result?;
    cleaned
}
