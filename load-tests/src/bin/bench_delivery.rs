//! Figures of the delivery component, measured through the real `switchboard --target all`
//! against the provider simulator over loopback HTTP (WhatsApp Cloud API):
//!
//! 1. sends per second with limits off: `Send` calls as fast as `--concurrency` allows, until
//!    every message is accepted by the simulator;
//! 2. achieved rate against a configured account limit (80/s by default) under 300/s offered:
//!    the drain rate, the most sends the simulator saw in any one second, its violations;
//! 3. enqueue → provider-accepted latency at a steady 200 msg/s: from the message's creation
//!    (Send's transaction) to the recorded provider answer, p50/p99 from the attempts table.
//!
//! Usage: `bench-delivery --binary target/release/switchboard` (see `make bench`); the
//! simulator runs as its own process (`provider-sim` next to the binary). Loopback only; it
//! creates its own database and bus namespace and removes them at the end.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use futures_util::StreamExt as _;
use switchboard_load_tests::floors::insert_floor;
use switchboard_load_tests::process::{Launch, Switchboard};
use switchboard_load_tests::{CommonArgs, Report, Run, parse_duration, until_interrupted};
use switchboard_proto::common::v1::{ContentPart, TextPart, content_part::Part};
use switchboard_proto::delivery::v1 as delivery;
use switchboard_proto::delivery::v1::delivery_service_client::DeliveryServiceClient;
use switchboard_proto::tenancy::v1 as tenancy;
use switchboard_proto::tenancy::v1::channel_account_service_client::ChannelAccountServiceClient;
use switchboard_proto::tenancy::v1::workspace_admin_service_client::WorkspaceAdminServiceClient;
use switchboard_provider_sim::{
    AccountConfig, CallsQuery, Limits, Provider, SimulatorClient, SimulatorProcess,
};

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// Options every bench shares.
    #[command(flatten)]
    common: CommonArgs,
    /// Customers messages are sent to (each writes once first, opening the reply window).
    #[arg(long, default_value_t = 200)]
    recipients: u64,
    /// Messages of the limits-off phase.
    #[arg(long, default_value_t = 5_000)]
    messages: u64,
    /// Send calls in flight at once in the limits-off phase.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The account limit of the second phase, per second.
    #[arg(long, default_value_t = 80)]
    limit: u32,
    /// Messages offered at 300/s in the second phase.
    #[arg(long, default_value_t = 1_500)]
    limited_messages: u64,
    /// Messages sent at 200/s in the latency phase.
    #[arg(long, default_value_t = 2_000)]
    latency_messages: u64,
    /// Wait after each change of the account's limit (delivery caches accounts for 30 s); shorter
    /// only where the figures do not matter (`make bench-smoke`).
    #[arg(long, default_value = "31s", value_parser = parse_duration)]
    account_cache_wait: Duration,
}

const WORKSPACE: &str = "ws_deliverybench";
const ACCOUNT: &str = "chacc_deliverybench";
const PHONE_NUMBER_ID: &str = "1065400000001";
const APP_SECRET: &str = "bench-app-secret";
const ACCESS_TOKEN: &str = "bench-access-token";
const BOOTSTRAP_TOKEN: &str = "bench-bootstrap-token-0123456789abcdef0123";
const INTERNAL_TOKEN: &str = "bench-internal-token-0123456789abcdef0123";

fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn text(body: String) -> delivery::OutboundContent {
    delivery::OutboundContent {
        parts: vec![ContentPart {
            part: Some(Part::Text(TextPart {
                body,
                subject: String::new(),
            })),
        }],
        ..delivery::OutboundContent::default()
    }
}

/// Everything a phase needs.
struct Bench {
    grpc: tonic::transport::Channel,
    key: String,
    sim: SimulatorClient,
    db: tokio_postgres::Client,
    conversations: Vec<String>,
    account_cache_wait: Duration,
}

impl Bench {
    /// Sets the account's limit in Switchboard and at the simulator (`None`: off).
    async fn set_limit(&self, limit: Option<u32>) -> anyhow::Result<()> {
        let per_second = limit.map_or(100_000, |limit| limit);
        ChannelAccountServiceClient::new(self.grpc.clone())
            .update_channel_account(authorized(
                tenancy::UpdateChannelAccountRequest {
                    id: ACCOUNT.to_owned(),
                    update: Some(tenancy::ChannelAccountUpdate {
                        settings: [("rate_limit_per_second".to_owned(), per_second.to_string())].into(),
                        ..tenancy::ChannelAccountUpdate::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["settings".to_owned()],
                    }),
                },
                &self.key,
            ))
            .await?;
        self.sim
            .configure_account(
                Provider::Whatsapp,
                PHONE_NUMBER_ID,
                &AccountConfig {
                    limits: Limits {
                        per_second: Some(limit.unwrap_or(0)),
                        per_recipient_per_second: Some(0),
                        per_recipient_per_minute: Some(0),
                        per_group_per_minute: Some(0),
                    },
                    ..AccountConfig::new(ACCESS_TOKEN)
                },
            )
            .await?;
        // Delivery reads the account through a 30 s cache.
        tokio::time::sleep(self.account_cache_wait).await;
        Ok(())
    }

    /// Sends `count` messages, `rate` per second (`None`: as fast as `concurrency` allows).
    async fn offer(
        &self,
        tag: &str,
        count: u64,
        rate: Option<u64>,
        concurrency: usize,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let failures = futures_util::stream::iter(0..count)
            .map(|index| {
                let mut api = DeliveryServiceClient::new(self.grpc.clone());
                let conversation = self.conversations[(index as usize) % self.conversations.len()].clone();
                let key = self.key.clone();
                let tag = tag.to_owned();
                async move {
                    if let Some(rate) = rate {
                        tokio::time::sleep_until(
                            tokio::time::Instant::from_std(started)
                                + Duration::from_micros(index * 1_000_000 / rate),
                        )
                        .await;
                    }
                    let request = delivery::SendRequest {
                        recipient: Some(delivery::Recipient {
                            target: Some(delivery::recipient::Target::ConversationId(conversation)),
                        }),
                        content: Some(text(format!("{tag} {index}"))),
                        author_kind: delivery::AuthorKind::Api as i32,
                        ..delivery::SendRequest::default()
                    };
                    api.send(authorized(request, &key)).await.is_err()
                }
            })
            .buffer_unordered(if rate.is_some() { 4096 } else { concurrency })
            .filter(|failed| std::future::ready(*failed))
            .count()
            .await;
        anyhow::ensure!(failures == 0, "{failures} sends were refused");
        Ok(started.elapsed())
    }

    /// Waits until `total` messages were accepted by the provider.
    async fn wait_sent(&self, total: i64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let sent: i64 = self
                .db
                .query_one(
                    "SELECT count(*) FROM delivery.messages WHERE status = 'sent'",
                    &[],
                )
                .await?
                .get(0);
            if sent >= total {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {sent} of {total} messages were sent in {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn setup(
    args: &Args,
    run: &Run,
    switchboard: &Switchboard,
    sim: SimulatorClient,
) -> anyhow::Result<Bench> {
    let grpc = tonic::transport::Endpoint::from_shared(switchboard.grpc.clone())?.connect_lazy();
    let key = WorkspaceAdminServiceClient::new(grpc.clone())
        .create_api_key(authorized(
            tenancy::CreateApiKeyRequest {
                workspace_id: WORKSPACE.to_owned(),
                name: "bench".to_owned(),
                role: tenancy::ApiKeyRole::WorkspaceAdmin as i32,
            },
            BOOTSTRAP_TOKEN,
        ))
        .await?
        .into_inner()
        .token;
    let (db, connection) = tokio_postgres::connect(&run.database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    // Every recipient writes first (the reply window opens), through a signed webhook.
    let http = reqwest::Client::new();
    for index in 0..args.recipients {
        let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": format!("Customer {index}")}, "wa_id": format!("1650600{index:04}")}],
            "messages": [{"from": format!("1650600{index:04}"), "id": format!("wamid.bench-in-{index}"),
                          "timestamp": chrono::Utc::now().timestamp().to_string(), "type": "text", "text": {"body": "hi"}}]}}]}]})
        .to_string();
        let signature = switchboard_channels::meta::hmac_sha256_hex(APP_SECRET.as_bytes(), body.as_bytes());
        let response = http
            .post(format!("{}/webhooks/whatsapp/{ACCOUNT}", switchboard.http))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", format!("sha256={signature}"))
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "webhook answered {}",
            response.status()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let conversations = loop {
        let rows = db
            .query("SELECT id FROM routing.conversations ORDER BY id", &[])
            .await?;
        if rows.len() as u64 >= args.recipients {
            break rows.iter().map(|row| row.get(0)).collect::<Vec<String>>();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "routing opened {} of {} conversations",
            rows.len(),
            args.recipients
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    Ok(Bench {
        grpc,
        key,
        sim,
        db,
        conversations,
        account_cache_wait: args.account_cache_wait,
    })
}

async fn measure(args: &Args, run: &Run, bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let floor = insert_floor(
        &run.database_url,
        "CREATE TABLE IF NOT EXISTS floor_rows (id bigint PRIMARY KEY, workspace_id text, payload text)",
        "floor_rows",
        args.common.inserts,
    )
    .await?;

    // 1. Limits off.
    bench.set_limit(None).await?;
    let started = Instant::now();
    let accepted = bench.offer("off", args.messages, None, args.concurrency).await?;
    bench
        .wait_sent(args.messages as i64, Duration::from_secs(600))
        .await?;
    let sent = started.elapsed();
    let send_rate = args.messages as f64 / sent.as_secs_f64();
    report.line(format!(
        "limits off: {} Send calls accepted in {:.1?} ({:.0}/s); all sent at the provider in {:.1?}: {send_rate:.0} sends/s ({:.3} of the PostgreSQL single-row insert floor, {floor:.0} rows/s)",
        args.messages,
        accepted,
        args.messages as f64 / accepted.as_secs_f64(),
        sent,
        send_rate / floor
    ));

    // 2. A configured limit under 300/s offered.
    bench.set_limit(Some(args.limit)).await?;
    let before = bench.sim.calls(&CallsQuery::default()).await?.len();
    bench
        .offer("limited", args.limited_messages, Some(300), 0)
        .await?;
    let offered_done = bench.sim.calls(&CallsQuery::default()).await?.len();
    bench
        .wait_sent(
            (args.messages + args.limited_messages) as i64,
            Duration::from_secs(600),
        )
        .await?;
    let calls = bench.sim.calls(&CallsQuery::default()).await?;
    let phase = &calls[before..];
    // The drain rate over the middle of the backlog (none when it drained as it was offered).
    let to = phase.len() * 9 / 10;
    let from = (offered_done - before).max(phase.len() / 10).min(to);
    let drain = match phase.get(to).zip(phase.get(from)) {
        Some((last, first)) if to > from && last.time_ms > first.time_ms => {
            (to - from) as f64 / ((last.time_ms - first.time_ms) as f64 / 1000.0)
        }
        _ => f64::NAN,
    };
    let stats = bench.sim.stats().await?;
    let account = stats
        .accounts
        .iter()
        .find(|account| account.account == PHONE_NUMBER_ID)
        .context("simulator stats of the account")?;
    // The most arrivals in any one-second window of this phase (the simulator's own peak
    // counter spans every phase).
    let times: Vec<u64> = phase.iter().map(|call| call.time_ms).collect();
    let mut peak = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= 1000 {
            start += 1;
        }
        peak = peak.max(end - start + 1);
    }
    report.line(format!(
        "limit {}/s, 300/s offered: {drain:.1} sends/s while the backlog drained ({:.3} of the limit); most in any one second at the provider {peak}; violations {}, provider 429s {} (whole run)",
        args.limit,
        drain / f64::from(args.limit),
        account.violations,
        account.refused
    ));

    // 3. Latency at 200/s.
    bench.set_limit(Some(1_000)).await?;
    let since = chrono::Utc::now();
    bench
        .offer("latency", args.latency_messages, Some(200), 0)
        .await?;
    bench
        .wait_sent(
            (args.messages + args.limited_messages + args.latency_messages) as i64,
            Duration::from_secs(600),
        )
        .await?;
    let row = bench
        .db
        .query_one(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms)
             FROM (SELECT (extract(epoch FROM a.finished_at - m.created_at) * 1000)::float8 AS ms
                   FROM delivery.messages m JOIN delivery.attempts a ON a.message_id = m.id AND a.outcome = 'accepted'
                   WHERE m.created_at >= $1) latencies",
            &[&since],
        )
        .await?;
    let (p50, p99, max): (f64, f64, f64) = (row.get(0), row.get(1), row.get(2));
    report.line(format!(
        "200 msg/s: enqueue → provider accepted p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms ({} messages)",
        args.latency_messages
    ));
    Ok(())
}

fn channels_file(sim: &str) -> String {
    format!(
        "workspaces:\n  - id: {WORKSPACE}\n    name: Delivery bench\n    channel_accounts:\n      - {{id: {ACCOUNT}, channel: whatsapp, name: WA, external_id: \"{PHONE_NUMBER_ID}\", base_url: \"{sim}\", secrets: {{app_secret: {APP_SECRET}, access_token: {ACCESS_TOKEN}}}}}\n"
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The simulator runs as its own process, so its arrival stamps never wait on this
    // process's load generator.
    let simulator = SimulatorProcess::start(&SimulatorProcess::beside(std::path::Path::new(
        &args.common.binary,
    )))
    .await?;
    let sim = SimulatorClient::new(simulator.base_url());
    let run = until_interrupted(Run::prepare(
        "bench-delivery",
        &args.common.database_server,
        &args.common.amqp_url,
        |_| Vec::new(),
    ))
    .await?;
    let file = std::env::temp_dir().join(format!("bench-delivery-{}.yaml", run.token));
    std::fs::write(&file, channels_file(simulator.base_url()))?;
    let file_path = file.display().to_string();
    let extra = [
        ("SWITCHBOARD_CHANNELS_FILE", file_path.as_str()),
        ("SWITCHBOARD_INTERNAL_TOKEN", INTERNAL_TOKEN),
        ("SWITCHBOARD__DELIVERY__CHECK_ATTACHMENTS", "false"),
    ];
    let launch = Launch {
        binary: &args.common.binary,
        database_url: &run.database_url,
        amqp_url: &args.common.amqp_url,
        namespace: &run.namespace,
        bootstrap_token: BOOTSTRAP_TOKEN,
        extra_env: &extra,
    };
    let mut report = Report::new("bench-delivery");
    let result = until_interrupted(async {
        let mut switchboard = Switchboard::start(&launch, "all")?;
        switchboard
            .wait_ready(&reqwest::Client::new(), Duration::from_secs(60))
            .await?;
        let bench = setup(&args, &run, &switchboard, sim).await?;
        let measured = measure(&args, &run, &bench, &mut report).await;
        // Stop the binary before the run's cleanup, so nothing redeclares its queues.
        switchboard.stop().await;
        measured
    })
    .await;
    let cleaned = run.cleanup(args.common.keep_database).await;
    let _ = std::fs::remove_file(&file);
    simulator.stop().await;
    result?;
    cleaned?;
    println!("== bench-delivery");
    for line in &report.lines {
        println!("{line}");
    }
    Ok(())
}
