//! Postmark inbound webhooks as ingress handles them: Basic auth checked by
//! `email::verify_postmark_basic_auth`, a nesting bomb refused, then the JSON normalized by
//! `email::normalize_postmark`. The input is the raw JSON body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::{MAX_JSON_DEPTH, email, json_too_deep};
use switchboard_fuzz::{BASIC_AUTH_HEADER, BASIC_AUTH_USER, SECRET, context, header};

fuzz_target!(|body: &[u8]| {
    let headers = header("authorization", BASIC_AUTH_HEADER.as_bytes());
    let verified = match email::verify_postmark_basic_auth(&headers, body, BASIC_AUTH_USER, SECRET) {
        Ok(verified) => verified,
        Err(error) => panic!("the right credentials were refused: {error}"),
    };
    if json_too_deep(verified.body(), MAX_JSON_DEPTH) {
        return;
    }
    let _ = email::normalize_postmark(verified, &context("support@acme.test"));
});
