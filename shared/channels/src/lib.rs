//! Everything Switchboard knows about each provider, one module per provider: how its
//! webhooks are signed, what its payloads look like, and how they normalize into the bus's
//! [`InboundEvent`](switchboard_proto::events::v1::InboundEvent).
//!
//! Pure functions over bytes and headers: no axum, no lapin, no I/O, so every provider
//! behaviour is tested with recorded payloads. Ingress and delivery are the pipelines that
//! call into it.

pub mod email;
pub mod instagram;
pub mod media;
pub mod messenger;
pub mod meta;
mod normalize;
pub mod outbound;
pub mod telegram;
pub mod twilio;
mod verify;
pub mod webchat;
pub mod webhook;
pub mod whatsapp;

pub use normalize::{MAX_JSON_DEPTH, NormalizeContext, NormalizeError, Normalized, Skipped, json_too_deep};
pub use verify::{Verified, VerifyError};
pub use webhook::{Handshake, SuccessAnswer, WebhookAccount, WebhookAdapter, WebhookRequest, adapter_for};
