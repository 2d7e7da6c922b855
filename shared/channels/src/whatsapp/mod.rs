//! WhatsApp Cloud API: webhook payload types and their normalization, and the outbound adapter
//! behind [`crate::outbound`]. Signatures and the handshake are Meta's ([`crate::meta`]).
//! See <https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components>.

mod inbound;
pub(crate) mod outbound;
mod types;

pub use inbound::normalize;
