//! Meta webhooks (WhatsApp Cloud API, Messenger, Instagram) as ingress handles them: the body
//! is signed with the account's app secret, checked by `meta::verify_signature`, refused when
//! its JSON nests deeper than `MAX_JSON_DEPTH`, then normalized by each platform's normalizer.
//! The input is the raw request body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_channels::{MAX_JSON_DEPTH, instagram, json_too_deep, messenger, meta, whatsapp};
use switchboard_fuzz::{SECRET, context, header};

fuzz_target!(|body: &[u8]| {
    let signature = format!("sha256={}", meta::hmac_sha256_hex(SECRET, body));
    let headers = header(meta::SIGNATURE_HEADER, signature.as_bytes());
    let verified = match meta::verify_signature(&headers, body, SECRET) {
        Ok(verified) => verified,
        Err(error) => panic!("a correctly signed body was refused: {error}"),
    };
    assert_eq!(verified.body(), body);
    // Ingress answers 400 before normalizing a nesting bomb.
    if json_too_deep(verified.body(), MAX_JSON_DEPTH) {
        return;
    }
    // The account ids of the seeds (fuzz/corpus/meta_webhook), so their items are not skipped
    // as addressed to another account.
    let _ = whatsapp::normalize(verified, &context("106540352242922"));
    let _ = messenger::normalize(verified, &context("107220000000001"));
    let _ = instagram::normalize(verified, &context("17841400000000001"));
});
