//! Twilio SMS/MMS webhooks (inbound messages and status callbacks) as ingress handles them: the
//! form body is signed like Twilio signs it (URL + sorted parameters, HMAC-SHA1), checked by
//! `twilio::verify_signature`, then normalized. The input is the raw form-encoded body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::twilio;
use switchboard_fuzz::{SECRET, context, header};

const URL: &str = "https://gw.example.com/webhooks/sms/chacc_fuzz";

fuzz_target!(|body: &[u8]| {
    // A body that is not a form cannot carry a valid signature: ingress refuses it (401).
    let Some(params) = twilio::parse_form(body) else {
        assert!(
            twilio::verify_signature(&header(twilio::SIGNATURE_HEADER, b"AAAA"), URL, body, SECRET).is_err()
        );
        return;
    };
    let signature = twilio::signature(SECRET, URL, &params);
    let headers = header(twilio::SIGNATURE_HEADER, signature.as_bytes());
    let verified = match twilio::verify_signature(&headers, URL, body, SECRET) {
        Ok(verified) => verified,
        Err(error) => panic!("a correctly signed form was refused: {error}"),
    };
    let _ = twilio::normalize(verified, &context("+14155550100"));
});
