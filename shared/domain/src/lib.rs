//! Switchboard's domain vocabulary: typed ids, channels, the shared [`ErrorCode`], and phone
//! numbers and e-mail addresses in their one canonical spelling.
//!
//! This crate does no I/O and pulls no runtime (no tokio, axum, tonic transport, lapin or
//! deadpool); every other crate may depend on it. It depends on the generated message
//! types of `switchboard-proto` and on libphonenumber's metadata (`phonenumber`).

mod channel;
pub mod delivery_status;
mod error;
mod ids;
pub mod normalize;
pub mod time;

pub use channel::{Channel, UnknownChannel};
pub use error::ErrorCode;
pub use ids::{
    AgentId, ApiKeyId, ChannelAccountId, ContactId, ConversationId, EventId, InvalidId, JobId, MergeId,
    MessageId, NoteId, SnippetId, TeamId, ViewId, WorkspaceId,
};
