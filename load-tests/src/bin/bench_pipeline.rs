//! The whole inbound path, end to end: signed WhatsApp webhooks from many senders into ingress,
//! through contacts (identity resolution) and routing (history, event log), until routing's
//! `routing.message.added` bus event is out. Measured per layout of processes: `all` (one
//! `--target all` process), `split` (one process per component) and `split-2` (the same with
//! two replicas of contacts and routing), each on a fresh database and bus namespace, next to
//! the consume + ack and PostgreSQL batch-insert floors of the same run.
//!
//! For each layout: messages per second (first webhook sent → last event out) with a closed
//! loop of `--concurrency` requests; then latency (webhook answered 2xx → event out) at a fixed
//! rate of half that, and at `--latency-rate`; and the mean handler time per consumer stage.
//! Then the round trip: the provider simulator answers sends and posts sent, delivered and read
//! receipts back through ingress, and a stand-in agent (routing's `WatchEvents` stream) answers
//! every inbound message with a `Send`; round trips per second (one message per sender, closed
//! loop) and p50/p99 of webhook 2xx → reply read in the history, at half that rate.
//!
//! Usage: `bench-pipeline --binary target/release/switchboard` (see `make bench`). Loopback only.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use futures_util::StreamExt as _;
use hdrhistogram::Histogram;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use prost::Message as _;
use switchboard_load_tests::chaos::load::Traffic;
use switchboard_load_tests::chaos::load::{ACCESS_TOKEN, ACCOUNT, APP_SECRET, PHONE_NUMBER_ID};
use switchboard_load_tests::chaos::replicas::wait_for_split;
use switchboard_load_tests::chaos::{Rig, Setup};
use switchboard_load_tests::floors::{batch_insert_floor, consume_floor};
use switchboard_load_tests::pipeline::{Agent, Arrivals};
use switchboard_load_tests::{Run, publish_all, until_interrupted};
use switchboard_messaging::Outgoing;
use switchboard_proto::events::v1::Envelope;
use switchboard_proto::events::v1::envelope::Payload;
use switchboard_provider_sim::{
    AccountConfig, Limits, Provider, ReceiptStatus, SimulatorClient, SimulatorProcess,
};

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// The switchboard binary (a release build).
    #[arg(long, default_value = "target/release/switchboard")]
    binary: String,
    /// Distinct senders (customers).
    #[arg(long, default_value_t = 10_000)]
    senders: usize,
    /// Messages of the throughput phase (spread over the senders, each in order).
    #[arg(long, default_value_t = 30_000)]
    messages: usize,
    /// Webhooks in flight at once in the throughput phase.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Seconds of each fixed-rate phase.
    #[arg(long, default_value_t = 10)]
    fixed_seconds: u64,
    /// A second fixed rate (messages per second) to measure latency at; 0 skips it.
    #[arg(long, default_value_t = 1_000)]
    latency_rate: u64,
    /// Partitions per family (`bus.partitions` of every process).
    #[arg(long, default_value_t = 8)]
    partitions: u16,
    /// Layouts to measure, comma-separated: all, split, split-2.
    #[arg(long, default_value = "all,split,split-2", value_delimiter = ',')]
    layouts: Vec<String>,
    /// Round trips of the closed-loop round-trip phase (one inbound message per sender, each
    /// answered by the stand-in agent until its reply is read); 0 skips the round trips.
    #[arg(long, default_value_t = 5_000)]
    round_trips: usize,
    /// More settings for every process, as `KEY=VALUE` (e.g.
    /// `SWITCHBOARD__DATABASE__MAX_CONNECTIONS=32`); repeatable.
    #[arg(long = "setting", value_parser = parse_setting)]
    settings: Vec<(String, String)>,
    /// Sends the stand-in agent has in flight at once.
    #[arg(long, default_value_t = 256)]
    agent_sends: usize,
    /// Messages of the consume + ack floor.
    #[arg(long, default_value_t = 30_000)]
    floor_messages: u64,
    /// Rows of the PostgreSQL batch-insert floor.
    #[arg(long, default_value_t = 300_000)]
    floor_rows: u64,
    /// Broker (loopback only).
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// PostgreSQL server (loopback only); fresh databases are created on it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    database_server: String,
}

/// Parses a `KEY=VALUE` setting.
fn parse_setting(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    Ok((key.to_owned(), value.to_owned()))
}

/// The processes of a layout: `--target` per process, in start order (the first serves gRPC
/// to the others).
fn layout(name: &str) -> anyhow::Result<Vec<&'static str>> {
    Ok(match name {
        "all" => vec!["all"],
        "split" => vec!["tenancy", "ingress", "contacts", "routing", "delivery"],
        "split-2" => vec![
            "tenancy", "ingress", "contacts", "routing", "delivery", "contacts", "routing",
        ],
        other => anyhow::bail!("unknown layout {other:?}: use all, split or split-2"),
    })
}

/// The consumer stages whose handler times are reported, by queue group suffix.
const STAGES: [&str; 5] = [
    "contacts.inbound",
    "routing.contact",
    "delivery.send",
    "delivery.receipts",
    "routing.outbound",
];

/// Subscribes a transient queue to `routing.message.added` events of the namespace.
async fn observe(amqp_url: &str, namespace: &str) -> anyhow::Result<(Arc<Arrivals>, lapin::Connection)> {
    let connection = lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.name().clone(),
            format!("{namespace}switchboard.events").into(),
            "routing.message.added.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.name().clone(),
            "bench-pipeline".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let arrivals = Arc::new(Arrivals::default());
    let recording = arrivals.clone();
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let arrived = Instant::now();
            let Ok(envelope) = Envelope::decode(delivery.data.as_slice()) else {
                continue;
            };
            let Some(Payload::RoutingEvent(event)) = envelope.payload else {
                continue;
            };
            let payload: serde_json::Value = serde_json::from_str(&event.payload_json).unwrap_or_default();
            if payload["direction"] != "inbound" {
                continue;
            }
            if let Some(id) = payload["message_id"].as_str() {
                recording.record(id.to_owned(), arrived);
            }
        }
    });
    Ok((arrivals, connection))
}

/// Sends `traffic`'s message `index` (sender `index % senders`, its message `index / senders`);
/// returns its provider id and when it was answered 2xx, or what went wrong.
async fn send(
    client: &reqwest::Client,
    url: &str,
    traffic: &Traffic,
    index: usize,
) -> Result<(String, Instant), String> {
    let (sender, n) = (index % traffic.senders, index / traffic.senders);
    let (body, signature) = traffic.webhook(sender, n);
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .map_err(|error| format!("no answer: {error}"))?;
    let status = response.status();
    if status.is_success() {
        Ok((traffic.message_id(sender, n), Instant::now()))
    } else {
        Err(format!(
            "HTTP {status}: {}",
            response.text().await.unwrap_or_default()
        ))
    }
}

fn traffic(senders: usize, per_sender: usize) -> Traffic {
    Traffic {
        senders,
        per_sender,
        rate: 0,
        label: format!("PIPE{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        give_up_after: Duration::from_secs(60),
        timestamp: chrono::Utc::now().timestamp(),
    }
}

/// Closed loop: `concurrency` workers send `count` webhooks; returns messages per second from
/// the first send to the last event out.
async fn throughput(
    url: &str,
    arrivals: &Arrivals,
    senders: usize,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    arrivals.reset();
    let traffic = Arc::new(traffic(senders, count.div_ceil(senders)));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let (next, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, traffic, next, failed) = (
            client.clone(),
            url.to_owned(),
            traffic.clone(),
            next.clone(),
            failed.clone(),
        );
        workers.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return;
                }
                if let Err(error) = send(&client, &url, &traffic, index).await
                    && failed.fetch_add(1, Ordering::Relaxed) == 0
                {
                    eprintln!("bench-pipeline: a webhook was refused: {error}");
                }
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined?;
    }
    let accepted = count - usize::try_from(failed.load(Ordering::Relaxed)).unwrap_or(count);
    if accepted < count {
        println!("  {} of {count} webhooks refused", count - accepted);
    }
    let last = arrivals.wait_for(accepted, Duration::from_secs(600)).await?;
    Ok(accepted as f64 / last.duration_since(started).as_secs_f64())
}

/// Open loop at `rate` for `seconds`; returns the p50 and p99 (ms) of webhook 2xx → event out.
async fn latency(
    url: &str,
    arrivals: &Arrivals,
    database_url: &str,
    senders: usize,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<(f64, f64)> {
    arrivals.reset();
    let total = usize::try_from(rate * seconds).unwrap_or(usize::MAX);
    let traffic = Arc::new(traffic(senders, total.div_ceil(senders)));
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for index in 0..total {
        tokio::time::sleep_until((started + interval.mul_f64(index as f64)).into()).await;
        let (client, url, traffic) = (client.clone(), url.to_owned(), traffic.clone());
        tasks.push(tokio::spawn(
            async move { send(&client, &url, &traffic, index).await },
        ));
    }
    let mut answered = HashMap::with_capacity(total);
    let mut refused = Vec::new();
    for task in tasks {
        match task.await? {
            Ok((id, at)) => {
                answered.insert(id, at);
            }
            Err(error) => refused.push(error),
        }
    }
    if let Some(first) = refused.first() {
        println!("  {} of {total} webhooks refused, e.g. {first}", refused.len());
    }
    let total = answered.len();
    arrivals.wait_for(total, Duration::from_secs(300)).await?;
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT id, provider_message_id FROM routing.messages WHERE provider_message_id LIKE $1",
            &[&format!("wamid.{}-%", traffic.label)],
        )
        .await?;
    let arrived = arrivals.at.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut histogram = Histogram::<u64>::new(3)?;
    for row in rows {
        let (id, provider_id): (String, String) = (row.get(0), row.get(1));
        if let (Some(out), Some(answered)) = (arrived.get(&id), answered.get(&provider_id)) {
            let micros = out.saturating_duration_since(*answered).as_micros();
            histogram.record(u64::try_from(micros).unwrap_or(u64::MAX))?;
        }
    }
    anyhow::ensure!(
        histogram.len() == total as u64,
        "matched {} of {total} messages",
        histogram.len()
    );
    Ok((
        histogram.value_at_quantile(0.50) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
    ))
}

/// Prints the mean handler time of each stage that handled messages so far.
async fn print_stage_times(http: &reqwest::Client, admins: &[String], name: &str, phases: &str) {
    for (stage, mean_ms, count) in stage_times(http, admins).await {
        if count > 0.0 {
            println!(
                "{name:<8} stage {stage:<18} mean handler {mean_ms:>6.2} ms over {count:.0} messages ({phases})"
            );
        }
    }
}

/// The latency phase at half of a measured `rate`: that rate, and the p50/p99 (ms).
async fn at_half(
    args: &Args,
    url: &str,
    arrivals: &Arrivals,
    database_url: &str,
    rate: f64,
) -> anyhow::Result<(u64, (f64, f64))> {
    let half_rate = ((rate / 2.0) as u64).max(1);
    let figures = latency(
        url,
        arrivals,
        database_url,
        args.senders,
        half_rate,
        args.fixed_seconds,
    )
    .await?;
    Ok((half_rate, figures))
}

/// Mean handler time (ms) and count per stage, summed over the processes' metrics.
async fn stage_times(http: &reqwest::Client, admins: &[String]) -> Vec<(String, f64, f64)> {
    let mut sums: HashMap<&str, (f64, f64)> = HashMap::new();
    for admin in admins {
        let Ok(response) = http.get(format!("{admin}/metrics")).send().await else {
            continue;
        };
        let text = response.text().await.unwrap_or_default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("switchboard_bus_handler_duration_seconds_") else {
                continue;
            };
            let value: f64 = line
                .rsplit(' ')
                .next()
                .and_then(|value| value.parse().ok())
                .unwrap_or(0.0);
            for stage in STAGES {
                if !rest.contains(&format!("{stage}\"")) {
                    continue;
                }
                let entry = sums.entry(stage).or_default();
                if rest.starts_with("sum") {
                    entry.0 += value;
                } else if rest.starts_with("count") {
                    entry.1 += value;
                }
            }
        }
    }
    STAGES
        .iter()
        .map(|stage| {
            let (sum, count) = sums.get(stage).copied().unwrap_or_default();
            let mean_ms = if count > 0.0 { sum / count * 1000.0 } else { 0.0 };
            ((*stage).to_owned(), mean_ms, count)
        })
        .collect()
}

/// What one layout measured.
struct LayoutFigures {
    rate: f64,
    half: (f64, f64),
    fixed: Option<(f64, f64)>,
    /// Round trips per second and p50/p99 at half that rate.
    round_trip: Option<(f64, (f64, f64))>,
}

/// Starts `name`'s processes on a fresh database and namespace and measures them.
async fn measure_layout(
    args: &Args,
    sim: &SimulatorClient,
    sim_url: &str,
    name: &str,
) -> anyhow::Result<LayoutFigures> {
    let setup = Setup {
        binary: args.binary.clone(),
        amqp_url: args.amqp_url.clone(),
        database_server: args.database_server.clone(),
        extra_env: vec![
            ("RUST_LOG".to_owned(), "warn".to_owned()),
            (
                "SWITCHBOARD__BUS__PARTITIONS".to_owned(),
                args.partitions.to_string(),
            ),
            // The round trip measures the path, not the account's provider limit.
            (
                "SWITCHBOARD__DELIVERY__WHATSAPP_PER_SECOND".to_owned(),
                "100000".to_owned(),
            ),
        ]
        .into_iter()
        .chain(args.settings.iter().cloned())
        .collect(),
        provider: Some(sim_url.to_owned()),
    };
    let mut rig = Rig::start(setup, "bench-pipeline", 0).await?;
    let result = async {
        let targets = layout(name)?;
        for (index, target) in targets.iter().enumerate() {
            // Delivery calls contacts and routing (Send): their first processes, started before.
            let grpc_of = |rig: &mut Rig, component: &str| {
                let index = targets.iter().position(|target| *target == component)?;
                rig.process(index).map(|process| process.grpc.clone())
            };
            let endpoints: Vec<(&str, String)> = if *target == "delivery" {
                [
                    ("SWITCHBOARD__DELIVERY__CONTACTS_ENDPOINT", "contacts"),
                    ("SWITCHBOARD__DELIVERY__ROUTING_ENDPOINT", "routing"),
                ]
                .into_iter()
                .filter_map(|(key, component)| Some((key, grpc_of(&mut rig, component)?)))
                .collect()
            } else {
                Vec::new()
            };
            let extra: Vec<(&str, &str)> = endpoints.iter().map(|(key, url)| (*key, url.as_str())).collect();
            rig.start_process_with(index, target, &extra).await?;
        }
        let partitions = u64::from(args.partitions);
        for (group, target) in [("contacts.inbound", "contacts"), ("routing.contact", "routing")] {
            let replicas: Vec<usize> = (0..targets.len())
                .filter(|index| targets[*index] == target || targets[*index] == "all")
                .collect();
            wait_for_split(&mut rig, group, &replicas, partitions)
                .await
                .with_context(|| format!("{group}: partitions not split over {replicas:?}"))?;
        }
        let (arrivals, observer) = observe(&args.amqp_url, rig.namespace()).await?;
        let url = rig.targets.pick().context("no process serves webhooks")?;
        // Warm-up: connections, caches, and the senders' contacts created (as in production,
        // most messages come from known senders).
        throughput(&url, &arrivals, args.senders, args.senders, args.concurrency).await?;
        let rate = throughput(&url, &arrivals, args.senders, args.messages, args.concurrency).await?;
        println!("{name:<8} inbound {rate:>8.0} msg/s (webhook → routing.message.added out)");
        let (half_rate, half) = at_half(args, &url, &arrivals, rig.database_url(), rate).await?;
        println!(
            "{name:<8} at {half_rate:>5} msg/s: p50 {:>7.1} ms  p99 {:>7.1} ms",
            half.0, half.1
        );
        let fixed = if args.latency_rate > 0 {
            let figures = latency(
                &url,
                &arrivals,
                rig.database_url(),
                args.senders,
                args.latency_rate,
                args.fixed_seconds,
            )
            .await?;
            println!(
                "{name:<8} at {:>5} msg/s: p50 {:>7.1} ms  p99 {:>7.1} ms",
                args.latency_rate, figures.0, figures.1
            );
            Some(figures)
        } else {
            None
        };
        let admins: Vec<String> = (0..targets.len())
            .filter_map(|index| rig.process(index).map(|process| process.admin.clone()))
            .collect();
        print_stage_times(&rig.http, &admins, name, "inbound phases").await;
        let round_trip = if args.round_trips > 0 {
            let figures = round_trips(args, &mut rig, &targets, sim, &url, &arrivals, name).await?;
            print_stage_times(&rig.http, &admins, name, "all phases").await;
            Some(figures)
        } else {
            None
        };
        let _ = observer.close(200, "done".into()).await;
        Ok(LayoutFigures {
            rate,
            half,
            fixed,
            round_trip,
        })
    }
    .await;
    rig.finish().await?;
    result
}

/// The round trips of a layout: the simulator answers sends of the bench's number and posts
/// sent, delivered and read receipts to `url` (the layout's webhook endpoint); the stand-in agent
/// answers each inbound message. Closed loop of `--round-trips` (one per sender), then p50/p99 of
/// webhook 2xx → reply read at half that rate.
async fn round_trips(
    args: &Args,
    rig: &mut Rig,
    targets: &[&str],
    sim: &SimulatorClient,
    url: &str,
    arrivals: &Arrivals,
    name: &str,
) -> anyhow::Result<(f64, (f64, f64))> {
    sim.configure_account(
        Provider::Whatsapp,
        PHONE_NUMBER_ID,
        &AccountConfig {
            limits: Limits {
                per_second: Some(0),
                per_recipient_per_second: Some(0),
                per_recipient_per_minute: Some(0),
                per_group_per_minute: Some(0),
            },
            webhook_url: Some(url.to_owned()),
            webhook_secret: Some(APP_SECRET.to_owned()),
            receipts: vec![ReceiptStatus::Sent, ReceiptStatus::Delivered, ReceiptStatus::Read],
            ..AccountConfig::new(ACCESS_TOKEN)
        },
    )
    .await
    .map_err(|error| anyhow::anyhow!("configure the simulated number: {error}"))?;
    debug_assert!(url.ends_with(&format!("/webhooks/whatsapp/{ACCOUNT}")));
    let mut grpc_of = |component: &str| -> anyhow::Result<String> {
        let index = (0..targets.len())
            .find(|index| targets[*index] == component || targets[*index] == "all")
            .with_context(|| format!("no {component} process"))?;
        Ok(rig.process(index).context("process down")?.grpc.clone())
    };
    let (routing_grpc, delivery_grpc) = (grpc_of("routing")?, grpc_of("delivery")?);
    let key = rig.workspace_admin_key().await?;
    let agent = Agent::start(&routing_grpc, &delivery_grpc, &key, args.agent_sends).await?;
    agent.reply(true);
    let count = args.round_trips.min(args.senders);
    let rate = throughput(url, &agent.reads, args.senders, count, args.concurrency).await?;
    println!("{name:<8} round trip {rate:>6.0} /s (webhook → reply read in history)");
    let (half_rate, half) = at_half(args, url, &agent.reads, rig.database_url(), rate).await?;
    println!(
        "{name:<8} round trip at {half_rate:>5}/s: p50 {:>7.1} ms  p99 {:>7.1} ms",
        half.0, half.1
    );
    agent.reply(false);
    println!(
        "{name:<8} round trip: a Send took {:.1} ms on average (call → accepted)",
        agent.mean_send_ms()
    );
    anyhow::ensure!(agent.failed() == 0, "{} Sends refused for good", agent.failed());
    arrivals.reset();
    Ok((rate, half))
}

/// The consume + ack and batch-insert floors, on their own database and namespace.
async fn floors(args: &Args) -> anyhow::Result<(f64, f64)> {
    let run = Run::prepare(
        "bench-pipeline-floor",
        &args.database_server,
        &args.amqp_url,
        |bus| vec![bus.queue("bench", "floor")],
    )
    .await?;
    let result = async {
        let queue = run.queues.first().context("floor queue")?.name.clone();
        let (_, failed) = publish_all(&run.bus, args.floor_messages, 256, |sequence| Outgoing {
            routing_key: "floor.bench".to_owned(),
            payload: vec![0; 512],
            message_id: format!("floor-{sequence}"),
            message_type: "floor".to_owned(),
            headers: FieldTable::default(),
        })
        .await;
        anyhow::ensure!(failed == 0, "{failed} floor publishes failed");
        let consume = consume_floor(&args.amqp_url, &queue, args.floor_messages).await?;
        let insert = batch_insert_floor(&run.database_url, "floor_rows", args.floor_rows).await?;
        Ok((consume, insert))
    }
    .await;
    let cleaned = run.cleanup(false).await;
    let floors = result?;
    cleaned?;
    Ok(floors)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for name in &args.layouts {
        layout(name)?;
    }
    let (consume, insert) = until_interrupted(floors(&args)).await?;
    // The simulator runs as its own process, so its stamps never wait on this load generator.
    let simulator = SimulatorProcess::start(&SimulatorProcess::beside(std::path::Path::new(&args.binary)))
        .await
        .map_err(|error| anyhow::anyhow!("provider-sim starts: {error}"))?;
    let sim = SimulatorClient::new(simulator.base_url());
    println!("floor: consume + ack {consume:.0} msg/s; PostgreSQL batch insert {insert:.0} rows/s");
    let mut table = Vec::new();
    for name in &args.layouts {
        let figures = until_interrupted(measure_layout(&args, &sim, simulator.base_url(), name)).await;
        match figures {
            Ok(figures) => table.push((name.clone(), figures)),
            Err(error) => {
                simulator.stop().await;
                return Err(error);
            }
        }
    }
    simulator.stop().await;
    println!();
    println!(
        "| layout | inbound msg/s | ÷ consume floor | ÷ batch-insert floor | p50 / p99 at half rate | p50 / p99 at {} msg/s | round trips/s | round trip p50 / p99 at half rate |",
        args.latency_rate
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, figures) in &table {
        let fixed = figures
            .fixed
            .map_or_else(|| "–".to_owned(), |(p50, p99)| format!("{p50:.0} / {p99:.0} ms"));
        let (round_trips, round_trip_latency) = figures.round_trip.map_or_else(
            || ("–".to_owned(), "–".to_owned()),
            |(rate, (p50, p99))| (format!("{rate:.0}"), format!("{p50:.0} / {p99:.0} ms")),
        );
        println!(
            "| {name} | {:.0} | {:.3} | {:.4} | {:.0} / {:.0} ms | {fixed} | {round_trips} | {round_trip_latency} |",
            figures.rate,
            figures.rate / consume,
            figures.rate / insert,
            figures.half.0,
            figures.half.1,
        );
    }
    Ok(())
}
