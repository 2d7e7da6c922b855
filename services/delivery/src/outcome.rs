//! What one send attempt came to, decided once from the call's result: sent, retry, fail or
//! unknown. The send worker records it, counts it and moves the message on from it.

use std::time::Duration;

use switchboard_channels::outbound::{BuildError, SendOutcome};
use switchboard_proto::common::v1::ProviderError;

use crate::metrics::AttemptLabel;
use crate::transport::CallOutcome;

/// What a send attempt came to.
#[derive(Debug)]
pub enum Outcome {
    /// The provider took the message.
    Sent {
        /// The provider's id of it.
        provider_message_id: String,
    },
    /// Try again later, never sooner than `retry_after`.
    Retry {
        /// Why it did not go.
        error: ProviderError,
        /// The provider's own wait, if it gave one.
        retry_after: Option<Duration>,
    },
    /// It never goes as it is.
    Fail {
        /// Why.
        error: ProviderError,
    },
    /// The request went out and no answer came in time: maybe sent.
    Unknown {
        /// What happened.
        error: ProviderError,
    },
}

impl Outcome {
    /// The word stored in `delivery.attempts.outcome`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sent { .. } => "accepted",
            Self::Retry { .. } => "retryable",
            Self::Fail { .. } => "permanent",
            Self::Unknown { .. } => "unknown",
        }
    }

    /// The error to record, unless it was sent.
    pub fn error(&self) -> Option<&ProviderError> {
        match self {
            Self::Sent { .. } => None,
            Self::Retry { error, .. } | Self::Fail { error } | Self::Unknown { error } => Some(error),
        }
    }

    /// The provider's retry-after, when it asked to retry later.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retry { retry_after, .. } => *retry_after,
            Self::Sent { .. } | Self::Fail { .. } | Self::Unknown { .. } => None,
        }
    }
}

/// One attempt, judged: its outcome, the provider's status (0 when none answered) and the
/// label the attempt counter gives the call.
#[derive(Debug)]
pub struct Verdict {
    /// What it came to.
    pub outcome: Outcome,
    /// The provider's HTTP status (SMTP reply code), 0 when none answered.
    pub provider_status: u16,
    /// The metric label of the call.
    pub label: AttemptLabel,
}

impl Verdict {
    /// Judges the result of one call.
    pub fn of(call: CallOutcome) -> Self {
        let (outcome, provider_status, label) = match call {
            CallOutcome::Answered { status, outcome } => match outcome {
                SendOutcome::Accepted { provider_message_id } => (
                    Outcome::Sent { provider_message_id },
                    status,
                    AttemptLabel::Accepted,
                ),
                SendOutcome::Retryable { error, retry_after } => (
                    Outcome::Retry { error, retry_after },
                    status,
                    AttemptLabel::Retryable,
                ),
                SendOutcome::Permanent { error } => {
                    (Outcome::Fail { error }, status, AttemptLabel::Permanent)
                }
            },
            CallOutcome::Unknown(why) => (
                Outcome::Unknown {
                    error: local_error("timeout", why),
                },
                0,
                AttemptLabel::Unknown,
            ),
            CallOutcome::NotSent(why) => (
                Outcome::Retry {
                    error: local_error("unreachable", why),
                    retry_after: None,
                },
                0,
                AttemptLabel::NotSent,
            ),
            CallOutcome::Unbuildable(error) => (
                Outcome::Fail {
                    error: local_error(build_code(&error), error.to_string()),
                },
                0,
                AttemptLabel::Unbuildable,
            ),
        };
        Self {
            outcome,
            provider_status,
            label,
        }
    }

    /// The wait the provider asked of the whole account: a retry-after on HTTP 429.
    pub fn account_pause(&self) -> Option<Duration> {
        if self.provider_status == 429 {
            self.outcome.retry_after()
        } else {
            None
        }
    }
}

/// An error delivery itself describes (no provider answered).
fn local_error(code: &str, message: String) -> ProviderError {
    ProviderError {
        code: code.to_owned(),
        title: String::new(),
        message,
        details: String::new(),
    }
}

fn build_code(error: &BuildError) -> &'static str {
    match error {
        BuildError::MissingCredential(_) => "missing_credential",
        BuildError::Unsupported(_) => "unsupported_content",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_is_judged_once_with_its_stored_word_and_metric_label() {
        let judged = |call| {
            let verdict = Verdict::of(call);
            (
                verdict.outcome.as_str(),
                verdict.label.as_str(),
                verdict.provider_status,
            )
        };
        assert_eq!(
            judged(CallOutcome::NotSent("refused".to_owned())),
            ("retryable", "not_sent", 0)
        );
        assert_eq!(
            judged(CallOutcome::Unbuildable(BuildError::MissingCredential("token"))),
            ("permanent", "unbuildable", 0)
        );
        assert_eq!(
            judged(CallOutcome::Unknown("late".to_owned())),
            ("unknown", "unknown", 0)
        );
        let throttled = Verdict::of(CallOutcome::Answered {
            status: 429,
            outcome: SendOutcome::Retryable {
                error: ProviderError::default(),
                retry_after: Some(Duration::from_secs(3)),
            },
        });
        assert_eq!(throttled.account_pause(), Some(Duration::from_secs(3)));
        assert_eq!(throttled.outcome.as_str(), "retryable");
    }
}
