//! The providers' answers to sends and deletes, as delivery classifies them: every channel's
//! `outbound::classify_send` and `outbound::classify_delete`, and web chat's
//! `classify_action`. An accepted send must carry a message id and a 2xx status; a
//! retry-after is never longer than a day.
//!
//! Input: `<HTTP status>[ <Retry-After value>]\n<response body>`.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use switchboard_channels::outbound::{SendOutcome, classify_delete, classify_send};
use switchboard_channels::webchat;
use switchboard_domain::Channel;
use switchboard_fuzz::split_line;

const CHANNELS: [Channel; 7] = [
    Channel::Whatsapp,
    Channel::Messenger,
    Channel::Instagram,
    Channel::Telegram,
    Channel::Sms,
    Channel::Email,
    Channel::Webchat,
];

const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

fn check(outcome: &SendOutcome, status: u16, what: &str) {
    match outcome {
        SendOutcome::Accepted { provider_message_id } => {
            assert!(
                (200..300).contains(&status),
                "{what}: accepted with HTTP {status}"
            );
            assert!(
                !provider_message_id.is_empty(),
                "{what}: accepted without a message id"
            );
        }
        SendOutcome::Retryable {
            retry_after: Some(wait),
            ..
        } => assert!(*wait <= MAX_RETRY_AFTER, "{what}: retry after {wait:?}"),
        SendOutcome::Retryable { .. } | SendOutcome::Permanent { .. } => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let (status_line, body) = split_line(data);
    let status_line = String::from_utf8_lossy(status_line);
    let (status, retry_after) = status_line.split_once(' ').unwrap_or((&status_line, ""));
    let Ok(status) = status.trim().parse::<u16>() else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_str(retry_after) {
        headers.insert(http::header::RETRY_AFTER, value);
    }
    for channel in CHANNELS {
        let outcome = classify_send(channel, status, &headers, body);
        check(&outcome, status, &format!("{channel:?} send"));
        let outcome = classify_delete(channel, "42:7", status, &headers, body);
        check(&outcome, status, &format!("{channel:?} delete"));
    }
    if let SendOutcome::Retryable {
        retry_after: Some(wait),
        ..
    } = webchat::classify_action(status, &headers, body)
    {
        assert!(wait <= MAX_RETRY_AFTER, "web chat action: retry after {wait:?}");
    }
});
