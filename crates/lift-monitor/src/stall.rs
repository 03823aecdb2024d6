//! The heartbeat task that measures how late the tokio scheduler wakes it: runtime stalls,
//! the async-Rust counterpart of Go's GC pauses.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::snapshot::StallStats;

/// How the heartbeat runs.
///
/// Fields are private and set through setters named after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallOptions {
    pub(crate) period: Duration,
    pub(crate) window: usize,
    pub(crate) freeze_gap: Option<Duration>,
}

/// The name [`StallOptions`] had before lift's options structs were named alike.
#[deprecated(note = "renamed to StallOptions")]
pub type StallConfig = StallOptions;

impl StallOptions {
    /// Time between heartbeats. Default: 100 ms.
    #[must_use]
    pub fn period(mut self, period: Duration) -> Self {
        self.period = period;
        self
    }

    /// Heartbeats kept for the max and p99. Default: 600 (one minute).
    #[must_use]
    pub fn window(mut self, window: usize) -> Self {
        self.window = window;
        self
    }

    /// A lag at least this long is a suspension (a frozen Lambda environment between
    /// invocations), counted apart and kept out of the stall figures. `None` counts every
    /// lag. Default: 2 s in Lambda, else `None`.
    #[must_use]
    pub fn freeze_gap(mut self, freeze_gap: Option<Duration>) -> Self {
        self.freeze_gap = freeze_gap;
        self
    }
}

impl Default for StallOptions {
    /// A 100 ms heartbeat, a 600-beat (one minute) window; in Lambda (when
    /// `AWS_LAMBDA_FUNCTION_NAME` is set) lags of 2 s or more are suspensions, since
    /// Lambda freezes the environment between invocations.
    fn default() -> Self {
        StallOptions {
            period: Duration::from_millis(100),
            window: 600,
            freeze_gap: crate::snapshot::in_lambda().then_some(Duration::from_secs(2)),
        }
    }
}

/// The figures the heartbeat publishes; the sampler only loads them.
#[derive(Debug, Default)]
pub(crate) struct StallState {
    latest_ns: AtomicU64,
    max_ns: AtomicU64,
    p99_ns: AtomicU64,
    samples: AtomicU64,
    suspensions: AtomicU64,
    /// How long no invocation was in flight, once something brackets them
    /// ([`InvocationBracket`]); `None` until then.
    idle: Mutex<Option<IdleClock>>,
}

/// Time spent between invocations: the environment may be frozen then.
#[derive(Debug)]
struct IdleClock {
    in_flight: u64,
    /// Since when none is in flight (`None` while one is).
    idle_since: Option<Instant>,
    /// The idle time before `idle_since`.
    idle_before: Duration,
}

impl IdleClock {
    /// The idle time up to `now`.
    fn idle_at(&self, now: Instant) -> Duration {
        self.idle_before
            + self
                .idle_since
                .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }
}

/// Marks the invocations of a Lambda function for the heartbeat, from
/// [`crate::Monitor::invocation_bracket`].
///
/// Once a bracket exists, the time between invocations is left out of the heartbeat's
/// lag: Lambda may freeze the environment there, and a frozen heartbeat wakes late without
/// any stall. A late wake that idle time explains is a suspension, whatever the gap's
/// length, so steady traffic with sub-second gaps does not read as scheduler stalls; a
/// stall inside an invocation still counts when the invocation ended before the
/// heartbeat could run (a handler blocking the only thread of a current-thread runtime).
#[derive(Debug, Clone)]
pub struct InvocationBracket {
    state: Weak<StallState>,
}

/// An invocation in progress; ends when dropped.
#[derive(Debug)]
#[must_use = "the invocation ends when this guard is dropped"]
pub struct InFlight {
    state: Weak<StallState>,
}

impl InvocationBracket {
    pub(crate) fn new(state: &Arc<StallState>) -> Self {
        state.with_idle(|idle| {
            // Until the first invocation the environment is idle.
            idle.get_or_insert_with(|| IdleClock {
                in_flight: 0,
                idle_since: Some(Instant::now()),
                idle_before: Duration::ZERO,
            });
        });
        InvocationBracket {
            state: Arc::downgrade(state),
        }
    }

    /// Marks the start of an invocation.
    pub fn enter(&self) -> InFlight {
        if let Some(state) = self.state.upgrade() {
            state.with_idle(|idle| {
                if let Some(clock) = idle {
                    if let Some(since) = clock.idle_since.take() {
                        clock.idle_before += Instant::now().saturating_duration_since(since);
                    }
                    clock.in_flight += 1;
                }
            });
        }
        InFlight {
            state: self.state.clone(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(state) = self.state.upgrade() {
            state.with_idle(|idle| {
                if let Some(clock) = idle {
                    clock.in_flight = clock.in_flight.saturating_sub(1);
                    if clock.in_flight == 0 {
                        clock.idle_since = Some(Instant::now());
                    }
                }
            });
        }
    }
}

impl StallState {
    fn with_idle<T>(&self, f: impl FnOnce(&mut Option<IdleClock>) -> T) -> T {
        f(&mut self.idle.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The time spent between invocations up to `now`; `None` when nothing brackets them.
    fn idle_at(&self, now: Instant) -> Option<Duration> {
        self.with_idle(|idle| idle.as_ref().map(|clock| clock.idle_at(now)))
    }

    pub(crate) fn stats(&self) -> Option<StallStats> {
        let samples = self.samples.load(Relaxed);
        if samples == 0 {
            return None;
        }
        let secs = |a: &AtomicU64| a.load(Relaxed) as f64 / 1e9;
        Some(StallStats {
            latest_seconds: secs(&self.latest_ns),
            max_seconds: secs(&self.max_ns),
            p99_seconds: secs(&self.p99_ns),
            samples,
            suspensions: self.suspensions.load(Relaxed),
        })
    }
}

/// The window of lags and its summary; owned by the heartbeat task.
#[derive(Debug)]
pub(crate) struct LagWindow {
    ring: Vec<u64>,
    next: usize,
    filled: usize,
    scratch: Vec<u64>,
}

impl LagWindow {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        LagWindow {
            ring: vec![0; capacity],
            next: 0,
            filled: 0,
            scratch: Vec::with_capacity(capacity),
        }
    }

    /// Adds a lag and returns (max, p99) over the window, in nanoseconds.
    pub(crate) fn push(&mut self, lag_ns: u64) -> (u64, u64) {
        let len = self.ring.len();
        self.ring[self.next] = lag_ns;
        self.next = (self.next + 1) % len;
        self.filled = (self.filled + 1).min(len);
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.ring[..self.filled]);
        let max = self.scratch.iter().copied().max().unwrap_or(0);
        // Nearest-rank p99: the smallest lag at or above 99 % of the samples.
        let rank = (self.filled * 99).div_ceil(100).max(1) - 1;
        let (_, p99, _) = self.scratch.select_nth_unstable(rank);
        (max, *p99)
    }
}

/// Runs the heartbeat until `state` is the only owner left (the monitor was dropped).
pub(crate) async fn heartbeat(state: Arc<StallState>, config: StallOptions) {
    let mut window = LagWindow::new(config.window);
    let period = config.period.max(Duration::from_millis(1));
    loop {
        if Arc::strong_count(&state) == 1 {
            return;
        }
        let slept_at = Instant::now();
        let due = slept_at + period;
        let idle_before = state.idle_at(slept_at);
        tokio::time::sleep_until(due).await;
        let woke_at = Instant::now();
        let mut lag = woke_at.saturating_duration_since(due);
        if let (Some(before), Some(after)) = (idle_before, state.idle_at(woke_at)) {
            let idle = after.saturating_sub(before);
            if !idle.is_zero() {
                // The sleep spanned time between invocations, which a freeze may fill:
                // a late wake that idle time explains is a suspension, and only what
                // idle time does not explain can be a stall.
                if idle >= period && lag >= period {
                    state.suspensions.fetch_add(1, Relaxed);
                }
                let unexplained = lag.saturating_sub(idle);
                if unexplained < period {
                    continue;
                }
                lag = unexplained;
            }
        }
        if config.freeze_gap.is_some_and(|gap| lag >= gap) {
            state.suspensions.fetch_add(1, Relaxed);
            continue;
        }
        let lag_ns = u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX);
        let (max, p99) = window.push(lag_ns);
        state.latest_ns.store(lag_ns, Relaxed);
        state.max_ns.store(max, Relaxed);
        state.p99_ns.store(p99, Relaxed);
        state.samples.store(window.filled as u64, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_reports_max_and_p99() {
        let mut window = LagWindow::new(100);
        for lag in 1..=100u64 {
            window.push(lag);
        }
        let (max, p99) = window.push(1);
        // The window now holds 2..=100 and 1.
        assert_eq!(max, 100);
        assert_eq!(p99, 99);
        // Old lags leave the window.
        for _ in 0..100 {
            window.push(5);
        }
        assert_eq!(window.push(5), (5, 5));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_blocked_runtime_shows_up_as_a_stall() {
        let state = Arc::new(StallState::default());
        let config = StallOptions {
            period: Duration::from_millis(5),
            window: 50,
            freeze_gap: None,
        };
        let task = tokio::spawn(heartbeat(state.clone(), config));
        tokio::time::sleep(Duration::from_millis(30)).await;
        // Block the only runtime thread, as a handler doing blocking work would.
        std::thread::sleep(Duration::from_millis(120));
        tokio::time::sleep(Duration::from_millis(30)).await;
        let stats = state.stats().unwrap();
        assert!(stats.max_seconds >= 0.1, "max lag {}", stats.max_seconds);
        assert!(stats.samples >= 2);
        assert_eq!(stats.suspensions, 0);
        task.abort();
    }

    /// Steady Lambda traffic: 1.5 s idle gaps (under the 2 s freeze gap) between
    /// invocations. With invocations bracketed the gaps are suspensions, not stalls.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn gaps_between_bracketed_invocations_are_not_stalls() {
        let state = Arc::new(StallState::default());
        let bracket = InvocationBracket::new(&state);
        let config = StallOptions {
            period: Duration::from_millis(10),
            window: 100,
            freeze_gap: Some(Duration::from_secs(2)),
        };
        let task = tokio::spawn(heartbeat(state.clone(), config));
        for _ in 0..5 {
            let invocation = bracket.enter();
            // The handler awaits for 50 ms: heartbeats inside it are on time.
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(invocation);
            // Lambda freezes the environment: time jumps with no task running.
            tokio::time::advance(Duration::from_millis(1500)).await;
        }
        let invocation = bracket.enter();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(invocation);
        let stats = state.stats().unwrap();
        assert!(stats.samples >= 5, "{stats:?}");
        assert!(
            stats.max_seconds < 0.1,
            "a gap was counted as a stall: {stats:?}"
        );
        assert!(stats.suspensions >= 5, "{stats:?}");
        task.abort();
    }

    /// A handler that blocks the only thread of a current-thread runtime keeps the
    /// heartbeat from running until it has returned: the stall is still one, and the
    /// idle time after it is not mistaken for a freeze. A block between invocations is.
    #[tokio::test(flavor = "current_thread")]
    async fn a_stall_inside_an_invocation_counts_after_it_ended() {
        let state = Arc::new(StallState::default());
        let bracket = InvocationBracket::new(&state);
        let config = StallOptions {
            period: Duration::from_millis(5),
            window: 100,
            freeze_gap: Some(Duration::from_secs(2)),
        };
        let task = tokio::spawn(heartbeat(state.clone(), config));
        // Heartbeats inside an invocation that awaits are on time.
        let invocation = bracket.enter();
        tokio::time::sleep(Duration::from_millis(30)).await;
        drop(invocation);
        // Between invocations: the thread is taken away as by a freeze.
        std::thread::sleep(Duration::from_millis(300));
        let invocation = bracket.enter();
        tokio::time::sleep(Duration::from_millis(30)).await;
        drop(invocation);
        let before = state.stats().unwrap();
        assert!(before.max_seconds < 0.2, "{before:?}");
        assert!(before.suspensions >= 1, "{before:?}");
        let invocation = bracket.enter();
        std::thread::sleep(Duration::from_millis(300));
        drop(invocation);
        let invocation = bracket.enter();
        tokio::time::sleep(Duration::from_millis(30)).await;
        drop(invocation);
        let after = state.stats().unwrap();
        assert!(after.max_seconds >= 0.25, "the blocked handler: {after:?}");
        assert_eq!(after.suspensions, before.suspensions, "{after:?}");
        task.abort();
    }

    /// The same gaps without a bracket are what the old heuristic got wrong.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn unbracketed_gaps_under_the_freeze_gap_read_as_stalls() {
        let state = Arc::new(StallState::default());
        let config = StallOptions {
            period: Duration::from_millis(10),
            window: 100,
            freeze_gap: Some(Duration::from_secs(2)),
        };
        let task = tokio::spawn(heartbeat(state.clone(), config));
        tokio::time::sleep(Duration::from_millis(50)).await;
        tokio::time::advance(Duration::from_millis(1500)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(state.stats().unwrap().max_seconds > 1.0);
        task.abort();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn long_gaps_count_as_suspensions() {
        let state = Arc::new(StallState::default());
        let config = StallOptions {
            period: Duration::from_millis(5),
            window: 50,
            freeze_gap: Some(Duration::from_millis(200)),
        };
        let task = tokio::spawn(heartbeat(state.clone(), config));
        tokio::time::sleep(Duration::from_millis(30)).await;
        std::thread::sleep(Duration::from_millis(300));
        tokio::time::sleep(Duration::from_millis(30)).await;
        let stats = state.stats().unwrap();
        assert!(stats.suspensions >= 1);
        // The long gap is kept out of the stall figures.
        assert!(stats.max_seconds < 0.2);
        task.abort();
    }
}
