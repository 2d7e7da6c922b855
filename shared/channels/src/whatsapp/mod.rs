//! WhatsApp Cloud API: webhook payload types and their normalization. Signatures and the
//! handshake are Meta's ([`crate::meta`]).
//! See <https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components>.

mod inbound;
mod types;

pub use inbound::normalize;
