//! Meta Graph API sends, shared by WhatsApp, Messenger and Instagram: `POST
//! {base}/{version}/{node}/messages` with a bearer token (plus `appsecret_proof` when the
//! account has an app secret), and the Graph error envelope
//! `{"error":{"message","type","code","error_subcode","error_user_title","error_user_msg",
//! "error_data":{"details"},"fbtrace_id"}}` (CHANNELS.md §1).

use serde_json::Value;
use switchboard_proto::common::v1::ProviderError;

use super::wire::{
    as_i64, authorization, base_url, by_status, outcome, path_segment, post_json, retry_after,
    retryable_status, secret, setting, success, unparseable, with_query,
};
use super::{BuildError, DEFAULT_GRAPH_VERSION, ProviderAccount, ProviderRequest, SendOutcome};

/// Graph's public base URL.
pub(crate) const DEFAULT_BASE: &str = "https://graph.facebook.com";

/// How one platform treats a Graph error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A passing condition (throttling, temporary failure): retry whatever the HTTP status.
    Retry,
    /// The message can never be sent as it is: no retry whatever the HTTP status.
    Stop,
    /// A code the adapter does not know: the HTTP status decides.
    ByStatus,
}

/// `POST {base}/{api_version}/{external_id}/messages` carrying `body`, authorized with the
/// account's `access_token` (and its `appsecret_proof` when `app_secret` is set).
pub(crate) fn post_messages(
    account: &ProviderAccount<'_>,
    body: &Value,
) -> Result<ProviderRequest, BuildError> {
    let token = secret(account, "access_token")?;
    if account.external_id.is_empty() {
        return Err(BuildError::MissingCredential("external_id"));
    }
    let version = setting(account, "api_version").unwrap_or(DEFAULT_GRAPH_VERSION);
    let mut url = format!(
        "{}/{}/{}/messages",
        base_url(account, DEFAULT_BASE),
        path_segment(version),
        path_segment(account.external_id)
    );
    if let Ok(app_secret) = secret(account, "app_secret") {
        url = with_query(&url, "appsecret_proof", &appsecret_proof(app_secret, token));
    }
    let authorization = authorization(&format!("Bearer {token}"), "valid access_token")?;
    Ok(post_json(url, body, Some(authorization)))
}

/// `hex(HMAC-SHA256(key = app secret, message = access token))`.
pub(crate) fn appsecret_proof(app_secret: &str, access_token: &str) -> String {
    crate::meta::hmac_sha256_hex(app_secret.as_bytes(), access_token.as_bytes())
}

/// Classifies a Graph answer: a 2xx with the id `accepted_id` finds in it is accepted; a
/// Graph error goes by `verdict(code, subcode)`; any other body by its HTTP status.
pub(crate) fn classify(
    status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
    accepted_id: impl Fn(&Value) -> Option<&str>,
    verdict: impl Fn(i64, Option<i64>) -> Verdict,
) -> SendOutcome {
    if success(status) {
        let parsed = serde_json::from_slice::<Value>(body).ok();
        return match parsed.as_ref().and_then(accepted_id).filter(|id| !id.is_empty()) {
            Some(id) => SendOutcome::Accepted {
                provider_message_id: id.to_owned(),
            },
            None => unparseable(status),
        };
    }
    let Some((code, subcode, error)) = parse_error(body) else {
        return by_status(status, headers, body);
    };
    let retryable = match verdict(code, subcode) {
        Verdict::Retry => true,
        Verdict::Stop => false,
        Verdict::ByStatus => retryable_status(status),
    };
    outcome(retryable, error, retry_after(headers))
}

/// The envelope's code, subcode and the [`ProviderError`] made of it: code `"131047"` or
/// `"10/2018278"`, title the user title (else the WhatsApp title, else the type), message the
/// developer message, details `error_data.details`.
fn parse_error(body: &[u8]) -> Option<(i64, Option<i64>, ProviderError)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    let code = as_i64(error.get("code")?)?;
    let subcode = error.get("error_subcode").and_then(as_i64);
    let text = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or_default();
    let title = ["error_user_title", "title", "type"]
        .into_iter()
        .map(text)
        .find(|title| !title.is_empty())
        .unwrap_or_default();
    let message = [text("message"), text("error_user_msg")]
        .into_iter()
        .find(|message| !message.is_empty())
        .unwrap_or_default();
    let details = match error.get("error_data") {
        Some(Value::Object(data)) => data.get("details").and_then(Value::as_str).unwrap_or_default(),
        Some(Value::String(details)) => details.as_str(),
        _ => "",
    };
    let provider_error = ProviderError {
        code: match subcode {
            Some(subcode) => format!("{code}/{subcode}"),
            None => code.to_string(),
        },
        title: title.to_owned(),
        message: message.to_owned(),
        details: details.to_owned(),
    };
    Some((code, subcode, provider_error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_v3_appsecret_proof() {
        assert_eq!(
            appsecret_proof("my_app_secret", "EAAB_TEST_TOKEN"),
            "3f44abc581f7aaf7c803cf8736c07ad24b8428264ec3985db6c358520c87f0a8"
        );
    }

    #[test]
    fn the_envelope_becomes_a_provider_error() {
        let body = br#"{"error":{"message":"(#131030) Recipient phone number not in allowed list","type":"OAuthException","code":131030,"error_data":{"messaging_product":"whatsapp","details":"Recipient phone number not in allowed list: add it"},"error_subcode":2655007,"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}"#;
        let (code, subcode, error) = parse_error(body).unwrap();
        assert_eq!((code, subcode), (131030, Some(2655007)));
        assert_eq!(
            error,
            ProviderError {
                code: "131030/2655007".to_owned(),
                title: "OAuthException".to_owned(),
                message: "(#131030) Recipient phone number not in allowed list".to_owned(),
                details: "Recipient phone number not in allowed list: add it".to_owned(),
            }
        );
        let body = br#"{"error":{"message":"m","type":"OAuthException","code":"10","error_user_title":"Outside window","error_data":"d"}}"#;
        let (_, _, error) = parse_error(body).unwrap();
        assert_eq!(
            (error.code.as_str(), error.title.as_str(), error.details.as_str()),
            ("10", "Outside window", "d")
        );
        assert!(parse_error(br#"{"error":{"message":"no code"}}"#).is_none());
        assert!(parse_error(b"<html>").is_none());
    }
}
