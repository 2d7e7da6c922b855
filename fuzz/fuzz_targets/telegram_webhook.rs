//! Telegram Bot API webhooks as ingress handles them: the secret token header is checked by
//! `telegram::verify_secret_token`, a nesting bomb is refused, then the `Update` is normalized.
//! The input is the raw request body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::{MAX_JSON_DEPTH, json_too_deep, telegram};
use switchboard_fuzz::{SECRET, context, header};

fuzz_target!(|body: &[u8]| {
    let headers = header(telegram::SECRET_TOKEN_HEADER, SECRET);
    let verified = match telegram::verify_secret_token(&headers, body, SECRET) {
        Ok(verified) => verified,
        Err(error) => panic!("the right secret token was refused: {error}"),
    };
    if json_too_deep(verified.body(), MAX_JSON_DEPTH) {
        return;
    }
    let _ = telegram::normalize(verified, &context("7000000001"));
});
