//! Outbound delivery through the real binary and the provider simulator over HTTP: refusals
//! make no provider call, retries, idempotent sends, receipts in any order (and before the
//! send's answer) end in `read`, Telegram's per-chat limit and delete window, and the account
//! rate limit held across two delivery replicas.

use std::time::Duration;

use chrono::Utc;
use switchboard_e2e::authorized;
use switchboard_e2e::webhooks::{EMAIL, TELEGRAM, WHATSAPP, WebhookSwitchboard, whatsapp_message};
use switchboard_proto::common::v1::{ContentPart, DeliveryStatus, MediaPart, TextPart, content_part::Part};
use switchboard_proto::contacts::v1 as contacts;
use switchboard_proto::contacts::v1::contacts_service_client::ContactsServiceClient;
use switchboard_proto::delivery::v1 as delivery;
use switchboard_proto::delivery::v1::delivery_service_client::DeliveryServiceClient;
use switchboard_proto::tenancy::v1 as tenancy;
use switchboard_proto::tenancy::v1::channel_account_service_client::ChannelAccountServiceClient;
use switchboard_provider_sim::{
    AccountConfig, CallsQuery, Fault, FaultKind, Limits, Provider, ReceiptStatus, RunningSimulator,
    Simulator, SimulatorClient, SmtpFault, SmtpFaultKind,
};
use tonic::Code;
use tonic_types::StatusExt as _;

const WORKSPACE: &str = "ws_e2e-hooks";
const WHATSAPP_TOKEN: &str = "EAAB-e2e-whatsapp-token";
const TELEGRAM_TOKEN: &str = "7000000001:AAE2e-telegram-token";

/// Where the simulator runs: in the test process, or as its own `provider-sim` process (so
/// its arrival times are not delayed by the test's own load generator).
enum SimulatorHost {
    /// Kept alive for the test (the simulator stops when dropped).
    InProcess(#[allow(dead_code)] RunningSimulator),
    Process(std::process::Child),
}

impl Drop for SimulatorHost {
    fn drop(&mut self) {
        if let SimulatorHost::Process(child) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the `provider-sim` binary (built next to `switchboard`) on a free port.
async fn simulator_process() -> (SimulatorHost, String) {
    let binary = switchboard_e2e::binary_path().with_file_name("provider-sim");
    assert!(
        binary.exists(),
        "{} not found: run `make build` (it builds provider-sim too)",
        binary.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(binary)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("provider-sim starts");
    let base = format!("http://127.0.0.1:{port}");
    let host = SimulatorHost::Process(child);
    switchboard_testkit::eventually(Duration::from_secs(20), "provider-sim to answer", || async {
        reqwest::get(format!("{base}/_sim/health"))
            .await
            .ok()
            .filter(|response| response.status().is_success())
    })
    .await;
    (host, base)
}

/// Switchboard, the simulator, and keys.
struct Rig {
    hooks: WebhookSwitchboard,
    _simulator: SimulatorHost,
    sim: SimulatorClient,
    admin: String,
    db: tokio_postgres::Client,
}

impl Rig {
    async fn start(extra_env: &[(&str, &str)]) -> Self {
        let simulator = Simulator::start("127.0.0.1:0").await.expect("simulator starts");
        let base = simulator.base_url().to_owned();
        Self::start_with(SimulatorHost::InProcess(simulator), &base, extra_env).await
    }

    async fn start_with(simulator: SimulatorHost, base: &str, extra_env: &[(&str, &str)]) -> Self {
        let sim = SimulatorClient::new(base);
        let mut env = vec![
            ("SWITCHBOARD__DELIVERY__RETRY_INITIAL_BACKOFF", "200ms"),
            ("SWITCHBOARD__DELIVERY__SCHEDULER_INTERVAL", "50ms"),
        ];
        env.extend_from_slice(extra_env);
        let hooks = WebhookSwitchboard::start_targets("all", &env).await;
        let admin = crate::contacts::key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceAdmin).await;
        let db = hooks.database.connect().await;
        let rig = Self {
            hooks,
            _simulator: simulator,
            sim,
            admin,
            db,
        };
        rig.point_account(WHATSAPP.0, &[("access_token", WHATSAPP_TOKEN)], &[])
            .await;
        rig.point_account(TELEGRAM.0, &[("bot_token", TELEGRAM_TOKEN)], &[])
            .await;
        rig.whatsapp_account(AccountConfig::new(WHATSAPP_TOKEN)).await;
        rig.sim
            .configure_account(
                Provider::Telegram,
                TELEGRAM.2,
                &AccountConfig::new(TELEGRAM_TOKEN),
            )
            .await
            .expect("telegram account");
        rig
    }

    /// Points a channel account at the simulator with send secrets and settings.
    async fn point_account(&self, id: &str, secrets: &[(&str, &str)], settings: &[(&str, &str)]) {
        let mut accounts = ChannelAccountServiceClient::new(self.hooks.switchboard.channel().await);
        accounts
            .update_channel_account(authorized(
                tenancy::UpdateChannelAccountRequest {
                    id: id.to_owned(),
                    update: Some(tenancy::ChannelAccountUpdate {
                        base_url: self.sim.base_url().to_owned(),
                        secrets: secrets
                            .iter()
                            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                            .collect(),
                        settings: settings
                            .iter()
                            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                            .collect(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: if settings.is_empty() {
                            vec!["base_url".to_owned(), "secrets".to_owned()]
                        } else {
                            vec!["base_url".to_owned(), "secrets".to_owned(), "settings".to_owned()]
                        },
                    }),
                },
                &self.admin,
            ))
            .await
            .expect("account updated");
    }

    /// (Re)configures the simulated WhatsApp number; its receipts go to ingress, signed.
    async fn whatsapp_account(&self, mut config: AccountConfig) {
        config.credential = WHATSAPP_TOKEN.to_owned();
        config.webhook_url = Some(self.hooks.url("whatsapp", WHATSAPP.0));
        config.webhook_secret = Some(WHATSAPP.1.to_owned());
        self.sim
            .configure_account(Provider::Whatsapp, WHATSAPP.2, &config)
            .await
            .expect("whatsapp account");
    }

    async fn whatsapp_calls(&self) -> usize {
        self.sim
            .calls(&CallsQuery {
                provider: Some(Provider::Whatsapp),
                ..Default::default()
            })
            .await
            .expect("calls")
            .len()
    }

    fn api(&self) -> DeliveryServiceClient<tonic::transport::Channel> {
        DeliveryServiceClient::new(self.grpc_channel())
    }

    fn grpc_channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.hooks.switchboard.grpc.clone())
            .expect("endpoint")
            .connect_lazy()
    }

    /// A WhatsApp customer writes `hours_ago`; returns (contact id, conversation id).
    async fn whatsapp_customer(&self, sender: &str, hours_ago: i64) -> (String, String) {
        let at = (Utc::now() - chrono::Duration::hours(hours_ago))
            .timestamp()
            .to_string();
        let id = format!("wamid.in-{sender}-{hours_ago}");
        let body = whatsapp_message(
            &id,
            sender,
            serde_json::json!({"timestamp": at, "type": "text", "text": {"body": "hello"}}),
        );
        assert_eq!(self.hooks.post_whatsapp(&body, None).await.status(), 200);
        self.conversation_of(&id).await
    }

    /// A Telegram user writes in a private chat; returns (contact id, conversation id).
    async fn telegram_customer(&self, user: i64) -> (String, String) {
        let body = serde_json::json!({
            "update_id": user % 1_000_000 + 100,
            "message": {"message_id": 1, "from": {"id": user, "is_bot": false, "first_name": "Ana"},
                        "chat": {"id": user, "type": "private"}, "date": Utc::now().timestamp(), "text": "oi"}
        });
        let response = self
            .hooks
            .http
            .post(self.hooks.url("telegram", TELEGRAM.0))
            .header("x-telegram-bot-api-secret-token", TELEGRAM.1)
            .json(&body)
            .send()
            .await
            .expect("telegram webhook");
        assert_eq!(response.status(), 200);
        self.conversation_of(&format!("{user}:1")).await
    }

    async fn conversation_of(&self, provider_message_id: &str) -> (String, String) {
        let found = tokio::time::timeout(
            Duration::from_secs(60),
            self.stored_conversation(provider_message_id),
        )
        .await;
        match found {
            Ok(found) => found,
            Err(_) => {
                let logs = self.hooks.switchboard.logs();
                let noteworthy: Vec<&String> = logs
                    .iter()
                    .filter(|line| line.contains("WARN") || line.contains("ERROR"))
                    .collect();
                panic!("routing did not store {provider_message_id}; warnings and errors: {noteworthy:#?}");
            }
        }
    }

    async fn stored_conversation(&self, provider_message_id: &str) -> (String, String) {
        switchboard_testkit::eventually(Duration::from_secs(120), "routing to store the inbound message", || async {
            let row = self
                .db
                .query_opt(
                    "SELECT c.contact_id, c.id FROM routing.messages m JOIN routing.conversations c ON c.id = m.conversation_id
                     WHERE m.provider_message_id = $1",
                    &[&provider_message_id],
                )
                .await
                .unwrap();
            row.map(|row| (row.get(0), row.get(1)))
        })
        .await
    }

    async fn message(&self, id: &str) -> delivery::Message {
        self.api()
            .get_message(authorized(
                delivery::GetMessageRequest { id: id.to_owned() },
                &self.admin,
            ))
            .await
            .expect("get message")
            .into_inner()
            .message
            .expect("message")
    }

    /// Waits until message `id` reaches `status`.
    async fn wait_status(&self, id: &str, status: DeliveryStatus) -> delivery::Message {
        switchboard_testkit::eventually(
            Duration::from_secs(30),
            "the message to reach its status",
            || async {
                let message = self.message(id).await;
                (message.status == status as i32).then_some(message)
            },
        )
        .await
    }
}

fn text(body: &str) -> delivery::OutboundContent {
    delivery::OutboundContent {
        parts: vec![ContentPart {
            part: Some(Part::Text(TextPart {
                body: body.to_owned(),
                subject: String::new(),
            })),
        }],
        ..Default::default()
    }
}

fn to_conversation(id: &str) -> delivery::Recipient {
    delivery::Recipient {
        target: Some(delivery::recipient::Target::ConversationId(id.to_owned())),
    }
}

fn send(
    conversation: &str,
    content: delivery::OutboundContent,
    author: delivery::AuthorKind,
) -> delivery::SendRequest {
    delivery::SendRequest {
        recipient: Some(to_conversation(conversation)),
        content: Some(content),
        author_kind: author as i32,
        author_id: "agent_e2e".to_owned(),
        ..Default::default()
    }
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_refusal_has_its_reason_and_makes_no_provider_call() {
    let rig = Rig::start(&[]).await;
    let (contact, open) = rig.whatsapp_customer("16505550101", 1).await;
    let (_, stale) = rig.whatsapp_customer("16505550102", 25).await;
    let mut api = rig.api();
    let refuser = rig.api();
    let refuse = |request: delivery::SendRequest| {
        let mut api = refuser.clone();
        let admin = rig.admin.clone();
        async move { api.send(authorized(request, &admin)).await.expect_err("refused") }
    };

    // Outside the 24-hour window: free text refused (templates allowed, says CanSend).
    let closed = refuse(send(&stale, text("hi"), delivery::AuthorKind::Agent)).await;
    assert_eq!(
        (closed.code(), reason(&closed).as_str()),
        (Code::FailedPrecondition, "WINDOW_CLOSED")
    );
    let can = api
        .can_send(authorized(
            delivery::CanSendRequest {
                recipient: Some(to_conversation(&stale)),
                author_kind: delivery::AuthorKind::Agent as i32,
            },
            &rig.admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(can.has_window && !can.window_open && !can.free_text_allowed && can.template_allowed);
    assert_eq!(can.refusals[0].reason, "WINDOW_CLOSED");

    // Agent text over the workspace cap (512), a template with the wrong parameter count,
    // an executable attachment.
    let long = refuse(send(&open, text(&"x".repeat(513)), delivery::AuthorKind::Agent)).await;
    assert_eq!(
        (long.code(), reason(&long).as_str()),
        (Code::InvalidArgument, "TEXT_TOO_LONG")
    );
    let template = delivery::OutboundContent {
        template: Some(delivery::Template {
            name: "order_shipped".to_owned(),
            language: "en_US".to_owned(),
            body_parameters: vec!["Ana".to_owned()],
            declared_body_parameters: 2,
            ..Default::default()
        }),
        ..Default::default()
    };
    let params = refuse(send(&stale, template, delivery::AuthorKind::Api)).await;
    assert_eq!(reason(&params), "TEMPLATE_PARAMETERS");
    let exe = delivery::OutboundContent {
        parts: vec![ContentPart {
            part: Some(Part::Media(MediaPart {
                url: "https://cdn.example.com/invoice.pdf.exe".to_owned(),
                ..Default::default()
            })),
        }],
        ..Default::default()
    };
    let executable = refuse(send(&open, exe, delivery::AuthorKind::Agent)).await;
    assert_eq!(reason(&executable), "EXECUTABLE_ATTACHMENT");

    // A bot send under a controller version routing does not hold (the conversation is human).
    let mut bot = send(&open, text("beep"), delivery::AuthorKind::Bot);
    bot.controller_version = 7;
    let fenced = refuse(bot).await;
    assert_eq!(
        (fenced.code(), reason(&fenced).as_str()),
        (Code::FailedPrecondition, "CONTROLLER_CHANGED")
    );

    // A blocked contact gets nothing.
    let mut contacts_api = ContactsServiceClient::new(rig.grpc_channel());
    contacts_api
        .block_contact(authorized(
            contacts::BlockContactRequest {
                contact_id: contact.clone(),
            },
            &rig.admin,
        ))
        .await
        .unwrap();
    let blocked = refuse(send(&open, text("hi"), delivery::AuthorKind::Agent)).await;
    assert_eq!(reason(&blocked), "CONTACT_BLOCKED");

    // Another workspace's conversation does not exist for this caller.
    let missing = refuse(send("conv_nope", text("hi"), delivery::AuthorKind::Agent)).await;
    assert_eq!(missing.code(), Code::NotFound);

    assert_eq!(rig.whatsapp_calls().await, 0, "no refusal reaches the provider");
    let stored: i64 = rig
        .db
        .query_one("SELECT count(*) FROM delivery.messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "nothing refused is stored");
}

#[tokio::test]
async fn two_failures_then_success_is_one_delivered_message_with_three_attempts() {
    let rig = Rig::start(&[]).await;
    let (_, conversation) = rig.whatsapp_customer("16505550201", 1).await;
    rig.whatsapp_account(AccountConfig {
        faults: vec![Fault::new(FaultKind::Status { status: 503 }, 2)],
        receipts: vec![ReceiptStatus::Sent, ReceiptStatus::Delivered],
        ..AccountConfig::default()
    })
    .await;
    let sent = rig
        .api()
        .send(authorized(
            send(
                &conversation,
                text("your order shipped"),
                delivery::AuthorKind::Agent,
            ),
            &rig.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert_eq!(sent.status, DeliveryStatus::Queued as i32, "Send returns at once");
    let message = rig.wait_status(&sent.id, DeliveryStatus::Delivered).await;
    let outcomes: Vec<&str> = message
        .attempts
        .iter()
        .map(|attempt| attempt.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["retryable", "retryable", "accepted"]);
    assert_eq!(message.attempts[0].provider_status, 503);
    assert!(message.provider_message_id.starts_with("wamid."));
    assert_eq!(rig.whatsapp_calls().await, 3);
    let history: Vec<i32> = message.history.iter().map(|change| change.status).collect();
    assert_eq!(
        history,
        [
            DeliveryStatus::Queued as i32,
            DeliveryStatus::Sent as i32,
            DeliveryStatus::Delivered as i32
        ]
    );
}

#[tokio::test]
async fn five_concurrent_sends_with_one_key_make_one_provider_call() {
    let rig = Rig::start(&[]).await;
    let (_, conversation) = rig.whatsapp_customer("16505550301", 1).await;
    let mut request = send(&conversation, text("once"), delivery::AuthorKind::Api);
    request.idempotency_key = "order-42-shipped".to_owned();
    let calls = (0..5).map(|_| {
        let mut api = rig.api();
        let request = authorized(request.clone(), &rig.admin);
        async move { api.send(request).await.map(|response| response.into_inner()) }
    });
    let results = futures_util::future::join_all(calls).await;
    let ids: std::collections::BTreeSet<String> = results
        .iter()
        .map(|result| {
            result
                .as_ref()
                .expect("accepted")
                .message
                .as_ref()
                .unwrap()
                .id
                .clone()
        })
        .collect();
    assert_eq!(ids.len(), 1, "every call returns the same message");
    assert_eq!(
        results
            .iter()
            .filter(|result| !result.as_ref().unwrap().replayed)
            .count(),
        1
    );
    let id = ids.into_iter().next().unwrap();
    rig.wait_status(&id, DeliveryStatus::Sent).await;
    let mut other = request.clone();
    other.content = Some(text("something else"));
    let reused = rig.api().send(authorized(other, &rig.admin)).await.unwrap_err();
    assert_eq!(
        (reused.code(), reason(&reused).as_str()),
        (Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rig.whatsapp_calls().await, 1, "one provider call");
}

#[tokio::test]
async fn receipts_in_every_order_and_before_the_send_answer_end_in_read() {
    let rig = Rig::start(&[]).await;
    let (_, conversation) = rig.whatsapp_customer("16505550401", 1).await;
    use ReceiptStatus::{Delivered, Read, Sent};
    let orders = [
        [Sent, Delivered, Read],
        [Sent, Read, Delivered],
        [Delivered, Sent, Read],
        [Delivered, Read, Sent],
        [Read, Sent, Delivered],
        [Read, Delivered, Sent],
    ];
    let mut ids = Vec::new();
    for (index, order) in orders.iter().enumerate() {
        for before_response in [false, true] {
            rig.whatsapp_account(AccountConfig {
                receipts: order.to_vec(),
                receipts_before_response: before_response,
                ..AccountConfig::default()
            })
            .await;
            let message = rig
                .api()
                .send(authorized(
                    send(
                        &conversation,
                        text(&format!("order {index} {before_response}")),
                        delivery::AuthorKind::Agent,
                    ),
                    &rig.admin,
                ))
                .await
                .unwrap()
                .into_inner()
                .message
                .unwrap();
            // One send at a time, so each uses the receipt order configured for it.
            rig.wait_status(&message.id, DeliveryStatus::Read).await;
            ids.push(message.id);
        }
    }
    for id in &ids {
        let message = rig.message(id).await;
        assert_eq!(message.status, DeliveryStatus::Read as i32, "{id} ends read");
        let ranks: Vec<i32> = message.history.iter().map(|change| change.status).collect();
        assert!(
            ranks.windows(2).all(|pair| pair[0] < pair[1]),
            "{id} never went backwards: {ranks:?}"
        );
    }
    let parked: i64 = rig
        .db
        .query_one("SELECT count(*) FROM delivery.parked_receipts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        parked, 0,
        "receipts that beat the answer were applied when it came"
    );
}

#[tokio::test]
async fn telegram_holds_one_message_per_second_per_chat_and_deletes_only_within_48_hours() {
    let rig = Rig::start(&[]).await;
    let (_, conversation) = rig.telegram_customer(123_456_001).await;
    let mut ids = Vec::new();
    for index in 0..4 {
        let message = rig
            .api()
            .send(authorized(
                send(
                    &conversation,
                    text(&format!("part {index}")),
                    delivery::AuthorKind::Api,
                ),
                &rig.admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .message
            .unwrap();
        ids.push(message.id);
    }
    for id in &ids {
        rig.wait_status(id, DeliveryStatus::Sent).await;
    }
    let calls = rig
        .sim
        .calls(&CallsQuery {
            provider: Some(Provider::Telegram),
            ..Default::default()
        })
        .await
        .unwrap();
    let sends: Vec<u64> = calls
        .iter()
        .filter(|call| call.method == "sendMessage")
        .map(|call| call.time_ms)
        .collect();
    assert_eq!(sends.len(), 4);
    assert!(
        sends.windows(2).all(|pair| pair[1] - pair[0] >= 950),
        "one per second per chat: {sends:?}"
    );
    let bodies: Vec<String> = calls
        .iter()
        .filter(|call| call.method == "sendMessage")
        .map(|call| call.body["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(bodies, ["part 0", "part 1", "part 2", "part 3"], "in order");
    let stats = rig.sim.stats().await.unwrap();
    assert!(stats.accounts.iter().all(|account| account.violations == 0));

    // Deleted within 48 hours (a provider call); refused locally after that (none).
    let deleted = rig
        .api()
        .delete(authorized(
            delivery::DeleteRequest { id: ids[0].clone() },
            &rig.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    assert!(deleted.deleted_at.is_some());
    rig.db
        .execute(
            "UPDATE delivery.messages SET sent_at = now() - interval '49 hours' WHERE id = $1",
            &[&ids[1]],
        )
        .await
        .unwrap();
    let late = rig
        .api()
        .delete(authorized(
            delivery::DeleteRequest { id: ids[1].clone() },
            &rig.admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&late), "DELETE_WINDOW_PASSED");
    let deletes = rig
        .sim
        .calls(&CallsQuery {
            provider: Some(Provider::Telegram),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|call| call.method == "deleteMessage")
        .count();
    assert_eq!(deletes, 1);
}

// The simulator stamps arrivals: it gets its own worker threads, apart from the load generator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_delivery_replicas_hold_an_80_per_second_account_limit_under_300_offered() {
    // A job lost with a broker hiccup is queued again after 20 s (the last of 900 messages
    // waits about 12 s in the lane).
    let (simulator, base) = simulator_process().await;
    let rig = Rig::start_with(
        simulator,
        &base,
        &[("SWITCHBOARD__DELIVERY__REQUEUE_AFTER", "20s")],
    )
    .await;
    rig.point_account(
        WHATSAPP.0,
        &[("access_token", WHATSAPP_TOKEN)],
        &[("rate_limit_per_second", "80")],
    )
    .await;
    rig.whatsapp_account(AccountConfig {
        limits: Limits {
            per_second: Some(80),
            ..Limits::default()
        },
        ..AccountConfig::default()
    })
    .await;
    let second = rig.hooks.start_component("delivery").await;
    let mut conversations = Vec::new();
    for index in 0..30 {
        conversations.push(rig.whatsapp_customer(&format!("165055506{index:02}"), 1).await.1);
    }
    // 300 sends per second for 3 seconds.
    let total = 900;
    let started = tokio::time::Instant::now();
    let mut pending = Vec::new();
    for index in 0..total {
        let due = started + Duration::from_micros(index as u64 * 1_000_000 / 300);
        tokio::time::sleep_until(due).await;
        let mut api = rig.api();
        let request = authorized(
            send(
                &conversations[index % conversations.len()],
                text(&format!("n{index}")),
                delivery::AuthorKind::Api,
            ),
            &rig.admin,
        );
        pending.push(tokio::spawn(async move { api.send(request).await.map(|_| ()) }));
    }
    for task in pending {
        task.await.unwrap().expect("accepted");
    }
    // Sends made while the 300/s were still being accepted share the two cores with them.
    let sent_while_offering = rig
        .sim
        .calls(&CallsQuery {
            provider: Some(Provider::Whatsapp),
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    let drained = tokio::time::timeout(
        Duration::from_secs(60),
        switchboard_testkit::eventually(Duration::from_secs(120), "every message to be sent", || async {
            let sent: i64 = rig
                .db
                .query_one(
                    "SELECT count(*) FROM delivery.messages WHERE status = 'sent'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            (sent == total as i64).then_some(())
        }),
    )
    .await;
    if drained.is_err() {
        let rows = rig
            .db
            .query(
                "SELECT status, outcome_unknown, attempts, count(*) FROM delivery.messages GROUP BY 1, 2, 3",
                &[],
            )
            .await
            .unwrap();
        let counts: Vec<(String, bool, i32, i64)> = rows
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect();
        let logs = rig.hooks.switchboard.logs();
        let noteworthy: Vec<&String> = logs
            .iter()
            .filter(|line| line.contains("WARN") || line.contains("ERROR"))
            .take(20)
            .collect();
        panic!(
            "not every message was sent: {counts:?}; sim: {:?}; logs: {noteworthy:#?}",
            rig.sim.stats().await.unwrap().accounts
        );
    }
    let stats = rig.sim.stats().await.unwrap();
    let account = stats
        .accounts
        .iter()
        .find(|account| account.account == WHATSAPP.2)
        .expect("whatsapp stats");
    if account.refused > 0 {
        let calls = rig.sim.calls(&CallsQuery::default()).await.unwrap();
        if let Some(refused) = calls.iter().find(|call| call.status != Some(200)) {
            let around: Vec<(u64, Option<u16>, String)> = calls
                .iter()
                .filter(|call| call.time_ms + 1200 >= refused.time_ms && call.time_ms <= refused.time_ms + 50)
                .map(|call| {
                    (
                        call.time_ms,
                        call.status,
                        call.body["text"]["body"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            eprintln!(
                "refused at {} ms; the calls of the 1.2 s before: {around:?}",
                refused.time_ms
            );
        }
    }
    assert_eq!(account.refused, 0, "zero 429s: {account:?}");
    assert_eq!(account.violations, 0, "no second above the limit");
    assert!(account.max_accepted_in_one_second <= 80);
    let calls = rig
        .sim
        .calls(&CallsQuery {
            provider: Some(Provider::Whatsapp),
            ..Default::default()
        })
        .await
        .unwrap();
    // Utilisation while a backlog waits: from the end of the offered load (before it, the
    // test's 300 Send calls per second compete for the same two cores) until the last 10%.
    let rate_between = |from: usize, to: usize| {
        (to - from) as f64 / ((calls[to].time_ms - calls[from].time_ms) as f64 / 1000.0)
    };
    let rate = rate_between(sent_while_offering.max(calls.len() / 10), calls.len() * 9 / 10);
    let overall = rate_between(0, calls.len() - 1);
    let utilisation = rate / 80.0;
    eprintln!(
        "achieved {rate:.1} msg/s of 80 while the backlog drained (utilisation {utilisation:.3}); {overall:.1} msg/s over the whole run ({sent_while_offering} sent while 300/s were offered); max in one second {}",
        account.max_accepted_in_one_second
    );
    assert!(utilisation >= 0.9, "utilisation {utilisation:.3} is at least 90%");
    drop(second);
}

/// Posts a Mailgun inbound e-mail from jane@example.com (`headers` is Mailgun's JSON list).
async fn mailgun_inbound(rig: &Rig, token: &str, subject: &str, headers: &str) {
    let timestamp = Utc::now().timestamp().to_string();
    let signature = switchboard_channels::meta::hmac_sha256_hex(
        EMAIL.1.as_bytes(),
        format!("{timestamp}{token}").as_bytes(),
    );
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (byte as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect()
    };
    let form = format!(
        "timestamp={timestamp}&token={token}&signature={signature}&recipient=support%40acme.test&from={}&subject={}&body-plain=Hi&stripped-text=Hi&message-headers={}",
        encode("Jane Doe <jane@example.com>"),
        encode(subject),
        encode(headers)
    );
    let response = rig
        .hooks
        .http
        .post(rig.hooks.url("email", EMAIL.0))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_email_reply_threads_under_the_customers_message_and_smtp_codes_decide_retry_or_failure() {
    let simulator = Simulator::start_with_smtp("127.0.0.1:0", "127.0.0.1:0")
        .await
        .expect("simulator");
    let base = simulator.base_url().to_owned();
    let smtp_port = simulator.smtp_addr().expect("smtp listener").port().to_string();
    let rig = Rig::start_with(SimulatorHost::InProcess(simulator), &base, &[]).await;
    rig.point_account(
        EMAIL.0,
        &[("smtp_username", "acme"), ("smtp_password", "smtp-secret")],
        &[
            ("inbound_provider", "mailgun"),
            ("smtp_host", "127.0.0.1"),
            ("smtp_port", &smtp_port),
            ("smtp_tls", "none"),
            ("from_name", "Acme Support"),
        ],
    )
    .await;
    mailgun_inbound(
        &rig,
        "mg-token-1",
        "Where is my order?",
        r#"[["Message-Id","<thread-1@example.com>"]]"#,
    )
    .await;
    let (_, conversation) = rig.conversation_of("thread-1@example.com").await;

    // An agent's reply quotes the customer's message: it threads under it.
    let mut reply = send(
        &conversation,
        delivery::OutboundContent {
            parts: vec![ContentPart {
                part: Some(Part::Text(TextPart {
                    body: "It ships today.".to_owned(),
                    subject: "Re: Where is my order?".to_owned(),
                })),
            }],
            ..Default::default()
        },
        delivery::AuthorKind::Agent,
    );
    reply.reply_to_provider_message_id = "thread-1@example.com".to_owned();
    let sent = rig
        .api()
        .send(authorized(reply, &rig.admin))
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    let sent = rig.wait_status(&sent.id, DeliveryStatus::Sent).await;
    let domain_id = format!("{}@acme.test", sent.id);
    assert_eq!(sent.provider_message_id, domain_id);
    let mails = rig.sim.smtp_messages().await.unwrap();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.rcpt_to, ["jane@example.com"]);
    assert_eq!(mail.auth_user.as_deref(), Some("acme"));
    assert_eq!(
        mail.message_id.as_deref(),
        Some(format!("<{domain_id}>").as_str())
    );
    assert_eq!(mail.in_reply_to.as_deref(), Some("<thread-1@example.com>"));
    assert_eq!(mail.reference_ids(), ["<thread-1@example.com>"]);
    assert_eq!(mail.subject.as_deref(), Some("Re: Where is my order?"));
    assert!(mail.auto_submitted.is_none(), "an agent's mail is not automatic");
    assert!(mail.body().contains("It ships today."));

    // The customer answers our mail: routing links the answer to it.
    mailgun_inbound(
        &rig,
        "mg-token-2",
        "Re: Re: Where is my order?",
        &format!(r#"[["Message-Id","<thread-2@example.com>"],["In-Reply-To","<{domain_id}>"]]"#),
    )
    .await;
    let (_, same) = rig.conversation_of("thread-2@example.com").await;
    assert_eq!(same, conversation);
    let linked: Option<String> = rig
        .db
        .query_one(
            "SELECT reply_to_message_id FROM routing.messages WHERE provider_message_id = 'thread-2@example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        linked.as_deref(),
        Some(sent.id.as_str()),
        "the answer links to our message"
    );

    // 451 (greylisted) is retried; 550 fails with the SMTP code.
    rig.sim
        .add_smtp_faults(&[SmtpFault::new(
            SmtpFaultKind::SmtpReply {
                code: 451,
                enhanced: Some("4.7.1".to_owned()),
                text: Some("greylisted".to_owned()),
            },
            1,
        )])
        .await
        .unwrap();
    let retried = rig
        .api()
        .send(authorized(
            send(&conversation, text("second"), delivery::AuthorKind::Agent),
            &rig.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    let retried = rig.wait_status(&retried.id, DeliveryStatus::Sent).await;
    let outcomes: Vec<&str> = retried
        .attempts
        .iter()
        .map(|attempt| attempt.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["retryable", "accepted"]);
    rig.sim
        .add_smtp_faults(&[SmtpFault::new(
            SmtpFaultKind::SmtpReply {
                code: 550,
                enhanced: Some("5.1.1".to_owned()),
                text: Some("mailbox unavailable".to_owned()),
            },
            1,
        )])
        .await
        .unwrap();
    let refused = rig
        .api()
        .send(authorized(
            send(&conversation, text("third"), delivery::AuthorKind::Agent),
            &rig.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .message
        .unwrap();
    let failed = rig.wait_status(&refused.id, DeliveryStatus::Failed).await;
    assert_eq!(failed.error.unwrap().code, "550");
    assert_eq!(failed.attempts.len(), 1, "a permanent refusal is not retried");
}
