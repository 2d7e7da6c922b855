//! One API Send to every sender, made the way an application makes it: to the sender's
//! conversation once it exists, with an idempotency key, tried again on every failure until
//! accepted; then what delivery stored and what reached the provider simulator.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use switchboard_proto::common::v1::{ContentPart, TextPart, content_part::Part};
use switchboard_proto::delivery::v1 as delivery;

use super::checks::connect;
use super::load::{ACCOUNT, PHONE_NUMBER_ID, Traffic};

/// Sends in flight at once.
const CONCURRENCY: usize = 16;
/// A Send not accepted within this long is given up (counted).
const GIVE_UP_AFTER: Duration = Duration::from_secs(180);

/// What the API answered.
#[derive(Debug, Default)]
pub struct SendsReport {
    /// Sends accepted (one per sender when all went well).
    pub accepted: usize,
    /// Calls made, retries included.
    pub attempts: u64,
    /// Refusals by gRPC code.
    pub refusals: BTreeMap<String, u64>,
    /// Sends given up.
    pub gave_up: usize,
}

impl SendsReport {
    /// One line for a report.
    pub fn summary(&self) -> String {
        format!(
            "{} accepted in {} calls; refusals {:?}; given up {}",
            self.accepted, self.attempts, self.refusals, self.gave_up
        )
    }

    /// Broken promises: a Send never accepted, or refused with anything but "try again".
    pub fn failures(&self, senders: usize) -> Vec<String> {
        let mut failures = Vec::new();
        if self.accepted != senders {
            failures.push(format!("{} of {senders} Sends accepted", self.accepted));
        }
        let wrong: Vec<&String> = self
            .refusals
            .keys()
            .filter(|code| !matches!(code.as_str(), "Unavailable" | "DeadlineExceeded"))
            .collect();
        if !wrong.is_empty() {
            failures.push(format!(
                "Sends refused with other codes than Unavailable while the database was away: {:?}",
                self.refusals
            ));
        }
        failures
    }
}

/// The idempotency key of the Send to `sender`.
fn key(traffic: &Traffic, sender: usize) -> String {
    format!("chaos-send-{}-{sender}", traffic.label)
}

/// Sends one reply to every sender of `traffic` through `grpc` with API key `api_key`.
pub async fn reply_to_every_sender(
    traffic: &Traffic,
    database_url: &str,
    grpc: &str,
    api_key: &str,
) -> anyhow::Result<SendsReport> {
    let channel = tonic::transport::Endpoint::from_shared(grpc.to_owned())?.connect_lazy();
    let outcomes: Vec<(bool, u64, BTreeMap<String, u64>)> = futures_util::stream::iter(0..traffic.senders)
        .map(|sender| {
            let channel = channel.clone();
            async move { send_once(traffic, database_url, channel, api_key, sender).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut report = SendsReport::default();
    for (accepted, attempts, refusals) in outcomes {
        if accepted {
            report.accepted += 1;
        } else {
            report.gave_up += 1;
        }
        report.attempts += attempts;
        for (code, count) in refusals {
            *report.refusals.entry(code).or_default() += count;
        }
    }
    Ok(report)
}

/// Waits for `sender`'s conversation, then Sends until accepted: (accepted, calls, refusals).
async fn send_once(
    traffic: &Traffic,
    database_url: &str,
    channel: tonic::transport::Channel,
    api_key: &str,
    sender: usize,
) -> (bool, u64, BTreeMap<String, u64>) {
    let started = Instant::now();
    let mut refusals: BTreeMap<String, u64> = BTreeMap::new();
    let mut attempts = 0;
    let first = traffic.message_id(sender, 0);
    let conversation = loop {
        if started.elapsed() > GIVE_UP_AFTER {
            return (false, attempts, refusals);
        }
        if let Ok(db) = connect(database_url).await
            && let Ok(Some(row)) = db
                .query_opt(
                    "SELECT conversation_id FROM routing.messages WHERE channel_account_id = $1 AND provider_message_id = $2",
                    &[&ACCOUNT, &first],
                )
                .await
        {
            break row.get::<_, String>(0);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut api = delivery::delivery_service_client::DeliveryServiceClient::new(channel);
    let mut pause = Duration::from_millis(200);
    loop {
        let mut request = tonic::Request::new(delivery::SendRequest {
            recipient: Some(delivery::Recipient {
                target: Some(delivery::recipient::Target::ConversationId(conversation.clone())),
            }),
            content: Some(delivery::OutboundContent {
                parts: vec![ContentPart {
                    part: Some(Part::Text(TextPart {
                        body: format!("thanks, sender {sender}"),
                        subject: String::new(),
                    })),
                }],
                ..delivery::OutboundContent::default()
            }),
            author_kind: delivery::AuthorKind::Api as i32,
            idempotency_key: key(traffic, sender),
            ..delivery::SendRequest::default()
        });
        if let Ok(value) = format!("Bearer {api_key}").parse() {
            request.metadata_mut().insert("authorization", value);
        }
        attempts += 1;
        match api.send(request).await {
            Ok(_) => return (true, attempts, refusals),
            Err(status) => *refusals.entry(format!("{:?}", status.code())).or_default() += 1,
        }
        if started.elapsed() > GIVE_UP_AFTER {
            return (false, attempts, refusals);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// What delivery stored for the Sends and what reached the provider.
#[derive(Debug, Default)]
pub struct Delivered {
    /// Messages stored with a chaos Send's idempotency key, by status.
    pub by_status: BTreeMap<String, i64>,
    /// Provider calls the simulator accepted, per recipient.
    pub accepted_calls: BTreeMap<String, usize>,
}

impl Delivered {
    /// One line for a report.
    pub fn summary(&self) -> String {
        format!(
            "stored by status {:?}; provider calls accepted {} for {} recipients",
            self.by_status,
            self.accepted_calls.values().sum::<usize>(),
            self.accepted_calls.len()
        )
    }

    /// Broken promises: a Send stored twice or never sent, or sent twice.
    pub fn failures(&self, senders: usize) -> Vec<String> {
        let mut failures = Vec::new();
        let stored: i64 = self.by_status.values().sum();
        if usize::try_from(stored).ok() != Some(senders) {
            failures.push(format!("{stored} messages stored for {senders} Sends"));
        }
        if self
            .by_status
            .keys()
            .any(|status| !matches!(status.as_str(), "sent" | "delivered" | "read"))
        {
            failures.push(format!("Sends not sent: {:?}", self.by_status));
        }
        let twice: Vec<&String> = self
            .accepted_calls
            .iter()
            .filter(|(_, calls)| **calls > 1)
            .map(|(recipient, _)| recipient)
            .collect();
        if self.accepted_calls.len() != senders || !twice.is_empty() {
            failures.push(format!(
                "{} recipients reached, {} of them more than once",
                self.accepted_calls.len(),
                twice.len()
            ));
        }
        failures
    }
}

/// Waits until every Send is sent (or two minutes pass), then reads what was stored and what
/// the simulator accepted.
pub async fn settle_sends(
    database_url: &str,
    sim: &switchboard_provider_sim::SimulatorClient,
    senders: usize,
) -> anyhow::Result<Delivered> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut delivered = Delivered::default();
    loop {
        let db = connect(database_url).await?;
        delivered.by_status = db
            .query(
                "SELECT status, count(*) FROM delivery.messages WHERE idempotency_key LIKE 'chaos-send-%' GROUP BY status",
                &[],
            )
            .await?
            .iter()
            .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1)))
            .collect();
        let done: i64 = delivered
            .by_status
            .iter()
            .filter(|(status, _)| matches!(status.as_str(), "sent" | "delivered" | "read" | "failed"))
            .map(|(_, count)| count)
            .sum();
        if usize::try_from(done).ok() == Some(senders) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let calls = sim
        .calls(&switchboard_provider_sim::CallsQuery {
            provider: Some(switchboard_provider_sim::Provider::Whatsapp),
            account: Some(PHONE_NUMBER_ID.to_owned()),
            since: None,
        })
        .await
        .map_err(|error| anyhow::anyhow!("read the simulator's calls: {error}"))?;
    for call in calls {
        if call.outcome == switchboard_provider_sim::CallOutcome::Accepted {
            *delivered
                .accepted_calls
                .entry(call.recipient.unwrap_or_default())
                .or_default() += 1;
        }
    }
    Ok(delivered)
}
