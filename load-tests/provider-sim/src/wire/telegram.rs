//! Telegram Bot API send methods (`POST /bot{token}/{method}`, JSON, form or query
//! parameters) with Telegram's `{"ok":false,"error_code","description"}` errors
//! (CHANNELS.md §5.5–5.6).

use std::collections::{HashMap, HashSet};

use http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value, json};

use super::{Accepted, Call, Op, Refused, Reply, random_token, text_field};
use crate::model::{CallOutcome, Provider};
use crate::state::SimState;

/// What an accepted Telegram call does.
#[derive(Debug, Clone)]
pub(crate) enum TelegramOp {
    /// A `send*` method: a new message in `chat` carrying `content`.
    Send {
        /// The bot's id.
        bot_id: String,
        /// `chat_id` as given (number or `@username`).
        chat: Value,
        /// The method-specific fields of the resulting Message (`text`, `photo`, …).
        content: Map<String, Value>,
    },
    /// `deleteMessage`.
    Delete {
        /// The bot's id.
        bot_id: String,
        /// `chat_id` as given.
        chat: Value,
        /// `message_id`.
        message_id: i64,
    },
    /// `getMe`.
    GetMe {
        /// The bot's id.
        bot_id: String,
    },
    /// `sendChatAction` → `true`.
    True,
}

/// Message ids per chat (they increase per chat, like Telegram's) and deleted messages.
#[derive(Debug, Default)]
pub(crate) struct Chats {
    last_id: HashMap<(String, String), i64>,
    deleted: HashSet<(String, String, i64)>,
}

/// The media methods: (method, parameter, Message field).
const MEDIA: [(&str, &str); 6] = [
    ("sendPhoto", "photo"),
    ("sendDocument", "document"),
    ("sendVideo", "video"),
    ("sendAudio", "audio"),
    ("sendVoice", "voice"),
    ("sendSticker", "sticker"),
];

/// Parses and authenticates a call to `method` with the bot token `token`.
pub(crate) fn parse(
    state: &SimState,
    token: &str,
    method: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Call, Box<Refused>> {
    let bot_id = token.split_once(':').map_or("", |(id, _)| id).to_owned();
    let params = parameters(query, headers, body);
    let params_value = params.clone().map_or(Value::Null, Value::Object);
    let refuse = |reply: Reply, outcome: CallOutcome| {
        Box::new(Refused {
            provider: Provider::Telegram,
            account: bot_id.clone(),
            method: method.to_owned(),
            recipient: text_field(&params_value, "chat_id"),
            body: params_value.clone(),
            reply,
            outcome,
        })
    };
    let authorized = state
        .credential(Provider::Telegram, &bot_id)
        .is_some_and(|expected| expected == token);
    if !authorized {
        return Err(refuse(
            error(StatusCode::UNAUTHORIZED, 401, "Unauthorized", None),
            CallOutcome::Unauthorized,
        ));
    }
    let params = match params {
        Ok(params) => params,
        Err(description) => return Err(refuse(bad_request(&description), CallOutcome::Rejected)),
    };
    let checked = check(&bot_id, method, &params);
    let (op, limited) = match checked {
        Ok(checked) => checked,
        Err(reply) => return Err(refuse(reply, CallOutcome::Rejected)),
    };
    let recipient = text_field(&params_value, "chat_id");
    Ok(Call {
        provider: Provider::Telegram,
        account: bot_id.clone(),
        method: method.to_owned(),
        group: recipient.as_deref().is_some_and(|chat| chat.starts_with('-')),
        recipient,
        limited,
        body: params_value,
        op: Op::Telegram(op),
    })
}

/// The call's parameters: the query string, then the JSON or form body on top.
fn parameters(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, String> {
    let mut params = Map::new();
    let form_pairs = |bytes: &[u8], params: &mut Map<String, Value>| {
        for (name, value) in form_urlencoded::parse(bytes) {
            params.insert(name.into_owned(), Value::String(value.into_owned()));
        }
    };
    if let Some(query) = query {
        form_pairs(query.as_bytes(), &mut params);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if body.is_empty() {
        return Ok(params);
    }
    if content_type.starts_with("multipart/") {
        return Err("Bad Request: multipart uploads are not supported by the simulator".to_owned());
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        form_pairs(body, &mut params);
        return Ok(params);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => {
            params.extend(fields);
            Ok(params)
        }
        _ => Err("Bad Request: can't parse JSON object".to_owned()),
    }
}

/// Checks the method's parameters: the operation and whether it counts against the limits.
fn check(bot_id: &str, method: &str, params: &Map<String, Value>) -> Result<(TelegramOp, bool), Reply> {
    let body = Value::Object(params.clone());
    if method.eq_ignore_ascii_case("getMe") {
        let bot_id = bot_id.to_owned();
        return Ok((TelegramOp::GetMe { bot_id }, false));
    }
    let known = method.eq_ignore_ascii_case("sendMessage")
        || method.eq_ignore_ascii_case("sendLocation")
        || method.eq_ignore_ascii_case("deleteMessage")
        || method.eq_ignore_ascii_case("sendChatAction")
        || MEDIA.iter().any(|(name, _)| method.eq_ignore_ascii_case(name));
    if !known {
        return Err(error(StatusCode::NOT_FOUND, 404, "Not Found", None));
    }
    let Some(chat) = params
        .get("chat_id")
        .filter(|chat| !chat.is_null() && *chat != "")
    else {
        return Err(bad_request("Bad Request: chat_id is empty"));
    };
    let chat = chat_value(chat);
    if method.eq_ignore_ascii_case("sendChatAction") {
        return match text_field(&body, "action") {
            Some(_) => Ok((TelegramOp::True, false)),
            None => Err(bad_request("Bad Request: action is empty")),
        };
    }
    if method.eq_ignore_ascii_case("deleteMessage") {
        let message_id = text_field(&body, "message_id").and_then(|id| id.parse::<i64>().ok());
        let Some(message_id) = message_id else {
            return Err(bad_request("Bad Request: message identifier is not specified"));
        };
        let bot_id = bot_id.to_owned();
        return Ok((
            TelegramOp::Delete {
                bot_id,
                chat,
                message_id,
            },
            false,
        ));
    }
    let mut content = Map::new();
    if method.eq_ignore_ascii_case("sendMessage") {
        let text = text_field(&body, "text").unwrap_or_default();
        if text.trim().is_empty() {
            return Err(bad_request("Bad Request: message text is empty"));
        }
        if text.chars().count() > 4096 {
            return Err(bad_request("Bad Request: message is too long"));
        }
        content.insert("text".to_owned(), Value::String(text));
    } else if method.eq_ignore_ascii_case("sendLocation") {
        let coordinate = |name: &str| text_field(&body, name).and_then(|value| value.parse::<f64>().ok());
        let (Some(latitude), Some(longitude)) = (coordinate("latitude"), coordinate("longitude")) else {
            return Err(bad_request("Bad Request: wrong latitude or longitude specified"));
        };
        content.insert(
            "location".to_owned(),
            json!({"latitude": latitude, "longitude": longitude}),
        );
    } else if let Some((_, field)) = MEDIA.iter().find(|(name, _)| method.eq_ignore_ascii_case(name)) {
        if params
            .get(*field)
            .is_none_or(|value| value.is_null() || *value == "")
        {
            return Err(bad_request(&format!(
                "Bad Request: there is no {field} in the request"
            )));
        }
        content.insert((*field).to_owned(), media_object(field));
        if let Some(caption) = text_field(&body, "caption") {
            if caption.chars().count() > 1024 {
                return Err(bad_request("Bad Request: message caption is too long"));
            }
            content.insert("caption".to_owned(), Value::String(caption));
        }
    }
    let bot_id = bot_id.to_owned();
    Ok((
        TelegramOp::Send {
            bot_id,
            chat,
            content,
        },
        true,
    ))
}

/// `chat_id` as Telegram echoes it: a number when numeric, else the `@username` text.
fn chat_value(chat: &Value) -> Value {
    match chat {
        Value::String(text) => text.parse::<i64>().map_or_else(|_| chat.clone(), Value::from),
        other => other.clone(),
    }
}

fn chat_key(chat: &Value) -> String {
    match chat {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The File object a media message carries (new ids, fixed sizes).
fn media_object(field: &str) -> Value {
    let file = |extra: Value| {
        let mut object = json!({
            "file_id": format!("AgAC{}", random_token(24)),
            "file_unique_id": format!("AQAD{}", random_token(8)),
            "file_size": 48_213,
        });
        if let (Some(object), Value::Object(extra)) = (object.as_object_mut(), extra) {
            object.extend(extra);
        }
        object
    };
    match field {
        "photo" => json!([
            file(json!({"width": 90, "height": 67})),
            file(json!({"width": 1280, "height": 960})),
        ]),
        "video" => file(json!({"width": 1280, "height": 720, "duration": 5})),
        "audio" | "voice" => file(json!({"duration": 5})),
        "sticker" => file(
            json!({"width": 512, "height": 512, "is_animated": false, "is_video": false, "type": "regular"}),
        ),
        _ => file(json!({"file_name": "document"})),
    }
}

fn bot_user(bot_id: &str) -> Value {
    let id = bot_id
        .parse::<i64>()
        .map_or_else(|_| Value::from(bot_id), Value::from);
    json!({"id": id, "is_bot": true, "first_name": "Simulated Bot", "username": format!("sim_{bot_id}_bot")})
}

/// The success answer of an accepted Telegram call.
pub(crate) fn accept(op: &TelegramOp, chats: &mut Chats) -> Result<Accepted, Reply> {
    let (result, message_id) = match op {
        TelegramOp::Send {
            bot_id,
            chat,
            content,
        } => {
            let key = (bot_id.clone(), chat_key(chat));
            let last = chats.last_id.entry(key).or_insert(0);
            *last += 1;
            let chat_type = match chat {
                Value::String(_) => "channel",
                _ if chat_key(chat).starts_with("-100") => "supergroup",
                _ if chat_key(chat).starts_with('-') => "group",
                _ => "private",
            };
            let mut message = json!({
                "message_id": *last,
                "from": bot_user(bot_id),
                "chat": {"id": chat, "type": chat_type},
                "date": chrono::Utc::now().timestamp(),
            });
            if let Some(message) = message.as_object_mut() {
                message.extend(content.clone());
            }
            (message, Some(format!("{}:{}", chat_key(chat), *last)))
        }
        TelegramOp::Delete {
            bot_id,
            chat,
            message_id,
        } => {
            let key = (bot_id.clone(), chat_key(chat));
            let sent = chats
                .last_id
                .get(&key)
                .is_some_and(|last| (1..=*last).contains(message_id));
            let (bot, chat) = key;
            if !sent || !chats.deleted.insert((bot, chat, *message_id)) {
                return Err(bad_request("Bad Request: message to delete not found"));
            }
            (Value::Bool(true), None)
        }
        TelegramOp::GetMe { bot_id } => (bot_user(bot_id), None),
        TelegramOp::True => (Value::Bool(true), None),
    };
    Ok(Accepted {
        reply: Reply::ok(StatusCode::OK, json!({"ok": true, "result": result})),
        message_id,
        receipts: None,
    })
}

/// Telegram's error object; `retry_after` adds `parameters.retry_after`.
pub(crate) fn error(status: StatusCode, code: i64, description: &str, retry_after: Option<u64>) -> Reply {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(retry_after) = retry_after {
        body["parameters"] = json!({ "retry_after": retry_after });
    }
    Reply::error(status, code.to_string(), body)
}

fn bad_request(description: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, 400, description, None)
}

/// 429 `Too Many Requests: retry after N` with `parameters.retry_after`.
pub(crate) fn too_many_requests(retry_after: u64) -> Reply {
    error(
        StatusCode::TOO_MANY_REQUESTS,
        429,
        &format!("Too Many Requests: retry after {retry_after}"),
        Some(retry_after),
    )
}

/// A 5xx with Telegram's body.
pub(crate) fn server_error(status: StatusCode) -> Reply {
    let description = status.canonical_reason().unwrap_or("Internal Server Error");
    error(status, i64::from(status.as_u16()), description, None)
}

/// A Telegram error with `code`; the HTTP status is the code when it is one.
pub(crate) fn provider_error(code: &str, status: Option<u16>, message: Option<&str>) -> Reply {
    let numeric = code.parse::<i64>().unwrap_or(400);
    let status = status
        .or_else(|| u16::try_from(numeric).ok())
        .and_then(|status| StatusCode::from_u16(status).ok())
        .filter(|status| status.is_client_error() || status.is_server_error())
        .unwrap_or(StatusCode::BAD_REQUEST);
    let known = match numeric {
        400 => "Bad Request: chat not found",
        401 => "Unauthorized",
        403 => "Forbidden: bot was blocked by the user",
        404 => "Not Found",
        409 => "Conflict: terminated by other getUpdates request",
        429 => "Too Many Requests: retry after 1",
        _ => "Internal Server Error",
    };
    error(status, numeric, message.unwrap_or(known), None)
}
