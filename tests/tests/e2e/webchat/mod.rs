//! The web chat channel through the real binary: sessions, the WebSocket protocol (send,
//! receive, typing, read receipts, dedupe, resume, refusals), two ingress-webchat processes,
//! and the demo page in headless Chromium.

mod browser;
mod protocol;
mod replicas;

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use switchboard_e2e::authorized;
use switchboard_e2e::webhooks::{WEBCHAT, WebhookSwitchboard};
use switchboard_proto::common::v1::{ContentPart, TextPart, content_part::Part};
use switchboard_proto::delivery::v1 as delivery;
use switchboard_proto::delivery::v1::delivery_service_client::DeliveryServiceClient;
use switchboard_proto::tenancy::v1 as tenancy;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const WORKSPACE: &str = "ws_e2e-hooks";

/// Switchboard (`all`) with the web chat account, a workspace key and the database.
struct Chat {
    hooks: WebhookSwitchboard,
    admin: String,
    db: tokio_postgres::Client,
}

/// A visitor's session.
#[derive(Debug, Clone)]
struct Session {
    token: String,
    visitor_id: String,
}

type Stream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A visitor's socket.
struct Socket {
    stream: Stream,
}

impl Chat {
    async fn start(extra_env: &[(&str, &str)]) -> Self {
        let hooks = WebhookSwitchboard::start_targets("all", extra_env).await;
        let admin = crate::contacts::key(&hooks, WORKSPACE, tenancy::ApiKeyRole::WorkspaceAdmin).await;
        let db = hooks.database.connect().await;
        Self { hooks, admin, db }
    }

    fn http_base(&self) -> String {
        base_of(&self.hooks.switchboard.http)
    }

    /// `POST sessions` on `http_base` with `body` and an optional Origin.
    async fn session_at(&self, http_base: &str, body: Value, origin: Option<&str>) -> (u16, Value) {
        let mut request = self
            .hooks
            .http
            .post(format!("{http_base}/webchat/{}/sessions", WEBCHAT.0))
            .json(&body);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.expect("sessions answered");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A new visitor called `name`.
    async fn visitor(&self, name: &str) -> Session {
        let (status, body) = self
            .session_at(&self.http_base(), json!({"name": name}), None)
            .await;
        assert_eq!(status, 201, "{body}");
        Session {
            token: body["session_token"].as_str().expect("token").to_owned(),
            visitor_id: body["visitor_id"].as_str().expect("visitor id").to_owned(),
        }
    }

    /// Opens the visitor's socket on this process and reads `ready`.
    async fn socket(&self, session: &Session) -> Socket {
        Socket::open(&self.http_base(), &session.token, None)
            .await
            .expect("socket opens")
    }

    /// Routing's conversation of the web chat message `wcm_id` (waits for the bus).
    async fn conversation_of(&self, wcm_id: &str) -> String {
        switchboard_testkit::eventually(
            Duration::from_secs(60),
            "routing to store the visitor's message",
            || async {
                self.db
                    .query_opt(
                        "SELECT conversation_id FROM routing.messages WHERE provider_message_id = $1",
                        &[&wcm_id],
                    )
                    .await
                    .unwrap()
                    .map(|row| row.get::<_, String>(0))
            },
        )
        .await
    }

    fn delivery(&self) -> DeliveryServiceClient<tonic::transport::Channel> {
        DeliveryServiceClient::new(
            tonic::transport::Endpoint::from_shared(self.hooks.switchboard.grpc.clone())
                .expect("endpoint")
                .connect_lazy(),
        )
    }

    /// An agent answers `conversation` through delivery; returns delivery's message id.
    async fn agent_reply(&self, conversation: &str, text: &str) -> String {
        let request = delivery::SendRequest {
            recipient: Some(delivery::Recipient {
                target: Some(delivery::recipient::Target::ConversationId(
                    conversation.to_owned(),
                )),
            }),
            content: Some(delivery::OutboundContent {
                parts: vec![ContentPart {
                    part: Some(Part::Text(TextPart {
                        body: text.to_owned(),
                        subject: String::new(),
                    })),
                }],
                ..Default::default()
            }),
            author_kind: delivery::AuthorKind::Api as i32,
            ..Default::default()
        };
        self.delivery()
            .send(authorized(request, &self.admin))
            .await
            .expect("delivery accepts the reply")
            .into_inner()
            .message
            .expect("message")
            .id
    }

    /// An agent typing indicator or read mark through delivery.
    async fn agent_action(&self, conversation: &str, action: delivery::ConversationAction, up_to: &str) {
        let request = delivery::SendActionRequest {
            recipient: Some(delivery::Recipient {
                target: Some(delivery::recipient::Target::ConversationId(
                    conversation.to_owned(),
                )),
            }),
            action: action as i32,
            up_to_provider_message_id: up_to.to_owned(),
        };
        self.delivery()
            .send_action(authorized(request, &self.admin))
            .await
            .expect("delivery takes the action");
    }

    /// Delivery's status of its message `id` once it is `wanted`.
    async fn wait_delivery_status(&self, id: &str, wanted: switchboard_proto::common::v1::DeliveryStatus) {
        switchboard_testkit::eventually(Duration::from_secs(30), "delivery status", || async {
            let message = self
                .delivery()
                .get_message(authorized(
                    delivery::GetMessageRequest { id: id.to_owned() },
                    &self.admin,
                ))
                .await
                .ok()?
                .into_inner()
                .message?;
            (message.status == wanted as i32).then_some(())
        })
        .await;
    }
}

/// `http://host:port` of a listener address.
fn base_of(address: &str) -> String {
    if address.starts_with("http") {
        address.trim_end_matches('/').to_owned()
    } else {
        format!("http://{address}")
    }
}

impl Socket {
    /// Opens a socket with `token` (and `Origin`), reading the `ready` frame.
    async fn open(
        http_base: &str,
        token: &str,
        origin: Option<&str>,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let url = format!(
            "{}/webchat/{}/ws?token={token}",
            http_base.replacen("http", "ws", 1),
            WEBCHAT.0
        );
        let mut request = url.into_client_request()?;
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().expect("origin header"));
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        let mut socket = Self { stream };
        let ready = socket.next().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        Ok(socket)
    }

    async fn send(&mut self, kind: &str, data: Value) {
        self.stream
            .send(Message::text(json!({"type": kind, "data": data}).to_string()))
            .await
            .expect("frame sent");
    }

    /// The next JSON frame (pongs and pings skipped).
    async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(20), self.stream.next())
                .await
                .expect("a frame within 20 s")
                .expect("the socket is open")
                .expect("a readable frame");
            match message {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
                    if frame["type"] != "pong" {
                        return frame;
                    }
                }
                Message::Close(close) => panic!("socket closed: {close:?}"),
                _ => {}
            }
        }
    }

    /// The next frame of type `kind`, skipping others (typing, read) it collects.
    async fn expect(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Waits for the server's close frame; returns its code and reason.
    async fn closed(&mut self) -> (CloseCode, String) {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(20), self.stream.next())
                .await
                .expect("closed within 20 s");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => return (frame.code, frame.reason.to_string()),
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// Every frame arriving within `quiet` of the last one.
    async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Ok(Some(Ok(message))) = tokio::time::timeout(quiet, self.stream.next()).await {
            if let Message::Text(text) = message {
                frames.push(serde_json::from_str(text.as_str()).expect("JSON frame"));
            }
        }
        frames
    }
}

/// The seqs of the `message.created` frames among `frames`.
fn created_seqs(frames: &[Value]) -> Vec<i64> {
    frames
        .iter()
        .filter(|frame| frame["type"] == "message.created")
        .map(|frame| frame["data"]["seq"].as_i64().expect("seq"))
        .collect()
}
