//! Mailgun Routes `forward()` posts as ingress handles them: the harness prepends a valid
//! `timestamp` / `token` / `signature` triple to the body (the first value of a field counts),
//! `email::verify_mailgun_signature` checks it, and `email::normalize_mailgun` reads the parsed
//! fields or the `body-mime` raw message. The input is the raw body: `multipart/form-data`
//! when its first line is `--<boundary>`, URL-encoded otherwise.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use switchboard_channels::{email, meta, twilio};
use switchboard_fuzz::{RECEIVED_AT_SECONDS, SECRET, context, multipart_content_type, received_at};

const TOKEN: &str = "fuzz-token";

fuzz_target!(|body: &[u8]| {
    let timestamp = RECEIVED_AT_SECONDS.to_string();
    let signature = meta::hmac_sha256_hex(SECRET, format!("{timestamp}{TOKEN}").as_bytes());
    let fields = [
        ("timestamp", timestamp.as_str()),
        ("token", TOKEN),
        ("signature", &signature),
    ];
    let (content_type, signed) = match multipart_content_type(body) {
        Some(content_type) => {
            let boundary = content_type
                .rsplit_once("boundary=")
                .map_or("", |(_, boundary)| boundary);
            let mut signed = Vec::new();
            for (name, value) in fields {
                signed.extend_from_slice(
                    format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                    )
                    .as_bytes(),
                );
            }
            signed.extend_from_slice(body);
            (content_type, signed)
        }
        None => {
            let mut signed = fields
                .iter()
                .map(|(name, value)| format!("{name}={value}&"))
                .collect::<String>()
                .into_bytes();
            signed.extend_from_slice(body);
            ("application/x-www-form-urlencoded".to_owned(), signed)
        }
    };
    let verified = email::verify_mailgun_signature(
        &signed,
        &content_type,
        SECRET,
        received_at() + Duration::from_secs(60),
        Duration::from_secs(900),
    );
    let verified = match verified {
        Ok(verified) => verified,
        // A URL-encoded body that parses always carries the prepended signature.
        Err(error) if content_type.starts_with("application/") && twilio::parse_form(body).is_some() => {
            panic!("a correctly signed URL-encoded post was refused: {error}")
        }
        Err(_) => return,
    };
    let _ = email::normalize_mailgun(verified, &content_type, &context("support@acme.test"));
});
