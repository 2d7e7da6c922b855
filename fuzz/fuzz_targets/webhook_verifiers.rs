//! Every webhook verifier with attacker-chosen credentials: the signature, token or
//! `Authorization` header, the URL, query or content type, and the body all come from the
//! input. None may panic, and none may accept what the secret did not sign. Also the Meta
//! subscription handshake, the form decoder, the JSON depth gate and the attachment checks
//! that read the same untrusted bytes.
//!
//! Input: `<header value>\n<url, query or content type>\n<body>`.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use switchboard_channels::{MAX_JSON_DEPTH, email, json_too_deep, media, meta, telegram, twilio};
use switchboard_fuzz::{BASIC_AUTH_USER, SECRET, header, received_at, split_line};

fuzz_target!(|data: &[u8]| {
    let (credential, rest) = split_line(data);
    let (second_line, body) = split_line(rest);
    let second_line = String::from_utf8_lossy(second_line);

    let meta_headers = header(meta::SIGNATURE_HEADER, credential);
    if meta::verify_signature(&meta_headers, body, SECRET).is_ok() {
        let given = String::from_utf8_lossy(credential);
        let digest = given
            .strip_prefix("sha256=")
            .map(|hex| hex.trim().to_ascii_lowercase());
        assert_eq!(
            digest,
            Some(meta::hmac_sha256_hex(SECRET, body)),
            "meta accepted {given:?}"
        );
    }
    let _ = meta::verification_challenge(&second_line, SECRET);
    let _ = meta::verification_challenge(&second_line, b"");

    let telegram_headers = header(telegram::SECRET_TOKEN_HEADER, credential);
    if telegram::verify_secret_token(&telegram_headers, body, SECRET).is_ok() {
        assert_eq!(credential, SECRET, "telegram accepted another secret token");
    }
    assert!(telegram::verify_secret_token(&telegram_headers, body, b"").is_err());

    let mut twilio_headers = header(twilio::SIGNATURE_HEADER, credential);
    let _ = twilio::verify_signature(&twilio_headers, &second_line, body, SECRET);
    twilio_headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let _ = twilio::verify_signature(&twilio_headers, &second_line, body, SECRET);
    let _ = twilio::parse_form(body);

    let _ = email::verify_mailgun_signature(
        body,
        &second_line,
        SECRET,
        received_at(),
        Duration::from_secs(900),
    );
    let _ = email::verify_mailgun_signature(
        body,
        "application/x-www-form-urlencoded",
        SECRET,
        received_at(),
        Duration::from_secs(900),
    );

    let authorization = header("authorization", credential);
    let _ = email::verify_postmark_basic_auth(&authorization, body, BASIC_AUTH_USER, SECRET);
    // An account without a password never authenticates.
    assert!(email::verify_sendgrid_basic_auth(&authorization, body, BASIC_AUTH_USER, b"").is_err());

    let _ = json_too_deep(body, MAX_JSON_DEPTH);
    let _ = media::executable_name(&second_line);
    let _ = media::executable_type(&second_line);
    let _ = media::executable_head(body);
});
