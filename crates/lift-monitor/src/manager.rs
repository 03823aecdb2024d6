//! The health manager: registers checks, runs them in parallel with timeouts, panic
//! isolation and caching, and aggregates their outcomes into a report.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lift_core::{CheckOutcome, Clock, HealthCheck, HealthStatus, SystemClock};
use tracing::Instrument;

use crate::checks::details;
use crate::error::{Error, Result};
use crate::group::Group;
use crate::report::{CheckDetails, CheckResult, HealthReport};
use crate::units::format_seconds;

/// How one check is run.
///
/// Fields are private and set through setters named after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    liveness: bool,
    readiness: bool,
    timeout: Option<Duration>,
    ttl: Option<Duration>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            liveness: false,
            readiness: true,
            timeout: None,
            ttl: None,
        }
    }
}

impl CheckOptions {
    /// In both the liveness and the readiness group.
    pub fn live_and_ready() -> Self {
        CheckOptions {
            liveness: true,
            ..Default::default()
        }
    }

    /// In the liveness group. Default: no.
    #[must_use]
    pub fn liveness(mut self, liveness: bool) -> Self {
        self.liveness = liveness;
        self
    }

    /// In the readiness group. Default: yes.
    #[must_use]
    pub fn readiness(mut self, readiness: bool) -> Self {
        self.readiness = readiness;
        self
    }

    /// Overrides the manager's per-check timeout ([`HealthManagerBuilder::timeout`]).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Overrides the manager's cache TTL ([`HealthManagerBuilder::ttl`]).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    fn in_group(&self, group: Group) -> bool {
        match group {
            Group::All => true,
            Group::Liveness => self.liveness,
            Group::Readiness => self.readiness,
        }
    }
}

/// Builds a [`HealthManager`].
#[derive(Debug, Clone)]
pub struct HealthManagerBuilder {
    timeout: Duration,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl Default for HealthManagerBuilder {
    fn default() -> Self {
        HealthManagerBuilder {
            timeout: Duration::from_secs(5),
            ttl: Duration::from_secs(1),
            clock: Arc::new(SystemClock),
        }
    }
}

impl HealthManagerBuilder {
    /// How long one check may run before it is reported unhealthy. Default: 5 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a check's outcome is reused by [`HealthManager::check`]. Default: 1 s; zero disables caching.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The clock that stamps reports. Default: the system clock.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The manager, with no checks.
    pub fn build(self) -> HealthManager {
        HealthManager {
            inner: Arc::new(Inner {
                checks: RwLock::new(Vec::new()),
                cache: Mutex::new(HashMap::new()),
                timeout: self.timeout,
                ttl: self.ttl,
                clock: self.clock,
            }),
        }
    }
}

/// Runs registered [`HealthCheck`]s and aggregates them.
///
/// Invariants: checks run in parallel, each in its own task, so a check that panics or
/// hangs reports unhealthy without affecting the others or the manager; a report has one
/// result per check of the group, in registration order; its status is the worst of them
/// (unhealthy > degraded > unknown > healthy), and unknown when there are none.
///
/// ```
/// use lift_monitor::{FnCheck, Group, HealthManager};
/// use lift_core::{CheckOutcome, HealthStatus};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lift_monitor::Result<()> {
/// let manager = HealthManager::default();
/// manager.register(FnCheck::new("db", || CheckOutcome::healthy("reachable")))?;
/// manager.register(FnCheck::new("queue", || CheckOutcome::degraded("backlog growing")))?;
/// let report = manager.check(Group::All).await;
/// assert_eq!(report.status, HealthStatus::Degraded);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HealthManager {
    inner: Arc<Inner>,
}

impl Default for HealthManager {
    fn default() -> Self {
        HealthManagerBuilder::default().build()
    }
}

struct Inner {
    checks: RwLock<Vec<Entry>>,
    cache: Mutex<HashMap<String, Cached>>,
    timeout: Duration,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .checks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|e| e.name.clone())
            .collect();
        f.debug_struct("HealthManager")
            .field("checks", &names)
            .field("timeout", &self.timeout)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Entry {
    name: String,
    check: Arc<dyn HealthCheck>,
    options: CheckOptions,
}

struct Cached {
    outcome: CheckOutcome,
    details: Option<CheckDetails>,
    at: Instant,
    checked_at: DateTime<Utc>,
}

impl HealthManager {
    /// A builder, to set the timeout, TTL or clock.
    pub fn builder() -> HealthManagerBuilder {
        HealthManagerBuilder::default()
    }

    /// Registers `check` in the readiness group.
    ///
    /// Fails when a check of the same name is registered already.
    pub fn register(&self, check: impl HealthCheck + 'static) -> Result<()> {
        self.register_with(check, CheckOptions::default())
    }

    /// Registers `check` with `options`.
    ///
    /// Fails when a check of the same name is registered already, or its name is empty.
    pub fn register_with(
        &self,
        check: impl HealthCheck + 'static,
        options: CheckOptions,
    ) -> Result<()> {
        self.register_arc(Arc::new(check), options)
    }

    /// Registers a shared check, such as one another crate returns as `Arc<dyn HealthCheck>`.
    pub fn register_arc(&self, check: Arc<dyn HealthCheck>, options: CheckOptions) -> Result<()> {
        let name = check.name().to_owned();
        if name.trim().is_empty() {
            return Err(Error::InvalidConfig(
                "a health check needs a non-empty name".into(),
            ));
        }
        let mut checks = self
            .inner
            .checks
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if checks.iter().any(|e| e.name == name) {
            return Err(Error::InvalidConfig(format!(
                "a health check named {name:?} is registered already; unregister it first"
            )));
        }
        checks.push(Entry {
            name,
            check,
            options,
        });
        Ok(())
    }

    /// Removes the check named `name`; returns whether there was one.
    pub fn unregister(&self, name: &str) -> bool {
        let mut checks = self
            .inner
            .checks
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let before = checks.len();
        checks.retain(|e| e.name != name);
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        checks.len() != before
    }

    /// The names of the registered checks, in registration order.
    pub fn names(&self) -> Vec<String> {
        let checks = self
            .inner
            .checks
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        checks.iter().map(|e| e.name.clone()).collect()
    }

    /// Runs the checks of `group`, reusing outcomes younger than their TTL.
    pub async fn check(&self, group: Group) -> HealthReport {
        self.run(group, true).await
    }

    /// Runs the checks of `group`, ignoring the cache.
    pub async fn check_fresh(&self, group: Group) -> HealthReport {
        self.run(group, false).await
    }

    async fn run(&self, group: Group, use_cache: bool) -> HealthReport {
        let started = Instant::now();
        let checked_at = self.inner.clock.now();
        let entries: Vec<Entry> = {
            let checks = self
                .inner
                .checks
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            checks
                .iter()
                .filter(|e| e.options.in_group(group))
                .cloned()
                .collect()
        };
        let inner = &self.inner;
        let results = futures::future::join_all(entries.into_iter().map(|entry| async move {
            let ttl = entry.options.ttl.unwrap_or(inner.ttl);
            if use_cache && !ttl.is_zero() {
                let cache = inner.cache.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(hit) = cache.get(&entry.name)
                    && hit.at.elapsed() < ttl
                {
                    return CheckResult {
                        name: entry.name,
                        checked_at: hit.checked_at,
                        cached: true,
                        outcome: hit.outcome.clone(),
                        details: hit.details.clone(),
                    };
                }
            }
            let now = inner.clock.now();
            let timeout = entry.options.timeout.unwrap_or(inner.timeout);
            let (outcome, details) = run_one(&entry.name, entry.check, timeout).await;
            inner
                .cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(
                    entry.name.clone(),
                    Cached {
                        outcome: outcome.clone(),
                        details: details.clone(),
                        at: Instant::now(),
                        checked_at: now,
                    },
                );
            CheckResult {
                name: entry.name,
                checked_at: now,
                cached: false,
                outcome,
                details,
            }
        }))
        .await;
        HealthReport {
            status: HealthStatus::aggregate(results.iter().map(|r| r.outcome.status)),
            group,
            checked_at,
            duration_seconds: started.elapsed().as_secs_f64(),
            checks: results,
            target: None,
        }
    }
}

/// Runs one check in its own task, so that a panic or a hang is contained.
async fn run_one(
    name: &str,
    check: Arc<dyn HealthCheck>,
    timeout: Duration,
) -> (CheckOutcome, Option<CheckDetails>) {
    let start = Instant::now();
    let span = tracing::debug_span!("lift_monitor.health_check", check = name);
    let handle =
        tokio::spawn(details::collect(async move { check.check().await }).instrument(span));
    let abort = handle.abort_handle();
    let outcome = match tokio::time::timeout(timeout, handle).await {
        Ok(Ok((mut outcome, details))) => {
            if outcome.duration.is_zero() {
                outcome.duration = start.elapsed();
            }
            // Details belong to the outcome they came with; a check that reported some
            // and then returned a different outcome gets none.
            let details = details.filter(|d| d.observations.len() == outcome.observations.len());
            return (outcome, details);
        }
        Ok(Err(err)) if err.is_panic() => {
            let payload = err.into_panic();
            let reason = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string payload".to_owned());
            tracing::error!(check = name, %reason, "health check panicked");
            CheckOutcome::unhealthy(format!("the check panicked: {reason}")).took(start.elapsed())
        }
        Ok(Err(_)) => CheckOutcome::unhealthy("the check was cancelled").took(start.elapsed()),
        Err(_) => {
            abort.abort();
            tracing::warn!(check = name, ?timeout, "health check timed out");
            CheckOutcome::unhealthy(format!(
                "the check did not finish within {}",
                format_seconds(timeout.as_secs_f64())
            ))
            .took(start.elapsed())
        }
    };
    (outcome, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{AsyncFnCheck, FnCheck};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn no_checks_aggregate_to_unknown() {
        let report = HealthManager::default().check(Group::All).await;
        assert_eq!(report.status, HealthStatus::Unknown);
        assert!(report.checks.is_empty());
    }

    #[tokio::test]
    async fn aggregates_the_worst_status_in_registration_order() {
        let manager = HealthManager::default();
        manager
            .register(FnCheck::new("a", || CheckOutcome::healthy("ok")))
            .unwrap();
        manager
            .register(FnCheck::new("b", || CheckOutcome::unknown("cannot tell")))
            .unwrap();
        assert_eq!(
            manager.check(Group::All).await.status,
            HealthStatus::Unknown
        );
        manager
            .register(FnCheck::new("c", || CheckOutcome::degraded("slow")))
            .unwrap();
        assert_eq!(
            manager.check(Group::All).await.status,
            HealthStatus::Degraded
        );
        manager
            .register(FnCheck::new("d", || CheckOutcome::unhealthy("down")))
            .unwrap();
        let report = manager.check(Group::All).await;
        assert_eq!(report.status, HealthStatus::Unhealthy);
        let names: Vec<_> = report.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert!(manager.unregister("d"));
        assert!(!manager.unregister("d"));
        assert_eq!(
            manager.check_fresh(Group::All).await.status,
            HealthStatus::Degraded
        );
    }

    #[tokio::test]
    async fn duplicate_and_empty_names_are_rejected() {
        let manager = HealthManager::default();
        manager
            .register(FnCheck::new("a", || CheckOutcome::healthy("ok")))
            .unwrap();
        let err = manager
            .register(FnCheck::new("a", || CheckOutcome::healthy("ok")))
            .unwrap_err();
        assert!(err.to_string().contains("registered already"));
        assert!(
            manager
                .register(FnCheck::new(" ", || CheckOutcome::healthy("ok")))
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_panicking_check_is_unhealthy_and_the_manager_survives() {
        let manager = HealthManager::default();
        manager
            .register(FnCheck::new("boom", || panic!("kaboom")))
            .unwrap();
        manager
            .register(FnCheck::new("fine", || CheckOutcome::healthy("ok")))
            .unwrap();
        let report = manager.check(Group::All).await;
        assert_eq!(report.status, HealthStatus::Unhealthy);
        assert!(report.checks[0].outcome.message.contains("kaboom"));
        assert_eq!(report.checks[1].outcome.status, HealthStatus::Healthy);
        // And it keeps working.
        assert!(manager.unregister("boom"));
        assert_eq!(
            manager.check_fresh(Group::All).await.status,
            HealthStatus::Healthy
        );
    }

    #[tokio::test]
    async fn checks_run_in_parallel_with_a_timeout() {
        let manager = HealthManager::builder()
            .timeout(Duration::from_secs(10))
            .build();
        // Each check waits until all three have started: run one after the other, they
        // would all time out.
        let barrier = Arc::new(tokio::sync::Barrier::new(3));
        for name in ["a", "b", "c"] {
            let barrier = barrier.clone();
            manager
                .register(AsyncFnCheck::new(name, move || {
                    let barrier = barrier.clone();
                    async move {
                        barrier.wait().await;
                        CheckOutcome::healthy("met the others")
                    }
                }))
                .unwrap();
        }
        let hang = CheckOptions::default().timeout(Duration::from_millis(200));
        manager
            .register_with(
                AsyncFnCheck::new("hang", || async {
                    std::future::pending::<()>().await;
                    CheckOutcome::healthy("never")
                }),
                hang,
            )
            .unwrap();
        let report = manager.check(Group::All).await;
        for result in &report.checks[..3] {
            assert_eq!(
                result.outcome.status,
                HealthStatus::Healthy,
                "{}",
                result.outcome.message
            );
        }
        let hang = &report.checks[3].outcome;
        assert_eq!(hang.status, HealthStatus::Unhealthy);
        assert!(
            hang.message.contains("did not finish within 200.0 ms"),
            "{}",
            hang.message
        );
        assert!(hang.duration >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn results_are_cached_for_the_ttl() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let manager = HealthManager::builder()
            .ttl(Duration::from_millis(100))
            .build();
        manager
            .register(FnCheck::new("counted", move || {
                counter.fetch_add(1, Ordering::SeqCst);
                CheckOutcome::healthy("ok")
            }))
            .unwrap();
        assert!(!manager.check(Group::All).await.checks[0].cached);
        let second = manager.check(Group::All).await;
        assert!(second.checks[0].cached);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        manager.check_fresh(Group::All).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(!manager.check(Group::All).await.checks[0].cached);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn groups_select_checks() {
        let manager = HealthManager::default();
        manager
            .register_with(
                FnCheck::new("live", || CheckOutcome::healthy("ok")),
                CheckOptions::live_and_ready(),
            )
            .unwrap();
        manager
            .register(FnCheck::new("ready-only", || {
                CheckOutcome::unhealthy("db down")
            }))
            .unwrap();
        let live = manager.check(Group::Liveness).await;
        assert_eq!(live.status, HealthStatus::Healthy);
        assert_eq!(live.checks.len(), 1);
        let ready = manager.check(Group::Readiness).await;
        assert_eq!(ready.status, HealthStatus::Unhealthy);
        assert_eq!(ready.checks.len(), 2);
    }

    #[tokio::test]
    async fn other_crates_checks_register_through_the_trait() {
        let mut mock = lift_core::MockHealthCheck::new();
        mock.expect_name().return_const("store".to_owned());
        mock.expect_check()
            .returning(|| CheckOutcome::degraded("store slow"));
        let manager = HealthManager::default();
        let shared: Arc<dyn HealthCheck> = Arc::new(mock);
        manager
            .register_arc(shared, CheckOptions::default())
            .unwrap();
        assert_eq!(manager.names(), ["store"]);
        assert_eq!(
            manager.check(Group::Readiness).await.status,
            HealthStatus::Degraded
        );
    }
}
