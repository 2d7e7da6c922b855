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
    Simulator, SimulatorClient, SimulatorProcess, SmtpFault, SmtpFaultKind,
};
use tonic::Code;
use tonic_types::StatusExt as _;

const WORKSPACE: &str = "ws_e2e-hooks";
const WHATSAPP_TOKEN: &str = "EAAB-e2e-whatsapp-token";
const TELEGRAM_TOKEN: &str = "7000000001:AAE2e-telegram-token";

/// Where the simulator runs: in the test process, or as its own `provider-sim` process (so
/// its arrival times are not delayed by the test's own load generator). Either stops when
/// dropped.
enum SimulatorHost {
    InProcess(#[allow(dead_code)] RunningSimulator),
    Process(#[allow(dead_code)] SimulatorProcess),
}

/// Starts the `provider-sim` binary (built next to `switchboard`) on a free port.
async fn simulator_process() -> (SimulatorHost, String) {
    let binary = SimulatorProcess::beside(&switchboard_e2e::binary_path());
    let process = SimulatorProcess::start(&binary)
        .await
        .unwrap_or_else(|error| panic!("provider-sim starts: {error}"));
    let base = process.base_url().to_owned();
    (SimulatorHost::Process(process), base)
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

    /// The calls the simulator recorded for `provider`, in order.
    async fn calls(&self, provider: Provider) -> Vec<switchboard_provider_sim::CallRecord> {
        self.sim
            .calls(&CallsQuery {
                provider: Some(provider),
                ..Default::default()
            })
            .await
            .expect("calls")
    }

    async fn whatsapp_calls(&self) -> usize {
        self.calls(Provider::Whatsapp).await.len()
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

    /// Sends `request` as the workspace admin; panics on a refusal.
    async fn send_ok(&self, request: delivery::SendRequest) -> delivery::Message {
        self.api()
            .send(authorized(request, &self.admin))
            .await
            .expect("accepted")
            .into_inner()
            .message
            .expect("message")
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

mod email;
mod rate_limits;
mod receipts;
mod sends;

/// Serves `body` as `content_type` to every request on a loopback port (a file host).
/// Returns its base URL and the number of requests it has seen.
async fn file_host(
    body: &'static [u8],
    content_type: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body).await;
            });
        }
    });
    (format!("http://{address}"), hits)
}
