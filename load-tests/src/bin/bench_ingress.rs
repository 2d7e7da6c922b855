//! Signed WhatsApp webhooks per second accepted by the real `switchboard` binary (target
//! `all`: account lookup, HMAC check, normalization, confirmed quorum publish per request),
//! its latency at a fixed rate, and the same generator against a raw axum + HMAC + lapin
//! confirm floor in the same run.
//!
//! Usage: `bench-ingress --binary target/release/switchboard` (see `make bench`). Loopback only;
//! it creates its own database and bus namespace and removes them at the end whatever happened.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clap::Parser;
use hdrhistogram::Histogram;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use switchboard_load_tests::{Run, until_interrupted};
use tokio::io::AsyncBufReadExt as _;

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// The switchboard binary (a release build).
    #[arg(long, default_value = "target/release/switchboard")]
    binary: String,
    /// Requests of the throughput phase, per side.
    #[arg(long, default_value_t = 30_000)]
    requests: u64,
    /// Concurrent requests of the throughput phase.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Rate of the fixed-rate phase (requests per second).
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Seconds of the fixed-rate phase.
    #[arg(long, default_value_t = 10)]
    fixed_seconds: u64,
    /// Unmeasured requests per side before the throughput phase.
    #[arg(long, default_value_t = 2_000)]
    warmup: u64,
    /// Broker (loopback only).
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// PostgreSQL server (loopback only); a fresh database is created on it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    database_server: String,
}

const APP_SECRET: &str = "bench-app-secret";
const PHONE_NUMBER_ID: &str = "106540352242922";
const ACCOUNT: &str = "chacc_bench-whatsapp";

/// A WhatsApp text webhook of about 1 KiB with a unique message id, and its signature.
fn signed_webhook(sequence: u64) -> (Vec<u8>, String) {
    let padding = "x".repeat(600);
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PHONE_NUMBER_ID}"}},"contacts":[{{"profile":{{"name":"Load Test"}},"wa_id":"1650555{:04}"}}],"messages":[{{"from":"1650555{:04}","id":"wamid.BENCH-{sequence}","timestamp":"1749416383","type":"text","text":{{"body":"benchmark message {sequence} {padding}"}}}}]}},"field":"messages"}}]}}]}}"#,
        sequence % 10_000,
        sequence % 10_000
    );
    let signature = format!(
        "sha256={}",
        switchboard_channels::meta::hmac_sha256_hex(APP_SECRET.as_bytes(), body.as_bytes())
    );
    (body.into_bytes(), signature)
}

struct Figures {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn figures(count: u64, elapsed: Duration, latencies: &Histogram<u64>, errors: u64) -> Figures {
    Figures {
        rate: count as f64 / elapsed.as_secs_f64(),
        p50_ms: latencies.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: latencies.value_at_quantile(0.99) as f64 / 1000.0,
        errors,
    }
}

async fn send(client: &reqwest::Client, url: &str, sequence: u64) -> bool {
    let (body, signature) = signed_webhook(sequence);
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

/// Closed loop: `concurrency` workers send `requests` webhooks as fast as answers come.
async fn throughput(url: &str, requests: u64, concurrency: usize, offset: u64) -> anyhow::Result<Figures> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, next, errors) = (client.clone(), url.to_owned(), next.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Histogram::<u64>::new(3).expect("histogram");
            loop {
                let sequence = next.fetch_add(1, Ordering::Relaxed);
                if sequence >= requests {
                    return latencies;
                }
                let sent = Instant::now();
                if !send(&client, &url, offset + sequence).await {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                let _ = latencies.record(sent.elapsed().as_micros() as u64);
            }
        }));
    }
    let mut latencies = Histogram::<u64>::new(3)?;
    for worker in workers {
        latencies.add(worker.await?)?;
    }
    Ok(figures(
        requests,
        started.elapsed(),
        &latencies,
        errors.load(Ordering::Relaxed),
    ))
}

/// Open loop at a fixed rate; latency is measured from each request's scheduled start, so a
/// stall counts against every request it delays (no coordinated omission).
async fn fixed_rate(url: &str, rate: u64, duration: Duration, offset: u64) -> anyhow::Result<Figures> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let total = rate * duration.as_secs();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..total {
        let scheduled = started + interval.mul_f64(index as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let (client, url) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let ok = send(&client, &url, offset + index).await;
            (ok, scheduled.elapsed())
        }));
    }
    let mut latencies = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    for task in tasks {
        let (ok, latency) = task.await?;
        errors += u64::from(!ok);
        latencies.record(latency.as_micros() as u64)?;
    }
    Ok(figures(total, started.elapsed(), &latencies, errors))
}

/// The floor: axum, the same HMAC check, and one confirmed quorum publish per request.
struct Floor {
    channel: lapin::Channel,
    queue: String,
}

async fn floor_handler(State(floor): State<Arc<Floor>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if switchboard_channels::meta::verify_signature(&headers, &body, APP_SECRET.as_bytes()).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let published = floor
        .channel
        .basic_publish(
            "".into(),
            floor.queue.clone().into(),
            BasicPublishOptions::default(),
            &body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await;
    match published {
        Ok(confirm) => match confirm.await {
            Ok(confirmation) if confirmation.is_ack() => StatusCode::OK,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        },
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn start_floor(amqp_url: &str, queue: &str) -> anyhow::Result<(SocketAddr, Connection)> {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    let floor = Arc::new(Floor {
        channel,
        queue: queue.to_owned(),
    });
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(floor_handler))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((address, connection))
}

/// Runs the binary with a channels file holding the benchmark account; returns its HTTP address.
async fn start_switchboard(
    args: &Args,
    database_url: &str,
    namespace: &str,
    channels_file: &std::path::Path,
) -> anyhow::Result<(tokio::process::Child, String)> {
    let mut child = switchboard_load_tests::process::command(&args.binary)
        .args(["--target", "all"])
        .env("DATABASE_URL", database_url)
        .env("AMQP_URL", &args.amqp_url)
        .env("SWITCHBOARD_HTTP_ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD_GRPC_ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD_ADMIN_ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD_SMTP_ADDR", "127.0.0.1:0")
        .env("SWITCHBOARD_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("SWITCHBOARD_CHANNELS_FILE", channels_file)
        .env(
            "SWITCHBOARD_INTERNAL_TOKEN",
            "bench-internal-token-0123456789abcdef0123",
        )
        .env("SWITCHBOARD__BUS__NAMESPACE", namespace)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {} (build it with `cargo build --release`)",
                args.binary
            )
        })?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut http = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline.into(), lines.next_line()).await? {
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if value["message"] == "listening" && value["listener"] == "http" {
            http = value["addr"].as_str().map(str::to_owned);
        }
        if value["message"] == "switchboard started" {
            break;
        }
    }
    // Keep draining its output so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let http = http.context("switchboard did not report its http address")?;
    Ok((child, format!("http://{http}")))
}

fn print(name: &str, figures: &Figures) {
    println!(
        "{name:<44} {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}",
        figures.rate, figures.p50_ms, figures.p99_ms, figures.errors
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let run = until_interrupted(Run::prepare(
        "bench-ingress",
        &args.database_server,
        &args.amqp_url,
        |_| Vec::new(),
    ))
    .await?;
    let channels_file = std::env::temp_dir().join(format!("sb-bench-{}.yaml", run.token));
    let result = until_interrupted(measure(&args, &run, &channels_file)).await;
    let _ = std::fs::remove_file(&channels_file);
    let cleaned = run.cleanup(false).await;
    result?;
    cleaned
}

/// The floor and the binary side by side: throughput, then the fixed rate.
async fn measure(args: &Args, run: &Run, channels_file: &std::path::Path) -> anyhow::Result<()> {
    std::fs::write(
        channels_file,
        format!(
            "workspaces:\n  - id: ws_bench\n    name: Bench\n    channel_accounts:\n      - {{id: {ACCOUNT}, channel: whatsapp, name: Bench, external_id: \"{PHONE_NUMBER_ID}\", secrets: {{app_secret: {APP_SECRET}}}}}\n"
        ),
    )?;
    let floor_queue = format!("{}floor", run.namespace);

    let (floor_address, floor_connection) = start_floor(&args.amqp_url, &floor_queue).await?;
    let floor_url = format!("http://{floor_address}/hook");
    let (mut child, http) = start_switchboard(args, &run.database_url, &run.namespace, channels_file).await?;
    let ingress_url = format!("{http}/webhooks/whatsapp/{ACCOUNT}");

    // Warm up both (connections, account cache, JIT-free but page-cache warm).
    throughput(&ingress_url, args.warmup, args.concurrency, 10_000_000).await?;
    throughput(&floor_url, args.warmup, args.concurrency, 10_000_000).await?;

    println!(
        "signed WhatsApp webhooks (~1 KiB), {} requests at concurrency {}:",
        args.requests, args.concurrency
    );
    let floor = throughput(&floor_url, args.requests, args.concurrency, 0).await?;
    print("floor: axum + HMAC + quorum publish confirm", &floor);
    let ingress = throughput(&ingress_url, args.requests, args.concurrency, 0).await?;
    print("switchboard ingress (target all)", &ingress);
    println!("ratio ingress / floor: {:.2}", ingress.rate / floor.rate);

    println!("fixed rate {} req/s for {} s:", args.rate, args.fixed_seconds);
    let fixed = fixed_rate(
        &ingress_url,
        args.rate,
        Duration::from_secs(args.fixed_seconds),
        20_000_000,
    )
    .await?;
    print("switchboard ingress (target all)", &fixed);

    // Stop the binary before the run's cleanup, so nothing redeclares its queues.
    let _ = child.kill().await;
    let _ = floor_connection.close(200, "done".into()).await;
    anyhow::ensure!(
        ingress.errors == 0 && fixed.errors == 0,
        "some webhooks were not accepted"
    );
    Ok(())
}
