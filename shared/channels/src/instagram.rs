//! Instagram Messaging webhooks (`object: "instagram"`): Messenger's event shapes with
//! Instagram's differences (per-message `read` receipts, `is_deleted`, story replies).
//! See <https://developers.facebook.com/docs/instagram-platform/webhooks>.

use crate::messenger::{Platform, normalize_platform};
use crate::{NormalizeContext, NormalizeError, Normalized, Verified};

/// Normalizes a verified Instagram webhook.
pub fn normalize(body: Verified<'_>, context: &NormalizeContext) -> Result<Normalized, NormalizeError> {
    normalize_platform(body, context, Platform::Instagram)
}
