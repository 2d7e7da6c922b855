//! The webhook adapters of the three inbound-parse services: Mailgun (signed form fields),
//! Postmark (JSON behind Basic auth) and SendGrid (multipart behind Basic auth).

use crate::webhook::{WebhookAccount, WebhookAdapter, WebhookRequest, required_secret};
use crate::{NormalizeContext, NormalizeError, Normalized, Verified, VerifyError};

/// The webhook adapter of Mailgun routes.
pub struct MailgunWebhook;

/// Mailgun inbound routes (URL-encoded or multipart, signed with the account's signing key).
pub static MAILGUN: MailgunWebhook = MailgunWebhook;

impl WebhookAdapter for MailgunWebhook {
    fn name(&self) -> &'static str {
        "mailgun"
    }

    fn secret_names(&self) -> &'static [&'static str] {
        &["signing_key"]
    }

    fn body_is_json(&self) -> bool {
        false
    }

    fn verify<'a>(
        &self,
        account: &dyn WebhookAccount,
        request: &WebhookRequest<'a>,
    ) -> Result<Verified<'a>, VerifyError> {
        super::mailgun::verify_signature(
            request.body,
            request.content_type(),
            required_secret(account, "signing_key")?,
            request.now,
            request.signature_max_age,
        )
    }

    fn normalize(
        &self,
        request: &WebhookRequest<'_>,
        verified: Verified<'_>,
        context: &NormalizeContext,
    ) -> Result<Normalized, NormalizeError> {
        super::mailgun::normalize(verified, request.content_type(), context)
    }

    /// Mailgun's signed `token` is unique per delivery: a second post with it is a replay.
    fn replay_key<'n>(&self, normalized: &'n Normalized) -> Option<&'n str> {
        normalized
            .events
            .first()
            .map(|event| event.provider_event_id.as_str())
            .filter(|token| !token.is_empty())
    }
}

/// An inbound-parse service whose posts are protected with Basic auth credentials.
pub struct BasicAuthWebhook {
    name: &'static str,
    body_is_json: bool,
    normalize: fn(Verified<'_>, &str, &NormalizeContext) -> Result<Normalized, NormalizeError>,
}

/// Postmark inbound webhooks (JSON).
pub static POSTMARK: BasicAuthWebhook = BasicAuthWebhook {
    name: "postmark",
    body_is_json: true,
    normalize: |verified, _content_type, context| super::postmark::normalize(verified, context),
};

/// SendGrid Inbound Parse posts (multipart).
pub static SENDGRID: BasicAuthWebhook = BasicAuthWebhook {
    name: "sendgrid",
    body_is_json: false,
    normalize: super::sendgrid::normalize,
};

impl WebhookAdapter for BasicAuthWebhook {
    fn name(&self) -> &'static str {
        self.name
    }

    fn secret_names(&self) -> &'static [&'static str] {
        &["webhook_password"]
    }

    fn body_is_json(&self) -> bool {
        self.body_is_json
    }

    fn verify<'a>(
        &self,
        account: &dyn WebhookAccount,
        request: &WebhookRequest<'a>,
    ) -> Result<Verified<'a>, VerifyError> {
        super::postmark::verify_basic_auth(
            request.headers,
            request.body,
            account.setting("webhook_username").unwrap_or(""),
            required_secret(account, "webhook_password")?,
        )
    }

    fn normalize(
        &self,
        request: &WebhookRequest<'_>,
        verified: Verified<'_>,
        context: &NormalizeContext,
    ) -> Result<Normalized, NormalizeError> {
        (self.normalize)(verified, request.content_type(), context)
    }
}
