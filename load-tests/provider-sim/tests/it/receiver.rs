//! A tiny webhook receiver standing in for ingress: it checks signatures over the raw body
//! (and, for Twilio, over the URL it was called on, as ingress's `public_url` does) with
//! ingress's own verifiers, then normalizes with ingress's own parsers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use http::{HeaderMap, StatusCode, Uri};
use switchboard_channels::{NormalizeContext, instagram, messenger, meta, twilio, whatsapp};
use switchboard_domain::ChannelAccountId;
use switchboard_proto::common::v1::DeliveryStatus;
use switchboard_proto::events::v1::inbound_event::Kind;

/// One status receipt as ingress understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's message id.
    pub provider_message_id: String,
    /// The normalized status.
    pub status: DeliveryStatus,
    /// The provider's word.
    pub provider_status: String,
    /// Our id echoed by the provider (WhatsApp `biz_opaque_callback_data`).
    pub switchboard_message_id: String,
}

/// One verified webhook.
#[derive(Debug, Clone)]
pub struct Received {
    /// `whatsapp`, `messenger`, `instagram`, `twilio`.
    pub channel: String,
    /// The URL it was posted to.
    pub url: String,
    /// The raw body.
    pub body: Bytes,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
}

/// What a channel's webhooks are checked with.
#[derive(Debug, Clone)]
pub struct Expect {
    /// App secret (Meta) or auth token (Twilio).
    pub secret: String,
    /// The provider's id of the account (phone number id, page id, IG id, Twilio `From`).
    pub external_id: String,
}

#[derive(Default)]
struct Shared {
    expect: HashMap<String, Expect>,
    received: Mutex<Vec<Received>>,
    rejected: Mutex<Vec<String>>,
    /// Order of arrival across receipts and test-side marks.
    events: Mutex<Vec<String>>,
    failures_left: AtomicU32,
}

/// A running receiver.
pub struct Receiver {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    shared: Arc<Shared>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver checking each channel's webhooks against `expect`; the first
    /// `failures` posts are answered 500.
    pub async fn start(expect: HashMap<String, Expect>, failures: u32) -> Self {
        let shared = Arc::new(Shared {
            expect,
            failures_left: AtomicU32::new(failures),
            ..Shared::default()
        });
        let app = Router::new()
            .route("/webhooks/{channel}/{account}", post(receive))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base_url,
            shared,
            _task: task,
        }
    }

    /// The verified webhooks so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Why webhooks were refused so far.
    pub fn rejected(&self) -> Vec<String> {
        self.shared.rejected.lock().unwrap().clone()
    }

    /// The order of arrival (`<channel>:<provider status>`) plus marks.
    pub fn events(&self) -> Vec<String> {
        self.shared.events.lock().unwrap().clone()
    }

    /// Adds a test-side mark to the order of arrival.
    pub fn mark(&self, event: &str) {
        self.shared.events.lock().unwrap().push(event.to_owned());
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path((channel, account)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> StatusCode {
    let failing = shared
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
        .is_ok();
    if failing {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let reject = |reason: String| {
        shared.rejected.lock().unwrap().push(reason);
        StatusCode::UNAUTHORIZED
    };
    let Some(expect) = shared.expect.get(&channel) else {
        return reject(format!("unexpected channel {channel}"));
    };
    // As ingress: the URL Twilio requested, from the Host header and the path and query.
    let host = headers
        .get("host")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let url = format!(
        "http://{host}{}",
        uri.path_and_query().map_or("/", |value| value.as_str())
    );
    let verified = match channel.as_str() {
        "twilio" => twilio::verify_signature(&headers, &url, &body, expect.secret.as_bytes()),
        _ => meta::verify_signature(&headers, &body, expect.secret.as_bytes()),
    };
    let verified = match verified {
        Ok(verified) => verified,
        Err(error) => return reject(format!("{channel}: {error}")),
    };
    let context = NormalizeContext {
        channel_account_id: ChannelAccountId::parse(&account).unwrap(),
        external_id: expect.external_id.clone(),
        received_at: SystemTime::now(),
    };
    let normalized = match channel.as_str() {
        "whatsapp" => whatsapp::normalize(verified, &context),
        "messenger" => messenger::normalize(verified, &context),
        "instagram" => instagram::normalize(verified, &context),
        _ => twilio::normalize(verified, &context),
    };
    let normalized = match normalized {
        Ok(normalized) => normalized,
        Err(error) => return reject(format!("{channel}: {error}")),
    };
    if !normalized.skipped.is_empty() {
        return reject(format!("{channel}: skipped {:?}", normalized.skipped));
    }
    let mut receipts = Vec::new();
    for event in normalized.events {
        if let Some(Kind::Status(receipt)) = event.kind {
            receipts.push(Receipt {
                provider_message_id: receipt.provider_message_id,
                status: DeliveryStatus::try_from(receipt.status).unwrap(),
                provider_status: receipt.provider_status,
                switchboard_message_id: receipt.switchboard_message_id,
            });
        }
    }
    {
        let mut events = shared.events.lock().unwrap();
        for receipt in &receipts {
            events.push(format!("{channel}:{}", receipt.provider_status));
        }
    }
    shared.received.lock().unwrap().push(Received {
        channel,
        url,
        body,
        receipts,
    });
    StatusCode::OK
}
