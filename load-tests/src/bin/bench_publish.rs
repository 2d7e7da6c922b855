//! Confirmed publishes per second: raw lapin (pipelined confirms on one channel) against the
//! messaging kit's `Publisher` (same broker, same queue type, same payload), in one run.
//!
//! Usage: `bench-publish --messages 50000 --in-flight 256` (see `make bench`). Loopback only;
//! its bus namespace is removed at the end whatever happened.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use secrecy::SecretString;
use switchboard_load_tests::{bench_names, until_interrupted};
use switchboard_messaging::metrics::MessagingMetrics;
use switchboard_messaging::{Bus, BusConfig, Outgoing, Publisher};
use switchboard_testkit::NamespaceGuard;

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// Messages per side.
    #[arg(long, default_value_t = 50_000)]
    messages: u32,
    /// Publishes awaiting their confirm at once.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Payload bytes.
    #[arg(long, default_value_t = 1024)]
    payload: usize,
    /// Alternating rounds per side (the medians are reported).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Broker (loopback only).
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// PostgreSQL server (loopback only) where the start's sweep drops killed bench runs'
    /// databases; this bench creates none.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    database_server: String,
}

struct Outcome {
    rate: f64,
    p50: f64,
    p99: f64,
}

fn report(name: &str, messages: u32, elapsed: Duration, latencies: &Histogram<u64>) -> Outcome {
    let rate = f64::from(messages) / elapsed.as_secs_f64();
    let outcome = Outcome {
        rate,
        p50: latencies.value_at_quantile(0.50) as f64 / 1000.0,
        p99: latencies.value_at_quantile(0.99) as f64 / 1000.0,
    };
    println!(
        "{name:<28} {messages} msgs in {:>6.2}s = {:>8.0} msg/s  confirm latency p50 {:>6.2} ms  p99 {:>6.2} ms",
        elapsed.as_secs_f64(),
        outcome.rate,
        outcome.p50,
        outcome.p99
    );
    outcome
}

/// Raw lapin: one confirm channel, sends and confirms fully pipelined, `in_flight` outstanding.
async fn run_raw(
    args: &Args,
    channel: &lapin::Channel,
    exchange: &str,
    payload: &[u8],
) -> anyhow::Result<Outcome> {
    let mut latencies = Histogram::<u64>::new(3)?;
    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut record = |result: (Instant, lapin::Result<lapin::Confirmation>)| -> anyhow::Result<()> {
        let (sent, confirm) = result;
        anyhow::ensure!(confirm?.is_ack(), "raw publish not acked");
        latencies.record(sent.elapsed().as_micros() as u64)?;
        Ok(())
    };
    for index in 0..args.messages {
        if pending.len() >= args.in_flight
            && let Some(result) = pending.next().await
        {
            record(result)?;
        }
        let (channel, exchange, payload) = (channel.clone(), exchange.to_owned(), payload.to_vec());
        pending.push(async move {
            let sent = Instant::now();
            let confirm = async {
                channel
                    .basic_publish(
                        exchange.into(),
                        "inbound.bench.raw".into(),
                        BasicPublishOptions {
                            mandatory: true,
                            ..Default::default()
                        },
                        &payload,
                        BasicProperties::default()
                            .with_message_id(format!("raw-{index}").into())
                            .with_delivery_mode(2),
                    )
                    .await?
                    .await
            }
            .await;
            (sent, confirm)
        });
    }
    while let Some(result) = pending.next().await {
        record(result)?;
    }
    Ok(report("raw lapin", args.messages, started.elapsed(), &latencies))
}

/// The kit: `in_flight` tasks, each publish awaiting its own confirm (as ingress does).
async fn run_kit(args: &Args, publisher: &Publisher, payload: &[u8]) -> anyhow::Result<Outcome> {
    let latencies = Arc::new(std::sync::Mutex::new(Histogram::<u64>::new(3)?));
    let next = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.in_flight {
        let (publisher, latencies, next, payload) = (
            publisher.clone(),
            latencies.clone(),
            next.clone(),
            payload.to_vec(),
        );
        let total = args.messages;
        workers.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                let message = Outgoing {
                    routing_key: "inbound.bench.kit".to_owned(),
                    payload: payload.clone(),
                    message_id: format!("kit-{index}"),
                    message_type: "inbound.bench.kit".to_owned(),
                    headers: Default::default(),
                };
                let sent = Instant::now();
                publisher.publish(message).await?;
                if let Ok(mut histogram) = latencies.lock() {
                    histogram.record(sent.elapsed().as_micros() as u64)?;
                }
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let histogram = latencies.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    Ok(report(
        "messaging kit Publisher",
        args.messages,
        started.elapsed(),
        &histogram,
    ))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.amqp_url.contains("127.0.0.1") || args.amqp_url.contains("localhost"),
        "benchmarks only target a broker on loopback"
    );
    anyhow::ensure!(
        args.rounds > 0 && args.in_flight > 0,
        "rounds and in-flight must be positive"
    );
    let namespace = bench_names(&args.amqp_url, Some(&args.database_server)).namespace;
    // Deletes the queue and exchanges however the run ends.
    let guard = NamespaceGuard::new(&args.amqp_url, &namespace);
    let config = BusConfig {
        url: SecretString::from(args.amqp_url.clone()),
        namespace,
        ..BusConfig::default()
    };
    let bus = Bus::start(config, Arc::new(MessagingMetrics::default()));
    let result = until_interrupted(measure(&args, &bus)).await;
    bus.close().await;
    let deleted = guard.delete()?;
    eprintln!(
        "bench-publish: removed its bus namespace ({} queues, {} exchanges)",
        deleted.queues, deleted.exchanges
    );
    result
}

/// Alternating rounds of both sides on a fresh quorum queue of `bus`.
async fn measure(args: &Args, bus: &Bus) -> anyhow::Result<()> {
    let connection = bus.connection(Duration::from_secs(10)).await?;
    let queue = bus.queue("bench", "inbound");
    let setup = connection.create_channel().await?;
    queue.declare(&setup).await?;
    let payload = vec![b'x'; args.payload];
    let raw = Connection::connect(&args.amqp_url, ConnectionProperties::default()).await?;
    let channel = raw.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    let exchange = bus.events_exchange();
    let publisher = bus.publisher();
    println!(
        "{} rounds of {} confirmed publishes per side, {} B payload, {} in flight, durable quorum queue",
        args.rounds, args.messages, args.payload, args.in_flight
    );

    let (mut raw_rates, mut kit_rates, mut raw_p99, mut kit_p99) = (vec![], vec![], vec![], vec![]);
    for round in 0..args.rounds {
        // Alternate which side goes first, so broker warm-up and queue growth favour neither.
        let (raw_outcome, kit_outcome) = if round % 2 == 0 {
            let raw_outcome = run_raw(args, &channel, &exchange, &payload).await?;
            (raw_outcome, run_kit(args, &publisher, &payload).await?)
        } else {
            let kit_outcome = run_kit(args, &publisher, &payload).await?;
            (run_raw(args, &channel, &exchange, &payload).await?, kit_outcome)
        };
        raw_rates.push(raw_outcome.rate);
        kit_rates.push(kit_outcome.rate);
        raw_p99.push(raw_outcome.p99);
        kit_p99.push(kit_outcome.p99);
        // Keep the queue from growing across rounds.
        setup
            .queue_purge(queue.name.clone().into(), Default::default())
            .await?;
    }
    let (raw_rate, kit_rate) = (median(raw_rates), median(kit_rates));
    println!(
        "median: raw lapin {raw_rate:.0} msg/s (p99 {:.2} ms), kit {kit_rate:.0} msg/s (p99 {:.2} ms); ratio kit / raw {:.2}",
        median(raw_p99),
        median(kit_p99),
        kit_rate / raw_rate
    );

    let _ = raw.close(200, "done".into()).await;
    Ok(())
}
