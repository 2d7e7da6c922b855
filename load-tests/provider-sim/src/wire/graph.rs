//! Meta's Graph API send endpoints: WhatsApp Cloud API, Messenger and Instagram
//! (`POST /{version}/{object_id}/messages`), with the Graph error envelope
//! (CHANNELS.md §1, §2.5, §3.5, §4).

use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::{Accepted, Call, Op, ReceiptTarget, Refused, Reply, random_token, text_field};
use crate::model::{CallOutcome, Provider};
use crate::state::SimState;

/// What an accepted Graph call does.
#[derive(Debug, Clone)]
pub(crate) enum GraphOp {
    /// WhatsApp message to `to`.
    WhatsappSend {
        /// The `to` of the request.
        to: String,
        /// Echoed in the status webhooks.
        biz_opaque_callback_data: Option<String>,
    },
    /// WhatsApp `"status":"read"` (mark as read) → `{"success":true}`.
    WhatsappMarkRead,
    /// Messenger / Instagram message to a PSID / IGSID.
    PageSend {
        /// `recipient.id`.
        recipient: String,
    },
    /// Messenger / Instagram `sender_action` (typing, mark_seen) → `{"recipient_id"}`.
    SenderAction {
        /// `recipient.id`.
        recipient: String,
    },
}

const WHATSAPP_TYPES: [&str; 11] = [
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "template",
    "reaction",
];

/// Parses and authenticates a Graph `messages` call on `object_id` (`me` = the page or IG
/// account whose token is presented).
pub(crate) fn parse(
    state: &SimState,
    object_id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Call, Box<Refused>> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let body_value = parsed.clone().unwrap_or(Value::Null);
    let wants_whatsapp = body_value.get("messaging_product").and_then(Value::as_str) == Some("whatsapp");
    let token = bearer_token(headers).or_else(|| query_token(query));
    let candidates: &[Provider] = if wants_whatsapp {
        &[Provider::Whatsapp, Provider::Messenger, Provider::Instagram]
    } else {
        &[Provider::Messenger, Provider::Instagram, Provider::Whatsapp]
    };
    let resolved = if object_id == "me" {
        token
            .as_deref()
            .and_then(|token| state.find_by_credential(&[Provider::Messenger, Provider::Instagram], token))
    } else {
        candidates
            .iter()
            .find(|provider| state.credential(**provider, object_id).is_some())
            .map(|provider| (*provider, object_id.to_owned()))
    };
    let refuse = |provider: Provider, account: String, reply: Reply, outcome: CallOutcome| {
        Box::new(Refused {
            provider,
            account,
            method: "messages".to_owned(),
            recipient: recipient_of(&body_value),
            body: body_value.clone(),
            reply,
            outcome,
        })
    };
    let Some((provider, account)) = resolved else {
        let guess = candidates[0];
        return Err(refuse(
            guess,
            object_id.to_owned(),
            invalid_token(guess),
            CallOutcome::Unauthorized,
        ));
    };
    let authorized = match (state.credential(provider, &account), token) {
        (Some(expected), Some(token)) => expected == token,
        _ => false,
    };
    if !authorized {
        return Err(refuse(
            provider,
            account,
            invalid_token(provider),
            CallOutcome::Unauthorized,
        ));
    }
    let checked = match parsed {
        Some(value @ Value::Object(_)) if provider == Provider::Whatsapp => check_whatsapp(&value),
        Some(value @ Value::Object(_)) => check_page(&value),
        _ => Err("(#100) The request body must be a JSON object".to_owned()),
    };
    let op = match checked {
        Ok(op) => op,
        Err(message) => {
            let reply = invalid_parameter(provider, &message);
            return Err(refuse(provider, account, reply, CallOutcome::Rejected));
        }
    };
    let recipient = match &op {
        GraphOp::WhatsappSend { to, .. } => Some(to.clone()),
        GraphOp::WhatsappMarkRead => None,
        GraphOp::PageSend { recipient } | GraphOp::SenderAction { recipient } => Some(recipient.clone()),
    };
    Ok(Call {
        provider,
        account,
        method: "messages".to_owned(),
        recipient,
        group: false,
        limited: true,
        body: body_value,
        op: Op::Graph(op),
    })
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "access_token")
        .map(|(_, value)| value.into_owned())
}

fn recipient_of(body: &Value) -> Option<String> {
    text_field(body, "to").or_else(|| {
        body.get("recipient")
            .and_then(|recipient| text_field(recipient, "id"))
    })
}

fn check_whatsapp(body: &Value) -> Result<GraphOp, String> {
    if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return Err("(#100) The parameter messaging_product is required.".to_owned());
    }
    if body.get("status").and_then(Value::as_str) == Some("read") {
        return match text_field(body, "message_id") {
            Some(_) => Ok(GraphOp::WhatsappMarkRead),
            None => Err("(#100) The parameter message_id is required.".to_owned()),
        };
    }
    let Some(to) = text_field(body, "to").or_else(|| text_field(body, "recipient")) else {
        return Err("(#100) The parameter to is required.".to_owned());
    };
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("text");
    if !WHATSAPP_TYPES.contains(&kind) {
        return Err(format!(
            "(#100) Param type must be one of {{{}}}",
            WHATSAPP_TYPES.join(", ")
        ));
    }
    let Some(object) = body.get(kind).filter(|object| object.is_object()) else {
        return Err(format!("(#100) The parameter {kind} is required."));
    };
    if kind == "text" {
        let text = object.get("body").and_then(Value::as_str).unwrap_or("");
        if text.is_empty() {
            return Err("(#100) The parameter text['body'] is required.".to_owned());
        }
        if text.chars().count() > 4096 {
            return Err("(#100) Param text['body'] must be at most 4096 characters long.".to_owned());
        }
    }
    Ok(GraphOp::WhatsappSend {
        to,
        biz_opaque_callback_data: text_field(body, "biz_opaque_callback_data"),
    })
}

fn check_page(body: &Value) -> Result<GraphOp, String> {
    let recipient = body.get("recipient").and_then(|recipient| {
        ["id", "user_ref", "comment_id", "post_id"]
            .iter()
            .find_map(|key| text_field(recipient, key))
    });
    let Some(recipient) = recipient else {
        return Err("(#100) The parameter recipient is required".to_owned());
    };
    if body.get("sender_action").and_then(Value::as_str).is_some() {
        return Ok(GraphOp::SenderAction { recipient });
    }
    let Some(message) = body.get("message").filter(|message| message.is_object()) else {
        return Err("(#100) Must send either message or sender_action".to_owned());
    };
    let text = message.get("text").and_then(Value::as_str);
    if text.is_none() && message.get("attachment").is_none() {
        return Err("(#100) Message cannot be empty, must provide valid attachment or text".to_owned());
    }
    if text.is_some_and(|text| text.chars().count() > 2000) {
        return Err("(#100) Length of param message[text] must be less than or equal to 2000".to_owned());
    }
    Ok(GraphOp::PageSend { recipient })
}

/// The success answer of an accepted Graph call.
pub(crate) fn accept(op: &GraphOp) -> Accepted {
    match op {
        GraphOp::WhatsappSend {
            to,
            biz_opaque_callback_data,
        } => {
            let wamid = format!("wamid.HBgL{}", random_token(36));
            let wa_id: String = to.chars().filter(char::is_ascii_digit).collect();
            let body = json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": if wa_id.is_empty() { to.clone() } else { wa_id }}],
                "messages": [{"id": wamid, "message_status": "accepted"}],
            });
            Accepted {
                reply: Reply::ok(StatusCode::OK, body),
                message_id: Some(wamid.clone()),
                receipts: Some(ReceiptTarget {
                    message_id: wamid,
                    recipient: to.clone(),
                    biz_opaque_callback_data: biz_opaque_callback_data.clone(),
                    ..ReceiptTarget::default()
                }),
            }
        }
        GraphOp::WhatsappMarkRead => Accepted {
            reply: Reply::ok(StatusCode::OK, json!({"success": true})),
            message_id: None,
            receipts: None,
        },
        GraphOp::PageSend { recipient } => {
            let mid = format!("m_{}", random_token(48));
            Accepted {
                reply: Reply::ok(
                    StatusCode::OK,
                    json!({"recipient_id": recipient, "message_id": mid}),
                ),
                message_id: Some(mid.clone()),
                receipts: Some(ReceiptTarget {
                    message_id: mid,
                    recipient: recipient.clone(),
                    ..ReceiptTarget::default()
                }),
            }
        }
        GraphOp::SenderAction { recipient } => Accepted {
            reply: Reply::ok(StatusCode::OK, json!({"recipient_id": recipient})),
            message_id: None,
            receipts: None,
        },
    }
}

/// The Graph error envelope.
fn envelope(
    provider: Provider,
    status: StatusCode,
    code: &str,
    subcode: Option<u64>,
    message: &str,
    details: Option<&str>,
) -> Reply {
    let code_value = code
        .parse::<i64>()
        .map_or_else(|_| Value::String(code.to_owned()), Value::from);
    let mut error = json!({
        "message": message,
        "type": "OAuthException",
        "code": code_value,
        "fbtrace_id": format!("A{}", random_token(16)),
    });
    if let Some(subcode) = subcode {
        error["error_subcode"] = Value::from(subcode);
    }
    if let Some(details) = details {
        error["error_data"] = if provider == Provider::Whatsapp {
            json!({"messaging_product": "whatsapp", "details": details})
        } else {
            json!({"details": details})
        };
    }
    Reply::error(status, code, json!({ "error": error }))
}

/// Graph code 190 (HTTP 401): unknown account or wrong token.
pub(crate) fn invalid_token(provider: Provider) -> Reply {
    envelope(
        provider,
        StatusCode::UNAUTHORIZED,
        "190",
        None,
        "Invalid OAuth access token - Cannot parse access token",
        None,
    )
}

fn invalid_parameter(provider: Provider, message: &str) -> Reply {
    let details = (provider == Provider::Whatsapp).then_some(message);
    envelope(provider, StatusCode::BAD_REQUEST, "100", None, message, details)
}

/// WhatsApp 130429 (throughput) or 131056 (pair rate); Messenger / Instagram 613; HTTP 400.
pub(crate) fn rate_limited(provider: Provider, per_recipient: bool) -> Reply {
    let code = match (provider, per_recipient) {
        (Provider::Whatsapp, false) => "130429",
        (Provider::Whatsapp, true) => "131056",
        _ => "613",
    };
    provider_error(provider, code, None, None, None)
}

/// A 5xx in the Graph envelope (WhatsApp 131000 / 131016, Messenger code 1 / 2).
pub(crate) fn server_error(provider: Provider, status: StatusCode) -> Reply {
    let unavailable = matches!(status.as_u16(), 502..=504);
    let (code, message, details) = match (provider, unavailable) {
        (Provider::Whatsapp, false) => (
            "131000",
            "(#131000) Something went wrong",
            Some("Message failed to send due to an unknown error."),
        ),
        (Provider::Whatsapp, true) => (
            "131016",
            "(#131016) Service unavailable",
            Some("A service is temporarily unavailable."),
        ),
        (_, false) => ("1", "An unknown error occurred", None),
        (_, true) => ("2", "Service temporarily unavailable", None),
    };
    envelope(provider, status, code, None, message, details)
}

/// A provider error with `code` (the provider's text for known codes) and HTTP `status`
/// (default 400).
pub(crate) fn provider_error(
    provider: Provider,
    code: &str,
    status: Option<u16>,
    subcode: Option<u64>,
    message: Option<&str>,
) -> Reply {
    let status = status
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::BAD_REQUEST);
    let (known_message, known_details) = known_error(code);
    let message = message.map_or_else(
        || known_message.unwrap_or_else(|| format!("(#{code}) Simulated error")),
        str::to_owned,
    );
    let details = known_details.or_else(|| (provider == Provider::Whatsapp).then(|| message.clone()));
    envelope(provider, status, code, subcode, &message, details.as_deref())
}

/// The provider's message and details of well-known Graph codes (CHANNELS.md §2.5, §3.5).
fn known_error(code: &str) -> (Option<String>, Option<String>) {
    let (message, details) = match code {
        "130429" => (
            "(#130429) Rate limit hit",
            "Cloud API message throughput has been reached.",
        ),
        "131056" => (
            "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.",
        ),
        "131047" => (
            "(#131047) Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        ),
        "131026" => (
            "(#131026) Message undeliverable",
            "Message could not be delivered.",
        ),
        "131048" => (
            "(#131048) Spam rate limit hit",
            "Message failed to send because there are restrictions on how many messages can be sent from this phone number.",
        ),
        "131049" => (
            "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
            "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
        ),
        "131000" => (
            "(#131000) Something went wrong",
            "Message failed to send due to an unknown error.",
        ),
        "131016" => (
            "(#131016) Service unavailable",
            "A service is temporarily unavailable.",
        ),
        "131057" => (
            "(#131057) Account in maintenance mode",
            "Business account is in maintenance mode.",
        ),
        "131031" => (
            "(#131031) Account has been locked",
            "The business account has been locked.",
        ),
        "80007" => (
            "(#80007) Rate limit issues",
            "The WhatsApp Business Account has reached its rate limit.",
        ),
        "613" => ("(#613) Calls to this api have exceeded the rate limit.", ""),
        "4" => ("(#4) Application request limit reached", ""),
        "10" => ("(#10) This message is sent outside of allowed window.", ""),
        "551" => ("(#551) This person isn't available right now.", ""),
        "2" => (
            "An unexpected error has occurred. Please retry your request later.",
            "",
        ),
        "1200" => ("Temporary send message failure. Please try again later", ""),
        "190" => ("Invalid OAuth access token - Cannot parse access token", ""),
        "368" => ("(#368) Temporarily blocked for policies violations", ""),
        "100" => ("(#100) Invalid parameter", ""),
        _ => return (None, None),
    };
    (
        Some(message.to_owned()),
        (!details.is_empty()).then(|| details.to_owned()),
    )
}
