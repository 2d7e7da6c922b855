//! Switchboard's domain vocabulary: typed ids, channels and the shared [`ErrorCode`].
//!
//! This crate does no I/O and pulls no runtime (no tokio, axum, tonic transport, lapin or
//! deadpool); every other crate may depend on it. It depends only on the generated message
//! types of `switchboard-proto`.

mod channel;
pub mod delivery_status;
mod error;
mod ids;
pub mod time;

pub use channel::{Channel, UnknownChannel};
pub use error::ErrorCode;
pub use ids::{
    AgentId, ApiKeyId, ChannelAccountId, ContactId, ConversationId, EventId, InvalidId, JobId, MergeId,
    MessageId, NoteId, SnippetId, TeamId, ViewId, WorkspaceId,
};
