//! The simulator's state: accounts (config, fault queue, limiter, counters), the call log
//! and Telegram's chats, behind one mutex held only for short synchronous sections.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::SimulatorOptions;
use crate::limits::Limiter;
use crate::model::{
    AccountConfig, AccountStats, CallOutcome, CallRecord, CallsQuery, ConfiguredAccount, Fault, FaultKind,
    Provider, Stats, WebhookStats,
};
use crate::smtp::SmtpLog;
use crate::webhooks::{self, ReceiptJob};
use crate::wire::{self, Call, Chats, Refused, Reply};

/// Shared by every request handler.
pub(crate) struct SimState {
    inner: Mutex<Inner>,
    started: Instant,
    /// Process options.
    pub(crate) options: SimulatorOptions,
    /// The client that posts webhooks.
    pub(crate) http: reqwest::Client,
    /// The SMTP sink's messages, faults and counters.
    pub(crate) smtp: SmtpLog,
    shutdown: CancellationToken,
}

struct Inner {
    accounts: HashMap<(Provider, String), Account>,
    calls: VecDeque<CallRecord>,
    next_seq: u64,
    discarded: u64,
    unauthorized: u64,
    webhooks: WebhookStats,
    chats: Chats,
    /// Cancelled by a reset (and by shutdown): ends pending receipts and held connections.
    epoch: CancellationToken,
}

struct Account {
    config: AccountConfig,
    faults: VecDeque<Fault>,
    limiter: Limiter,
    counters: Counters,
    webhooks: WebhookStats,
}

#[derive(Default)]
struct Counters {
    requests: u64,
    accepted: u64,
    refused: u64,
    faults_injected: u64,
    dropped: u64,
}

/// How a send is answered.
#[derive(Debug)]
pub(crate) enum Answer {
    /// With this reply.
    Reply(Reply),
    /// Never: the connection is held for this long, then closed.
    Drop(Duration),
}

/// Everything decided about one call under the lock.
#[derive(Debug)]
pub(crate) struct Decision {
    /// The answer.
    pub answer: Answer,
    /// Added before answering.
    pub latency: Duration,
    /// Status webhooks to post.
    pub receipts: Option<ReceiptJob>,
}

/// One webhook attempt's result, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WebhookOutcome {
    /// Answered 2xx.
    Ok,
    /// Failed; another attempt follows.
    Retried,
    /// Failed for the last time.
    Failed,
}

/// An invalid account configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct InvalidConfig(String);

impl SimState {
    /// Empty state; `shutdown` ends everything the state spawns.
    pub(crate) fn new(options: SimulatorOptions, shutdown: CancellationToken) -> Self {
        let http = reqwest::Client::builder()
            .timeout(options.webhook_timeout)
            .build()
            .unwrap_or_default();
        Self {
            inner: Mutex::new(Inner {
                accounts: HashMap::new(),
                calls: VecDeque::new(),
                next_seq: 0,
                discarded: 0,
                unauthorized: 0,
                webhooks: WebhookStats::default(),
                chats: Chats::default(),
                epoch: shutdown.child_token(),
            }),
            started: Instant::now(),
            smtp: SmtpLog::new(options.max_smtp_messages),
            options,
            http,
            shutdown,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not take the simulator down with it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Milliseconds since the simulator started.
    pub(crate) fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The token that ends receipts and held connections of the current epoch.
    pub(crate) fn epoch(&self) -> CancellationToken {
        self.lock().epoch.clone()
    }

    /// The credential `provider`'s account `id` was configured with.
    pub(crate) fn credential(&self, provider: Provider, id: &str) -> Option<String> {
        self.lock()
            .accounts
            .get(&(provider, id.to_owned()))
            .map(|account| account.config.credential.clone())
    }

    /// The account among `providers` configured with `credential` (Graph `me`).
    pub(crate) fn find_by_credential(
        &self,
        providers: &[Provider],
        credential: &str,
    ) -> Option<(Provider, String)> {
        let inner = self.lock();
        let mut found: Vec<&(Provider, String)> = inner
            .accounts
            .iter()
            .filter(|((provider, _), account)| {
                providers.contains(provider) && account.config.credential == credential
            })
            .map(|(key, _)| key)
            .collect();
        found.sort();
        found.first().map(|key| (*key).clone())
    }

    /// Creates or replaces an account's config (and fault queue); counters and windows stay.
    pub(crate) fn configure(
        &self,
        provider: Provider,
        id: &str,
        mut config: AccountConfig,
    ) -> Result<ConfiguredAccount, InvalidConfig> {
        if id.is_empty() {
            return Err(InvalidConfig("the external id is empty".to_owned()));
        }
        if config.credential.is_empty() {
            return Err(InvalidConfig("the credential is empty".to_owned()));
        }
        if provider == Provider::Telegram && !config.credential.starts_with(&format!("{id}:")) {
            return Err(InvalidConfig(format!(
                "a Telegram credential is the whole bot token and starts with the bot id: \"{id}:...\""
            )));
        }
        let limits = config.limits.resolve(provider);
        let faults: VecDeque<Fault> = std::mem::take(&mut config.faults)
            .into_iter()
            .filter(|fault| fault.count > 0)
            .collect();
        let faults_queued = faults.iter().map(|fault| u64::from(fault.count)).sum();
        let mut inner = self.lock();
        let account = inner
            .accounts
            .entry((provider, id.to_owned()))
            .or_insert_with(|| Account {
                config: AccountConfig::default(),
                faults: VecDeque::new(),
                limiter: Limiter::new(limits),
                counters: Counters::default(),
                webhooks: WebhookStats::default(),
            });
        account.config = config;
        account.faults = faults;
        account.limiter.set_limits(limits);
        Ok(ConfiguredAccount {
            provider,
            external_id: id.to_owned(),
            limits,
            faults_queued,
        })
    }

    /// Appends faults to an account's queue; `None` when the account is unknown.
    pub(crate) fn add_faults(&self, provider: Provider, id: &str, faults: Vec<Fault>) -> Option<u64> {
        let mut inner = self.lock();
        let account = inner.accounts.get_mut(&(provider, id.to_owned()))?;
        account
            .faults
            .extend(faults.into_iter().filter(|fault| fault.count > 0));
        Some(account.faults.iter().map(|fault| u64::from(fault.count)).sum())
    }

    /// The recorded calls matching `query`, in order.
    pub(crate) fn calls(&self, query: &CallsQuery) -> Vec<CallRecord> {
        self.lock()
            .calls
            .iter()
            .filter(|call| query.provider.is_none_or(|provider| call.provider == provider))
            .filter(|call| {
                query
                    .account
                    .as_ref()
                    .is_none_or(|account| call.account == *account)
            })
            .filter(|call| query.since.is_none_or(|since| call.seq > since))
            .cloned()
            .collect()
    }

    /// The counters.
    pub(crate) fn stats(&self) -> Stats {
        let inner = self.lock();
        let mut accounts: Vec<AccountStats> = inner
            .accounts
            .iter()
            .map(|((provider, id), account)| {
                let violations = account.limiter.violations();
                AccountStats {
                    provider: *provider,
                    account: id.clone(),
                    limits: account.limiter.limits(),
                    requests: account.counters.requests,
                    accepted: account.counters.accepted,
                    refused: account.counters.refused,
                    violations: violations.per_second
                        + violations.per_recipient_per_second
                        + violations.per_recipient_per_minute
                        + violations.per_group_per_minute,
                    violations_by_limit: violations,
                    faults_injected: account.counters.faults_injected,
                    dropped_responses: account.counters.dropped,
                    max_accepted_in_one_second: account.limiter.max_in_one_second(),
                    webhooks: account.webhooks,
                }
            })
            .collect();
        accounts.sort_by(|left, right| (left.provider, &left.account).cmp(&(right.provider, &right.account)));
        Stats {
            uptime_ms: self.elapsed_ms(),
            accounts,
            webhooks: inner.webhooks,
            unauthorized: inner.unauthorized,
            calls_recorded: u64::try_from(inner.calls.len()).unwrap_or(u64::MAX),
            calls_discarded: inner.discarded,
            smtp: self.smtp.stats(),
        }
    }

    /// Forgets everything and ends pending receipts and held connections.
    pub(crate) fn reset(&self) {
        let mut inner = self.lock();
        inner.epoch.cancel();
        inner.epoch = self.shutdown.child_token();
        inner.accounts.clear();
        inner.calls.clear();
        inner.next_seq = 0;
        inner.discarded = 0;
        inner.unauthorized = 0;
        inner.webhooks = WebhookStats::default();
        inner.chats = Chats::default();
        drop(inner);
        self.smtp.reset();
    }

    /// Records a call refused before the pipeline; returns the account's latency.
    pub(crate) fn refuse(&self, refused: &Refused) -> Duration {
        let mut inner = self.lock();
        let time_ms = self.elapsed_ms();
        let mut latency = Duration::ZERO;
        if refused.outcome == CallOutcome::Unauthorized {
            inner.unauthorized += 1;
        } else if let Some(account) = inner
            .accounts
            .get_mut(&(refused.provider, refused.account.clone()))
        {
            account.counters.requests += 1;
            account.counters.refused += 1;
            latency = Duration::from_millis(account.config.latency_ms);
        }
        let record = CallRecord {
            seq: 0,
            provider: refused.provider,
            account: refused.account.clone(),
            method: refused.method.clone(),
            recipient: refused.recipient.clone(),
            body: refused.body.clone(),
            status: Some(refused.reply.status.as_u16()),
            outcome: refused.outcome,
            provider_message_id: None,
            error_code: refused.reply.error_code.clone(),
            time_ms,
        };
        self.push_call(&mut inner, record);
        latency
    }

    /// Decides a valid, authenticated call at `now`: fault, rate limit or acceptance.
    pub(crate) fn decide(&self, call: &Call, now: Instant) -> Decision {
        let mut guard = self.lock();
        let time_ms = self.elapsed_ms();
        let inner = &mut *guard;
        let Some(account) = inner.accounts.get_mut(&(call.provider, call.account.clone())) else {
            // Removed by a reset since the credential was checked.
            let reply = wire::unauthorized(call.provider);
            return Decision {
                answer: Answer::Reply(reply),
                latency: Duration::ZERO,
                receipts: None,
            };
        };
        account.counters.requests += 1;
        let latency = Duration::from_millis(account.config.latency_ms);
        let drop_hold = match account.faults.front().map(|fault| &fault.kind) {
            Some(FaultKind::DropResponse { hold_ms }) => {
                Some(hold_ms.map_or(self.options.default_drop_hold, Duration::from_millis))
            }
            Some(kind) => {
                let reply = wire::fault(call.provider, kind);
                consume_fault(&mut account.faults);
                account.counters.faults_injected += 1;
                account.counters.refused += 1;
                let record = record_of(call, &reply, CallOutcome::Fault, time_ms);
                self.push_call(inner, record);
                return Decision {
                    answer: Answer::Reply(reply),
                    latency,
                    receipts: None,
                };
            }
            None => None,
        };
        if call.limited
            && let Err(refusal) = account.limiter.check(now, call.target())
        {
            account.counters.refused += 1;
            let reply = wire::rate_limited(call.provider, &refusal);
            let record = record_of(call, &reply, CallOutcome::RateLimited, time_ms);
            self.push_call(inner, record);
            return Decision {
                answer: Answer::Reply(reply),
                latency,
                receipts: None,
            };
        }
        let accepted = match call.accept(&mut inner.chats) {
            Ok(accepted) => accepted,
            Err(reply) => {
                account.counters.refused += 1;
                let record = record_of(call, &reply, CallOutcome::Rejected, time_ms);
                self.push_call(inner, record);
                return Decision {
                    answer: Answer::Reply(reply),
                    latency,
                    receipts: None,
                };
            }
        };
        if call.limited {
            account.limiter.record(now, call.target());
        }
        account.counters.accepted += 1;
        let receipts = accepted
            .receipts
            .as_ref()
            .and_then(|target| webhooks::plan(call.provider, &call.account, &account.config, target));
        let mut record = record_of(call, &accepted.reply, CallOutcome::Accepted, time_ms);
        record.provider_message_id = accepted.message_id.clone();
        let answer = match drop_hold {
            Some(hold) => {
                consume_fault(&mut account.faults);
                account.counters.faults_injected += 1;
                account.counters.dropped += 1;
                record.status = None;
                record.outcome = CallOutcome::Dropped;
                Answer::Drop(hold)
            }
            None => Answer::Reply(accepted.reply),
        };
        self.push_call(inner, record);
        Decision {
            answer,
            latency,
            receipts,
        }
    }

    fn push_call(&self, inner: &mut Inner, mut record: CallRecord) {
        inner.next_seq += 1;
        record.seq = inner.next_seq;
        inner.calls.push_back(record);
        while inner.calls.len() > self.options.max_calls {
            inner.calls.pop_front();
            inner.discarded += 1;
        }
    }

    /// Counts one webhook attempt of `provider`'s account `id`.
    pub(crate) fn note_webhook(&self, provider: Provider, id: &str, outcome: WebhookOutcome) {
        let mut inner = self.lock();
        let bump = |stats: &mut WebhookStats| match outcome {
            WebhookOutcome::Ok => stats.ok += 1,
            WebhookOutcome::Retried => stats.retries += 1,
            WebhookOutcome::Failed => stats.failed += 1,
        };
        bump(&mut inner.webhooks);
        if let Some(account) = inner.accounts.get_mut(&(provider, id.to_owned())) {
            bump(&mut account.webhooks);
        }
    }
}

/// Takes one use of the fault at the front of the queue.
fn consume_fault(faults: &mut VecDeque<Fault>) {
    if let Some(front) = faults.front_mut() {
        front.count = front.count.saturating_sub(1);
        if front.count == 0 {
            faults.pop_front();
        }
    }
}

fn record_of(call: &Call, reply: &Reply, outcome: CallOutcome, time_ms: u64) -> CallRecord {
    CallRecord {
        seq: 0,
        provider: call.provider,
        account: call.account.clone(),
        method: call.method.clone(),
        recipient: call.recipient.clone(),
        body: call.body.clone(),
        status: Some(reply.status.as_u16()),
        outcome,
        provider_message_id: None,
        error_code: reply.error_code.clone(),
        time_ms,
    }
}
