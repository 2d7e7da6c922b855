//! Sliding-window rate limits per account: every limit counts the sends *accepted* in the
//! last window (`(now - span, now]`), so a refused request never eats quota, and the highest
//! count ever seen in a 1-second window is kept for utilisation checks.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::model::{EffectiveLimits, ViolationCounts};

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
/// Per-key window maps are swept of idle keys past this size.
const SWEEP_ABOVE: usize = 4096;

/// The instants of accepted sends inside one sliding window.
#[derive(Debug)]
struct Window {
    span: Duration,
    hits: VecDeque<Instant>,
}

impl Window {
    fn new(span: Duration) -> Self {
        Self {
            span,
            hits: VecDeque::new(),
        }
    }

    /// Forgets hits that left the window ending at `now`.
    fn prune(&mut self, now: Instant) {
        while let Some(oldest) = self.hits.front() {
            if now.saturating_duration_since(*oldest) >= self.span {
                self.hits.pop_front();
            } else {
                break;
            }
        }
    }

    /// Hits in the window ending at `now`.
    fn count(&mut self, now: Instant) -> usize {
        self.prune(now);
        self.hits.len()
    }

    /// How long until the oldest hit leaves the window.
    fn wait(&self, now: Instant) -> Duration {
        self.hits.front().map_or(Duration::ZERO, |oldest| {
            (*oldest + self.span).saturating_duration_since(now)
        })
    }

    fn is_idle(&mut self, now: Instant) -> bool {
        self.count(now) == 0
    }
}

/// The limit that refused a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitKind {
    /// `per_second`.
    Second,
    /// `per_recipient_per_second`.
    RecipientSecond,
    /// `per_recipient_per_minute`.
    RecipientMinute,
    /// `per_group_per_minute`.
    GroupMinute,
}

impl LimitKind {
    /// True for the limits on one recipient or group (WhatsApp answers these with 131056).
    pub(crate) fn is_per_recipient(self) -> bool {
        !matches!(self, LimitKind::Second)
    }
}

/// A send refused by a limit, with how long until it would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The limit.
    pub kind: LimitKind,
    /// Time until the window frees a slot.
    pub retry_after: Duration,
}

impl Refusal {
    /// The wait in whole seconds, at least 1 (what providers announce).
    pub(crate) fn retry_after_secs(&self) -> u64 {
        let millis = self.retry_after.as_millis();
        u64::try_from(millis.div_ceil(1000)).unwrap_or(u64::MAX).max(1)
    }
}

/// Where a send goes, as the limits see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    /// The recipient (chat id, wa_id, PSID, phone number), if the call has one.
    pub recipient: Option<&'a str>,
    /// Telegram group or supergroup (negative chat id).
    pub group: bool,
}

/// The windows and counters of one account.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: EffectiveLimits,
    accepted: Window,
    per_recipient_second: HashMap<String, Window>,
    per_recipient_minute: HashMap<String, Window>,
    per_group_minute: HashMap<String, Window>,
    max_in_one_second: u64,
    violations: ViolationCounts,
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub(crate) fn new(limits: EffectiveLimits) -> Self {
        Self {
            limits,
            accepted: Window::new(SECOND),
            per_recipient_second: HashMap::new(),
            per_recipient_minute: HashMap::new(),
            per_group_minute: HashMap::new(),
            max_in_one_second: 0,
            violations: ViolationCounts::default(),
        }
    }

    /// Enforces `limits` from now on; the windows seen so far stay.
    pub(crate) fn set_limits(&mut self, limits: EffectiveLimits) {
        self.limits = limits;
    }

    /// The limits in force.
    pub(crate) fn limits(&self) -> EffectiveLimits {
        self.limits
    }

    /// The most accepted sends seen in any 1-second window.
    pub(crate) fn max_in_one_second(&self) -> u64 {
        self.max_in_one_second
    }

    /// Violations so far, by limit.
    pub(crate) fn violations(&self) -> ViolationCounts {
        self.violations
    }

    /// Checks a send at `now` without taking quota; a refusal is counted as a violation.
    pub(crate) fn check(&mut self, now: Instant, target: Target<'_>) -> Result<(), Refusal> {
        let refusal = self.first_refusal(now, target);
        if let Some(refusal) = refusal {
            let counter = match refusal.kind {
                LimitKind::Second => &mut self.violations.per_second,
                LimitKind::RecipientSecond => &mut self.violations.per_recipient_per_second,
                LimitKind::RecipientMinute => &mut self.violations.per_recipient_per_minute,
                LimitKind::GroupMinute => &mut self.violations.per_group_per_minute,
            };
            *counter += 1;
            return Err(refusal);
        }
        Ok(())
    }

    fn first_refusal(&mut self, now: Instant, target: Target<'_>) -> Option<Refusal> {
        if let (Some(limit), Some(group), true) =
            (self.limits.per_group_per_minute, target.recipient, target.group)
            && let Some(window) = self.per_group_minute.get_mut(group)
            && let Some(refusal) = full(window, now, limit, LimitKind::GroupMinute)
        {
            return Some(refusal);
        }
        if let (Some(limit), Some(recipient)) = (self.limits.per_recipient_per_second, target.recipient)
            && let Some(window) = self.per_recipient_second.get_mut(recipient)
            && let Some(refusal) = full(window, now, limit, LimitKind::RecipientSecond)
        {
            return Some(refusal);
        }
        if let (Some(limit), Some(recipient)) = (self.limits.per_recipient_per_minute, target.recipient)
            && let Some(window) = self.per_recipient_minute.get_mut(recipient)
            && let Some(refusal) = full(window, now, limit, LimitKind::RecipientMinute)
        {
            return Some(refusal);
        }
        if let Some(limit) = self.limits.per_second {
            return full(&mut self.accepted, now, limit, LimitKind::Second);
        }
        None
    }

    /// Takes quota for a send accepted at `now`.
    pub(crate) fn record(&mut self, now: Instant, target: Target<'_>) {
        self.accepted.prune(now);
        self.accepted.hits.push_back(now);
        let in_window = u64::try_from(self.accepted.hits.len()).unwrap_or(u64::MAX);
        self.max_in_one_second = self.max_in_one_second.max(in_window);
        let Some(recipient) = target.recipient else {
            return;
        };
        // Windows are kept only for the limits in force.
        if self.limits.per_recipient_per_second.is_some() {
            push(&mut self.per_recipient_second, recipient, SECOND, now);
        }
        if self.limits.per_recipient_per_minute.is_some() {
            push(&mut self.per_recipient_minute, recipient, MINUTE, now);
        }
        if target.group && self.limits.per_group_per_minute.is_some() {
            push(&mut self.per_group_minute, recipient, MINUTE, now);
        }
    }
}

/// A refusal when `window` already holds `limit` hits at `now`.
fn full(window: &mut Window, now: Instant, limit: u32, kind: LimitKind) -> Option<Refusal> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    (window.count(now) >= limit).then(|| Refusal {
        kind,
        retry_after: window.wait(now),
    })
}

fn push(windows: &mut HashMap<String, Window>, key: &str, span: Duration, now: Instant) {
    if windows.len() > SWEEP_ABOVE {
        windows.retain(|_, window| !window.is_idle(now));
    }
    let window = windows.entry(key.to_owned()).or_insert_with(|| Window::new(span));
    window.prune(now);
    window.hits.push_back(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_second: u32) -> EffectiveLimits {
        EffectiveLimits {
            per_second: Some(per_second),
            per_recipient_per_second: Some(1),
            per_recipient_per_minute: None,
            per_group_per_minute: Some(2),
        }
    }

    fn admit(limiter: &mut Limiter, now: Instant, target: Target<'_>) -> Result<(), Refusal> {
        limiter.check(now, target)?;
        limiter.record(now, target);
        Ok(())
    }

    #[test]
    fn the_per_second_window_slides_and_tracks_its_peak() {
        let start = Instant::now();
        let mut limiter = Limiter::new(limits(3));
        let anyone = Target {
            recipient: None,
            group: false,
        };
        for offset in [0, 100, 200] {
            admit(&mut limiter, start + Duration::from_millis(offset), anyone).unwrap();
        }
        let refused = admit(&mut limiter, start + Duration::from_millis(900), anyone).unwrap_err();
        assert_eq!(refused.kind, LimitKind::Second);
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert_eq!(refused.retry_after_secs(), 1);
        // The first hit leaves the window exactly one second after it arrived.
        admit(&mut limiter, start + Duration::from_millis(1000), anyone).unwrap();
        assert_eq!(limiter.max_in_one_second(), 3);
        assert_eq!(limiter.violations().per_second, 1);
    }

    #[test]
    fn recipients_and_groups_have_their_own_windows() {
        let now = Instant::now();
        let mut limiter = Limiter::new(limits(100));
        let chat = |id| Target {
            recipient: Some(id),
            group: false,
        };
        admit(&mut limiter, now, chat("1")).unwrap();
        admit(&mut limiter, now, chat("2")).unwrap();
        assert_eq!(
            admit(&mut limiter, now, chat("1")).unwrap_err().kind,
            LimitKind::RecipientSecond
        );
        let group = Target {
            recipient: Some("-5"),
            group: true,
        };
        admit(&mut limiter, now, group).unwrap();
        admit(&mut limiter, now + SECOND, group).unwrap();
        let refused = admit(&mut limiter, now + 2 * SECOND, group).unwrap_err();
        assert_eq!(refused.kind, LimitKind::GroupMinute);
        assert_eq!(refused.retry_after_secs(), 58);
    }
}
