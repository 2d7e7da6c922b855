//! When a retryable send is tried again: exponential backoff with jitter, never sooner than
//! the provider's retry-after, and never after the message's retry deadline. Pure: the caller
//! passes the clock and the jitter.
//!
//! A provider's retry-after is untrusted input: it is clamped to `retry_max_age` before any
//! arithmetic, and every step is checked, so no value (0, huge, a date far ahead) can panic or
//! turn into an immediate retry. A wait that ends after the deadline gives up instead.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::DeliveryConfig;

/// What to do after a retryable attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAttempt {
    /// Try again at this time.
    At(DateTime<Utc>),
    /// The next attempt would come after the message's deadline: fail it.
    GiveUp,
}

/// The provider's retry-after bounded by the message's whole retry budget: no single wait is
/// longer than `retry_max_age`.
pub fn bounded_wait(config: &DeliveryConfig, retry_after: Duration) -> Duration {
    retry_after.min(config.retry_max_age)
}

/// The delay before attempt `attempt + 1`: exponential from `retry_initial_backoff`, capped
/// at `retry_max_backoff`, scaled by `jitter` (0.5..1.0 in production), never under the
/// bounded retry-after.
pub fn delay(config: &DeliveryConfig, attempt: i32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(20);
    let base = config
        .retry_initial_backoff
        .saturating_mul(1 << exponent)
        .min(config.retry_max_backoff);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let delay = base.mul_f64(jitter);
    retry_after.map_or(delay, |wait| delay.max(bounded_wait(config, wait)))
}

/// When attempt `attempt + 1` of a message accepted at `created_at` happens, seen at `now`.
pub fn next_attempt(
    config: &DeliveryConfig,
    attempt: i32,
    retry_after: Option<Duration>,
    jitter: f64,
    now: DateTime<Utc>,
    created_at: DateTime<Utc>,
) -> NextAttempt {
    let delay = delay(config, attempt, retry_after, jitter);
    let deadline = TimeDelta::from_std(config.retry_max_age)
        .ok()
        .and_then(|age| created_at.checked_add_signed(age));
    let next = TimeDelta::from_std(delay)
        .ok()
        .and_then(|delay| now.checked_add_signed(delay));
    match (next, deadline) {
        (Some(next), Some(deadline)) if next <= deadline => NextAttempt::At(next),
        (Some(next), None) => NextAttempt::At(next),
        _ => NextAttempt::GiveUp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DeliveryConfig {
        DeliveryConfig {
            retry_initial_backoff: Duration::from_secs(1),
            retry_max_backoff: Duration::from_secs(300),
            retry_max_age: Duration::from_secs(6 * 3600),
            ..DeliveryConfig::default()
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("valid time")
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_never_undercuts_the_retry_after() {
        let config = config();
        assert_eq!(delay(&config, 1, None, 1.0), Duration::from_secs(1));
        assert_eq!(delay(&config, 4, None, 1.0), Duration::from_secs(8));
        assert_eq!(delay(&config, 4, None, 0.5), Duration::from_secs(4));
        assert_eq!(delay(&config, 40, None, 1.0), Duration::from_secs(300));
        assert_eq!(delay(&config, i32::MAX, None, 1.0), Duration::from_secs(300));
        assert_eq!(delay(&config, i32::MIN, None, 1.0), Duration::from_secs(1));
        assert_eq!(
            delay(&config, 1, Some(Duration::from_secs(30)), 1.0),
            Duration::from_secs(30)
        );
        // A zero retry-after is "now": the backoff still applies.
        assert_eq!(
            delay(&config, 2, Some(Duration::ZERO), 1.0),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn a_provider_wait_beyond_the_deadline_gives_up_instead_of_retrying_at_once() {
        let config = config();
        let created = at(0);
        // Within the budget: retried after the provider's wait.
        assert_eq!(
            next_attempt(&config, 1, Some(Duration::from_secs(60)), 1.0, at(10), created),
            NextAttempt::At(at(70))
        );
        // Huge values, including ones no clock can represent, are bounded: no panic, no
        // immediate retry, the message fails as out of time.
        for huge in [
            Duration::from_secs(7 * 24 * 3600),
            Duration::from_secs(u64::MAX),
            Duration::MAX,
        ] {
            assert_eq!(
                next_attempt(&config, 1, Some(huge), 1.0, at(10), created),
                NextAttempt::GiveUp,
                "{huge:?}"
            );
            assert_eq!(bounded_wait(&config, huge), config.retry_max_age);
        }
        // Near the deadline even the backoff alone gives up.
        assert_eq!(
            next_attempt(&config, 30, None, 1.0, at(6 * 3600 - 10), created),
            NextAttempt::GiveUp
        );
        // Out-of-range jitter cannot stretch or negate the delay.
        assert_eq!(delay(&config, 1, None, 7.0), Duration::from_secs(1));
        assert_eq!(delay(&config, 1, None, -1.0), Duration::ZERO);
        assert_eq!(delay(&config, 1, None, f64::NAN), Duration::from_secs(1));
    }
}
