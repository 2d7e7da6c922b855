//! Webhook mechanics shared by Meta's platforms (WhatsApp Cloud API, Messenger, Instagram):
//! the `X-Hub-Signature-256` check and the `hub.challenge` verification handshake.
//! See <https://developers.facebook.com/docs/graph-api/webhooks/getting-started>.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::verify::single_header;
use crate::{Verified, VerifyError};

/// The header carrying `sha256=<hex HMAC-SHA256(app secret, raw body)>`.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Checks `X-Hub-Signature-256` over the exact raw body with the account's app secret.
pub fn verify_signature<'a>(
    headers: &http::HeaderMap,
    body: &'a [u8],
    app_secret: &[u8],
) -> Result<Verified<'a>, VerifyError> {
    let value = single_header(headers, SIGNATURE_HEADER)?;
    let hex_digest = value.strip_prefix("sha256=").ok_or(VerifyError::Malformed {
        header: SIGNATURE_HEADER,
    })?;
    let expected = hex::decode(hex_digest.trim()).map_err(|_| VerifyError::Malformed {
        header: SIGNATURE_HEADER,
    })?;
    if expected.len() != 32 {
        return Err(VerifyError::Malformed {
            header: SIGNATURE_HEADER,
        });
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(app_secret).map_err(|_| VerifyError::Mismatch)?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected).map_err(|_| VerifyError::Mismatch)?;
    Ok(Verified::new(body))
}

/// Lowercase hex HMAC-SHA256 of `message` under `key` (signing simulators, `appsecret_proof`).
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this branch cannot be taken.
        Err(_) => return String::new(),
    };
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Answers Meta's subscription handshake: `Some(challenge)` to echo as `text/plain` when
/// `hub.mode` is `subscribe` and `hub.verify_token` matches the account's token, else `None`
/// (answer 403). `query` is the raw query string.
pub fn verification_challenge(query: &str, verify_token: &[u8]) -> Option<String> {
    let mut mode = None;
    let mut token = None;
    let mut challenge = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value)?;
        match key {
            "hub.mode" => mode = Some(value),
            "hub.verify_token" => token = Some(value),
            "hub.challenge" => challenge = Some(value),
            _ => {}
        }
    }
    // An account without a verify token never completes a handshake.
    let token_matches = !verify_token.is_empty() && bool::from(token?.as_bytes().ct_eq(verify_token));
    let challenge = challenge?;
    let challenge_ok =
        !challenge.is_empty() && challenge.len() <= 256 && !challenge.chars().any(char::is_control);
    (mode.as_deref() == Some("subscribe") && token_matches && challenge_ok).then_some(challenge)
}

/// Decodes `application/x-www-form-urlencoded` text; `None` on invalid escapes or UTF-8.
pub(crate) fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let hex_pair = bytes.get(index + 1..index + 3)?;
                let text = std::str::from_utf8(hex_pair).ok()?;
                decoded.push(u8::from_str_radix(text, 16).ok()?);
                index += 2;
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_verify_token_never_matches() {
        assert_eq!(
            verification_challenge("hub.mode=subscribe&hub.verify_token=&hub.challenge=42", b""),
            None
        );
    }

    /// CHANNELS.md E1: the exact 428-byte WhatsApp body of vector V2.
    pub(crate) const E1: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"wamid.TEST123","timestamp":"1749416383","type":"text","text":{"body":"Hi there"}}]},"field":"messages"}]}]}"#;

    fn signed(signature: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        headers
    }

    #[test]
    fn vector_v1_hmac_sha256() {
        assert_eq!(
            hmac_sha256_hex(b"secret", b"test"),
            "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
        );
    }

    #[test]
    fn vector_v2_the_e1_body_verifies_with_its_signature() {
        assert_eq!(E1.len(), 428);
        let signature = "sha256=5728f1d12d6815799e52d75c6d704128177a2653870317578c743fbc7fd06ccb";
        assert_eq!(
            format!("sha256={}", hmac_sha256_hex(b"my_app_secret", E1.as_bytes())),
            signature
        );
        let verified = verify_signature(&signed(signature), E1.as_bytes(), b"my_app_secret").unwrap();
        assert_eq!(verified.body(), E1.as_bytes());
    }

    #[test]
    fn vector_v2b_escaped_and_raw_text_sign_differently() {
        assert_eq!(
            hmac_sha256_hex(b"my_app_secret", br#"{"text":"\u00e4\u00f6\u00e5"}"#),
            "40a2372464abcac593143f74d555a83a49487161a1d2cfed901440188982234d"
        );
        assert_eq!(
            hmac_sha256_hex(b"my_app_secret", r#"{"text":"äöå"}"#.as_bytes()),
            "5cfa0161b2efef34151567dec4654407199be2534e647c220f2809f55b0accd4"
        );
    }

    #[test]
    fn vector_v3_appsecret_proof() {
        assert_eq!(
            hmac_sha256_hex(b"my_app_secret", b"EAAB_TEST_TOKEN"),
            "3f44abc581f7aaf7c803cf8736c07ad24b8428264ec3985db6c358520c87f0a8"
        );
    }

    #[test]
    fn tampering_wrong_secrets_and_bad_headers_are_refused() {
        let signature = format!("sha256={}", hmac_sha256_hex(b"my_app_secret", E1.as_bytes()));
        // One flipped bit in the body.
        let mut flipped = E1.as_bytes().to_vec();
        flipped[100] ^= 0x01;
        assert_eq!(
            verify_signature(&signed(&signature), &flipped, b"my_app_secret").unwrap_err(),
            VerifyError::Mismatch
        );
        // The same JSON re-serialized (spacing) no longer matches.
        let reserialized =
            serde_json::to_vec_pretty(&serde_json::from_str::<serde_json::Value>(E1).unwrap()).unwrap();
        assert_eq!(
            verify_signature(&signed(&signature), &reserialized, b"my_app_secret").unwrap_err(),
            VerifyError::Mismatch
        );
        // Another tenant's secret.
        assert_eq!(
            verify_signature(&signed(&signature), E1.as_bytes(), b"other_secret").unwrap_err(),
            VerifyError::Mismatch
        );
        // Missing, malformed, duplicated.
        assert!(matches!(
            verify_signature(&http::HeaderMap::new(), E1.as_bytes(), b"my_app_secret"),
            Err(VerifyError::Missing { .. })
        ));
        for malformed in ["5728f1d1", "sha1=abc", "sha256=zz", "sha256=abcd"] {
            assert!(matches!(
                verify_signature(&signed(malformed), E1.as_bytes(), b"my_app_secret"),
                Err(VerifyError::Malformed { .. })
            ));
        }
        let mut duplicated = signed(&signature);
        duplicated.append(SIGNATURE_HEADER, signature.parse().unwrap());
        assert!(matches!(
            verify_signature(&duplicated, E1.as_bytes(), b"my_app_secret"),
            Err(VerifyError::Ambiguous { .. })
        ));
    }

    #[test]
    fn the_handshake_echoes_the_challenge_only_for_the_right_token() {
        let query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=my%20token";
        assert_eq!(
            verification_challenge(query, b"my token").as_deref(),
            Some("1158201444")
        );
        assert_eq!(verification_challenge(query, b"other"), None);
        assert_eq!(
            verification_challenge(
                "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=my%20token",
                b"my token"
            ),
            None
        );
        assert_eq!(
            verification_challenge("hub.mode=subscribe&hub.verify_token=my%20token", b"my token"),
            None
        );
        assert_eq!(
            verification_challenge("hub.mode=subscribe&hub.challenge=%zz&hub.verify_token=t", b"t"),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn verification_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512), header in ".*") {
            let mut headers = http::HeaderMap::new();
            if let Ok(value) = http::HeaderValue::from_str(&header) {
                headers.insert(SIGNATURE_HEADER, value);
            }
            let _ = verify_signature(&headers, &body, b"secret");
            let _ = verification_challenge(&header, b"secret");
        }
    }
}
