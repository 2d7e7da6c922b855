//! Helpers shared by the fuzz targets in `fuzz_targets/`: the normalization context, the test
//! secrets the harnesses sign with, and the small input formats of the targets that need more
//! than one byte string.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_channels::NormalizeContext;
use switchboard_domain::ChannelAccountId;

/// The secret every harness signs with (app secret, bot webhook secret, auth token, ...).
pub const SECRET: &[u8] = b"fuzz_secret";

/// The Basic-auth user of the Postmark and SendGrid harnesses (password: [`SECRET`]).
pub const BASIC_AUTH_USER: &str = "fuzz";

/// `Basic base64("fuzz:fuzz_secret")`.
pub const BASIC_AUTH_HEADER: &str = "Basic ZnV6ejpmdXp6X3NlY3JldA==";

/// When the harnesses' webhooks were received (2025-06-15T12:00:00Z).
pub const RECEIVED_AT_SECONDS: u64 = 1_749_988_800;

/// The normalization context of an account whose provider id is `external_id`, as ingress
/// builds it.
pub fn context(external_id: &str) -> NormalizeContext {
    NormalizeContext {
        channel_account_id: ChannelAccountId::parse("chacc_fuzz").unwrap_or_else(|error| panic!("{error}")),
        external_id: external_id.to_owned(),
        received_at: received_at(),
    }
}

/// [`RECEIVED_AT_SECONDS`] as a time.
pub fn received_at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(RECEIVED_AT_SECONDS)
}

/// Splits `data` at its first `\n`: (the line without a trailing `\r`, the rest). No newline:
/// the whole input is the line and the rest is empty.
pub fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&byte| byte == b'\n') {
        Some(end) => {
            let line = &data[..end];
            (line.strip_suffix(b"\r").unwrap_or(line), &data[end + 1..])
        }
        None => (data, &[]),
    }
}

/// The `multipart/form-data` content type of a body that starts with `--<boundary>` (its first
/// line), else `None` (the body is treated as URL-encoded). The seeds of the form-post targets
/// are plain request bodies this way.
pub fn multipart_content_type(body: &[u8]) -> Option<String> {
    let (first_line, _) = split_line(body);
    let boundary = std::str::from_utf8(first_line.strip_prefix(b"--")?).ok()?.trim();
    (!boundary.is_empty()).then(|| format!("multipart/form-data; boundary={boundary}"))
}

/// A header map with `name: value`, or empty when `value` is not a valid header value (as a
/// request with such a header never reaches a handler).
pub fn header(name: &'static str, value: &[u8]) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_bytes(value) {
        headers.insert(name, value);
    }
    headers
}
