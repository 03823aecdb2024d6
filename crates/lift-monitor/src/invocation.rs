//! Lambda invocation metrics: cold start, invocations, errors, error rate, duration
//! percentiles, memory and uptime. This part needs no Lambda dependency; the `lambda`
//! feature wires it into a tower layer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::metrics::{MetricsRegistry, Unit};
use crate::snapshot::{LambdaEnv, MemoryStats, Snapshot};

/// One invocation in progress, from [`InvocationMetrics::begin`].
#[derive(Debug)]
#[must_use = "pass it to InvocationMetrics::finish"]
pub struct Invocation {
    started: Instant,
    cold_start: bool,
}

impl Invocation {
    /// Whether this is the cold start: the first invocation of an on-demand environment.
    pub fn is_cold_start(&self) -> bool {
        self.cold_start
    }
}

/// Records Lambda invocation metrics in a [`MetricsRegistry`].
///
/// Metrics: `Invocations`, `Errors` and `ColdStart` (counts), `Duration` (milliseconds,
/// every value: CloudWatch computes the percentiles across environments),
/// `PreWarmDuration`, `MemoryUsed`, `MaxMemoryUsed`, `MemoryLimit` (megabytes), `MemoryUtilization`
/// (percent) and `Uptime` (seconds).
///
/// Invariant: `ColdStart` is counted at most once, on the first invocation, and only when
/// `AWS_LAMBDA_INITIALIZATION_TYPE` is `on-demand` or unset (provisioned concurrency and
/// SnapStart initialise ahead of the first request).
///
/// ```
/// use lift_monitor::{InvocationMetrics, MetricsRegistry};
///
/// let metrics = InvocationMetrics::new(MetricsRegistry::default(), None);
/// let first = metrics.begin();
/// assert!(first.is_cold_start());
/// metrics.finish(first, true);
/// let second = metrics.begin();
/// assert!(!second.is_cold_start());
/// metrics.finish(second, false);
/// assert_eq!(metrics.error_rate(), Some(50.0));
/// ```
#[derive(Debug)]
pub struct InvocationMetrics {
    registry: MetricsRegistry,
    started: Instant,
    cold_start_eligible: bool,
    first_taken: AtomicBool,
    invocations: AtomicU64,
    errors: AtomicU64,
    memory_limit_bytes: Option<u64>,
}

impl InvocationMetrics {
    /// Metrics recorded in `registry`, for the Lambda environment `lambda`
    /// (see [`LambdaEnv::from_env`]; `None` outside Lambda).
    pub fn new(registry: MetricsRegistry, lambda: Option<&LambdaEnv>) -> Self {
        let init_type = lambda.and_then(|l| l.initialization_type.as_deref());
        InvocationMetrics {
            registry,
            started: Instant::now(),
            cold_start_eligible: matches!(init_type, None | Some("on-demand")),
            first_taken: AtomicBool::new(false),
            invocations: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            memory_limit_bytes: lambda.and_then(|l| l.memory_limit_bytes),
        }
    }

    /// The registry the metrics are recorded in.
    pub fn registry(&self) -> &MetricsRegistry {
        &self.registry
    }

    /// Starts timing an invocation; the first one is the cold start when eligible.
    pub fn begin(&self) -> Invocation {
        let first = !self.first_taken.swap(true, Ordering::SeqCst);
        let cold_start = first && self.cold_start_eligible;
        if cold_start {
            self.registry.increment(
                "ColdStart",
                "Cold starts: first invocations of on-demand environments.",
                1,
            );
        }
        Invocation {
            started: Instant::now(),
            cold_start,
        }
    }

    /// Records the end of `invocation`, successful or not.
    pub fn finish(&self, invocation: Invocation, ok: bool) {
        self.record(invocation.started.elapsed(), ok);
    }

    /// Records an invocation that took `duration`.
    ///
    /// Only raw values are recorded: every duration, and the counts. Percentiles and an
    /// error rate computed in one environment are meaningless once CloudWatch averages
    /// them across concurrent environments; CloudWatch computes percentiles from the raw
    /// `Duration` values, and the error rate is `Errors / Invocations` in metric math.
    pub fn record(&self, duration: Duration, ok: bool) {
        self.invocations.fetch_add(1, Ordering::SeqCst);
        if !ok {
            self.errors.fetch_add(1, Ordering::SeqCst);
        }
        let r = &self.registry;
        r.increment("Invocations", "Invocations handled.", 1);
        if !ok {
            r.increment("Errors", "Invocations that returned an error.", 1);
        }
        r.observe(
            "Duration",
            "Handler duration.",
            Unit::Milliseconds,
            duration.as_secs_f64() * 1e3,
        );
    }

    /// Records how long the pre-warm hooks took.
    pub fn record_pre_warm(&self, duration: Duration) {
        self.registry.set_gauge(
            "PreWarmDuration",
            "Time spent in pre-warm hooks on the first invocation.",
            Unit::Milliseconds,
            duration.as_secs_f64() * 1e3,
        );
    }

    /// Records memory used against the limit, and uptime, from a monitor snapshot.
    pub fn record_process(&self, snapshot: &Snapshot) {
        self.record_process_memory(snapshot, &snapshot.memory);
    }

    /// Like [`InvocationMetrics::record_process`], with `memory` read more recently than
    /// the snapshot (see [`crate::Monitor::memory_now`]).
    pub fn record_process_memory(&self, snapshot: &Snapshot, memory: &MemoryStats) {
        const MB: f64 = 1024.0 * 1024.0;
        let peak = memory.peak_rss_bytes.map(|peak| {
            (
                "MaxMemoryUsed",
                "Peak resident memory since the environment started (Lambda's Max Memory Used).",
                Unit::Megabytes,
                peak as f64 / MB,
            )
        });
        let rss = memory.rss_bytes.map(|rss| {
            (
                "MemoryUsed",
                "Resident memory.",
                Unit::Megabytes,
                rss as f64 / MB,
            )
        });
        let limit = memory.rss_bytes.and_then(|rss| {
            let limit = self
                .memory_limit_bytes
                .or_else(|| snapshot.memory_limit(None).map(|(l, _)| l))
                .filter(|&l| l > 0)?;
            Some([
                (
                    "MemoryLimit",
                    "The memory limit.",
                    Unit::Megabytes,
                    limit as f64 / MB,
                ),
                (
                    "MemoryUtilization",
                    "Resident memory in percent of the limit.",
                    Unit::Percent,
                    rss as f64 * 100.0 / limit as f64,
                ),
            ])
        });
        let uptime = (
            "Uptime",
            "Seconds since the metrics started.",
            Unit::Seconds,
            self.started.elapsed().as_secs_f64(),
        );
        self.registry.set_gauges(
            peak.into_iter()
                .chain(rss)
                .chain(limit.into_iter().flatten())
                .chain([uptime]),
        );
    }

    /// Percent of invocations that failed, when there was any.
    pub fn error_rate(&self) -> Option<f64> {
        let invocations = self.invocations.load(Ordering::SeqCst);
        (invocations > 0)
            .then(|| self.errors.load(Ordering::SeqCst) as f64 * 100.0 / invocations as f64)
    }

    /// Invocations recorded.
    pub fn invocations(&self) -> u64 {
        self.invocations.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emf::EmfEmitter;
    use std::sync::Arc;

    fn env(init: Option<&str>) -> LambdaEnv {
        LambdaEnv {
            memory_limit_bytes: Some(128 << 20),
            initialization_type: init.map(Arc::from),
            function_name: Some(Arc::from("orders")),
        }
    }

    #[test]
    fn cold_start_only_for_on_demand() {
        for (init, cold) in [
            (None, true),
            (Some("on-demand"), true),
            (Some("provisioned-concurrency"), false),
            (Some("snap-start"), false),
        ] {
            let env = env(init);
            let m = InvocationMetrics::new(MetricsRegistry::default(), Some(&env));
            assert_eq!(m.begin().is_cold_start(), cold, "{init:?}");
            assert!(!m.begin().is_cold_start());
            assert_eq!(m.registry().counter("ColdStart"), cold.then_some(1));
        }
    }

    #[test]
    fn error_rate_and_percentiles_are_real() {
        let m = InvocationMetrics::new(MetricsRegistry::default(), None);
        assert_eq!(m.error_rate(), None);
        for i in 1..=100u64 {
            m.record(Duration::from_millis(i), i % 4 != 0);
        }
        assert_eq!(m.error_rate(), Some(25.0));
        let r = m.registry();
        assert_eq!(r.counter("Invocations"), Some(100));
        assert_eq!(r.counter("Errors"), Some(25));
        // No per-environment percentile or rate goes to CloudWatch: only raw values.
        assert_eq!(r.gauge("DurationP99"), None);
        assert_eq!(r.gauge("ErrorRate"), None);
        let pending = r.take_pending();
        let durations = &pending.iter().find(|(n, _, _)| n == "Duration").unwrap().2;
        assert_eq!(durations.len(), 100);
        assert_eq!(durations[41], 42.0);
        // The local histogram still answers percentile questions.
        let p50 = r.quantile("Duration", 0.5).unwrap();
        assert!((p50 - 50.0).abs() < 5.0, "p50 {p50}");
    }

    #[test]
    fn emf_lines_of_an_invocation_snapshot() {
        let env = env(Some("on-demand"));
        let m = InvocationMetrics::new(MetricsRegistry::default(), Some(&env));
        let first = m.begin();
        m.record(Duration::from_millis(120), true);
        drop(first);
        m.record(Duration::from_millis(8), false);
        let mut snapshot = Snapshot::empty();
        snapshot.memory.rss_bytes = Some(48 << 20);
        m.record_process(&snapshot);
        m.record_pre_warm(Duration::from_millis(35));
        // Uptime depends on the wall clock: pin it for the snapshot.
        m.registry().set_gauge("Uptime", "", Unit::Seconds, 42.0);
        let emf = EmfEmitter::new("lift")
            .unwrap()
            .dimension("FunctionName", "orders")
            .unwrap();
        let lines = emf
            .flush(m.registry(), chrono::DateTime::<chrono::Utc>::UNIX_EPOCH)
            .unwrap();
        assert_eq!(lines.len(), 1);
        let doc: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(doc["ColdStart"], 1.0);
        assert_eq!(doc["Errors"], 1.0);
        assert_eq!(doc["MemoryLimit"], 128.0);
        insta::assert_json_snapshot!("invocation_emf", doc);
    }
}
