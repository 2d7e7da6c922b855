//! API keys: `sbk_<key id>_<secret>` tokens whose secret is stored only as a SHA-256 hash,
//! and the cached [`Authenticator`] the gRPC auth layer uses.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngExt as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_domain::ApiKeyId;
use switchboard_postgres::Pool;
use switchboard_server::auth::{AuthError, AuthFuture, Authenticator, Principal};

use crate::store;

const TOKEN_PREFIX: &str = "sbk_";

/// A freshly generated key: its id, the token to hand out once, and the hash to store.
pub(crate) struct GeneratedKey {
    pub id: ApiKeyId,
    pub token: String,
    pub secret_sha256: String,
}

/// Generates a key with a 256-bit random secret.
pub(crate) fn generate_key() -> GeneratedKey {
    let id = ApiKeyId::generate();
    let secret: [u8; 32] = rand::rng().random();
    let secret_hex = hex::encode(secret);
    let token = format!(
        "{TOKEN_PREFIX}{}_{secret_hex}",
        &id.as_str()[ApiKeyId::PREFIX.len()..]
    );
    GeneratedKey {
        secret_sha256: hash_secret(&secret_hex),
        id,
        token,
    }
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits a token into its key id and secret; `None` when it is not a Switchboard key.
fn parse_token(token: &str) -> Option<(ApiKeyId, &str)> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id_suffix, secret) = rest.split_once('_')?;
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = ApiKeyId::parse(&format!("{}{id_suffix}", ApiKeyId::PREFIX)).ok()?;
    Some((id, secret))
}

/// Verifies API keys against the tenancy store, caching verified keys for `ttl` so that a
/// call costs no database round trip (a revoked key stops working within `ttl`).
pub struct KeyAuthenticator {
    pool: Pool,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl KeyAuthenticator {
    /// An authenticator reading keys from `pool`.
    pub fn new(pool: Pool, ttl: Duration) -> Self {
        Self {
            pool,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, token_hash: &str) -> Option<Principal> {
        let cache = self.cache.lock().ok()?;
        let (principal, verified_at) = cache.get(token_hash)?;
        (verified_at.elapsed() < self.ttl).then(|| principal.clone())
    }

    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let token_hash = hash_secret(token);
        if let Some(principal) = self.cached(&token_hash) {
            return Ok(principal);
        }
        let (id, secret) = parse_token(token).ok_or(AuthError::InvalidKey)?;
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| AuthError::Unavailable(Box::new(error)))?;
        let found = store::find_api_key(&client, &id)
            .await
            .map_err(|error| AuthError::Unavailable(Box::new(error)))?;
        let Some((key, stored_hash)) = found else {
            return Err(AuthError::InvalidKey);
        };
        let matches = bool::from(hash_secret(secret).as_bytes().ct_eq(stored_hash.as_bytes()));
        if !matches || key.revoked_at.is_some() {
            return Err(AuthError::InvalidKey);
        }
        let principal = Principal {
            key_id: key.id.into_string(),
            workspace_id: key.workspace_id,
            role: key.role,
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                cache.retain(|_, (_, verified_at)| verified_at.elapsed() < self.ttl);
            }
            cache.insert(token_hash, (principal.clone(), Instant::now()));
        }
        Ok(principal)
    }
}

impl Authenticator for KeyAuthenticator {
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a> {
        Box::pin(self.verify(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_back_to_their_key() {
        let key = generate_key();
        let (id, secret) = parse_token(&key.token).expect("parses");
        assert_eq!(id, key.id);
        assert_eq!(hash_secret(secret), key.secret_sha256);
    }

    #[test]
    fn foreign_or_damaged_tokens_are_refused() {
        let key = generate_key();
        assert!(parse_token("Bearer whatever").is_none());
        assert!(parse_token(&key.token[..key.token.len() - 1]).is_none());
        assert!(parse_token(&key.token.replace("sbk_", "xyz_")).is_none());
    }
}
