//! Session tokens and the identity hash of logged-in users.
//!
//! A session token is `v1.<claims>.<mac>`: base64url (no padding) of the JSON claims and of
//! their HMAC-SHA256 under the account's `session_secret`. It is bearer proof of one visitor of
//! one account until `exp`; every replica verifies it without a lookup.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What a session token proves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The channel account.
    pub acc: String,
    /// The visitor (`wcv_…`).
    pub vis: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token this server issued (shape, signature or account).
    #[error("the session token is not valid")]
    Invalid,
    /// Valid but past its expiry.
    #[error("the session token has expired")]
    Expired,
}

const VERSION: &str = "v1";

fn mac(secret: &[u8], message: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(message);
    mac
}

/// Signs `claims` with `secret`.
pub fn issue(secret: &[u8], claims: &SessionClaims) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signed = format!("{VERSION}.{body}");
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, signed.as_bytes()).finalize().into_bytes());
    format!("{signed}.{signature}")
}

/// Checks `token` against `secret` and `account`, at Unix time `now`.
pub fn verify(secret: &[u8], account: &str, token: &str, now: i64) -> Result<SessionClaims, TokenError> {
    let mut pieces = token.split('.');
    let (Some(VERSION), Some(body), Some(signature), None) =
        (pieces.next(), pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(TokenError::Invalid);
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Invalid)?;
    mac(secret, format!("{VERSION}.{body}").as_bytes())
        .verify_slice(&signature)
        .map_err(|_| TokenError::Invalid)?;
    let claims: SessionClaims = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(TokenError::Invalid)?;
    if claims.acc != account {
        return Err(TokenError::Invalid);
    }
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// True when `user_hash` is the hex HMAC-SHA256 of `user_id` under `identity_secret`
/// (compared in constant time; upper- or lowercase hex).
pub fn identity_verified(identity_secret: &[u8], user_id: &str, user_hash: &str) -> bool {
    match hex::decode(user_hash.trim()) {
        Ok(expected) => mac(identity_secret, user_id.as_bytes())
            .verify_slice(&expected)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> SessionClaims {
        SessionClaims {
            acc: "chacc_web".to_owned(),
            vis: "wcv_1".to_owned(),
            exp: 2_000,
        }
    }

    #[test]
    fn a_token_verifies_until_it_expires() {
        let token = issue(b"secret", &claims());
        assert_eq!(verify(b"secret", "chacc_web", &token, 1_999), Ok(claims()));
        assert_eq!(
            verify(b"secret", "chacc_web", &token, 2_000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn another_key_account_or_a_changed_body_is_refused() {
        let token = issue(b"secret", &claims());
        assert_eq!(verify(b"other", "chacc_web", &token, 0), Err(TokenError::Invalid));
        assert_eq!(
            verify(b"secret", "chacc_other", &token, 0),
            Err(TokenError::Invalid)
        );
        let forged = SessionClaims {
            vis: "wcv_2".to_owned(),
            ..claims()
        };
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap_or_default());
        let signature = token.rsplit('.').next().unwrap_or_default();
        let forged_token = format!("v1.{forged_body}.{signature}");
        assert_eq!(
            verify(b"secret", "chacc_web", &forged_token, 0),
            Err(TokenError::Invalid)
        );
        for garbage in ["", "v1", "v1..", "v2.a.b", "v1.a.b.c", "v1.!!.??"] {
            assert_eq!(
                verify(b"secret", "chacc_web", garbage, 0),
                Err(TokenError::Invalid)
            );
        }
    }

    #[test]
    fn identity_hash_matches_vector_v10() {
        // CHANNELS.md §0.1 V10.
        let hash = "e8f84e2e69b7c6c74b3f0562be0f523be1ee952ed78d6447bf8051ab3df055fd";
        assert!(identity_verified(b"widget_hmac_secret", "user-42", hash));
        assert!(identity_verified(
            b"widget_hmac_secret",
            "user-42",
            &hash.to_uppercase()
        ));
        assert!(!identity_verified(b"widget_hmac_secret", "user-43", hash));
        assert!(!identity_verified(b"other", "user-42", hash));
        assert!(!identity_verified(b"widget_hmac_secret", "user-42", "zz"));
    }
}
