//! The background sampler task and the lock-free latest snapshot.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::error::{Error, Result};
use crate::sampler::{Discovery, Sampler, SamplerOptions};
use crate::snapshot::Snapshot;
use crate::stall::{InvocationBracket, StallOptions, StallState, heartbeat};

/// How the [`Monitor`] samples.
///
/// Fields are private and set through setters named after them, so that an option can be
/// added without breaking callers.
///
/// ```
/// use std::time::Duration;
/// use lift_monitor::{MonitorOptions, SamplerOptions};
///
/// let options = MonitorOptions::default()
///     .interval(Duration::from_secs(5))
///     .sampler(SamplerOptions::default().disk_paths(vec!["/data".into()]))
///     .stall(None);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorOptions {
    pub(crate) sampler: SamplerOptions,
    pub(crate) interval: Duration,
    pub(crate) stall: Option<StallOptions>,
    pub(crate) background_discovery: bool,
}

/// The name [`MonitorOptions`] had before lift's options structs were named alike.
#[deprecated(note = "renamed to MonitorOptions")]
pub type MonitorConfig = MonitorOptions;

impl MonitorOptions {
    /// What to sample. Default: [`SamplerOptions::default`].
    #[must_use]
    pub fn sampler(mut self, sampler: SamplerOptions) -> Self {
        self.sampler = sampler;
        self
    }

    /// Time between samples; must not be zero. Default: 1 s.
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The runtime-stall heartbeat; `None` runs none. Default: [`StallOptions::default`].
    #[must_use]
    pub fn stall(mut self, stall: Option<StallOptions>) -> Self {
        self.stall = stall;
        self
    }

    /// Whether [`Monitor::start`] leaves finding the memory cgroup and counting the
    /// available cores to the sampler task, off the caller's path: start then takes its
    /// first sample without them (`cgroup` and `cpu.cores` are `None` in it: not yet
    /// looked for), and the task looks for them at its first tick, one interval later,
    /// before it samples. Finding the cgroup parses `/proc/self/cgroup` and
    /// `/proc/self/mountinfo` and opens a dozen files: a few hundred microseconds in a
    /// process that has just started.
    ///
    /// Default: on in Lambda (`AWS_LAMBDA_FUNCTION_NAME` set), where it is part of every
    /// cold start and the memory limit is the function's memory size, not the cgroup's
    /// (and `cpu.percent`, which the core count qualifies, needs a full one-second window
    /// anyway); off elsewhere, so that the first snapshot is complete.
    #[must_use]
    pub fn background_discovery(mut self, background_discovery: bool) -> Self {
        self.background_discovery = background_discovery;
        self
    }
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            sampler: SamplerOptions::default(),
            interval: Duration::from_secs(1),
            stall: Some(StallOptions::default()),
            background_discovery: crate::snapshot::in_lambda(),
        }
    }
}

/// Samples the process in the background and publishes the latest [`Snapshot`].
///
/// Clones share one sampler. Reading the latest snapshot ([`Monitor::snapshot`]) takes
/// no lock and makes no system call. The background tasks stop when the last clone is
/// dropped.
#[derive(Debug, Clone)]
pub struct Monitor {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    latest: ArcSwap<Snapshot>,
    stall: Option<Arc<StallState>>,
    sampler: Option<Mutex<Sampler>>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

impl Monitor {
    /// Takes a first sample, then starts the sampler and heartbeat tasks on the current
    /// tokio runtime. With [`MonitorOptions::background_discovery`] the first sample has
    /// no cgroup figures and no core count yet: the sampler task finds them at its first
    /// tick.
    pub fn start(config: MonitorOptions) -> Result<Monitor> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        if config.interval.is_zero() {
            return Err(Error::InvalidConfig(
                "the sampling interval must be greater than zero".into(),
            ));
        }
        let mut sampler = if config.background_discovery {
            Sampler::undiscovered(&config.sampler)?
        } else {
            Sampler::new(&config.sampler)?
        };
        let stall = config.stall.map(|stall_config| {
            let state = Arc::new(StallState::default());
            sampler.attach_stall(state.clone());
            (state, stall_config)
        });
        let first = sampler.sample();
        let shared = Arc::new(Shared {
            latest: ArcSwap::from_pointee(first),
            stall: stall.as_ref().map(|(state, _)| state.clone()),
            sampler: Some(Mutex::new(sampler)),
            tasks: Mutex::new(Vec::new()),
        });
        let mut tasks = Vec::new();
        if let Some((state, stall_config)) = stall {
            tasks.push(handle.spawn(heartbeat(state, stall_config)).abort_handle());
        }
        let weak = Arc::downgrade(&shared);
        tasks.push(
            handle
                .spawn(sample_loop(weak, config.interval))
                .abort_handle(),
        );
        *shared.tasks.lock().unwrap_or_else(PoisonError::into_inner) = tasks;
        Ok(Monitor { shared })
    }

    /// A monitor that always returns `snapshot` and samples nothing: for tests of checks
    /// and renderings.
    pub fn fixed(snapshot: Snapshot) -> Monitor {
        Monitor {
            shared: Arc::new(Shared {
                latest: ArcSwap::from_pointee(snapshot),
                stall: None,
                sampler: None,
                tasks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A handle that marks invocations for the stall heartbeat, so that only heartbeats
    /// inside invocations count (see [`InvocationBracket`]); `None` when the monitor runs
    /// no heartbeat. The Lambda layer uses it when given a monitor.
    pub fn invocation_bracket(&self) -> Option<InvocationBracket> {
        self.shared.stall.as_ref().map(InvocationBracket::new)
    }

    /// The latest snapshot. Lock-free, no system call.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.latest.load_full()
    }

    /// Reads a field of the latest snapshot without touching its reference count:
    /// the cheapest read.
    pub fn with_snapshot<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> R {
        f(&self.shared.latest.load())
    }

    /// Resident, virtual and peak memory read now, without a full sample or publishing:
    /// a few microseconds. A fixed monitor returns its snapshot's.
    pub fn memory_now(&self) -> crate::snapshot::MemoryStats {
        match &self.shared.sampler {
            Some(sampler) => sampler
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .memory(),
            None => self.snapshot().memory,
        }
    }

    /// Samples now, publishes and returns the new snapshot (complete: with the cgroup and
    /// the cores even before the sampler task's first tick, see
    /// [`MonitorOptions::background_discovery`]). A fixed monitor returns its snapshot.
    pub fn refresh(&self) -> Arc<Snapshot> {
        if let Some(sampler) = &self.shared.sampler {
            discover(sampler);
            sample_and_publish(&self.shared, sampler);
        }
        self.snapshot()
    }
}

fn sample_and_publish(shared: &Shared, sampler: &Mutex<Sampler>) {
    let snapshot = sampler
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .sample();
    shared.latest.store(Arc::new(snapshot));
}

/// Finds the cgroup and the cores when [`Monitor::start`] left them to the sampler task:
/// without holding the sampler's lock (so that [`Monitor::memory_now`] does not wait for
/// it), then installs them. Nothing when they were found already.
fn discover(sampler: &Mutex<Sampler>) {
    let lock = || sampler.lock().unwrap_or_else(PoisonError::into_inner);
    if lock().discovered() {
        return;
    }
    let _span = tracing::trace_span!("lift_monitor.discover").entered();
    let discovery = Discovery::run();
    lock().install(discovery);
}

async fn sample_loop(shared: Weak<Shared>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick completes at once; the first sample was taken in `start`.
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Some(sampler) = &shared.sampler {
            // The discovery `start` left to this task, at its first tick: off the path of
            // whatever the process does right after it started the monitor (in Lambda,
            // the cold start's first invocation).
            discover(sampler);
            let _span = tracing::trace_span!("lift_monitor.sample").entered();
            sample_and_publish(&shared, sampler);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn publishes_new_snapshots_in_the_background() {
        let config = MonitorOptions {
            interval: Duration::from_millis(10),
            sampler: SamplerOptions {
                disk_paths: vec![],
                cpu_window: Duration::from_millis(20),
                ..Default::default()
            },
            stall: Some(StallOptions {
                period: Duration::from_millis(5),
                window: 20,
                freeze_gap: None,
            }),
            background_discovery: false,
        };
        let monitor = Monitor::start(config).unwrap();
        assert_eq!(monitor.snapshot().sequence, 1);
        tokio::time::sleep(Duration::from_millis(80)).await;
        let latest = monitor.snapshot();
        assert!(latest.sequence >= 3, "sequence {}", latest.sequence);
        assert!(latest.stall.is_some());
        assert!(latest.tokio.is_some());
        assert!(latest.cpu.percent.is_some());
        let refreshed = monitor.refresh();
        assert!(refreshed.sequence > latest.sequence);
        assert_eq!(monitor.with_snapshot(|s| s.sequence), refreshed.sequence);
    }

    /// With background discovery the first snapshot has no cgroup figures and no core
    /// count (not yet looked for); the sampler task finds them at its first tick, and a
    /// refresh finds them at once.
    #[tokio::test(flavor = "current_thread")]
    async fn background_discovery_completes_at_the_first_tick() {
        let options = MonitorOptions::default()
            .interval(Duration::from_millis(20))
            .stall(None)
            .background_discovery(true);
        let monitor = Monitor::start(options.clone()).unwrap();
        let first = monitor.snapshot();
        assert_eq!(first.cpu.cores, None);
        assert_eq!(first.cgroup, None);
        assert!(first.memory.rss_bytes.is_some(), "the rest is measured");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let later = monitor.snapshot();
        assert!(later.sequence > first.sequence);
        assert!(later.cpu.cores.is_some_and(|n| n >= 1));
        let eager = Sampler::new(&options.sampler).unwrap().sample();
        assert_eq!(later.cgroup.is_some(), eager.cgroup.is_some());

        let refreshed = Monitor::start(options).unwrap().refresh();
        assert!(refreshed.cpu.cores.is_some_and(|n| n >= 1));
    }

    #[test]
    fn needs_a_runtime() {
        assert!(matches!(
            Monitor::start(MonitorOptions::default()),
            Err(Error::NoRuntime)
        ));
    }

    #[test]
    fn fixed_monitors_return_their_snapshot() {
        let mut snapshot = Snapshot::empty();
        snapshot.threads = Some(42);
        let monitor = Monitor::fixed(snapshot);
        assert_eq!(monitor.refresh().threads, Some(42));
    }
}
