//! Messenger Platform webhooks (`object: "page"`), and the same event shapes for Instagram
//! (`object: "instagram"`, see [`crate::instagram`]), and the Send API adapter both use behind
//! [`crate::outbound`]. Signatures are Meta's ([`crate::meta`]).
//! See <https://developers.facebook.com/docs/messenger-platform/webhooks>.

mod inbound;
pub(crate) mod outbound;
mod types;

pub(crate) use inbound::{Platform, normalize_platform};

use crate::{NormalizeContext, NormalizeError, Normalized, Verified};

/// Normalizes a verified Messenger webhook.
pub fn normalize(body: Verified<'_>, context: &NormalizeContext) -> Result<Normalized, NormalizeError> {
    normalize_platform(body, context, Platform::Messenger)
}
