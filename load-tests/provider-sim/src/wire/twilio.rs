//! Twilio Programmable Messaging (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! HTTP Basic, form body) with Twilio's `{code, message, more_info, status}` errors
//! (CHANNELS.md §6.5–6.6).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value, json};

use super::{Accepted, Call, Op, ReceiptTarget, Refused, Reply};
use crate::model::{CallOutcome, Provider};
use crate::state::SimState;

/// The method name recorded for Twilio calls.
pub(crate) const METHOD: &str = "Messages.json";

/// An accepted Twilio message.
#[derive(Debug, Clone)]
pub(crate) struct TwilioOp {
    /// `To`.
    pub to: String,
    /// `From`, if given.
    pub from: Option<String>,
    /// `MessagingServiceSid`, if given.
    pub messaging_service_sid: Option<String>,
    /// `Body` (empty for media-only).
    pub body: String,
    /// Every `MediaUrl`.
    pub media_urls: Vec<String>,
    /// `StatusCallback`, if given.
    pub status_callback: Option<String>,
}

/// Parses and authenticates a `Messages.json` call on `account_sid`.
pub(crate) fn parse(
    state: &SimState,
    account_sid: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Call, Box<Refused>> {
    let mut fields = Map::new();
    let mut media_urls = Vec::new();
    for (name, value) in form_urlencoded::parse(body) {
        if name == "MediaUrl" {
            media_urls.push(value.into_owned());
        } else {
            fields.insert(name.into_owned(), Value::String(value.into_owned()));
        }
    }
    if !media_urls.is_empty() {
        fields.insert("MediaUrl".to_owned(), json!(media_urls));
    }
    let field = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    let to = field("To");
    let refuse = |reply: Reply, outcome: CallOutcome| {
        Box::new(Refused {
            provider: Provider::Twilio,
            account: account_sid.to_owned(),
            method: METHOD.to_owned(),
            recipient: to.clone(),
            body: Value::Object(fields.clone()),
            reply,
            outcome,
        })
    };
    let authorized = basic_credentials(headers).is_some_and(|(user, password)| {
        user == account_sid
            && state
                .credential(Provider::Twilio, account_sid)
                .is_some_and(|expected| expected == password)
    });
    if !authorized {
        return Err(refuse(unauthorized(), CallOutcome::Unauthorized));
    }
    let text = field("Body").unwrap_or_default();
    let invalid = if to.is_none() {
        Some("21604")
    } else if field("From").is_none() && field("MessagingServiceSid").is_none() {
        Some("21603")
    } else if text.is_empty() && media_urls.is_empty() && field("ContentSid").is_none() {
        Some("21602")
    } else if text.chars().count() > 1600 {
        Some("21617")
    } else if media_urls.len() > 10 {
        Some("21623")
    } else {
        None
    };
    if let Some(code) = invalid {
        return Err(refuse(provider_error(code, None, None), CallOutcome::Rejected));
    }
    let op = TwilioOp {
        to: to.clone().unwrap_or_default(),
        from: field("From"),
        messaging_service_sid: field("MessagingServiceSid"),
        body: text,
        media_urls,
        status_callback: field("StatusCallback"),
    };
    Ok(Call {
        provider: Provider::Twilio,
        account: account_sid.to_owned(),
        method: METHOD.to_owned(),
        recipient: to,
        group: false,
        limited: true,
        body: Value::Object(fields),
        op: Op::Twilio(op),
    })
}

/// `(user, password)` of an HTTP Basic `Authorization` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// SMS segments of `text`: GSM-7 160 / 153 per part, otherwise UCS-2 70 / 67.
fn segments(text: &str) -> usize {
    const GSM: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    if text.is_empty() {
        return 1;
    }
    let (single, part, units) = if text.chars().all(|c| GSM.contains(c)) {
        (160, 153, text.chars().count())
    } else {
        (70, 67, text.encode_utf16().count())
    };
    if units <= single { 1 } else { units.div_ceil(part) }
}

/// The 201 Message resource of an accepted send.
pub(crate) fn accept(call: &Call, op: &TwilioOp) -> Accepted {
    let prefix = if op.media_urls.is_empty() { "SM" } else { "MM" };
    let sid = format!("{prefix}{}", hex::encode(rand::random::<[u8; 16]>()));
    let account_sid = &call.account;
    let now = chrono::Utc::now().to_rfc2822();
    // Through a Messaging Service without From, Twilio answers `accepted` and picks the
    // sender later.
    let status = if op.from.is_none() { "accepted" } else { "queued" };
    let uri = format!("/2010-04-01/Accounts/{account_sid}/Messages/{sid}");
    let body = json!({
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": op.body,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": op.from,
        "messaging_service_sid": op.messaging_service_sid,
        "num_media": op.media_urls.len().to_string(),
        "num_segments": segments(&op.body).to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": {"media": format!("{uri}/Media.json")},
        "to": op.to,
        "uri": format!("{uri}.json"),
    });
    Accepted {
        reply: Reply::ok(StatusCode::CREATED, body),
        message_id: Some(sid.clone()),
        receipts: Some(ReceiptTarget {
            message_id: sid,
            recipient: op.to.clone(),
            biz_opaque_callback_data: None,
            status_callback: op.status_callback.clone(),
            from: op.from.clone(),
            messaging_service_sid: op.messaging_service_sid.clone(),
        }),
    }
}

/// Twilio's error body.
fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    let code_value = code
        .parse::<i64>()
        .map_or_else(|_| Value::String(code.to_owned()), Value::from);
    let body = json!({
        "code": code_value,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    Reply::error(status, code, body)
}

/// 20003 (HTTP 401): unknown account or wrong auth token.
pub(crate) fn unauthorized() -> Reply {
    error(StatusCode::UNAUTHORIZED, "20003", "Authenticate")
        .with_header(header::WWW_AUTHENTICATE, "Basic realm=\"Twilio API\"")
}

/// 20429 (HTTP 429): too many requests.
pub(crate) fn too_many_requests() -> Reply {
    error(StatusCode::TOO_MANY_REQUESTS, "20429", "Too Many Requests")
}

/// A 5xx: 20500 internal error, 20503 unavailable.
pub(crate) fn server_error(status: StatusCode) -> Reply {
    let (code, message) = if status == StatusCode::SERVICE_UNAVAILABLE {
        ("20503", "Service Unavailable")
    } else {
        ("20500", "An internal server error has occurred")
    };
    error(status, code, message)
}

/// A Twilio error with `code` (Twilio's text for known codes) and HTTP `status`.
pub(crate) fn provider_error(code: &str, status: Option<u16>, message: Option<&str>) -> Reply {
    let (known_status, known_message) = match code {
        "20003" => (401, "Authenticate"),
        "20429" => (429, "Too Many Requests"),
        "21211" => (400, "Invalid 'To' Phone Number"),
        "21602" => (400, "Message body is required."),
        "21603" => (400, "A 'From' phone number is required."),
        "21604" => (400, "A 'To' phone number is required."),
        "21610" => (400, "Attempt to send to unsubscribed recipient"),
        "21611" => (
            400,
            "This 'From' number has exceeded the maximum number of queued messages",
        ),
        "21614" => (400, "'To' number is not a valid mobile number"),
        "21617" => (
            400,
            "The concatenated message body exceeds the 1600 character limit.",
        ),
        "21623" => (400, "The number of media files exceeds the allowed limit of 10."),
        "63016" => (
            400,
            "Failed to send freeform message because you are outside the allowed window. If you are using WhatsApp, please use a Message Template.",
        ),
        "63018" => (429, "Rate limit exceeded for Channel"),
        _ => (400, "Simulated error"),
    };
    let status = StatusCode::from_u16(status.unwrap_or(known_status)).unwrap_or(StatusCode::BAD_REQUEST);
    error(status, code, message.unwrap_or(known_message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_gsm7_and_ucs2_sizes() {
        assert_eq!(segments("hello"), 1);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"ä".repeat(160)), 1);
        assert_eq!(segments(&"✓".repeat(70)), 1);
        assert_eq!(segments(&"✓".repeat(71)), 2);
    }
}
