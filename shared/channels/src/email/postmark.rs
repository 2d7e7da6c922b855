//! Postmark inbound webhooks: JSON, authenticated by Basic auth credentials in the webhook URL
//! (Postmark signs nothing). See <https://postmarkapp.com/developer/webhooks/inbound-webhook>.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{AttachmentInfo, Email, bare_message_id};
use crate::verify::single_header;
use crate::{NormalizeContext, NormalizeError, Normalized, Verified, VerifyError};

const PROVIDER: &str = "postmark";

/// Checks `Authorization: Basic base64(user:password)` against the account's credentials.
pub fn verify_basic_auth<'a>(
    headers: &http::HeaderMap,
    body: &'a [u8],
    user: &str,
    password: &[u8],
) -> Result<Verified<'a>, VerifyError> {
    let value = single_header(headers, "authorization")?;
    let encoded = value.strip_prefix("Basic ").ok_or(VerifyError::Malformed {
        header: "authorization",
    })?;
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| VerifyError::Malformed {
            header: "authorization",
        })?;
    let mut expected = user.as_bytes().to_vec();
    expected.push(b':');
    expected.extend_from_slice(password);
    if password.is_empty() || !bool::from(decoded.ct_eq(&expected)) {
        return Err(VerifyError::Mismatch);
    }
    Ok(Verified::new(body))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inbound {
    #[serde(default, rename = "MessageID")]
    message_id: String,
    #[serde(default)]
    from_full: Option<Address>,
    #[serde(default)]
    from: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text_body: String,
    #[serde(default)]
    stripped_text_reply: String,
    #[serde(default)]
    headers: Vec<NamedValue>,
    #[serde(default)]
    attachments: Vec<Attachment>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Address {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NamedValue {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attachment {
    #[serde(default)]
    name: String,
    #[serde(default)]
    content_type: String,
    #[serde(default)]
    content_length: u64,
}

/// Normalizes a verified Postmark inbound webhook. The RFC `Message-ID` (from `Headers[]`) is
/// the message id, so replies thread with our outbound mail; Postmark's own id is the delivery id.
pub fn normalize(body: Verified<'_>, context: &NormalizeContext) -> Result<Normalized, NormalizeError> {
    let inbound: Inbound = serde_json::from_slice(&crate::normalize::json_without_nul_escapes(body.body()))
        .map_err(|source| NormalizeError::Json {
        provider: PROVIDER,
        source,
    })?;
    let header = |name: &str| {
        inbound
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value.clone())
            .unwrap_or_default()
    };
    let (from_name, from_address) = match &inbound.from_full {
        Some(address) if !address.email.is_empty() => (address.name.clone(), address.email.clone()),
        _ => (String::new(), inbound.from.clone()),
    };
    if from_address.is_empty() {
        return Err(NormalizeError::Envelope {
            provider: PROVIDER,
            reason: "no From address".to_owned(),
        });
    }
    let rfc_id = bare_message_id(&header("Message-ID"));
    let text = if inbound.stripped_text_reply.trim().is_empty() {
        inbound.text_body.clone()
    } else {
        inbound.stripped_text_reply.clone()
    };
    let (in_reply_to, references) = super::reply_headers(&header("In-Reply-To"), &header("References"));
    let email = Email {
        message_id: if rfc_id.is_empty() {
            format!("postmark:{}", inbound.message_id)
        } else {
            rfc_id
        },
        in_reply_to,
        references,
        from_address,
        from_name,
        subject: inbound.subject.clone(),
        text,
        date_seconds: None,
        attachments: inbound
            .attachments
            .iter()
            .map(|attachment| AttachmentInfo {
                filename: attachment.name.clone(),
                content_type: attachment.content_type.clone(),
                size: attachment.content_length,
            })
            .collect(),
    };
    Ok(super::single_message(email, context, inbound.message_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_v9_basic_auth() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "authorization",
            "Basic cG9zdG1hcms6czNjcmV0LXBhc3M=".parse().unwrap(),
        );
        assert!(verify_basic_auth(&headers, b"{}", "postmark", b"s3cret-pass").is_ok());
        assert_eq!(
            verify_basic_auth(&headers, b"{}", "postmark", b"wrong").unwrap_err(),
            VerifyError::Mismatch
        );
        assert_eq!(
            verify_basic_auth(&headers, b"{}", "other", b"s3cret-pass").unwrap_err(),
            VerifyError::Mismatch
        );
        assert!(matches!(
            verify_basic_auth(&http::HeaderMap::new(), b"{}", "postmark", b"s3cret-pass"),
            Err(VerifyError::Missing { .. })
        ));
    }
}
