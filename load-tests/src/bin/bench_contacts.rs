//! Figures of the contacts component, measured through the real `switchboard` binary:
//!
//! 1. identity resolutions per second of the `contacts.inbound` consumer (`--target contacts`)
//!    over a backlog of WhatsApp inbound events published before it starts (half of them from
//!    new senders, half from known ones), next to the same machine's floors in the same run:
//!    a bare lapin consume + ack, and PostgreSQL single-row inserts over 16 connections;
//! 2. latency of `ContactsService/ListContacts` (`--target tenancy,contacts`) over 1,000,000
//!    generated contacts: a nested filter (with and without a total) and free-text searches.
//!
//! Usage: `bench-contacts --binary target/release/switchboard` (see `make bench`). Loopback
//! only; it creates its own database and bus namespace and removes them at the end.

use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use switchboard_load_tests::floors::{INSERT_CONNECTIONS, consume_floor, insert_floor};
use switchboard_load_tests::process::{Launch, Switchboard};
use switchboard_load_tests::{
    CommonArgs, Report, Run, parse_duration, publish_all, timestamp, until_interrupted,
};
use switchboard_messaging::{Outgoing, QueueSpec};
use switchboard_proto::common::v1::{Channel, PageRequest, SenderIdentity};
use switchboard_proto::contacts::v1 as contacts;
use switchboard_proto::contacts::v1::condition::Value;
use switchboard_proto::contacts::v1::contacts_service_client::ContactsServiceClient;
use switchboard_proto::contacts::v1::filter::Node;
use switchboard_proto::events::v1::envelope::Payload;
use switchboard_proto::events::v1::inbound_event::Kind;
use switchboard_proto::events::v1::{Envelope, InboundEvent, InboundMessage};
use switchboard_proto::tenancy::v1 as tenancy;
use switchboard_proto::tenancy::v1::workspace_admin_service_client::WorkspaceAdminServiceClient;

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// Options every bench shares.
    #[command(flatten)]
    common: CommonArgs,
    /// Inbound events in the backlog the consumer resolves (and messages of the consume floor).
    #[arg(long, default_value_t = 40_000)]
    events: u64,
    /// Distinct senders among them (each sender's first event creates its contact).
    #[arg(long, default_value_t = 20_000)]
    senders: u64,
    /// Contacts generated for the list and search latencies.
    #[arg(long, default_value_t = 1_000_000)]
    contacts: u64,
    /// Measured requests per list query (sequential).
    #[arg(long, default_value_t = 200)]
    requests: u32,
    /// Unmeasured requests per list query before the measured ones.
    #[arg(long, default_value_t = 20)]
    warmup: u32,
    /// Longest time the consumer may take to resolve the backlog.
    #[arg(long, default_value = "20m", value_parser = parse_duration)]
    resolve_timeout: Duration,
}

/// Workspace of the resolution phase.
const WORKSPACE: &str = "ws_bench";
/// Channel account the inbound events are addressed to.
const ACCOUNT: &str = "chacc_bench";
/// Workspace of the generated contacts.
const LIST_WORKSPACE: &str = "ws_bench2";
/// First sender number; sender `i` is `FIRST_SENDER + i`.
const FIRST_SENDER: u64 = 16_505_550_000;
/// Platform-admin token of the process that serves the list API.
const BOOTSTRAP_TOKEN: &str = "bench-bootstrap-token-0123456789abcdef0123";
/// How often the consumer's metrics are read.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Everything this run created, removed at the end whatever happened.
struct Environment {
    /// The database, namespace and queues.
    run: Run,
    /// The queue of the consume floor (also in `run.queues`).
    floor_queue: QueueSpec,
}

impl std::ops::Deref for Environment {
    type Target = Run;

    fn deref(&self) -> &Run {
        &self.run
    }
}

/// Inbound WhatsApp message `sequence` of the backlog, from sender `sequence % senders`.
fn inbound_envelope(run: &str, sequence: u64, senders: u64, event_type: &str) -> Envelope {
    let index = sequence % senders.max(1);
    let sender = FIRST_SENDER + index;
    let now = timestamp(chrono::Utc::now());
    let event_id = format!("evt_bench{run}{sequence:08}");
    Envelope {
        event_id: event_id.clone(),
        event_type: event_type.to_owned(),
        occurred_at: Some(now),
        workspace_id: WORKSPACE.to_owned(),
        correlation_id: event_id,
        causation_id: String::new(),
        partition_key: format!("{ACCOUNT}:{sender}"),
        payload: Some(Payload::Inbound(InboundEvent {
            channel: Channel::Whatsapp as i32,
            channel_account_id: ACCOUNT.to_owned(),
            received_at: Some(now),
            sender: Some(SenderIdentity {
                channel_user_id: sender.to_string(),
                phone_e164: format!("+{sender}"),
                display_name: format!("Bench Sender{index}"),
                ..SenderIdentity::default()
            }),
            kind: Some(Kind::Message(InboundMessage {
                provider_message_id: format!("wamid.BENCH-{run}-{sequence}"),
                ..InboundMessage::default()
            })),
            ..InboundEvent::default()
        })),
    }
}

/// How the run starts the binary.
fn launch<'a>(args: &'a Args, environment: &'a Environment) -> Launch<'a> {
    Launch {
        binary: &args.common.binary,
        database_url: &environment.database_url,
        amqp_url: &args.common.amqp_url,
        namespace: &environment.namespace,
        bootstrap_token: BOOTSTRAP_TOKEN,
        extra_env: &[],
    }
}

/// Phase 1: floors, then the consumer over the published backlog.
async fn resolution_phase(args: &Args, environment: &Environment, report: &mut Report) -> anyhow::Result<()> {
    let bus = &environment.bus;
    let partitions = bus.partitions().clone();
    let run = environment.token.as_str();

    // Floor: PostgreSQL single-row inserts, 16 connections (temp table as asked, and a
    // regular table whose commits wait for the WAL flush like the consumer's do).
    let temp = insert_floor(
        &environment.database_url,
        "CREATE TEMP TABLE floor_insert (id bigint PRIMARY KEY, workspace_id text NOT NULL, payload text NOT NULL)",
        "floor_insert",
        args.common.inserts,
    )
    .await?;
    let logged = insert_floor(
        &environment.database_url,
        "CREATE TABLE IF NOT EXISTS public.floor_insert (id bigint PRIMARY KEY, workspace_id text NOT NULL, payload text NOT NULL)",
        "public.floor_insert",
        args.common.inserts,
    )
    .await?;

    // Floor: consume + ack on a quorum queue declared like the kit's, holding N messages.
    let (elapsed, failed) = publish_all(bus, args.events, args.common.in_flight, |sequence| {
        Outgoing::envelope(
            &Envelope {
                partition_key: String::new(),
                ..inbound_envelope(run, sequence, args.senders, "floor.whatsapp.message")
            },
            &partitions,
        )
    })
    .await;
    anyhow::ensure!(failed == 0, "{failed} floor publishes failed");
    eprintln!(
        "bench-contacts: filled the floor queue in {:.1}s",
        elapsed.as_secs_f64()
    );
    let consume = consume_floor(&args.common.amqp_url, &environment.floor_queue.name, args.events).await?;

    // The backlog: N inbound events on contacts' partitions, before the consumer runs.
    let (elapsed, failed) = publish_all(bus, args.events, args.common.in_flight, |sequence| {
        Outgoing::envelope(
            &inbound_envelope(run, sequence, args.senders, "inbound.whatsapp.message"),
            &partitions,
        )
    })
    .await;
    anyhow::ensure!(failed == 0, "{failed} inbound publishes failed");
    report.line(format!(
        "backlog: {} inbound events from {} senders published in {:.1}s ({:.0}/s, kit publisher, {} in flight)",
        args.events,
        args.senders.min(args.events),
        elapsed.as_secs_f64(),
        args.events as f64 / elapsed.as_secs_f64(),
        args.common.in_flight
    ));

    let http = reqwest::Client::new();
    let spawned = Instant::now();
    let mut switchboard = Switchboard::start(&launch(args, environment), "contacts")?;
    let mut first: Option<(Instant, u64)> = None;
    let mut progress = (Instant::now(), 0);
    let (done_at, outcomes) = loop {
        tokio::time::sleep(POLL_INTERVAL).await;
        switchboard.check_running()?;
        let outcomes = switchboard
            .counter_by_label(&http, "switchboard_contacts_resolutions_total", "outcome")
            .await;
        let now = Instant::now();
        let total: u64 = outcomes.values().sum();
        if total > 0 && first.is_none() {
            first = Some((now, total));
        }
        if total >= args.events {
            break (now, outcomes);
        }
        if total > progress.1 {
            progress = (now, total);
        }
        anyhow::ensure!(
            now.duration_since(progress.0) < Duration::from_secs(60),
            "no resolution progress for 60 s at {total} of {} ({outcomes:?})",
            args.events
        );
        anyhow::ensure!(
            spawned.elapsed() < args.resolve_timeout,
            "only {total} of {} resolved within {:?}",
            args.events,
            args.resolve_timeout
        );
    };
    let (resolve_sum, resolve_count) = switchboard
        .histogram_totals(&http, "switchboard_contacts_resolution_duration_seconds")
        .await;
    let (publish_sum, publish_count) = switchboard
        .histogram_totals(&http, "switchboard_bus_publish_duration_seconds")
        .await;
    switchboard.stop().await;
    let total: u64 = outcomes.values().sum();
    let (first_at, first_count) = first.unwrap_or((spawned, 0));
    let window = done_at.duration_since(first_at).as_secs_f64().max(f64::EPSILON);
    let rate = (total - first_count) as f64 / window;
    let split = outcomes
        .iter()
        .map(|(outcome, count)| format!("{outcome} {count}"))
        .collect::<Vec<_>>()
        .join(", ");
    report.line(format!(
        "resolutions (--target contacts, {} partitions): {rate:.0}/s over first->last resolution ({total} in {window:.1}s); {:.0}/s from process spawn ({:.1}s); split: {split}",
        partitions.of_family("inbound"),
        total as f64 / done_at.duration_since(spawned).as_secs_f64(),
        done_at.duration_since(spawned).as_secs_f64()
    ));
    report.line(format!(
        "  per event (one at a time per partition): {:.2} ms to resolve and pass on, of which {:.2} confirmed publishes x {:.2} ms mean confirm",
        resolve_sum * 1000.0 / resolve_count.max(1.0),
        publish_count / resolve_count.max(1.0),
        publish_sum * 1000.0 / publish_count.max(1.0)
    ));
    report.line(format!(
        "floor consume + ack (1 lapin consumer, 1 quorum queue, prefetch 8): {consume:.0} msg/s; ratio resolutions/floor {:.3}",
        rate / consume
    ));
    report.line(format!(
        "floor PostgreSQL single-row insert, {INSERT_CONNECTIONS} conns, {} rows, TEMP table: {temp:.0}/s; ratio resolutions/floor {:.3}",
        args.common.inserts,
        rate / temp
    ));
    report.line(format!(
        "floor PostgreSQL single-row insert, {INSERT_CONNECTIONS} conns, {} rows, logged table: {logged:.0}/s; ratio resolutions/floor {:.3}",
        args.common.inserts,
        rate / logged
    ));

    let (client, connection) =
        tokio_postgres::connect(&environment.database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM contacts.contacts WHERE workspace_id = $1),
                    (SELECT count(*) FROM contacts.processed_events WHERE workspace_id = $1)",
            &[&WORKSPACE],
        )
        .await?;
    let (contacts, processed): (i64, i64) = (row.get(0), row.get(1));
    report.line(format!(
        "check: {contacts} contacts and {processed} processed events stored for {WORKSPACE}"
    ));
    Ok(())
}

/// One condition of a filter.
fn condition(field: &str, op: contacts::Operator, value: Value) -> contacts::Filter {
    contacts::Filter {
        node: Some(Node::Condition(contacts::Condition {
            field: field.to_owned(),
            op: op as i32,
            value: Some(value),
        })),
    }
}

/// The nested filter of the list benchmark.
fn nested_filter() -> contacts::Filter {
    let group = |filters| contacts::FilterGroup { filters };
    contacts::Filter {
        node: Some(Node::All(group(vec![
            condition(
                "tags",
                contacts::Operator::HasAny,
                Value::List(contacts::StringList {
                    values: vec!["vip".to_owned(), "lead".to_owned()],
                }),
            ),
            contacts::Filter {
                node: Some(Node::Any(group(vec![
                    condition("custom.score", contacts::Operator::Gt, Value::Number(900.0)),
                    condition(
                        "last_inbound_at",
                        contacts::Operator::WithinLast,
                        Value::Duration(prost_types::Duration {
                            seconds: 30 * 86_400,
                            nanos: 0,
                        }),
                    ),
                ]))),
            },
            condition(
                "custom.plan",
                contacts::Operator::Eq,
                Value::Text("pro".to_owned()),
            ),
        ]))),
    }
}

/// Generates the contacts in one statement; returns how long it took.
async fn generate_contacts(client: &tokio_postgres::Client, count: u64) -> anyhow::Result<Duration> {
    let count = i32::try_from(count)?;
    let started = Instant::now();
    client
        .execute(
            "INSERT INTO contacts.contacts (id, workspace_id, first_name, last_name, display_name, email,
                 phone, tags, channels, custom_fields, created_at, last_inbound_at, last_channel)
             SELECT 'ct_bench' || g, $1::text,
                 f.first, l.last, f.first || ' ' || l.last,
                 'person' || g || '@example' || (g % 100) || '.com',
                 '+1555' || lpad(g::text, 7, '0'),
                 ARRAY[(ARRAY['vip', 'lead', 'churned', 'trial'])[1 + g % 4]],
                 CASE g % 3 WHEN 0 THEN ARRAY['whatsapp'] WHEN 1 THEN ARRAY['telegram']
                      ELSE ARRAY['whatsapp', 'email'] END,
                 jsonb_build_object('plan', CASE WHEN (g / 7) % 2 = 0 THEN 'pro' ELSE 'free' END,
                                    'score', g % 1000),
                 now() - make_interval(secs => ((g::bigint * 7919) % 1000000) * 31.536::float8),
                 CASE WHEN g % 10 = 0 THEN NULL
                      ELSE now() - make_interval(secs => ((g::bigint * 104729) % 1000000) * 31.536::float8) END,
                 'whatsapp'
             FROM generate_series(1, $2::int) g
             CROSS JOIN LATERAL (SELECT (ARRAY['Ada', 'Grace', 'Alan', 'Linus', 'Barbara', 'Edsger',
                 'Katherine', 'Dennis', 'Margaret', 'Ken'])[1 + g % 10] AS first) f
             CROSS JOIN LATERAL (SELECT (ARRAY['Lovelace', 'Hopper', 'Turing', 'Torvalds', 'Liskov',
                 'Dijkstra', 'Johnson', 'Ritchie', 'Hamilton', 'Thompson'])[1 + (g / 10) % 10] AS last) l",
            &[&LIST_WORKSPACE, &count],
        )
        .await?;
    Ok(started.elapsed())
}

/// Latency figures of one list query.
struct QueryFigures {
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    rows: usize,
    total: i64,
}

/// Runs `request` `warmup` times, then `requests` times measured, one at a time.
async fn measure(
    client: &mut ContactsServiceClient<tonic::transport::Channel>,
    token: &tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    request: &contacts::ListContactsRequest,
    warmup: u32,
    requests: u32,
) -> anyhow::Result<QueryFigures> {
    let mut latencies = Histogram::<u64>::new(3)?;
    let (mut rows, mut total) = (0, 0);
    for index in 0..warmup + requests {
        let mut call = tonic::Request::new(request.clone());
        call.metadata_mut().insert("authorization", token.clone());
        let started = Instant::now();
        let response = client.list_contacts(call).await?.into_inner();
        if index >= warmup {
            latencies.record(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX))?;
        }
        rows = response.contacts.len();
        total = response.total;
    }
    Ok(QueryFigures {
        p50_ms: latencies.value_at_quantile(0.50) as f64 / 1000.0,
        p95_ms: latencies.value_at_quantile(0.95) as f64 / 1000.0,
        p99_ms: latencies.value_at_quantile(0.99) as f64 / 1000.0,
        rows,
        total,
    })
}

/// Phase 2: generated contacts, then ListContacts latencies through gRPC.
async fn list_phase(args: &Args, environment: &Environment, report: &mut Report) -> anyhow::Result<()> {
    let (client, connection) =
        tokio_postgres::connect(&environment.database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let generated = generate_contacts(&client, args.contacts).await?;
    let started = Instant::now();
    client.batch_execute("ANALYZE contacts.contacts").await?;
    let analyzed = started.elapsed();
    client
        .execute(
            "INSERT INTO contacts.field_definitions (workspace_id, key, label, field_type, options)
             VALUES ($1, 'plan', 'Plan', 'single_select', '{free,pro}'),
                    ($1, 'score', 'Score', 'number', '{}')",
            &[&LIST_WORKSPACE],
        )
        .await?;
    report.line(format!(
        "generate {} contacts (one INSERT … SELECT generate_series, all indexes in place): {:.1}s ({:.0} rows/s); ANALYZE {:.1}s",
        args.contacts,
        generated.as_secs_f64(),
        args.contacts as f64 / generated.as_secs_f64(),
        analyzed.as_secs_f64()
    ));

    let http = reqwest::Client::new();
    let mut switchboard = Switchboard::start(&launch(args, environment), "tenancy,contacts")?;
    switchboard.wait_ready(&http, Duration::from_secs(60)).await?;
    let channel = tonic::transport::Endpoint::from_shared(switchboard.grpc.clone())?
        .connect()
        .await?;
    let bootstrap: tonic::metadata::MetadataValue<tonic::metadata::Ascii> =
        format!("Bearer {BOOTSTRAP_TOKEN}").parse()?;
    let mut admin = WorkspaceAdminServiceClient::new(channel.clone());
    let mut call = tonic::Request::new(tenancy::CreateWorkspaceRequest {
        id: LIST_WORKSPACE.to_owned(),
        name: "Bench contacts".to_owned(),
    });
    call.metadata_mut().insert("authorization", bootstrap.clone());
    admin.create_workspace(call).await?;
    let mut call = tonic::Request::new(tenancy::CreateApiKeyRequest {
        workspace_id: LIST_WORKSPACE.to_owned(),
        name: "bench".to_owned(),
        role: tenancy::ApiKeyRole::WorkspaceAdmin as i32,
    });
    call.metadata_mut().insert("authorization", bootstrap);
    let key = admin.create_api_key(call).await?.into_inner().token;
    let token: tonic::metadata::MetadataValue<tonic::metadata::Ascii> = format!("Bearer {key}").parse()?;

    let page = Some(PageRequest {
        page_size: 50,
        page_token: String::new(),
    });
    let filtered = contacts::ListContactsRequest {
        filter: Some(nested_filter()),
        page: page.clone(),
        ..contacts::ListContactsRequest::default()
    };
    let email_fragment = format!("son{}@example", args.contacts * 2 / 5);
    let queries = [
        (
            "(a) nested filter, page 50, no total".to_owned(),
            filtered.clone(),
        ),
        (
            "(b) nested filter, page 50, include_total".to_owned(),
            contacts::ListContactsRequest {
                include_total: true,
                ..filtered
            },
        ),
        (
            "(c) search \"ada\" (name fragment), page 50".to_owned(),
            contacts::ListContactsRequest {
                query: "ada".to_owned(),
                page: page.clone(),
                ..contacts::ListContactsRequest::default()
            },
        ),
        (
            format!("(d) search {email_fragment:?} (e-mail fragment), page 50"),
            contacts::ListContactsRequest {
                query: email_fragment.clone(),
                page,
                ..contacts::ListContactsRequest::default()
            },
        ),
    ];
    let mut contacts_client = ContactsServiceClient::new(channel);
    for (name, request) in &queries {
        let figures = measure(&mut contacts_client, &token, request, args.warmup, args.requests).await?;
        let total = if request.include_total {
            format!(", total {}", figures.total)
        } else {
            String::new()
        };
        report.line(format!(
            "ListContacts {name}: p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  rows {}{total}  ({} sequential after {} warm-up)",
            figures.p50_ms, figures.p95_ms, figures.p99_ms, figures.rows, args.requests, args.warmup
        ));
    }
    switchboard.stop().await;
    Ok(())
}

/// Creates the database and bus namespace and declares the queues.
async fn prepare(args: &Args) -> anyhow::Result<Environment> {
    let run = Run::prepare(
        "bench-contacts",
        &args.common.database_server,
        &args.common.amqp_url,
        |bus| {
            let mut queues = bus.partitioned_queues("contacts", "inbound");
            queues.extend(bus.partitioned_queues("routing", "contact"));
            queues.push(bus.queue("bench", "floor"));
            queues
        },
    )
    .await?;
    let floor_queue = run.bus.queue("bench", "floor");
    Ok(Environment { run, floor_queue })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let environment = until_interrupted(prepare(&args)).await?;
    let mut report = Report::new("bench-contacts");
    let started = Instant::now();
    let result = until_interrupted(async {
        Box::pin(resolution_phase(&args, &environment, &mut report)).await?;
        Box::pin(list_phase(&args, &environment, &mut report)).await
    })
    .await;
    let cleaned = environment.run.cleanup(args.common.keep_database).await;

    println!(
        "== bench-contacts ({} cores, {:.0}s) ==",
        std::thread::available_parallelism().map_or(0, usize::from),
        started.elapsed().as_secs_f64()
    );
    for line in &report.lines {
        println!("{line}");
    }
    result?;
    cleaned
}
