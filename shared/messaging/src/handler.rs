//! What a consumer runs for each message, and how a handler says why a message failed.

use std::future::Future;

use crate::Incoming;

/// Why a handler did not finish a message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Something the handler needs is away (the database restarts, a component does not
    /// answer); the message itself is fine. It is tried again, with backoff, for as long as it
    /// takes: these attempts do not count towards `bus.max_attempts`, so an outage never sends
    /// good messages to the dead-letter queue.
    #[error("dependency unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A passing failure (a conflict, a race); the message is tried again, up to
    /// `bus.max_attempts` times, then dead-lettered.
    #[error("retryable: {0}")]
    Retryable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The message can never succeed (undecodable, invalid); it goes to the dead-letter queue.
    #[error("permanent: {0}")]
    Permanent(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What trying a failed message again can do, as the error that failed it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A dependency is away: wait for it ([`HandlerError::Unavailable`]).
    Unavailable,
    /// A passing failure: retry a bounded number of times ([`HandlerError::Retryable`]).
    Retryable,
    /// Never succeeds: dead-letter ([`HandlerError::Permanent`]).
    Permanent,
}

impl HandlerError {
    /// A failure because a dependency is away, from any error.
    pub fn unavailable(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(error.into())
    }

    /// A retryable failure from any error.
    pub fn retryable(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Retryable(error.into())
    }

    /// A permanent failure from any error.
    pub fn permanent(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Permanent(error.into())
    }

    /// `error` as the kind of failure `failure` says it is.
    pub fn classified(failure: Failure, error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        match failure {
            Failure::Unavailable => Self::unavailable(error),
            Failure::Retryable => Self::retryable(error),
            Failure::Permanent => Self::permanent(error),
        }
    }
}

/// Processes one message. The message is acked only after `handle` returns `Ok`, so the
/// handler must have made its effects durable (and published what it publishes) by then.
/// Handlers must be idempotent: at-least-once delivery can hand them a message twice.
pub trait Handler: Send + Sync + 'static {
    /// Handles one delivery.
    fn handle(&self, message: &Incoming) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// The key of messages that must be handled one at a time in queue order even when the
    /// consumer runs several handlers at once (e.g. sends to one recipient); `None` (the
    /// default) lets the message run beside any other.
    fn order_key(&self, _message: &Incoming) -> Option<String> {
        None
    }
}
