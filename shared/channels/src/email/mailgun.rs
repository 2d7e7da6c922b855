//! Mailgun Routes `forward()` webhooks: `signature = hex(HMAC-SHA256(signing key,
//! timestamp + token))`, with stale timestamps refused (replayed tokens are ingress's to
//! remember). See <https://documentation.mailgun.com/docs/mailgun/user-manual/receive-forward-store/>.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{AttachmentInfo, Email, bare_message_id};
use crate::{NormalizeContext, NormalizeError, Normalized, Verified, VerifyError};

const PROVIDER: &str = "mailgun";

/// The text fields of a Mailgun post, URL-encoded or (with attachments) `multipart/form-data`,
/// plus the attached files.
fn form(body: &[u8], content_type: &str) -> Option<(BTreeMap<String, String>, Vec<AttachmentInfo>)> {
    let mut fields = BTreeMap::new();
    let mut attachments = Vec::new();
    if content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        for field in super::form_data::form_fields(content_type, body)? {
            match field.filename {
                Some(filename) => attachments.push(AttachmentInfo {
                    filename,
                    content_type: field.content_type,
                    size: field.body.len() as u64,
                }),
                None => {
                    fields
                        .entry(field.name)
                        .or_insert_with(|| String::from_utf8_lossy(&field.body).into_owned());
                }
            }
        }
    } else {
        for (name, value) in crate::twilio::parse_form(body)? {
            fields.entry(name).or_insert(value);
        }
    }
    Some((fields, attachments))
}

/// Verifies a Mailgun webhook (URL-encoded or multipart, per `content_type`); `max_age` bounds
/// how old its timestamp may be.
pub fn verify_signature<'a>(
    body: &'a [u8],
    content_type: &str,
    signing_key: &[u8],
    now: SystemTime,
    max_age: Duration,
) -> Result<Verified<'a>, VerifyError> {
    let (fields, _) = form(body, content_type).ok_or(VerifyError::Malformed { header: "signature" })?;
    let field = |name: &'static str| fields.get(name).ok_or(VerifyError::Missing { header: name });
    let (timestamp, token, signature) = (field("timestamp")?, field("token")?, field("signature")?);
    let expected = hex::decode(signature).map_err(|_| VerifyError::Malformed { header: "signature" })?;
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(signing_key).map_err(|_| VerifyError::Mismatch)?;
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.verify_slice(&expected).map_err(|_| VerifyError::Mismatch)?;
    // Checked: a signed timestamp no clock can hold is malformed, not a panic.
    let sent_at = timestamp
        .parse::<u64>()
        .ok()
        .and_then(|seconds| UNIX_EPOCH.checked_add(Duration::from_secs(seconds)))
        .ok_or(VerifyError::Malformed { header: "timestamp" })?;
    let age = now
        .duration_since(sent_at)
        .unwrap_or_else(|error| error.duration());
    if age > max_age {
        // A correctly signed but old request is a replay.
        return Err(VerifyError::Mismatch);
    }
    Ok(Verified::new(body))
}

/// Normalizes a verified Mailgun webhook; `body-mime` (raw MIME routes) goes through the MIME
/// parser, parsed fields otherwise. The Mailgun `token` is the delivery id (for replay checks).
pub fn normalize(
    body: Verified<'_>,
    content_type: &str,
    context: &NormalizeContext,
) -> Result<Normalized, NormalizeError> {
    let (fields, files) = form(body.body(), content_type).ok_or_else(|| NormalizeError::Envelope {
        provider: PROVIDER,
        reason: "body is neither URL-encoded UTF-8 nor multipart/form-data".to_owned(),
    })?;
    let token = fields.get("token").cloned().unwrap_or_default();
    if let Some(mime) = fields.get("body-mime") {
        let mut normalized = super::normalize_raw(Verified::new(mime.as_bytes()), context)?;
        for event in &mut normalized.events {
            event.provider_event_id = token.clone();
        }
        return Ok(normalized);
    }
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let headers: Vec<(String, String)> = serde_json::from_str(&field("message-headers")).unwrap_or_default();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let (from_name, from_address) = split_address(&field("from"));
    if from_address.is_empty() {
        return Err(NormalizeError::Envelope {
            provider: PROVIDER,
            reason: "no from address".to_owned(),
        });
    }
    let stripped = field("stripped-text");
    let text = if stripped.trim().is_empty() {
        field("body-plain")
    } else {
        stripped
    };
    let message_id = bare_message_id(&header("Message-Id"));
    let (in_reply_to, references) = super::reply_headers(&header("In-Reply-To"), &header("References"));
    let email = Email {
        message_id: if message_id.is_empty() {
            format!("mailgun:{token}")
        } else {
            message_id
        },
        in_reply_to,
        references,
        from_address,
        from_name,
        subject: field("subject"),
        text,
        date_seconds: None,
        attachments: files,
    };
    Ok(super::single_message(email, context, token))
}

/// Splits `Name <address>` (or a bare address) into its parts.
pub(crate) fn split_address(value: &str) -> (String, String) {
    match (value.rfind('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => (
            value[..open].trim().trim_matches('"').to_owned(),
            value[open + 1..close].trim().to_owned(),
        ),
        _ => (String::new(), value.trim().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URLENCODED: &str = "application/x-www-form-urlencoded";

    #[test]
    fn vector_v7_and_staleness() {
        let body = "timestamp=1770920772&token=e0b5477167110d68991efc6b9f89f0a11066af27834600e123&signature=a657526fe3a3ca58adb887d623dab9ab0df56e0f176f20b30218753f8a5c2008&from=a%40b.c";
        let sent = UNIX_EPOCH + Duration::from_secs(1_770_920_772);
        let max_age = Duration::from_secs(900);
        assert!(
            verify_signature(
                body.as_bytes(),
                URLENCODED,
                b"my_mailgun_signing_key",
                sent + Duration::from_secs(60),
                max_age
            )
            .is_ok()
        );
        assert_eq!(
            verify_signature(
                body.as_bytes(),
                URLENCODED,
                b"my_mailgun_signing_key",
                sent + Duration::from_secs(3_600),
                max_age
            )
            .unwrap_err(),
            VerifyError::Mismatch,
            "an hour-old signature is a replay"
        );
        assert_eq!(
            verify_signature(body.as_bytes(), URLENCODED, b"other_key", sent, max_age).unwrap_err(),
            VerifyError::Mismatch
        );
        assert!(matches!(
            verify_signature(b"timestamp=1&token=x", URLENCODED, b"k", sent, max_age),
            Err(VerifyError::Missing { header: "signature" })
        ));
    }

    #[test]
    fn addresses_split_into_name_and_address() {
        assert_eq!(
            split_address("\"Jane Doe\" <jane@example.com>"),
            ("Jane Doe".to_owned(), "jane@example.com".to_owned())
        );
        assert_eq!(
            split_address("jane@example.com"),
            (String::new(), "jane@example.com".to_owned())
        );
    }
}
