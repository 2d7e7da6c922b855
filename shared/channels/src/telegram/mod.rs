//! Telegram Bot API: the `X-Telegram-Bot-Api-Secret-Token` check and `Update`
//! normalization, and the outbound adapter behind [`crate::outbound`]. Bots get no delivery or
//! read receipts, so none are produced.
//! See <https://core.telegram.org/bots/api#setwebhook> and `#update`.

mod inbound;
pub(crate) mod outbound;
mod types;

use subtle::ConstantTimeEq;

use crate::verify::single_header;
use crate::webhook::{WebhookAccount, WebhookAdapter, WebhookRequest, required_secret};
use crate::{NormalizeContext, NormalizeError, Normalized, Verified, VerifyError};

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

/// The webhook adapter of Telegram bots (`setWebhook` with a `secret_token`).
pub struct TelegramWebhook;

/// Telegram webhooks.
pub static WEBHOOK: TelegramWebhook = TelegramWebhook;

impl WebhookAdapter for TelegramWebhook {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn secret_names(&self) -> &'static [&'static str] {
        &["webhook_secret"]
    }

    fn body_is_json(&self) -> bool {
        true
    }

    fn verify<'a>(
        &self,
        account: &dyn WebhookAccount,
        request: &WebhookRequest<'a>,
    ) -> Result<Verified<'a>, VerifyError> {
        verify_secret_token(
            request.headers,
            request.body,
            required_secret(account, "webhook_secret")?,
        )
    }

    fn normalize(
        &self,
        _request: &WebhookRequest<'_>,
        verified: Verified<'_>,
        context: &NormalizeContext,
    ) -> Result<Normalized, NormalizeError> {
        normalize(verified, context)
    }
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
