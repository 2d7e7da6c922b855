//! Twilio Programmable Messaging (SMS/MMS): `X-Twilio-Signature`, inbound message and status
//! callback normalization, STOP/START/HELP consent keywords, and the outbound adapter behind
//! [`crate::outbound`].
//! See <https://www.twilio.com/docs/usage/webhooks/webhooks-security>.

mod inbound;
pub(crate) mod outbound;
mod verify;

pub use inbound::normalize;
pub use verify::{SIGNATURE_HEADER, signature, verify_signature};

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
