//! Telegram Bot API: the `X-Telegram-Bot-Api-Secret-Token` check and `Update`
//! normalization, and the outbound adapter behind [`crate::outbound`]. Bots get no delivery or
//! read receipts, so none are produced.
//! See <https://core.telegram.org/bots/api#setwebhook> and `#update`.

mod inbound;
pub(crate) mod outbound;
mod types;

use subtle::ConstantTimeEq;

use crate::verify::single_header;
use crate::{Verified, VerifyError};

pub use inbound::normalize;

/// The header carrying the `secret_token` given to `setWebhook`.
pub const SECRET_TOKEN_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Checks the secret token header against the account's webhook secret (constant time).
pub fn verify_secret_token<'a>(
    headers: &http::HeaderMap,
    body: &'a [u8],
    webhook_secret: &[u8],
) -> Result<Verified<'a>, VerifyError> {
    let provided = single_header(headers, SECRET_TOKEN_HEADER)?;
    if webhook_secret.is_empty() || !bool::from(provided.as_bytes().ct_eq(webhook_secret)) {
        return Err(VerifyError::Mismatch);
    }
    Ok(Verified::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_secret_token_is_accepted() {
        let mut headers = http::HeaderMap::new();
        assert!(matches!(
            verify_secret_token(&headers, b"{}", b"s3cr3t"),
            Err(VerifyError::Missing { .. })
        ));
        headers.insert(SECRET_TOKEN_HEADER, "s3cr3t".parse().unwrap());
        assert!(verify_secret_token(&headers, b"{}", b"s3cr3t").is_ok());
        assert_eq!(
            verify_secret_token(&headers, b"{}", b"s3cr3").unwrap_err(),
            VerifyError::Mismatch
        );
        assert_eq!(
            verify_secret_token(&headers, b"{}", b"").unwrap_err(),
            VerifyError::Mismatch
        );
        headers.append(SECRET_TOKEN_HEADER, "s3cr3t".parse().unwrap());
        assert!(matches!(
            verify_secret_token(&headers, b"{}", b"s3cr3t"),
            Err(VerifyError::Ambiguous { .. })
        ));
    }
}
