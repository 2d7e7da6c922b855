use std::time::SystemTime;

use switchboard_domain::ChannelAccountId;
use switchboard_proto::events::v1::InboundEvent;

/// What normalization knows besides the payload: the account the webhook was addressed to.
#[derive(Debug, Clone)]
pub struct NormalizeContext {
    /// The channel account from the webhook path (never from the payload).
    pub channel_account_id: ChannelAccountId,
    /// The provider's id of that account (e.g. the WhatsApp phone_number_id); payload items
    /// addressed to another id are skipped, not delivered to the wrong tenant.
    pub external_id: String,
    /// When ingress accepted the webhook.
    pub received_at: SystemTime,
}

/// One item of a payload that produced no event, with why (ignored types, foreign accounts,
/// unsupported shapes). Ingress records them; the provider still gets 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where in the payload (e.g. `entry[0].changes[1]`).
    pub location: String,
    /// Why nothing was produced.
    pub reason: String,
}

/// The events of one webhook, in payload order, plus what was skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Normalized {
    /// One event per message, status, reaction, edit or delete in the payload.
    pub events: Vec<InboundEvent>,
    /// Items that produced no event.
    pub skipped: Vec<Skipped>,
}

/// A verified payload that cannot be understood at all (truncated JSON, wrong envelope).
/// Ingress answers 2xx (the provider must not retry forever) and keeps a dead-letter record.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// The body is not the JSON the provider sends.
    #[error("payload is not valid {provider} JSON: {source}")]
    Json {
        /// Which provider format was expected.
        provider: &'static str,
        /// The parser's error (line, column, what was expected).
        #[source]
        source: serde_json::Error,
    },
    /// The JSON is valid but its envelope is not this provider's.
    #[error("unexpected {provider} envelope: {reason}")]
    Envelope {
        /// Which provider format was expected.
        provider: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Deepest JSON nesting a webhook may have; providers' payloads stay under ten levels.
pub const MAX_JSON_DEPTH: usize = 64;

/// True when `body`, read as JSON, nests arrays/objects deeper than `max_depth`. A linear scan
/// that never recurses, for refusing nesting bombs before any parser sees them.
pub fn json_too_deep(body: &[u8], max_depth: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// `text` with every NUL replaced by U+FFFD. PostgreSQL's text and jsonb cannot hold U+0000,
/// so a name or message carrying one could never be stored: the event would fail in every
/// consumer, a validly signed webhook dead-lettered. U+FFFD is what browsers show for it too.
pub(crate) fn without_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// A verified JSON body whose `\u0000` escapes (the only way JSON carries a NUL) inside
/// strings read `\ufffd` instead: same length, so positions in parse errors stay true. An
/// escaped backslash followed by `u0000` is text, not a NUL, and stays.
pub(crate) fn json_without_nul_escapes(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const NUL_ESCAPE: &[u8] = b"u0000";
    let mut replaced: Option<Vec<u8>> = None;
    let (mut in_string, mut escaped) = (false, false);
    for (at, &byte) in body.iter().enumerate() {
        if in_string {
            match (escaped, byte) {
                (true, b'u') if body.get(at..at + NUL_ESCAPE.len()) == Some(NUL_ESCAPE) => {
                    let copy = replaced.get_or_insert_with(|| body.to_vec());
                    copy[at + 1..at + NUL_ESCAPE.len()].copy_from_slice(b"fffd");
                    escaped = false;
                }
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        }
    }
    replaced.map_or(std::borrow::Cow::Borrowed(body), std::borrow::Cow::Owned)
}

/// The media kind of a MIME type (`image/jpeg` → image; anything unknown → document).
pub(crate) fn media_kind_of_mime(mime_type: &str) -> switchboard_proto::common::v1::MediaKind {
    use switchboard_proto::common::v1::MediaKind;
    match mime_type
        .split('/')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "image" => MediaKind::Image,
        "video" => MediaKind::Video,
        "audio" => MediaKind::Audio,
        _ => MediaKind::Document,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_escapes_inside_strings_become_replacement_characters() {
        let body = br#"{"name":"Ana\u0000Maria","text":"a \\u0000 b","key\u0000":1,"raw":"\u00001"}"#;
        let cleaned = json_without_nul_escapes(body);
        let value: serde_json::Value = serde_json::from_slice(&cleaned).expect("still JSON");
        assert_eq!(value["name"], "Ana\u{FFFD}Maria");
        // An escaped backslash then `u0000` is text, not a NUL.
        assert_eq!(value["text"], "a \\u0000 b");
        assert_eq!(value["key\u{FFFD}"], 1);
        assert_eq!(value["raw"], "\u{FFFD}1");
        assert_eq!(cleaned.len(), body.len());
        let clean = br#"{"a":"b"}"#;
        assert!(matches!(
            json_without_nul_escapes(clean),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(without_nul("a\0b".to_owned()), "a\u{FFFD}b");
    }
}
