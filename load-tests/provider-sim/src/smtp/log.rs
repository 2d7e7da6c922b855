//! The SMTP sink's state: recorded messages, the fault queue and the counters.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::model::{SmtpFault, SmtpFaultKind, SmtpMessage, SmtpStats};

/// Shared by every SMTP session and the control API.
pub(crate) struct SmtpLog {
    inner: Mutex<Inner>,
    max_messages: usize,
}

#[derive(Default)]
struct Inner {
    messages: VecDeque<SmtpMessage>,
    faults: VecDeque<SmtpFault>,
    next_seq: u64,
    stats: SmtpStats,
}

/// Something a session counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SmtpEvent {
    /// A connection was accepted.
    Connection,
    /// An `AUTH` exchange succeeded.
    Authenticated,
    /// `MAIL FROM` was accepted.
    Transaction,
    /// A message was refused for a size or line-length limit.
    Rejected,
}

impl SmtpLog {
    /// An empty log keeping at most `max_messages` messages.
    pub(crate) fn new(max_messages: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_messages,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts `event`.
    pub(crate) fn note(&self, event: SmtpEvent) {
        let mut inner = self.lock();
        let stats = &mut inner.stats;
        match event {
            SmtpEvent::Connection => stats.connections += 1,
            SmtpEvent::Authenticated => stats.authentications += 1,
            SmtpEvent::Transaction => stats.transactions += 1,
            SmtpEvent::Rejected => stats.rejected += 1,
        }
    }

    /// Appends faults (those with a zero count are dropped); returns the transactions the
    /// queue now covers.
    pub(crate) fn add_faults(&self, faults: Vec<SmtpFault>) -> u64 {
        let mut inner = self.lock();
        inner
            .faults
            .extend(faults.into_iter().filter(|fault| fault.count > 0));
        inner.faults.iter().map(|fault| u64::from(fault.count)).sum()
    }

    /// Takes one use of the fault at the front of the queue, if any, and counts it.
    pub(crate) fn take_fault(&self) -> Option<SmtpFaultKind> {
        let mut inner = self.lock();
        let front = inner.faults.front_mut()?;
        let kind = front.kind.clone();
        front.count = front.count.saturating_sub(1);
        if front.count == 0 {
            inner.faults.pop_front();
        }
        inner.stats.faults_injected += 1;
        Some(kind)
    }

    /// Records an accepted message, giving it its `seq` and `queue_id`; returns the queue id.
    pub(crate) fn record(&self, mut message: SmtpMessage) -> String {
        let mut inner = self.lock();
        inner.next_seq += 1;
        message.seq = inner.next_seq;
        message.queue_id = format!(
            "{:05X}{}",
            message.seq,
            hex::encode_upper(rand::random::<[u8; 4]>())
        );
        let queue_id = message.queue_id.clone();
        inner.stats.accepted += 1;
        inner.messages.push_back(message);
        while inner.messages.len() > self.max_messages {
            inner.messages.pop_front();
            inner.stats.messages_discarded += 1;
        }
        queue_id
    }

    /// The recorded messages with `seq` greater than `since`, in order.
    pub(crate) fn messages(&self, since: Option<u64>) -> Vec<SmtpMessage> {
        self.lock()
            .messages
            .iter()
            .filter(|message| since.is_none_or(|since| message.seq > since))
            .cloned()
            .collect()
    }

    /// The counters.
    pub(crate) fn stats(&self) -> SmtpStats {
        let inner = self.lock();
        SmtpStats {
            messages_recorded: u64::try_from(inner.messages.len()).unwrap_or(u64::MAX),
            ..inner.stats
        }
    }

    /// Forgets every message, fault and counter (open sessions stay open).
    pub(crate) fn reset(&self) {
        *self.lock() = Inner::default();
    }
}
