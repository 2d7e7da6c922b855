//! HTTP plumbing shared by the provider adapters: credentials, URLs, request bodies, and the
//! classification rules every provider shares (429 / 408 / 5xx retryable, `Retry-After`,
//! unparseable bodies).

use std::time::{Duration, SystemTime};

use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue};
use switchboard_proto::common::v1::ProviderError;

use super::{BuildError, ProviderAccount, ProviderRequest, SendOutcome};

/// The most bytes of an unparseable error body kept in [`ProviderError::message`].
const SNIPPET_BYTES: usize = 200;

/// The non-empty secret `name`, or [`BuildError::MissingCredential`].
pub(crate) fn secret<'a>(account: &ProviderAccount<'a>, name: &'static str) -> Result<&'a str, BuildError> {
    account
        .secrets
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
        .ok_or(BuildError::MissingCredential(name))
}

/// The non-empty setting `name`, if any.
pub(crate) fn setting<'a>(account: &ProviderAccount<'a>, name: &str) -> Option<&'a str> {
    account
        .settings
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.is_empty())
}

/// The account's base URL override, else `default`, without a trailing slash.
pub(crate) fn base_url<'a>(account: &ProviderAccount<'a>, default: &'a str) -> &'a str {
    account
        .base_url
        .filter(|base| !base.is_empty())
        .unwrap_or(default)
        .trim_end_matches('/')
}

/// `value` percent-encoded as one URL path segment (only RFC 3986 unreserved bytes kept).
pub(crate) fn path_segment(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `url` with `name=value` appended to its query (form-encoded), before any fragment.
pub(crate) fn with_query(url: &str, name: &str, value: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let separator = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    let pair = form_urlencoded::Serializer::new(String::new())
        .append_pair(name, value)
        .finish();
    match fragment {
        Some(fragment) => format!("{base}{separator}{pair}#{fragment}"),
        None => format!("{base}{separator}{pair}"),
    }
}

/// An `Authorization` value, marked sensitive; a credential that is no valid header value
/// is refused as missing (`valid_name` names it, e.g. `"valid access_token"`).
pub(crate) fn authorization(value: &str, valid_name: &'static str) -> Result<HeaderValue, BuildError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| BuildError::MissingCredential(valid_name))?;
    header.set_sensitive(true);
    Ok(header)
}

/// A `POST` of `body` as JSON to `url`.
pub(crate) fn post_json(
    url: String,
    body: &serde_json::Value,
    authorization: Option<HeaderValue>,
) -> ProviderRequest {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(authorization) = authorization {
        headers.insert(AUTHORIZATION, authorization);
    }
    ProviderRequest {
        method: http::Method::POST,
        url,
        headers,
        body: body.to_string().into_bytes(),
    }
}

/// A `POST` of `pairs` as `application/x-www-form-urlencoded` to `url`.
pub(crate) fn post_form(url: String, pairs: &[(&str, &str)], authorization: HeaderValue) -> ProviderRequest {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(AUTHORIZATION, authorization);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    ProviderRequest {
        method: http::Method::POST,
        url,
        headers,
        body: body.into_bytes(),
    }
}

/// Whether an HTTP status alone says "try again": 408, 429 and every 5xx.
pub(crate) fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// The longest wait a provider's retry-after is taken at: a larger one is clamped here, and
/// delivery clamps it again to its own `retry_max_age`.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The `Retry-After` header as a wait from now: delay-seconds or an HTTP-date (RFC 9110
/// §10.2.3), clamped to [`MAX_RETRY_AFTER`]; a date in the past is no wait. Negative,
/// fractional or unreadable values are ignored (`None`), so the caller's own backoff applies.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

/// [`retry_after`] as seen at `now`.
pub(crate) fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        // All digits: a number of seconds, however large (too large for u64 is "very long").
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(retry_after_seconds(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// A provider's retry-after in whole seconds (a header or a body field), clamped to
/// [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after_seconds(seconds: u64) -> Duration {
    Duration::from_secs(seconds.min(MAX_RETRY_AFTER.as_secs()))
}

/// Retryable (with `retry_after`) or permanent, carrying `error`.
pub(crate) fn outcome(retryable: bool, error: ProviderError, retry_after: Option<Duration>) -> SendOutcome {
    if retryable {
        SendOutcome::Retryable { error, retry_after }
    } else {
        SendOutcome::Permanent { error }
    }
}

/// An error body the provider's shape does not match: classified by HTTP status alone, code
/// `http_<status>`, the start of the body as the message.
pub(crate) fn by_status(status: u16, headers: &HeaderMap, body: &[u8]) -> SendOutcome {
    let snippet = String::from_utf8_lossy(&body[..body.len().min(SNIPPET_BYTES)]);
    let error = ProviderError {
        code: format!("http_{status}"),
        title: http::StatusCode::from_u16(status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or_default()
            .to_owned(),
        message: snippet.trim().to_owned(),
        details: String::new(),
    };
    outcome(retryable_status(status), error, retry_after(headers))
}

/// A 2xx whose body has no message id. Permanent, not retryable: the provider most likely
/// accepted the message, and sending it again could deliver it twice. Code
/// `unparseable_response`.
pub(crate) fn unparseable(status: u16) -> SendOutcome {
    SendOutcome::Permanent {
        error: ProviderError {
            code: "unparseable_response".to_owned(),
            title: "unparseable response".to_owned(),
            message: format!("HTTP {status} without a message id the adapter could read"),
            details: String::new(),
        },
    }
}

/// Whether `status` is a 2xx.
pub(crate) fn success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// A JSON integer, or a string holding one (providers are not consistent).
pub(crate) fn as_i64(value: &serde_json::Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_appended_with_the_right_separator() {
        assert_eq!(with_query("https://a/cb", "k", "v 1"), "https://a/cb?k=v+1");
        assert_eq!(with_query("https://a/cb?x=1", "k", "v"), "https://a/cb?x=1&k=v");
        assert_eq!(with_query("https://a/cb?", "k", "v"), "https://a/cb?k=v");
        assert_eq!(with_query("https://a/cb?x=1&", "k", "v"), "https://a/cb?x=1&k=v");
        assert_eq!(with_query("https://a/cb#f", "k", "v&"), "https://a/cb?k=v%26#f");
    }

    #[test]
    fn path_segments_keep_only_unreserved_bytes() {
        assert_eq!(path_segment("v23.0"), "v23.0");
        assert_eq!(path_segment("AC1/../x?y"), "AC1%2F..%2Fx%3Fy");
    }

    #[test]
    fn unparseable_errors_classify_by_status_and_honour_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let SendOutcome::Retryable {
            error,
            retry_after: wait,
        } = by_status(503, &headers, b"<html>down</html>")
        else {
            panic!("503 is retryable");
        };
        assert_eq!(
            (error.code.as_str(), error.title.as_str(), error.message.as_str()),
            ("http_503", "Service Unavailable", "<html>down</html>")
        );
        assert_eq!(wait, Some(Duration::from_secs(7)));
        for status in [408, 429, 500, 502] {
            assert!(matches!(
                by_status(status, &HeaderMap::new(), b""),
                SendOutcome::Retryable { .. }
            ));
        }
        for status in [301, 400, 401, 403, 404, 422] {
            assert!(matches!(
                by_status(status, &HeaderMap::new(), b""),
                SendOutcome::Permanent { .. }
            ));
        }
        let long = vec![b'x'; 1000];
        let SendOutcome::Permanent { error } = by_status(400, &HeaderMap::new(), &long) else {
            panic!("400 is permanent");
        };
        assert_eq!(error.message.len(), SNIPPET_BYTES);
    }

    fn wait(value: &'static str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static(value));
        // Wed, 21 Oct 2015 07:28:00 GMT, so dates around it are in the past or future.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        retry_after_at(&headers, now)
    }

    #[test]
    fn retry_after_is_bounded_whatever_the_provider_says() {
        assert_eq!(wait("0"), Some(Duration::ZERO));
        assert_eq!(wait(" 7 "), Some(Duration::from_secs(7)));
        // Huge values, within u64 and beyond it, are clamped instead of overflowing a clock.
        assert_eq!(wait("18446744073709551615"), Some(MAX_RETRY_AFTER));
        assert_eq!(wait("99999999999999999999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(wait("86401"), Some(MAX_RETRY_AFTER));
        // Negative, fractional and unreadable values are ignored: the caller's backoff applies.
        for value in ["-5", "1.5", "soon", "", "0x10", "+3"] {
            assert_eq!(wait(value), None, "{value:?}");
        }
        // HTTP-dates: a wait from now; a date in the past is no wait; far future is clamped.
        assert_eq!(
            wait("Wed, 21 Oct 2015 07:28:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(wait("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(wait("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_RETRY_AFTER));
        assert_eq!(wait("Wed, 32 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after_seconds(u64::MAX), MAX_RETRY_AFTER);
    }
}
