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

    /// Most deliveries of one partition handed to [`handle_batch`](Self::handle_batch) at
    /// once; 1 (the default) handles each on its own. Only partitions consumed one message at
    /// a time batch.
    fn max_batch(&self) -> usize {
        1
    }

    /// Handles deliveries of one partition together, in queue order, each with the span its
    /// trace continues in. `Ok` means every one's effects are durable (committed together),
    /// and they are acked at once. On any error the consumer hands them to
    /// [`handle`](Self::handle) one by one, with the usual retries and dead-lettering, so a
    /// batch must leave no partial effect a second handling could not take (handlers are
    /// idempotent anyway). The default handles each in turn.
    fn handle_batch(&self, batch: &[Batched]) -> impl Future<Output = Result<(), HandlerError>> + Send {
        async move {
            for item in batch {
                self.handle(&item.message).await?;
            }
            Ok(())
        }
    }
}

/// One delivery of a batch (see [`Handler::handle_batch`]).
pub struct Batched {
    /// The delivery.
    pub message: Incoming,
    /// The span its handling belongs to: a child of the trace context its headers carry.
    /// Enter it (or instrument with it) for the work and publishes of this message.
    pub span: tracing::Span,
}

/// The positions of a batch's items grouped by key: each group in batch order, the groups in
/// the order their keys first appear. One key's items must run in order; different keys' may
/// run side by side.
pub fn groups_by_key<K: Eq + std::hash::Hash>(
    keyed: impl IntoIterator<Item = (usize, K)>,
) -> Vec<Vec<usize>> {
    let mut positions: std::collections::HashMap<K, usize> = std::collections::HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (index, key) in keyed {
        let group = *positions.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(index);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::groups_by_key;

    #[test]
    fn groups_keep_batch_order_within_a_key_and_first_appearance_across_keys() {
        let keys = ["b", "a", "b", "c", "a", "b"];
        assert_eq!(
            groups_by_key(keys.iter().copied().enumerate()),
            vec![vec![0, 2, 5], vec![1, 4], vec![3]]
        );
    }
}
