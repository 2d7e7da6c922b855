use switchboard_domain::ErrorCode;

/// Why a publish was not confirmed. The message may or may not have reached the broker only
/// for [`PublishError::Timeout`]; in every other case it was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No broker connection came up within the confirm timeout.
    #[error("rabbitmq is not connected")]
    NotConnected,
    /// The broker did not confirm within the timeout.
    #[error("rabbitmq did not confirm the publish within {0:?}")]
    Timeout(std::time::Duration),
    /// The broker refused the message (queue full with reject-publish, internal error).
    #[error("rabbitmq refused the message (nack)")]
    Nacked,
    /// No queue is bound for the routing key; the broker returned the message.
    #[error(
        "no queue is bound for routing key {routing_key:?} on exchange {exchange:?} ({reply_code} {reply_text})"
    )]
    Unroutable {
        /// Exchange published to.
        exchange: String,
        /// Routing key used.
        routing_key: String,
        /// AMQP reply code of the return (312 NO_ROUTE).
        reply_code: u16,
        /// AMQP reply text.
        reply_text: String,
    },
    /// The channel or connection failed under the publish.
    #[error("rabbitmq channel failed during publish")]
    Channel(#[from] lapin::Error),
}

impl PublishError {
    /// Classifies the failure: a broker outage is `Unavailable`, a missing route a precondition.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotConnected | Self::Nacked | Self::Channel(_) => ErrorCode::Unavailable,
            Self::Timeout(_) => ErrorCode::Timeout,
            Self::Unroutable { .. } => ErrorCode::FailedPrecondition,
        }
    }

    /// What retrying a consumed message whose publish failed with this can do: a broker that
    /// is away or refuses is waited for; a missing route is retried (the producer declares
    /// its queues again) a bounded number of times.
    pub fn failure(&self) -> crate::Failure {
        match self {
            Self::NotConnected | Self::Timeout(_) | Self::Nacked | Self::Channel(_) => {
                crate::Failure::Unavailable
            }
            Self::Unroutable { .. } => crate::Failure::Retryable,
        }
    }
}

/// A failure of the messaging kit outside a single publish.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    /// A lapin operation failed.
    #[error("rabbitmq operation {operation} failed")]
    Amqp {
        /// What we were doing.
        operation: &'static str,
        /// lapin's error.
        #[source]
        source: lapin::Error,
    },
    /// The broker connection is not up.
    #[error("rabbitmq is not connected")]
    NotConnected,
    /// A lapin operation did not complete in time (a connection whose recovery stalled).
    #[error("rabbitmq operation {operation} did not complete within {after:?}")]
    Stalled {
        /// What we were doing.
        operation: &'static str,
        /// How long we waited.
        after: std::time::Duration,
    },
}

impl MessagingError {
    /// Classifies the failure (always a dependency problem).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Amqp { .. } | Self::NotConnected | Self::Stalled { .. } => ErrorCode::Unavailable,
        }
    }

    pub(crate) fn amqp(operation: &'static str) -> impl FnOnce(lapin::Error) -> Self {
        move |source| Self::Amqp { operation, source }
    }
}
