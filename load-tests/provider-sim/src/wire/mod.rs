//! The providers' wire formats: how each send request is parsed and checked, and every
//! answer (success, error envelope, rate limit, fault) in the provider's own shape.

pub(crate) mod graph;
pub(crate) mod telegram;
pub(crate) mod twilio;

use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::Value;

use crate::limits::{Refusal, Target};
use crate::model::{CallOutcome, FaultKind, Provider};

/// An answer to a provider API call.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Value,
    /// Extra headers (`Retry-After`, `WWW-Authenticate`).
    pub headers: Vec<(HeaderName, String)>,
    /// The provider error code, for the call log.
    pub error_code: Option<String>,
}

impl Reply {
    /// A success answer.
    pub(crate) fn ok(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
            error_code: None,
        }
    }

    /// An error answer carrying the provider's `code`.
    pub(crate) fn error(status: StatusCode, code: impl Into<String>, body: Value) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
            error_code: Some(code.into()),
        }
    }

    /// Adds a header.
    pub(crate) fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}

/// A call that reached a configured account with the right credential and a valid request.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// The provider.
    pub provider: Provider,
    /// The account's external id.
    pub account: String,
    /// Graph `messages`, Telegram method, `Messages.json`.
    pub method: String,
    /// The recipient key of the limits and the call log.
    pub recipient: Option<String>,
    /// Telegram group chat (the per-group limit applies).
    pub group: bool,
    /// Whether the call counts against the rate limits (sends do; getMe, deleteMessage don't).
    pub limited: bool,
    /// The parsed request body.
    pub body: Value,
    /// What to do when accepted.
    pub op: Op,
}

impl Call {
    /// The limits' view of the call.
    pub(crate) fn target(&self) -> Target<'_> {
        Target {
            recipient: self.recipient.as_deref(),
            group: self.group,
        }
    }
}

/// The provider-specific part of an accepted call.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Meta Graph API.
    Graph(graph::GraphOp),
    /// Telegram Bot API.
    Telegram(telegram::TelegramOp),
    /// Twilio Messages.
    Twilio(twilio::TwilioOp),
}

/// A call answered before it reached the account's pipeline (bad credential, invalid body).
#[derive(Debug, Clone)]
pub(crate) struct Refused {
    /// The provider (a guess between Meta's three when the account is unknown).
    pub provider: Provider,
    /// The account's external id (or what the path named).
    pub account: String,
    /// The method called.
    pub method: String,
    /// The recipient, when it could be read.
    pub recipient: Option<String>,
    /// The parsed body (`null` when unparseable).
    pub body: Value,
    /// The answer.
    pub reply: Reply,
    /// `Unauthorized` or `Rejected`.
    pub outcome: CallOutcome,
}

/// Where status receipts of an accepted send point.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReceiptTarget {
    /// The provider message id the receipts are about.
    pub message_id: String,
    /// The recipient (wa_id, PSID, IGSID, phone number).
    pub recipient: String,
    /// WhatsApp `biz_opaque_callback_data` of the request.
    pub biz_opaque_callback_data: Option<String>,
    /// Twilio: the request's `StatusCallback`.
    pub status_callback: Option<String>,
    /// Twilio: `From` of the message.
    pub from: Option<String>,
    /// Twilio: `MessagingServiceSid` of the request.
    pub messaging_service_sid: Option<String>,
}

/// An accepted call: the answer, the provider's message id, and the receipts' target.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    /// The success answer.
    pub reply: Reply,
    /// The provider's message id (Telegram `chat_id:message_id`).
    pub message_id: Option<String>,
    /// Target of status receipts (`None`: nothing to report on).
    pub receipts: Option<ReceiptTarget>,
}

/// Provider state that answers depend on (Telegram's per-chat message ids).
pub(crate) type Chats = telegram::Chats;

impl Call {
    /// The success answer; `Err` when the provider would still refuse (e.g. Telegram delete
    /// of an unknown message).
    pub(crate) fn accept(&self, chats: &mut Chats) -> Result<Accepted, Reply> {
        match &self.op {
            Op::Graph(op) => Ok(graph::accept(op)),
            Op::Telegram(op) => telegram::accept(op, chats),
            Op::Twilio(op) => Ok(twilio::accept(self, op)),
        }
    }
}

/// The provider's answer for an unknown account or a wrong credential.
pub(crate) fn unauthorized(provider: Provider) -> Reply {
    match provider {
        Provider::Whatsapp | Provider::Messenger | Provider::Instagram => graph::invalid_token(provider),
        Provider::Telegram => telegram::error(StatusCode::UNAUTHORIZED, 401, "Unauthorized", None),
        Provider::Twilio => twilio::unauthorized(),
    }
}

/// The provider's answer to a send over a limit.
pub(crate) fn rate_limited(provider: Provider, refusal: &Refusal) -> Reply {
    let retry_after = refusal.retry_after_secs();
    match provider {
        Provider::Whatsapp | Provider::Messenger | Provider::Instagram => {
            graph::rate_limited(provider, refusal.kind.is_per_recipient())
        }
        Provider::Telegram => telegram::too_many_requests(retry_after),
        Provider::Twilio => twilio::too_many_requests(),
    }
}

/// The answer of an injected fault other than `drop_response`.
pub(crate) fn fault(provider: Provider, kind: &FaultKind) -> Reply {
    match kind {
        FaultKind::Status { status } => server_error(provider, *status),
        FaultKind::RateLimited { retry_after_secs } => {
            let reply = match provider {
                Provider::Whatsapp | Provider::Messenger | Provider::Instagram => {
                    graph::rate_limited(provider, false)
                }
                Provider::Telegram => telegram::too_many_requests(*retry_after_secs),
                Provider::Twilio => twilio::too_many_requests(),
            };
            reply.with_header(header::RETRY_AFTER, retry_after_secs.to_string())
        }
        FaultKind::Error {
            code,
            status,
            subcode,
            message,
        } => match provider {
            Provider::Whatsapp | Provider::Messenger | Provider::Instagram => {
                graph::provider_error(provider, code, *status, *subcode, message.as_deref())
            }
            Provider::Telegram => telegram::provider_error(code, *status, message.as_deref()),
            Provider::Twilio => twilio::provider_error(code, *status, message.as_deref()),
        },
        // Never answered; a 504 stands in if it ever is.
        FaultKind::DropResponse { .. } => server_error(provider, 504),
    }
}

/// A provider-shaped server error with HTTP `status`.
fn server_error(provider: Provider, status: u16) -> Reply {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match provider {
        Provider::Whatsapp | Provider::Messenger | Provider::Instagram => {
            graph::server_error(provider, status)
        }
        Provider::Telegram => telegram::server_error(status),
        Provider::Twilio => twilio::server_error(status),
    }
}

/// `bytes` random bytes as URL-safe base64 (ids that never need escaping).
pub(crate) fn random_token(bytes: usize) -> String {
    let random: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(random)
}

/// A JSON string field of `body`, if present and a string (or number, as text).
pub(crate) fn text_field(body: &Value, name: &str) -> Option<String> {
    match body.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}
