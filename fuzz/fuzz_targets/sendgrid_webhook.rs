//! SendGrid Inbound Parse posts as ingress handles them: Basic auth checked by
//! `email::verify_sendgrid_basic_auth`, then `email::normalize_sendgrid` splits the
//! `multipart/form-data` body (raw `email` field, or parsed `headers` / `text` / `html` /
//! attachments rebuilt into one message for the MIME parser). The input is the raw body; its
//! first line `--<boundary>` gives the content type's boundary.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::email;
use switchboard_fuzz::{BASIC_AUTH_HEADER, BASIC_AUTH_USER, SECRET, context, header, multipart_content_type};

fuzz_target!(|body: &[u8]| {
    let headers = header("authorization", BASIC_AUTH_HEADER.as_bytes());
    let verified = match email::verify_sendgrid_basic_auth(&headers, body, BASIC_AUTH_USER, SECRET) {
        Ok(verified) => verified,
        Err(error) => panic!("the right credentials were refused: {error}"),
    };
    let content_type = multipart_content_type(body).unwrap_or_else(|| "multipart/form-data".to_owned());
    let _ = email::normalize_sendgrid(verified, &content_type, &context("support@acme.test"));
});
