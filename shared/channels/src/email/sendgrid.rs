//! SendGrid Inbound Parse: `multipart/form-data` (RFC 7578) posts, either with the raw MIME
//! message (`email`, "POST the raw, full MIME message") or with parsed fields (`headers`,
//! `text`, `html`, `from`, `subject`, `attachmentN` files). SendGrid signs nothing by default;
//! ingress protects the URL with Basic auth credentials (as with Postmark).
//! See <https://www.twilio.com/docs/sendgrid/for-developers/parsing-email/setting-up-the-inbound-parse-webhook>.

use super::form_data::form_fields;
use super::{AttachmentInfo, normalize_raw};
use crate::{NormalizeContext, NormalizeError, Normalized, Verified};

const PROVIDER: &str = "sendgrid";

/// `headers` without the lines (and their folded continuations) of the MIME structure headers,
/// which describe the original body, not the text we rebuild it from.
fn without_mime_structure(headers: &str) -> String {
    let mut kept = String::new();
    let mut skipping = false;
    for line in headers.lines() {
        let continuation = line.starts_with([' ', '\t']);
        if !continuation {
            let name = line.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
            skipping = matches!(
                name.as_str(),
                "content-type" | "content-transfer-encoding" | "mime-version"
            );
        }
        if !skipping && !line.trim().is_empty() {
            kept.push_str(line);
            kept.push_str("\r\n");
        }
    }
    kept
}

/// Normalizes a verified SendGrid Inbound Parse post; `content_type` is the request's
/// `Content-Type` header (it carries the multipart boundary).
pub fn normalize(
    body: Verified<'_>,
    content_type: &str,
    context: &NormalizeContext,
) -> Result<Normalized, NormalizeError> {
    let fields = form_fields(content_type, body.body()).ok_or_else(|| NormalizeError::Envelope {
        provider: PROVIDER,
        reason: "body is not multipart/form-data with a boundary".to_owned(),
    })?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|field| field.name == name && field.filename.is_none())
    };
    if let Some(raw) = field("email") {
        return normalize_raw(Verified::new(&raw.body), context);
    }
    let headers = field("headers").ok_or_else(|| NormalizeError::Envelope {
        provider: PROVIDER,
        reason: "neither `email` (raw MIME) nor `headers` is present".to_owned(),
    })?;
    let text = field("text")
        .filter(|text| !text.body.iter().all(u8::is_ascii_whitespace))
        .map(|text| ("text/plain", &text.body))
        .or_else(|| field("html").map(|html| ("text/html", &html.body)));
    // Rebuild one RFC 5322 message from the original headers and the text SendGrid parsed
    // (UTF-8 after its `charsets` conversion), so one parser handles threading and loops.
    let mut rebuilt = without_mime_structure(&String::from_utf8_lossy(&headers.body)).into_bytes();
    let empty = Vec::new();
    let (body_type, body) = text.unwrap_or(("text/plain", &empty));
    rebuilt.extend_from_slice(
        format!("MIME-Version: 1.0\r\nContent-Type: {body_type}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
            .as_bytes(),
    );
    rebuilt.extend_from_slice(body);
    let mut normalized = normalize_raw(Verified::new(&rebuilt), context)?;
    let attachments: Vec<AttachmentInfo> = fields
        .iter()
        .filter(|field| field.filename.is_some() && field.name.starts_with("attachment"))
        .map(|field| AttachmentInfo {
            filename: field.filename.clone().unwrap_or_default(),
            content_type: field.content_type.clone(),
            size: field.body.len() as u64,
        })
        .collect();
    for event in &mut normalized.events {
        if let Some(switchboard_proto::events::v1::inbound_event::Kind::Message(message)) = &mut event.kind {
            message
                .parts
                .extend(attachments.iter().map(super::attachment_part));
        }
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_structure_headers_are_dropped_with_their_continuations() {
        let headers =
            "Subject: Hi\r\nContent-Type: multipart/alternative;\r\n boundary=\"x\"\r\nMessage-ID: <a@b>\r\n";
        assert_eq!(
            without_mime_structure(headers),
            "Subject: Hi\r\nMessage-ID: <a@b>\r\n"
        );
    }
}
