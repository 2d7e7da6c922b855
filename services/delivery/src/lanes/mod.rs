//! One lane per channel account in the process that owns the account's partition: the
//! account's rate limit (governor, paced evenly below the provider's limit), per-recipient
//! limits (Telegram 1/s per chat and 20/min per group, WhatsApp's pair rate), a pause when
//! the provider answers with a retry-after for the whole account, live replies before
//! broadcasts, and one send at a time per recipient. (Live replies to one recipient reach
//! the lane in queue order: the send consumer hands them over by the job's order key.)
//!
//! A send passes its lane in a fixed order, and the types enforce it: [`Lanes::admit`]
//! picks the lane and holds a broadcast (step 1), [`Admission::clear`] waits for the
//! recipient's turn and limits (steps 2 and 3, before the database work), and
//! [`Cleared::call_slot`] waits out the recipient's spacing and the account's pacing (steps
//! 4 and 5, right before the call) and yields the [`CallSlot`] held during the call (step 6).

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use switchboard_directory::ResolvedAccount;
use switchboard_domain::Channel;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::DeliveryConfig;

mod admission;

pub use admission::{Admission, Cleared, Deferred};

/// The provider's sliding window for an account's per-second limit.
const SECOND: Duration = Duration::from_secs(1);

/// The longest an account's sends can be paused at once, whatever a provider asks.
pub const MAX_PAUSE: Duration = Duration::from_secs(24 * 3600);

/// The account setting that overrides the channel's default per-second limit.
pub const RATE_SETTING: &str = "rate_limit_per_second";

/// Every lane of this process.
pub struct Lanes {
    config: Arc<DeliveryConfig>,
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    /// Broadcast sends held by all lanes (see [`Lanes::hold_broadcast`]).
    broadcasts_held: Arc<AtomicUsize>,
}

/// A broadcast send a lane holds, counted until dropped.
struct BroadcastHold {
    lane: Arc<Lane>,
    all: Arc<AtomicUsize>,
}

impl Drop for BroadcastHold {
    fn drop(&mut self) {
        self.lane.broadcasts_held.fetch_sub(1, Ordering::SeqCst);
        self.all.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One account's lane.
struct Lane {
    per_second: f64,
    account: DefaultDirectRateLimiter,
    /// WhatsApp's pair rate (bursts borrowed from a 6 s period).
    pairs: Option<DefaultKeyedRateLimiter<String>>,
    /// Telegram: the least time between the end of a call to one private chat (or group) and
    /// the start of the next: a call reaches the provider between its start and its end, so
    /// two calls to a chat reach it at least this far apart, whatever the delays.
    spacing: Option<(Duration, Duration)>,
    /// When the last call to each spaced recipient ended.
    last_call: Mutex<HashMap<String, Instant>>,
    /// Live replies waiting for a slot; broadcasts wait until there are none.
    live_waiting: AtomicUsize,
    /// Wakes the broadcasts waiting for live replies when the last of those has its slot.
    live_drained: Notify,
    broadcasts_held: AtomicUsize,
    next_broadcast_slot: Mutex<Instant>,
    paused_until: Mutex<Option<Instant>>,
    /// The calls that may still count in the provider's current second (see [`Lane::pace`]).
    calls: Mutex<CallWindow>,
    /// Wakes a send waiting for the window when a call ends.
    call_ended: Notify,
    order: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The provider calls of a lane that may still count in the provider's sliding second: those
/// in flight and those answered less than a second ago.
#[derive(Default)]
struct CallWindow {
    in_flight: usize,
    /// When each call answered in the last second ended, oldest first.
    ended: VecDeque<Instant>,
}

impl CallWindow {
    /// Calls that may count in a second starting after `now - 1 s`.
    fn counted(&mut self, now: Instant) -> usize {
        while self
            .ended
            .front()
            .is_some_and(|ended| now.duration_since(*ended) >= SECOND)
        {
            self.ended.pop_front();
        }
        self.in_flight + self.ended.len()
    }
}

/// A provider call's place in its lane's window, held from [`Lane::pace`] until the call
/// ends (answered, failed or timed out): dropping it stamps the end, in the account's window
/// and as the recipient's last call (Telegram spacing).
pub struct CallSlot<'a> {
    lane: &'a Lane,
    recipient: &'a str,
}

impl Drop for CallSlot<'_> {
    fn drop(&mut self) {
        let now = Instant::now();
        {
            let mut calls = self
                .lane
                .calls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            calls.in_flight = calls.in_flight.saturating_sub(1);
            calls.ended.push_back(now);
        }
        self.lane.call_ended.notify_waiters();
        self.lane.stamp_last_call(self.recipient, now);
    }
}

/// A quota of `per_second` sends spaced evenly, with a burst of a twentieth of a second's
/// worth: a send that woke late can be followed at once by the next, so timer lateness is not
/// lost capacity (the provider's second is guarded by [`Lane::pace`]'s window, not by this).
fn paced(per_second: f64) -> Quota {
    let period = Duration::from_secs_f64(1.0 / per_second.max(0.001));
    let burst = NonZeroU32::new((per_second / 20.0).floor() as u32).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period).map_or_else(
        || Quota::per_second(NonZeroU32::MIN),
        |quota| quota.allow_burst(burst),
    )
}

impl Lanes {
    /// No lanes yet; they are made on first use.
    pub fn new(config: Arc<DeliveryConfig>) -> Self {
        Self {
            config,
            lanes: Mutex::new(HashMap::new()),
            broadcasts_held: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Holds a broadcast send on `lane`, or returns `None` when enough broadcasts are held
    /// already: on the lane, two seconds of its rate (at least 8); in the process, half of
    /// `sends_in_flight`. A broadcast not held waits in the database instead (its job acked,
    /// sent again when due), so a broadcast backlog never fills the queue's prefetch ahead of
    /// live replies.
    fn hold_broadcast(&self, lane: &Arc<Lane>) -> Option<BroadcastHold> {
        let lane_capacity = ((lane.per_second * 2.0).ceil() as usize).max(8);
        let process_capacity = (self.config.sends_in_flight / 2).max(1);
        if lane.broadcasts_held.load(Ordering::SeqCst) >= lane_capacity
            || self.broadcasts_held.load(Ordering::SeqCst) >= process_capacity
        {
            return None;
        }
        lane.broadcasts_held.fetch_add(1, Ordering::SeqCst);
        self.broadcasts_held.fetch_add(1, Ordering::SeqCst);
        Some(BroadcastHold {
            lane: lane.clone(),
            all: self.broadcasts_held.clone(),
        })
    }

    /// The per-second limit of `account`: its `rate_limit_per_second` setting, else the
    /// channel's default.
    pub fn limit_of(&self, account: &ResolvedAccount) -> f64 {
        let default = match account.channel {
            Channel::Whatsapp => self.config.whatsapp_per_second,
            Channel::Messenger => self.config.messenger_per_second,
            Channel::Instagram => self.config.instagram_per_second,
            Channel::Telegram => self.config.telegram_per_second,
            Channel::Sms => self.config.sms_per_second,
            Channel::Email | Channel::Webchat => 100,
        };
        account
            .setting(RATE_SETTING)
            .and_then(|value| value.trim().parse::<f64>().ok())
            .filter(|value| *value > 0.0)
            .unwrap_or(f64::from(default))
    }

    /// The lane of `account` (re-made when its limit changed).
    fn lane(&self, account: &ResolvedAccount) -> Arc<Lane> {
        let per_second = self.limit_of(account);
        let mut lanes = self
            .lanes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(lane) = lanes.get(&account.id)
            && (lane.per_second - per_second).abs() < f64::EPSILON
        {
            return lane.clone();
        }
        let lane = Arc::new(Lane::new(account.channel, per_second, self.config.rate_headroom));
        lanes.insert(account.id.clone(), lane.clone());
        lane
    }
}

/// Holds a recipient's turn: the next message to them waits until this one's call is done.
struct Turn {
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

/// A live reply waiting for its slot, counted until it has one (or stops waiting).
struct LiveWaiting<'a>(&'a Lane);

impl<'a> LiveWaiting<'a> {
    fn new(lane: &'a Lane) -> Self {
        lane.live_waiting.fetch_add(1, Ordering::SeqCst);
        Self(lane)
    }
}

impl Drop for LiveWaiting<'_> {
    fn drop(&mut self) {
        if self.0.live_waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.live_drained.notify_waiters();
        }
    }
}

impl Lane {
    /// A lane for an account of `channel` limited to `per_second`, paced at `headroom` of it.
    fn new(channel: Channel, per_second: f64, headroom: f64) -> Self {
        // Telegram: 1/s per chat, 20/min per group (one per 3 s), at the headroom.
        let spacing = (channel == Channel::Telegram).then(|| {
            (
                Duration::from_secs_f64(1.0 / headroom),
                Duration::from_secs_f64(3.0 / headroom),
            )
        });
        // WhatsApp: about one message per 6 s to the same user, bursts up to 45 borrowed.
        let pairs = (channel == Channel::Whatsapp).then(|| {
            RateLimiter::keyed(Quota::with_period(Duration::from_secs(6)).map_or_else(
                || Quota::per_second(NonZeroU32::MIN),
                |quota| quota.allow_burst(NonZeroU32::new(45).unwrap_or(NonZeroU32::MIN)),
            ))
        });
        Lane {
            per_second,
            account: RateLimiter::direct(paced(per_second * headroom)),
            pairs,
            spacing,
            last_call: Mutex::new(HashMap::new()),
            live_waiting: AtomicUsize::new(0),
            live_drained: Notify::new(),
            broadcasts_held: AtomicUsize::new(0),
            next_broadcast_slot: Mutex::new(Instant::now()),
            paused_until: Mutex::new(None),
            calls: Mutex::new(CallWindow::default()),
            call_ended: Notify::new(),
            order: Mutex::new(HashMap::new()),
        }
    }

    /// How long a broadcast the lane cannot hold now should wait: the next free slot of a
    /// schedule at the lane's rate that starts after the broadcasts it holds, so a backlog of
    /// any size comes back spread at the rate it can be sent (each broadcast about once).
    fn broadcast_slot(&self) -> Duration {
        let interval = Duration::from_secs_f64(1.0 / self.per_second.max(0.001));
        let held = self.broadcasts_held.load(Ordering::SeqCst) as u32;
        let now = Instant::now();
        let mut next = self
            .next_broadcast_slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = (*next).max(now + interval * held) + interval;
        *next = slot;
        slot - now
    }

    /// Waits for `recipient`'s turn (first come, first served).
    async fn turn(&self, recipient: &str) -> Turn {
        let lock = {
            let mut order = self
                .order
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if order.len() > 10_000 {
                order.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
            order.entry(recipient.to_owned()).or_default().clone()
        };
        Turn {
            _guard: lock.lock_owned().await,
        }
    }

    /// Waits until a send to `recipient` fits the recipient's limits and the account is not
    /// paused. Call it before any database work for the send; [`Lane::pace`] comes after.
    async fn acquire(&self, recipient: &str) {
        loop {
            let paused = *self
                .paused_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match paused {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until).await,
                _ => break,
            }
        }
        if let Some(pairs) = &self.pairs {
            pairs.until_key_ready(&recipient.to_owned()).await;
        }
    }

    /// Waits until the recipient's spacing since its last call ended has passed (Telegram).
    /// Call it holding the recipient's [`Turn`], right before [`Lane::pace`].
    async fn space(&self, recipient: &str) {
        let Some((chat, group)) = self.spacing else {
            return;
        };
        let spacing = if recipient.starts_with('-') { group } else { chat };
        let last = self
            .last_call
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(recipient)
            .copied();
        if let Some(last) = last {
            tokio::time::sleep_until(last + spacing).await;
        }
    }

    /// Notes that a call to `recipient` ended at `now` (spaced recipients only).
    fn stamp_last_call(&self, recipient: &str, now: Instant) {
        let Some((_, group)) = self.spacing else {
            return;
        };
        let mut last_call = self
            .last_call
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last_call.len() > 10_000 {
            last_call.retain(|_, at| now.duration_since(*at) < group);
        }
        last_call.insert(recipient.to_owned(), now);
    }

    /// Waits for the account's next slot, right before the provider call (after the database
    /// work, whose latency would otherwise bunch sends together): evenly paced below the limit,
    /// live replies (`live`) before broadcasts, and never more than the limit in any second
    /// at the provider. Hold the slot until the call to `recipient` has ended.
    async fn pace<'a>(&'a self, live: bool, recipient: &'a str) -> CallSlot<'a> {
        let waiting = if live {
            Some(LiveWaiting::new(self))
        } else {
            self.after_live_replies().await;
            None
        };
        self.account.until_ready().await;
        let slot = self.within_second(recipient).await;
        drop(waiting);
        slot
    }

    /// Waits until no live reply is waiting for a slot (a broadcast goes after them), woken
    /// when the last of them has one.
    async fn after_live_replies(&self) {
        loop {
            let drained = self.live_drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.live_waiting.load(Ordering::SeqCst) == 0 {
                return;
            }
            drained.await;
        }
    }

    /// Waits until fewer than `per_second` calls are in flight or ended less than a second
    /// ago. A call reaches the provider between its start and its end, so any second at the
    /// provider holds only calls that, when the last of them started, were in flight or had
    /// ended within the second before: whatever the network and scheduling delays, no second
    /// at the provider sees more than the limit (even pacing alone lets jitter bunch calls).
    async fn within_second<'a>(&'a self, recipient: &'a str) -> CallSlot<'a> {
        let capacity = (self.per_second.floor() as usize).max(1);
        loop {
            let ended = self.call_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let oldest = {
                let mut calls = self
                    .calls
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if calls.counted(Instant::now()) < capacity {
                    calls.in_flight += 1;
                    return CallSlot {
                        lane: self,
                        recipient,
                    };
                }
                calls.ended.front().copied()
            };
            match oldest {
                Some(oldest) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(oldest + SECOND) => {}
                        () = &mut ended => {}
                    }
                }
                None => ended.await,
            }
        }
    }

    /// Stops every send of the account for `duration` (the provider asked to wait; the
    /// caller bounds it). A duration no clock can represent is taken as [`MAX_PAUSE`].
    fn pause(&self, duration: Duration) {
        let now = Instant::now();
        let Some(until) = now
            .checked_add(duration.min(MAX_PAUSE))
            .or_else(|| now.checked_add(MAX_PAUSE))
        else {
            return;
        };
        let mut paused = self
            .paused_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pause_of_any_length_is_bounded_and_never_panics() {
        let lane = Lane::new(Channel::Whatsapp, 80.0, 1.0);
        lane.pause(Duration::from_secs(u64::MAX));
        lane.pause(Duration::MAX);
        let until = lane.paused_until.lock().unwrap().expect("the lane is paused");
        let now = Instant::now();
        assert!(until <= now + MAX_PAUSE, "bounded by MAX_PAUSE");
        assert!(until > now + MAX_PAUSE - SECOND, "paused for the longest allowed");
        // A shorter pause never shortens a longer one.
        lane.pause(Duration::from_secs(1));
        assert_eq!(*lane.paused_until.lock().unwrap(), Some(until));
    }

    #[tokio::test]
    async fn a_broadcast_waits_for_live_replies_and_wakes_when_they_have_their_slot() {
        let lane = Lane::new(Channel::Whatsapp, 10.0, 1.0);
        let live = LiveWaiting::new(&lane);
        let broadcast = lane.after_live_replies();
        tokio::pin!(broadcast);
        let waited = tokio::time::timeout(Duration::from_millis(50), broadcast.as_mut()).await;
        assert!(waited.is_err(), "a broadcast waits while a live reply waits");
        drop(live);
        tokio::time::timeout(Duration::from_secs(1), broadcast)
            .await
            .expect("woken once no live reply waits");
    }

    /// Most arrivals in any sliding second (`(t - 1 s, t]`, as providers count).
    fn most_in_one_second(arrivals: &mut [Instant]) -> usize {
        arrivals.sort();
        let mut most = 0;
        let mut start = 0;
        for end in 0..arrivals.len() {
            while arrivals[end].duration_since(arrivals[start]) >= SECOND {
                start += 1;
            }
            most = most.max(end - start + 1);
        }
        most
    }

    // Calls whose network delay varies from 0 to 300 ms (far beyond any fixed margin) reach
    // the provider anywhere inside their flight; the lane still keeps every second at the
    // limit.
    #[tokio::test]
    async fn no_second_at_the_provider_exceeds_the_limit_whatever_the_delays() {
        let lane = Arc::new(Lane::new(Channel::Whatsapp, 10.0, 0.97));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let calls: Vec<_> = (0..50u64)
            .map(|index| {
                let (lane, arrivals) = (lane.clone(), arrivals.clone());
                tokio::spawn(async move {
                    let slot = lane.pace(true, "15550000001").await;
                    // A deterministic spread of delays: to the provider, then back.
                    tokio::time::sleep(Duration::from_millis((index * 37) % 300)).await;
                    arrivals
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(Instant::now());
                    tokio::time::sleep(Duration::from_millis((index * 53) % 120)).await;
                    drop(slot);
                })
            })
            .collect();
        for call in calls {
            call.await.expect("call task");
        }
        let mut arrivals = arrivals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        assert_eq!(arrivals.len(), 50);
        let most = most_in_one_second(&mut arrivals);
        assert!(most <= 10, "{most} calls reached the provider within one second");
    }
}
