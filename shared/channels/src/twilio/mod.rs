//! Twilio Programmable Messaging (SMS/MMS): `X-Twilio-Signature`, inbound message and status
//! callback normalization, STOP/START/HELP consent keywords, and the outbound adapter behind
//! [`crate::outbound`].
//! See <https://www.twilio.com/docs/usage/webhooks/webhooks-security>.

mod inbound;
pub(crate) mod outbound;
mod verify;

pub use inbound::normalize;
pub use verify::{SIGNATURE_HEADER, signature, verify_signature};

use crate::webhook::{SuccessAnswer, WebhookAccount, WebhookAdapter, WebhookRequest, required_secret};
use crate::{NormalizeContext, NormalizeError, Normalized, Verified, VerifyError};

/// Decodes an `application/x-www-form-urlencoded` body into its pairs, in order.
/// Returns `None` on invalid escapes or UTF-8.
pub fn parse_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut pairs = Vec::new();
    for pair in text.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        pairs.push((
            crate::meta::percent_decode(name)?,
            crate::meta::percent_decode(value)?,
        ));
    }
    Some(pairs)
}

/// The webhook adapter of Twilio Programmable Messaging.
pub struct TwilioWebhook;

/// Twilio webhooks (inbound messages and status callbacks).
pub static WEBHOOK: TwilioWebhook = TwilioWebhook;

impl WebhookAdapter for TwilioWebhook {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn secret_names(&self) -> &'static [&'static str] {
        &["auth_token"]
    }

    fn body_is_json(&self) -> bool {
        false
    }

    fn verify<'a>(
        &self,
        account: &dyn WebhookAccount,
        request: &WebhookRequest<'a>,
    ) -> Result<Verified<'a>, VerifyError> {
        verify_signature(
            request.headers,
            request.url,
            request.body,
            required_secret(account, "auth_token")?,
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

    /// Empty TwiML: Twilio sends no automatic reply.
    fn success_answer(&self) -> SuccessAnswer {
        SuccessAnswer {
            content_type: Some("text/xml"),
            body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
        }
    }
}
