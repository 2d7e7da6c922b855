//! Raw MIME mail as the SMTP listener hands it over: `email::accepted_by_smtp_listener` then
//! `email::normalize_raw` (mail-parser, delivery-status notifications, auto-reply detection,
//! threading headers, attachments). The input is the raw RFC 5322 message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::email;
use switchboard_fuzz::context;

fuzz_target!(|message: &[u8]| {
    let verified = email::accepted_by_smtp_listener(message);
    let _ = email::normalize_raw(verified, &context("support@acme.test"));
});
