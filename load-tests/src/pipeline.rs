//! Parts of `bench-pipeline`: [`Arrivals`] (when each inbound message reached a point of the
//! path) and the round trip's stand-in [`Agent`], which watches routing's `WatchEvents` stream
//! like an agent tool, answers every inbound message with a `Send` to its conversation, and
//! notes when that reply's status reaches `read` in the history: the provider simulator
//! accepted it and posted its signed receipts back through ingress, delivery and routing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use switchboard_proto::common::v1::{ContentPart, TextPart, content_part::Part};
use switchboard_proto::delivery::v1 as delivery;
use switchboard_proto::routing::v1 as routing;
use tokio::sync::Semaphore;

/// Per inbound message id (routing's), when it reached the point measured.
#[derive(Default)]
pub struct Arrivals {
    /// Arrival per inbound message id.
    pub at: Mutex<HashMap<String, Instant>>,
    count: AtomicUsize,
}

impl Arrivals {
    /// Notes that inbound message `id` arrived at `at`.
    pub fn record(&self, id: String, at: Instant) {
        if let Ok(mut arrivals) = self.at.lock()
            && arrivals.insert(id, at).is_none()
        {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets what arrived so far (between phases).
    pub fn reset(&self) {
        if let Ok(mut at) = self.at.lock() {
            at.clear();
        }
        self.count.store(0, Ordering::Relaxed);
    }

    /// Waits until `expected` messages arrived (or `timeout` passes); returns the last arrival.
    pub async fn wait_for(&self, expected: usize, timeout: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        while self.count.load(Ordering::Relaxed) < expected {
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {} of {expected} messages arrived within {timeout:?}",
                self.count.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let at = self.at.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        at.values().max().copied().context("no arrival")
    }
}

/// The round trip's stand-in agent.
pub struct Agent {
    /// Answers inbound messages while set.
    replying: AtomicBool,
    /// Per inbound message id (routing's), when its reply was read.
    pub reads: Arc<Arrivals>,
    /// Replies sent: outbound message id → the inbound message id it answers.
    sent: Mutex<HashMap<String, String>>,
    /// Reads seen before their Send's answer: outbound message id → when.
    early: Mutex<HashMap<String, Instant>>,
    /// Sends refused for good.
    failed: AtomicU64,
    /// Sends accepted, and the microseconds they took together (call → answer).
    accepted: AtomicU64,
    accepted_micros: AtomicU64,
    sends: Semaphore,
    delivery: delivery::delivery_service_client::DeliveryServiceClient<tonic::transport::Channel>,
    api_key: String,
}

impl Agent {
    /// Starts watching through `routing_grpc` and sending through `delivery_grpc` (at most
    /// `sends_in_flight` Sends at once) with `api_key`; returns once the stream is open. Not
    /// replying until [`Agent::reply`].
    pub async fn start(
        routing_grpc: &str,
        delivery_grpc: &str,
        api_key: &str,
        sends_in_flight: usize,
    ) -> anyhow::Result<Arc<Self>> {
        let delivery_channel =
            tonic::transport::Endpoint::from_shared(delivery_grpc.to_owned())?.connect_lazy();
        let agent = Arc::new(Self {
            replying: AtomicBool::new(false),
            reads: Arc::new(Arrivals::default()),
            sent: Mutex::new(HashMap::new()),
            early: Mutex::new(HashMap::new()),
            failed: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            accepted_micros: AtomicU64::new(0),
            sends: Semaphore::new(sends_in_flight),
            delivery: delivery::delivery_service_client::DeliveryServiceClient::new(delivery_channel),
            api_key: api_key.to_owned(),
        });
        let channel = tonic::transport::Endpoint::from_shared(routing_grpc.to_owned())?
            .connect()
            .await?;
        let mut watch = routing::routing_service_client::RoutingServiceClient::new(channel);
        let stream = watch
            .watch_events(agent.authorized(routing::WatchEventsRequest::default()))
            .await
            .context("WatchEvents")?
            .into_inner();
        tokio::spawn(agent.clone().watch(stream));
        Ok(agent)
    }

    /// Starts or stops answering inbound messages.
    pub fn reply(&self, on: bool) {
        self.replying.store(on, Ordering::Relaxed);
    }

    /// Sends refused for good so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// The mean time (ms) of an accepted Send so far, from the call to its answer.
    pub fn mean_send_ms(&self) -> f64 {
        let accepted = self.accepted.load(Ordering::Relaxed);
        if accepted == 0 {
            return 0.0;
        }
        self.accepted_micros.load(Ordering::Relaxed) as f64 / accepted as f64 / 1000.0
    }

    fn authorized<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(value) = format!("Bearer {}", self.api_key).parse() {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    /// Handles the workspace's events until the stream ends.
    async fn watch(self: Arc<Self>, mut stream: tonic::Streaming<routing::ConversationEvent>) {
        while let Some(Ok(event)) = stream.next().await {
            let at = Instant::now();
            let payload: serde_json::Value = serde_json::from_str(&event.payload_json).unwrap_or_default();
            let Some(message_id) = payload["message_id"].as_str().map(str::to_owned) else {
                continue;
            };
            match event.event_type.as_str() {
                "message.added"
                    if payload["direction"] == "inbound" && self.replying.load(Ordering::Relaxed) =>
                {
                    tokio::spawn(self.clone().answer(event.conversation_id, message_id));
                }
                "message.status_changed" if payload["status"] == "read" => {
                    let inbound = self
                        .sent
                        .lock()
                        .ok()
                        .and_then(|mut sent| sent.remove(&message_id));
                    match inbound {
                        Some(inbound) => self.reads.record(inbound, at),
                        None => {
                            if let Ok(mut early) = self.early.lock() {
                                early.insert(message_id, at);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        eprintln!("bench-pipeline: the agent's WatchEvents stream ended (its routing process stopped)");
    }

    /// Sends a reply to `inbound` in `conversation`, tried again until accepted (a few times).
    async fn answer(self: Arc<Self>, conversation: String, inbound: String) {
        let Ok(_permit) = self.sends.acquire().await else {
            return;
        };
        let mut client = self.delivery.clone();
        for attempt in 0..5u32 {
            let request = self.authorized(delivery::SendRequest {
                recipient: Some(delivery::Recipient {
                    target: Some(delivery::recipient::Target::ConversationId(conversation.clone())),
                }),
                content: Some(delivery::OutboundContent {
                    parts: vec![ContentPart {
                        part: Some(Part::Text(TextPart {
                            body: "Thanks, we are on it.".to_owned(),
                            subject: String::new(),
                        })),
                    }],
                    ..delivery::OutboundContent::default()
                }),
                author_kind: delivery::AuthorKind::Api as i32,
                idempotency_key: format!("round-trip-{inbound}"),
                ..delivery::SendRequest::default()
            });
            let called = Instant::now();
            match client.send(request).await {
                Ok(response) => {
                    let micros = u64::try_from(called.elapsed().as_micros()).unwrap_or(u64::MAX);
                    self.accepted.fetch_add(1, Ordering::Relaxed);
                    self.accepted_micros.fetch_add(micros, Ordering::Relaxed);
                    let Some(message) = response.into_inner().message else {
                        break;
                    };
                    let early = self
                        .early
                        .lock()
                        .ok()
                        .and_then(|mut early| early.remove(&message.id));
                    match early {
                        Some(at) => self.reads.record(inbound, at),
                        None => {
                            if let Ok(mut sent) = self.sent.lock() {
                                sent.insert(message.id, inbound);
                            }
                        }
                    }
                    return;
                }
                Err(status) => {
                    if attempt == 0 && self.failed.load(Ordering::Relaxed) == 0 {
                        eprintln!("bench-pipeline: a Send was refused: {status}");
                    }
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
}
