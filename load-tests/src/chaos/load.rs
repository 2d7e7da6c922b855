//! Signed WhatsApp webhooks sent the way a provider sends them: each sender's messages one
//! after another (the next only once the previous got its 2xx), anything but a 2xx retried
//! after a pause, spread round robin over the processes that are up, at a bounded total rate.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hdrhistogram::Histogram;

/// The channel account every chaos webhook is for.
pub const ACCOUNT: &str = "chacc_chaos-whatsapp";
/// Its WhatsApp phone number id.
pub const PHONE_NUMBER_ID: &str = "106540352242944";
/// Its app secret (signs the webhooks).
pub const APP_SECRET: &str = "chaos-app-secret";
/// Its workspace.
pub const WORKSPACE: &str = "ws_chaos";

/// The access token of the chaos account at the provider simulator.
pub const ACCESS_TOKEN: &str = "EAAB-chaos-whatsapp-token";

/// The channels file declaring the workspace and account; with `provider` (the simulator's
/// base URL) the account can send too.
pub fn channels_yaml(provider: Option<&str>) -> String {
    let sending = provider.map_or_else(String::new, |base_url| format!(", base_url: \"{base_url}\""));
    format!(
        "workspaces:\n  - id: {WORKSPACE}\n    name: Chaos\n    channel_accounts:\n      - {{id: {ACCOUNT}, channel: whatsapp, name: Chaos, external_id: \"{PHONE_NUMBER_ID}\"{sending}, secrets: {{app_secret: {APP_SECRET}, access_token: {ACCESS_TOKEN}}}}}\n"
    )
}

/// What to send.
#[derive(Debug, Clone)]
pub struct Traffic {
    /// Distinct senders (customers), each sending in order.
    pub senders: usize,
    /// Messages per sender.
    pub per_sender: usize,
    /// Most requests per second, retries included.
    pub rate: u32,
    /// Unique per run, part of every message id.
    pub label: String,
    /// A sender whose message is still not accepted after this long stops (counted).
    pub give_up_after: Duration,
    /// The provider timestamp of every message (Unix seconds; recent, so the reply window of
    /// the conversations is open).
    pub timestamp: i64,
}

impl Traffic {
    /// Webhooks in all.
    pub fn total(&self) -> usize {
        self.senders * self.per_sender
    }

    /// The provider id of `sender`'s message `n`.
    pub fn message_id(&self, sender: usize, n: usize) -> String {
        format!("wamid.{}-{sender}-{n}", self.label)
    }

    /// `(sender, n)` of one of this run's message ids.
    pub fn parse_message_id(&self, id: &str) -> Option<(usize, usize)> {
        let rest = id
            .strip_prefix("wamid.")?
            .strip_prefix(&self.label)?
            .strip_prefix('-')?;
        let (sender, n) = rest.split_once('-')?;
        Some((sender.parse().ok()?, n.parse().ok()?))
    }

    /// `sender`'s WhatsApp id.
    pub fn sender_id(sender: usize) -> String {
        format!("1555{sender:07}")
    }

    /// The body and `X-Hub-Signature-256` of `sender`'s message `n`. Every message carries the
    /// same provider timestamp (whole seconds, as WhatsApp sends them), so a sender's order in
    /// the history is the order its messages arrived in.
    pub fn webhook(&self, sender: usize, n: usize) -> (Vec<u8>, String) {
        let from = Self::sender_id(sender);
        let id = self.message_id(sender, n);
        let timestamp = self.timestamp;
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PHONE_NUMBER_ID}"}},"contacts":[{{"profile":{{"name":"Sender {sender}"}},"wa_id":"{from}"}}],"messages":[{{"from":"{from}","id":"{id}","timestamp":"{timestamp}","type":"text","text":{{"body":"message {n} of sender {sender}"}}}}]}},"field":"messages"}}]}}]}}"#
        );
        let signature = format!(
            "sha256={}",
            switchboard_channels::meta::hmac_sha256_hex(APP_SECRET.as_bytes(), body.as_bytes())
        );
        (body.into_bytes(), signature)
    }
}

/// Where webhooks go: the HTTP base URLs of the processes up now. A scenario changes the list
/// as it kills, stops and starts processes.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    urls: Arc<RwLock<Vec<String>>>,
    next: Arc<AtomicUsize>,
}

impl Targets {
    /// Sets the processes' HTTP base URLs.
    pub fn set(&self, urls: Vec<String>) {
        if let Ok(mut current) = self.urls.write() {
            *current = urls;
        }
    }

    /// Stops sending to `url` (a load balancer taking a process out of rotation).
    pub fn remove(&self, url: &str) {
        if let Ok(mut current) = self.urls.write() {
            current.retain(|candidate| candidate != url);
        }
    }

    /// The next one, round robin (`None` while none is up).
    pub fn pick(&self) -> Option<String> {
        let urls = self.urls.read().ok()?;
        if urls.is_empty() {
            return None;
        }
        let at = self.next.fetch_add(1, Ordering::Relaxed) % urls.len();
        Some(format!("{}/webhooks/whatsapp/{ACCOUNT}", urls[at]))
    }
}

/// What the load saw.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// For each sender, how many of its messages (from the first) were answered 2xx.
    pub accepted_per_sender: Vec<usize>,
    /// Requests sent, retries included.
    pub attempts: u64,
    /// Answers other than 2xx, by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests refused before they went out (no listener).
    pub refused: u64,
    /// Requests that went out and got no answer (reset, closed, timed out).
    pub broken: u64,
    /// Senders that stopped because a message was not accepted within `give_up_after`.
    pub gave_up: u64,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// Latency of accepted requests, microseconds.
    pub latency: Option<Histogram<u64>>,
}

impl LoadReport {
    /// Webhooks answered 2xx.
    pub fn accepted(&self) -> usize {
        self.accepted_per_sender.iter().sum()
    }

    /// Requests per second over the run.
    pub fn rate(&self) -> f64 {
        self.attempts as f64 / self.elapsed.as_secs_f64().max(0.001)
    }

    /// The latency at `quantile`, in milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency.as_ref().map_or(0.0, |histogram| {
            histogram.value_at_quantile(quantile) as f64 / 1000.0
        })
    }

    /// Adds what a concurrent replay of the same traffic saw (a webhook counts as accepted
    /// when every replay had it accepted).
    pub fn merge(&mut self, other: LoadReport) {
        for (mine, theirs) in self
            .accepted_per_sender
            .iter_mut()
            .zip(&other.accepted_per_sender)
        {
            *mine = (*mine).min(*theirs);
        }
        self.attempts += other.attempts;
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.refused += other.refused;
        self.broken += other.broken;
        self.gave_up += other.gave_up;
        self.elapsed = self.elapsed.max(other.elapsed);
        if let (Some(mine), Some(theirs)) = (self.latency.as_mut(), other.latency.as_ref()) {
            let _ = mine.add(theirs);
        }
    }

    /// One line for a report.
    pub fn summary(&self) -> String {
        format!(
            "{} webhooks accepted from {} senders, {} requests at {:.0} req/s (p50 {:.1} ms, p99 {:.1} ms); non-2xx {:?}, refused {}, broken {}, senders that gave up {}",
            self.accepted(),
            self.accepted_per_sender.len(),
            self.attempts,
            self.rate(),
            self.latency_ms(0.5),
            self.latency_ms(0.99),
            self.statuses,
            self.refused,
            self.broken,
            self.gave_up
        )
    }
}

/// Sends `traffic` to `targets` until every message is accepted (or its sender gave up).
pub async fn drive(traffic: &Traffic, targets: &Targets) -> anyhow::Result<LoadReport> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(traffic.senders)
        .timeout(Duration::from_secs(30))
        .build()?;
    let rate = NonZeroU32::new(traffic.rate.max(1)).unwrap_or(NonZeroU32::MIN);
    let limiter: Arc<DefaultDirectRateLimiter> = Arc::new(RateLimiter::direct(Quota::per_second(rate)));
    let report = Arc::new(Mutex::new(LoadReport {
        accepted_per_sender: vec![0; traffic.senders],
        latency: Some(Histogram::new(3)?),
        ..LoadReport::default()
    }));
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..traffic.senders {
        let (client, limiter, report, traffic, targets) = (
            client.clone(),
            limiter.clone(),
            report.clone(),
            traffic.clone(),
            targets.clone(),
        );
        senders.spawn(async move {
            for n in 0..traffic.per_sender {
                let accepted =
                    send_until_accepted(&client, &limiter, &report, &traffic, &targets, sender, n).await;
                let Ok(mut report) = report.lock() else { return };
                if accepted {
                    report.accepted_per_sender[sender] += 1;
                } else {
                    report.gave_up += 1;
                    return;
                }
            }
        });
    }
    while let Some(joined) = senders.join_next().await {
        joined?;
    }
    let mut report = report
        .lock()
        .map_err(|_| anyhow::anyhow!("a sender panicked"))?
        .clone();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Sends one message until it is answered 2xx; false when its sender gives up.
async fn send_until_accepted(
    client: &reqwest::Client,
    limiter: &DefaultDirectRateLimiter,
    report: &Mutex<LoadReport>,
    traffic: &Traffic,
    targets: &Targets,
    sender: usize,
    n: usize,
) -> bool {
    let (body, signature) = traffic.webhook(sender, n);
    let first_try = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        limiter.until_ready().await;
        if let Some(url) = targets.pick() {
            let sent = Instant::now();
            let answer = client
                .post(url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", &signature)
                .body(body.clone())
                .send()
                .await;
            let latency = sent.elapsed();
            let Ok(mut report) = report.lock() else {
                return false;
            };
            report.attempts += 1;
            match answer {
                Ok(response) if response.status().is_success() => {
                    if let Some(histogram) = report.latency.as_mut() {
                        let _ = histogram.record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
                    }
                    return true;
                }
                Ok(response) => *report.statuses.entry(response.status().as_u16()).or_default() += 1,
                Err(error) if error.is_connect() => report.refused += 1,
                Err(_) => report.broken += 1,
            }
        }
        if first_try.elapsed() > traffic.give_up_after {
            return false;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}
