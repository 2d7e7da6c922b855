//! A Switchboard with one channel account per webhook channel (from a channels file with
//! known secrets), signed provider requests, and a reader of the inbound queue.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use prost::Message as _;
use switchboard_proto::events::v1::Envelope;
use switchboard_testkit::TestDatabase;

use crate::{Switchboard, isolated_env};

/// The public base URL Twilio "requested" (ingress is configured with it).
pub const PUBLIC_BASE_URL: &str = "https://hooks.example.test";
/// WhatsApp account: app secret, verify token, phone_number_id.
pub const WHATSAPP: (&str, &str, &str) = ("chacc_e2e-whatsapp", "wa-app-secret", "106540352242922");
/// Messenger account id, app secret, page id.
pub const MESSENGER: (&str, &str, &str) = ("chacc_e2e-messenger", "fb-app-secret", "107220000000001");
/// Instagram account id, app secret, Instagram account id.
pub const INSTAGRAM: (&str, &str, &str) = ("chacc_e2e-instagram", "ig-app-secret", "17841400000000001");
/// Telegram account id, webhook secret, bot id.
pub const TELEGRAM: (&str, &str, &str) = ("chacc_e2e-telegram", "tg-webhook-secret", "7000000001");
/// SMS account id, Twilio auth token, number.
pub const SMS: (&str, &str, &str) = ("chacc_e2e-sms", "twilio-auth-token", "+14155550100");
/// E-mail (Mailgun) account id, signing key, address.
pub const EMAIL: (&str, &str, &str) = ("chacc_e2e-email", "mailgun-signing-key", "support@acme.test");
/// SendGrid Inbound Parse account (Basic auth user `sendgrid`).
pub const SENDGRID_ACCOUNT: &str = "chacc_e2e-sendgrid";
/// Its Basic auth password.
pub const SENDGRID_PASSWORD: &str = "sendgrid-parse-password";
/// Postmark inbound account (Basic auth user `postmark`).
pub const POSTMARK_ACCOUNT: &str = "chacc_e2e-postmark";
/// Its Basic auth password.
pub const POSTMARK_PASSWORD: &str = "postmark-inbound-password";
/// The WhatsApp verify token.
pub const WHATSAPP_VERIFY_TOKEN: &str = "wa-verify-token";
/// The web chat account: (id, session secret, identity secret). The identity secret is
/// CHANNELS.md vector V10's key.
pub const WEBCHAT: (&str, &str, &str) = ("chacc_e2e-webchat", "wc-session-secret", "widget_hmac_secret");
/// The only origin (besides Switchboard's own) allowed to embed the e2e web chat.
pub const WEBCHAT_ORIGIN: &str = "https://shop.example.test";

fn channels_yaml() -> String {
    format!(
        r#"workspaces:
  - id: ws_e2e-hooks
    name: Webhooks
    channel_accounts:
      - {{id: {}, channel: whatsapp, name: WA, external_id: "{}", secrets: {{app_secret: {}, verify_token: {WHATSAPP_VERIFY_TOKEN}}}}}
      - {{id: {}, channel: messenger, name: FB, external_id: "{}", secrets: {{app_secret: {}}}}}
      - {{id: {}, channel: instagram, name: IG, external_id: "{}", secrets: {{app_secret: {}}}}}
      - {{id: {}, channel: telegram, name: TG, external_id: "{}", secrets: {{webhook_secret: {}}}}}
      - {{id: {}, channel: sms, name: SMS, external_id: "{}", secrets: {{auth_token: {}}}}}
      - {{id: {}, channel: email, name: Mail, external_id: "{}", settings: {{inbound_provider: mailgun}}, secrets: {{signing_key: {}}}}}
      - {{id: {SENDGRID_ACCOUNT}, channel: email, name: Parse, external_id: "parse@acme.test", settings: {{inbound_provider: sendgrid, webhook_username: sendgrid}}, secrets: {{webhook_password: {SENDGRID_PASSWORD}}}}}
      - {{id: {POSTMARK_ACCOUNT}, channel: email, name: Postmark, external_id: "inbound@acme.test", settings: {{inbound_provider: postmark, webhook_username: postmark}}, secrets: {{webhook_password: {POSTMARK_PASSWORD}}}}}
      - {{id: {WEBCHAT_ID}, channel: webchat, name: Chat, external_id: "shop", settings: {{allowed_origins: "{WEBCHAT_ORIGIN}", prechat_name: required, prechat_email: optional, demo_page: "true", title: E2E Shop}}, secrets: {{session_secret: {WEBCHAT_SESSION}, identity_secret: {WEBCHAT_IDENTITY}}}}}
      - {{id: chacc_e2e-disabled, channel: whatsapp, name: Off, external_id: "1", enabled: false, secrets: {{app_secret: {}}}}}
"#,
        WHATSAPP.0,
        WHATSAPP.2,
        WHATSAPP.1,
        MESSENGER.0,
        MESSENGER.2,
        MESSENGER.1,
        INSTAGRAM.0,
        INSTAGRAM.2,
        INSTAGRAM.1,
        TELEGRAM.0,
        TELEGRAM.2,
        TELEGRAM.1,
        SMS.0,
        SMS.2,
        SMS.1,
        EMAIL.0,
        EMAIL.2,
        EMAIL.1,
        WHATSAPP.1,
        WEBCHAT_ID = WEBCHAT.0,
        WEBCHAT_SESSION = WEBCHAT.1,
        WEBCHAT_IDENTITY = WEBCHAT.2,
    )
}

/// A running Switchboard (`--target all`) with the webhook accounts above.
pub struct WebhookSwitchboard {
    /// The process.
    pub switchboard: Switchboard,
    /// Its database (dropped at the end).
    pub database: TestDatabase,
    /// Its bus namespace.
    pub namespace: String,
    /// HTTP client for webhooks.
    pub http: reqwest::Client,
    channels_file: PathBuf,
    env: Vec<(String, String)>,
    targets: String,
}

/// One message read from the inbound queue.
#[derive(Debug)]
pub struct ReadEvent {
    /// The decoded envelope.
    pub envelope: Envelope,
    /// AMQP headers as text.
    pub headers: std::collections::BTreeMap<String, String>,
    /// AMQP `type`.
    pub message_type: String,
}

impl WebhookSwitchboard {
    /// Starts Switchboard's tenancy and ingress (nothing consumes the inbound queue, so tests
    /// read it) with the webhook accounts, one partition and `extra_env`.
    pub async fn start(extra_env: &[(&str, &str)]) -> Self {
        Self::start_targets("tenancy,ingress", extra_env).await
    }

    /// Starts `targets` (e.g. `all`) with the webhook accounts, one partition and `extra_env`.
    pub async fn start_targets(targets: &str, extra_env: &[(&str, &str)]) -> Self {
        let database = TestDatabase::create().await.expect("test database");
        let channels_file = std::env::temp_dir().join(format!(
            "sb-channels-{}.yaml",
            switchboard_testkit::unique_token()
        ));
        std::fs::write(&channels_file, channels_yaml()).expect("channels file written");
        let mut env = isolated_env(&database);
        env.push((
            "SWITCHBOARD_CHANNELS_FILE".to_owned(),
            channels_file.display().to_string(),
        ));
        env.push((
            "SWITCHBOARD__INGRESS__PUBLIC_BASE_URL".to_owned(),
            PUBLIC_BASE_URL.to_owned(),
        ));
        for (key, value) in extra_env {
            env.push(((*key).to_owned(), (*value).to_owned()));
        }
        let namespace = env
            .iter()
            .find(|(key, _)| key == "SWITCHBOARD__BUS__NAMESPACE")
            .map(|(_, value)| value.clone())
            .expect("isolated env sets a namespace");
        env.push((
            "SWITCHBOARD__DATABASE__MIGRATE_ON_START".to_owned(),
            "true".to_owned(),
        ));
        let switchboard = Switchboard::start(&["--target", targets], &env);
        switchboard.wait_ready_status(200, Duration::from_secs(20)).await;
        Self {
            switchboard,
            database,
            namespace,
            http: reqwest::Client::new(),
            channels_file,
            env,
            targets: targets.to_owned(),
        }
    }

    /// Stops the process (as a crash would: no drain) and starts a new one on the same database
    /// and bus, keeping the queues and what waits in them.
    pub async fn restart(&mut self) {
        if let Some(namespace) = self.switchboard.bus.take() {
            namespace.keep();
        }
        let _ = self.switchboard.child.kill();
        let _ = self.switchboard.child.wait();
        let switchboard = Switchboard::start(&["--target", &self.targets], &self.env);
        switchboard.wait_ready_status(200, Duration::from_secs(20)).await;
        self.switchboard = switchboard;
    }

    /// Starts one more process of the same installation running `target` (e.g.
    /// `ingress-telegram`), reaching the first process's gRPC APIs. It removes the shared
    /// queues when dropped, so drop it after reading the bus.
    pub async fn start_component(&self, target: &str) -> Switchboard {
        let mut env = self.env.clone();
        env.retain(|(key, _)| key != "SWITCHBOARD_CHANNELS_FILE");
        env.push((
            "SWITCHBOARD__GRPC_CLIENT__ENDPOINT".to_owned(),
            self.switchboard.grpc.clone(),
        ));
        let component = Switchboard::start(&["--target", target], &env);
        component.wait_ready_status(200, Duration::from_secs(20)).await;
        component
    }

    /// The webhook URL of `channel` / `account`.
    pub fn url(&self, channel: &str, account: &str) -> String {
        format!("{}/webhooks/{channel}/{account}", self.switchboard.http)
    }

    /// The inbound queue (one partition).
    pub fn inbound_queue(&self) -> String {
        format!("{}contacts.inbound.p00", self.namespace)
    }

    /// POSTs a WhatsApp webhook signed with the account's app secret.
    pub async fn post_whatsapp(&self, body: &[u8], traceparent: Option<&str>) -> reqwest::Response {
        let signature = switchboard_channels::meta::hmac_sha256_hex(WHATSAPP.1.as_bytes(), body);
        let mut request = self
            .http
            .post(self.url("whatsapp", WHATSAPP.0))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", format!("sha256={signature}"))
            .body(body.to_vec());
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        request.send().await.expect("webhook request completes")
    }

    /// Reads `count` events from the inbound queue (in queue order), waiting up to `timeout`.
    /// (Inbound queues are single-active-consumer quorum queues: a consumer, not basic.get.)
    pub async fn read_events(&self, count: usize, timeout: Duration) -> Vec<ReadEvent> {
        self.read_queue(&self.inbound_queue(), count, timeout).await
    }

    /// Routing's (only) partition queue, where contacts passes resolved events on.
    pub fn routing_queue(&self) -> String {
        format!("{}routing.contact.p00", self.namespace)
    }

    /// Waits until `queue` exists, failing after `timeout`. Switchboard declares a queue when
    /// its consumer starts or before its producer first publishes to it, which may be after
    /// `/readyz` answered; a test reading the queue must not race that.
    pub async fn wait_for_queue(&self, queue: &str, timeout: Duration) {
        let connection =
            Connection::connect(&switchboard_testkit::amqp_url(), ConnectionProperties::default())
                .await
                .expect("test connects to rabbitmq");
        let what = format!("queue {queue} to be declared");
        switchboard_testkit::eventually(timeout, &what, || async {
            // A failed passive declare closes its channel: each try opens its own.
            let channel = connection.create_channel().await.ok()?;
            declare_passive(&channel, queue).await.ok()
        })
        .await;
        let _ = connection.close(200, "done".into()).await;
    }

    /// Reads (and acks) `count` events from `queue` once it exists, failing after `timeout`.
    pub async fn read_queue(&self, queue: &str, count: usize, timeout: Duration) -> Vec<ReadEvent> {
        let deadline = Instant::now() + timeout;
        self.wait_for_queue(queue, timeout).await;
        let connection =
            Connection::connect(&switchboard_testkit::amqp_url(), ConnectionProperties::default())
                .await
                .expect("test connects to rabbitmq");
        let channel = connection.create_channel().await.expect("channel");
        let mut consumer = channel
            .basic_consume(
                queue.into(),
                "e2e-reader".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("basic.consume");
        let mut events = Vec::new();
        while events.len() < count {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let next = tokio::time::timeout(remaining, consumer.next()).await;
            let Ok(Some(Ok(delivery))) = next else {
                panic!(
                    "only {} of {count} events reached {} in {timeout:?}: {events:#?}",
                    events.len(),
                    queue
                );
            };
            delivery.ack(BasicAckOptions::default()).await.expect("ack");
            let headers = delivery
                .properties
                .headers()
                .clone()
                .unwrap_or_default()
                .inner()
                .iter()
                .filter_map(|(key, value)| match value {
                    AMQPValue::LongString(text) => Some((key.to_string(), text.to_string())),
                    _ => None,
                })
                .collect();
            events.push(ReadEvent {
                envelope: Envelope::decode(delivery.data.as_slice()).expect("body is an Envelope"),
                headers,
                message_type: delivery
                    .properties
                    .kind()
                    .as_ref()
                    .map(|kind| kind.to_string())
                    .unwrap_or_default(),
            });
        }
        let _ = connection.close(200, "done".into()).await;
        events
    }

    /// The number of messages waiting in the inbound queue.
    pub async fn queued(&self) -> u32 {
        self.depth(&self.inbound_queue()).await
    }

    /// The number of messages ready in `queue`.
    pub async fn depth(&self, queue: &str) -> u32 {
        let connection =
            Connection::connect(&switchboard_testkit::amqp_url(), ConnectionProperties::default())
                .await
                .expect("test connects to rabbitmq");
        let channel = connection.create_channel().await.expect("channel");
        let declared = declare_passive(&channel, queue).await.expect("the queue exists");
        let _ = connection.close(200, "done".into()).await;
        declared.message_count()
    }

    /// Declares a test queue bound to the events exchange with `binding` (e.g. `routing.#`),
    /// deleted once a reader has read from it and gone; returns its name.
    pub async fn subscribe(&self, binding: &str) -> String {
        let connection =
            Connection::connect(&switchboard_testkit::amqp_url(), ConnectionProperties::default())
                .await
                .expect("test connects to rabbitmq");
        let channel = connection.create_channel().await.expect("channel");
        let queue = format!(
            "{}e2e-subscriber.{}",
            self.namespace,
            switchboard_testkit::unique_token()
        );
        channel
            .queue_declare(
                queue.as_str().into(),
                lapin::options::QueueDeclareOptions {
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("test queue declared");
        channel
            .queue_bind(
                queue.as_str().into(),
                format!("{}switchboard.events", self.namespace).into(),
                binding.into(),
                lapin::options::QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("test queue bound");
        let _ = connection.close(200, "done".into()).await;
        queue
    }

    /// Publishes `envelope` on the events exchange as another component would (one partition),
    /// waiting for the broker's confirm; a queue must take it.
    pub async fn publish(&self, envelope: &Envelope) {
        let connection =
            Connection::connect(&switchboard_testkit::amqp_url(), ConnectionProperties::default())
                .await
                .expect("test connects to rabbitmq");
        let channel = connection.create_channel().await.expect("channel");
        channel
            .confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .expect("confirm mode");
        let confirm = channel
            .basic_publish(
                format!("{}switchboard.events", self.namespace).into(),
                format!("{}.p00", envelope.event_type).into(),
                lapin::options::BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &envelope.encode_to_vec(),
                lapin::BasicProperties::default()
                    .with_message_id(envelope.event_id.clone().into())
                    .with_type(envelope.event_type.clone().into()),
            )
            .await
            .expect("published")
            .await
            .expect("confirmed");
        assert!(
            matches!(confirm, lapin::Confirmation::Ack(None)),
            "the broker routed it: {confirm:?}"
        );
        let _ = connection.close(200, "done".into()).await;
    }

    /// The bot runtime's (only) partition queue, where routing hands over bot turns.
    pub fn bot_queue(&self) -> String {
        format!("{}bots.bot.p00", self.namespace)
    }

    /// One Prometheus sample of `/metrics` (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.switchboard.admin_text("/metrics").await;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Stops the process (which removes its queues and exchanges) and removes its database
    /// and channels file. Dropping does the same (a test that panics drops it while unwinding).
    pub async fn cleanup(self) {
        drop(self);
    }
}

impl Drop for WebhookSwitchboard {
    /// Removes the channels file; then the fields drop in order: the process (and with it the
    /// bus namespace), then the database.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.channels_file);
    }
}

/// A WhatsApp text message webhook (the real Cloud API shape) for `phone_number_id`.
pub fn whatsapp_text(message_id: &str, from: &str, text: &str) -> Vec<u8> {
    whatsapp_message(
        message_id,
        from,
        serde_json::json!({"timestamp": "1749416383", "type": "text", "text": {"body": text}}),
    )
}

/// A WhatsApp button reply (a choice, not free text) from `from`.
pub fn whatsapp_button_reply(message_id: &str, from: &str) -> Vec<u8> {
    whatsapp_message(
        message_id,
        from,
        serde_json::json!({
            "timestamp": "1749416390",
            "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}
        }),
    )
}

/// A WhatsApp Cloud API webhook with one message from `from`; `fields` holds the message's
/// `timestamp`, `type` and content.
pub fn whatsapp_message(message_id: &str, from: &str, fields: serde_json::Value) -> Vec<u8> {
    let mut message = serde_json::json!({"from": from, "id": message_id});
    if let (Some(message), Some(fields)) = (message.as_object_mut(), fields.as_object()) {
        message.extend(fields.clone());
    }
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": WHATSAPP.2},
                    "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": from}],
                    "messages": [message]
                }
            }]
        }]
    })
    .to_string()
    .into_bytes()
}

/// Declares `queue` passively: its message count if it exists, an error (which closes
/// `channel`) if not.
async fn declare_passive(channel: &lapin::Channel, queue: &str) -> Result<lapin::Queue, lapin::Error> {
    channel
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
}
