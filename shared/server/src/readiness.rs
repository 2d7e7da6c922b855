use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

type CheckFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// One named readiness check of a dependency (PostgreSQL, RabbitMQ, …).
#[derive(Clone)]
pub struct ReadinessCheck {
    name: &'static str,
    check: CheckFn,
}

impl ReadinessCheck {
    /// A check that runs `check`; `Err` carries a reason a person can act on.
    pub fn new<F, Fut>(name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name,
            check: Arc::new(move || Box::pin(check())),
        }
    }

    /// The check's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// The readiness of the process: every registered check passed at its last run and the
/// process is not draining. `/readyz` and gRPC health both read it.
#[derive(Clone, Default)]
pub struct Readiness {
    inner: Arc<ReadinessInner>,
}

struct ReadinessInner {
    /// Publishes every change of [`Readiness::is_ready`].
    changes: tokio::sync::watch::Sender<bool>,
    checks: Mutex<Vec<ReadinessCheck>>,
    results: Mutex<BTreeMap<&'static str, Result<(), String>>>,
    draining: AtomicBool,
    checked_once: AtomicBool,
}

impl Default for ReadinessInner {
    fn default() -> Self {
        Self {
            changes: tokio::sync::watch::channel(false).0,
            checks: Mutex::default(),
            results: Mutex::default(),
            draining: AtomicBool::new(false),
            checked_once: AtomicBool::new(false),
        }
    }
}

impl Readiness {
    /// Registers a check (before [`Readiness::run`] starts).
    pub fn add(&self, check: ReadinessCheck) {
        if let Ok(mut checks) = self.inner.checks.lock() {
            checks.push(check);
        }
    }

    /// Marks the process as draining: not ready from now on, whatever the checks say.
    pub fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
        self.publish_change();
    }

    /// A receiver that sees every change of readiness (for gRPC health).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.changes.subscribe()
    }

    fn publish_change(&self) {
        let ready = self.is_ready();
        self.inner.changes.send_if_modified(|current| {
            let changed = *current != ready;
            *current = ready;
            changed
        });
    }

    /// Returns true once shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Returns true when not draining and every check passed at its last run.
    pub fn is_ready(&self) -> bool {
        !self.is_draining()
            && self.inner.checked_once.load(Ordering::SeqCst)
            && self
                .inner
                .results
                .lock()
                .map(|results| results.values().all(Result::is_ok))
                .unwrap_or(false)
    }

    /// The last result of every check, by name.
    pub fn report(&self) -> BTreeMap<&'static str, Result<(), String>> {
        self.inner
            .results
            .lock()
            .map(|results| results.clone())
            .unwrap_or_default()
    }

    /// Runs every check now, each bounded by `timeout`.
    pub async fn check_now(&self, timeout: Duration) {
        let checks = self
            .inner
            .checks
            .lock()
            .map(|checks| checks.clone())
            .unwrap_or_default();
        let mut results = BTreeMap::new();
        for check in checks {
            let result = match tokio::time::timeout(timeout, (check.check)()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {timeout:?}")),
            };
            results.insert(check.name, result);
        }
        if let Ok(mut slot) = self.inner.results.lock() {
            *slot = results;
        }
        self.inner.checked_once.store(true, Ordering::SeqCst);
        self.publish_change();
    }

    /// Re-runs the checks every `interval` until `shutdown`, calling `on_change` whenever
    /// readiness flips (e.g. to update gRPC health).
    pub async fn run(
        self,
        interval: Duration,
        timeout: Duration,
        shutdown: CancellationToken,
        on_change: impl Fn(bool) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send,
    ) {
        let mut last = None;
        loop {
            self.check_now(timeout).await;
            let ready = self.is_ready();
            if last != Some(ready) {
                if ready {
                    tracing::info!("ready");
                } else if last.is_some() {
                    let failing: Vec<String> = self
                        .report()
                        .into_iter()
                        .filter_map(|(name, result)| result.err().map(|reason| format!("{name}: {reason}")))
                        .collect();
                    tracing::warn!(failing = ?failing, draining = self.is_draining(), "not ready");
                }
                on_change(ready).await;
                last = Some(ready);
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
        on_change(false).await;
    }
}
