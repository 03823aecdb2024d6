//! Memory against the limit that applies (the OOM killer's view) and OOM kills; and,
//! for readiness only, the heap heuristics: growth trend, waste, allocation rate.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lift_core::{CheckOutcome, HealthCheck, HealthStatus};

use super::Findings;
use crate::monitor::Monitor;
use crate::snapshot::{LimitSource, Snapshot};
use crate::threshold::Threshold;
use crate::units::{format_bytes, format_seconds};

/// The thresholds of [`MemoryCheck`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct MemoryThresholds {
    /// Memory in percent of the limit that applies. In Lambda: RSS against the function's
    /// memory size, warn 75, fail 90 (the limit also covers extensions and the runtime).
    /// In a cgroup with a limit: the cgroup's working set (usage less inactive page cache,
    /// what the OOM killer counts) against the tightest limit of the cgroup and its
    /// ancestors, warn 80, fail 95. Else RSS against `limit_bytes`, warn 80, fail 95.
    pub rss_percent: Threshold,
    /// The limit to use when neither Lambda nor the cgroup sets one.
    pub limit_bytes: Option<u64>,
    /// How long the check stays degraded after the cgroup's OOM kill count went up.
    /// Default: 15 minutes.
    #[schemars(with = "f64")]
    #[serde(with = "seconds")]
    pub oom_kill_window: Duration,
}

mod seconds {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

impl MemoryThresholds {
    /// The defaults for Lambda (`lambda`) or elsewhere.
    pub fn for_environment(lambda: bool) -> Self {
        MemoryThresholds {
            rss_percent: if lambda {
                Threshold::above(75.0, 90.0)
            } else {
                Threshold::above(80.0, 95.0)
            },
            limit_bytes: None,
            oom_kill_window: Duration::from_secs(15 * 60),
        }
    }

    /// Sets the limit used when neither Lambda nor the cgroup sets one.
    #[must_use]
    pub fn limit_bytes(mut self, limit_bytes: Option<u64>) -> Self {
        self.limit_bytes = limit_bytes;
        self
    }

    /// [`MemoryThresholds::limit_bytes`], under the name it had before setters were named
    /// after their fields.
    #[deprecated(note = "renamed to limit_bytes")]
    #[must_use]
    pub fn with_limit(self, limit_bytes: Option<u64>) -> Self {
        self.limit_bytes(limit_bytes)
    }
}

impl Default for MemoryThresholds {
    fn default() -> Self {
        Self::for_environment(crate::snapshot::in_lambda())
    }
}

/// The OOM kill count last seen and when it last went up.
type OomSeen = (u64, Option<Instant>);

/// Checks memory against the limit that applies, and OOM kills in the cgroup.
/// Name: `memory`; in the liveness and readiness groups.
///
/// Observations: `rss`, `peak_rss`, in a cgroup `working_set`, then `limit` and
/// `utilization`, and `oom_kills`. The heap heuristics are in [`HeapCheck`], which never
/// joins the liveness group: a trend is a guess, and a guess must not restart a process.
#[derive(Debug, Clone)]
pub struct MemoryCheck {
    monitor: Monitor,
    thresholds: MemoryThresholds,
    oom: Arc<Mutex<Option<OomSeen>>>,
}

impl MemoryCheck {
    /// A check of `monitor`'s snapshots.
    pub fn new(monitor: Monitor, thresholds: MemoryThresholds) -> Self {
        MemoryCheck {
            monitor,
            thresholds,
            oom: Arc::default(),
        }
    }

    /// Judges a snapshot. Remembers the OOM kill count, so that a later snapshot with
    /// more kills is degraded for [`MemoryThresholds::oom_kill_window`].
    pub fn evaluate(&self, snapshot: &Snapshot) -> CheckOutcome {
        if snapshot.sequence == 0 {
            return CheckOutcome::unknown("no sample taken yet");
        }
        let t = &self.thresholds;
        let mut f = Findings::at(snapshot.taken_at);
        let rss = snapshot.memory.rss_bytes;
        if let Some(rss) = rss {
            f.observe("rss", rss as f64, "bytes");
        }
        if let Some(peak) = snapshot.memory.peak_rss_bytes {
            f.observe("peak_rss", peak as f64, "bytes");
        }
        let limit = snapshot.memory_limit(t.limit_bytes);
        let cgroup_working_set = snapshot.cgroup.and_then(|c| c.working_set_bytes());
        // What counts against the limit: the cgroup's working set for a cgroup limit.
        let (used, what) = match limit {
            Some((_, LimitSource::Cgroup)) => match cgroup_working_set {
                Some(ws) => {
                    f.observe("working_set", ws as f64, "bytes");
                    (Some(ws), "cgroup working set")
                }
                None => (rss, "rss"),
            },
            _ => (rss, "rss"),
        };
        match (used, limit) {
            (Some(used), Some((limit, source))) if limit > 0 => {
                let percent = used as f64 * 100.0 / limit as f64;
                f.observe("limit", limit as f64, "bytes");
                f.observe("utilization", percent, "percent");
                f.judge(&t.rss_percent, percent, || {
                    format!(
                        "{what} {} is {percent:.1}% of the {} {}",
                        format_bytes(used as f64),
                        source.as_str(),
                        format_bytes(limit as f64)
                    )
                });
            }
            (Some(used), _) => f.add(
                HealthStatus::Unknown,
                format!(
                    "{what} {} but no memory limit is known; set one in MemoryThresholds::limit_bytes",
                    format_bytes(used as f64)
                ),
            ),
            (None, _) => f.add(HealthStatus::Unknown, "rss unavailable"),
        }
        if let Some(kills) = snapshot.cgroup.and_then(|c| c.oom_kill_events) {
            f.observe("oom_kills", kills as f64, "count");
            let mut oom = self.oom.lock().unwrap_or_else(PoisonError::into_inner);
            let last_increase = match *oom {
                Some((seen, last)) if kills > seen => Some(Instant::now()).or(last),
                Some((_, last)) => last,
                // Kills before the first look happened before this monitor: a figure, not news.
                None => None,
            };
            *oom = Some((kills, last_increase));
            if let Some(at) = last_increase
                && at.elapsed() < t.oom_kill_window
            {
                f.add(
                    HealthStatus::Degraded,
                    format!(
                        "the OOM killer killed a process of this cgroup {} ago ({kills} kills in all)",
                        format_seconds(at.elapsed().as_secs_f64())
                    ),
                );
            }
        }
        f.finish("")
    }
}

/// The thresholds of [`HeapCheck`]. They warn and never fail: heap heuristics guess.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct HeapThresholds {
    /// No trend is judged before the process has run this long: caches warm up in a
    /// straight line too. Default: 10 minutes.
    #[schemars(with = "f64")]
    #[serde(with = "seconds")]
    pub warm_up: Duration,
    /// Seconds until the limit if the live heap keeps growing at its fitted rate: warn
    /// below 3,600. Counted only when live bytes and live allocations both grow steadily.
    pub exhaustion_seconds: Threshold,
    /// A trend counts only when a straight line fits it this well (R²). Default 0.8.
    pub min_growth_fit: f64,
    /// RSS divided by the live heap (fragmentation, caches, unreturned memory): warn 3.
    pub waste_ratio: Threshold,
    /// The waste ratio is judged only above this live heap, since a small heap's RSS is
    /// dominated by code and stacks. Default 64 MiB.
    pub waste_min_heap_bytes: u64,
    /// Allocations per second, the counterpart of Go's GC frequency: warn at 5 million.
    pub allocation_rate: Threshold,
}

impl Default for HeapThresholds {
    fn default() -> Self {
        HeapThresholds {
            warm_up: Duration::from_secs(600),
            exhaustion_seconds: Threshold::below(3600.0, 600.0),
            min_growth_fit: 0.8,
            waste_ratio: Threshold::above(3.0, 6.0),
            waste_min_heap_bytes: 64 << 20,
            allocation_rate: Threshold::above(5e6, 2e7),
        }
    }
}

/// The heap heuristics: growth towards the limit (the leak heuristic), RSS against the
/// live heap, and the allocation rate, from [`crate::CountingAlloc`] (or jemalloc's
/// statistics). Name: `heap`; readiness only, and at worst degraded.
///
/// Observations: `heap_live`, `heap_objects`, `heap_growth`, `heap_objects_growth`,
/// `time_to_limit`, `waste_ratio`, `allocation_rate`, `allocation_bytes_rate`.
#[derive(Debug, Clone)]
pub struct HeapCheck {
    monitor: Monitor,
    thresholds: HeapThresholds,
    limit_bytes: Option<u64>,
}

impl HeapCheck {
    /// A check of `monitor`'s snapshots; `limit_bytes` is the limit used when neither
    /// Lambda nor the cgroup sets one.
    pub fn new(monitor: Monitor, thresholds: HeapThresholds, limit_bytes: Option<u64>) -> Self {
        HeapCheck {
            monitor,
            thresholds,
            limit_bytes,
        }
    }

    /// Judges a snapshot.
    pub fn evaluate(&self, snapshot: &Snapshot) -> CheckOutcome {
        if snapshot.sequence == 0 {
            return CheckOutcome::unknown("no sample taken yet");
        }
        let t = &self.thresholds;
        let mut f = Findings::at(snapshot.taken_at).cap_at(HealthStatus::Degraded);
        let rss = snapshot.memory.rss_bytes;
        let limit = snapshot.memory_limit(self.limit_bytes);
        if let Some(heap) = snapshot.alloc {
            let live = heap.counts.live_bytes;
            f.observe("heap_live", live as f64, "bytes");
            f.observe("heap_objects", heap.counts.live_allocations as f64, "count");
            if let Some(rate) = heap.allocations_per_second {
                f.observe("allocation_rate", rate, "count/s");
                f.judge(&t.allocation_rate, rate, || {
                    format!("{rate:.0} allocations per second")
                });
            }
            if let Some(rate) = heap.bytes_per_second {
                f.observe("allocation_bytes_rate", rate, "bytes/s");
            }
            let warmed_up = snapshot
                .uptime_seconds
                .is_some_and(|up| up >= t.warm_up.as_secs_f64());
            if let (Some(slope), Some(fit)) = (heap.growth_bytes_per_second, heap.growth_fit) {
                f.observe("heap_growth", slope, "bytes/s");
                let objects = heap.objects_growth_per_second.zip(heap.objects_growth_fit);
                if let Some((objects_slope, _)) = objects {
                    f.observe("heap_objects_growth", objects_slope, "count/s");
                }
                let objects_grow =
                    objects.is_some_and(|(slope, fit)| slope > 0.0 && fit >= t.min_growth_fit);
                if !warmed_up {
                    f.add(
                        HealthStatus::Healthy,
                        format!(
                            "heap trend not judged during the first {} (warm-up)",
                            format_seconds(t.warm_up.as_secs_f64())
                        ),
                    );
                } else if slope > 0.0
                    && fit >= t.min_growth_fit
                    && objects_grow
                    && let (Some(rss), Some((limit, _))) = (rss, limit)
                {
                    let seconds = limit.saturating_sub(rss) as f64 / slope;
                    f.observe("time_to_limit", seconds, "seconds");
                    f.judge(&t.exhaustion_seconds, seconds, || {
                        format!(
                            "live bytes and allocations grow steadily, {}/s (fit {fit:.2}); the limit is reached in about {}",
                            format_bytes(slope),
                            format_seconds(seconds)
                        )
                    });
                }
            }
            waste(&mut f, t, rss, live);
        } else if let Some(jemalloc) = snapshot.jemalloc {
            // Without the counting allocator, jemalloc's own count of allocated bytes is the live heap.
            f.observe("heap_live", jemalloc.allocated_bytes as f64, "bytes");
            waste(&mut f, t, rss, jemalloc.allocated_bytes);
        } else {
            f.add(
                HealthStatus::Unknown,
                "no heap figures: install lift_monitor::CountingAlloc as the global allocator",
            );
        }
        f.finish("")
    }
}

/// Judges RSS against the live heap, when the heap is large enough for the ratio to mean something.
fn waste(f: &mut Findings, t: &HeapThresholds, rss: Option<u64>, live: u64) {
    if let Some(rss) = rss
        && live >= t.waste_min_heap_bytes
        && live > 0
    {
        let ratio = rss as f64 / live as f64;
        f.observe("waste_ratio", ratio, "ratio");
        f.judge(&t.waste_ratio, ratio, || {
            format!(
                "rss is {ratio:.2} times the live heap {}",
                format_bytes(live as f64)
            )
        });
    }
}

/// The machine's physical memory: a sensible configured limit outside Lambda and cgroups.
pub fn physical_memory_bytes() -> Option<u64> {
    crate::backend::physical_memory_bytes()
}

#[async_trait::async_trait]
impl HealthCheck for MemoryCheck {
    fn name(&self) -> &str {
        "memory"
    }

    async fn check(&self) -> CheckOutcome {
        self.evaluate(&self.monitor.snapshot())
    }
}

#[async_trait::async_trait]
impl HealthCheck for HeapCheck {
    fn name(&self) -> &str {
        "heap"
    }

    async fn check(&self) -> CheckOutcome {
        self.evaluate(&self.monitor.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::AllocStats;
    use crate::snapshot::{CgroupMemory, HeapStats, LambdaEnv, MemoryStats};

    fn check(lambda: bool) -> MemoryCheck {
        MemoryCheck::new(
            Monitor::fixed(Snapshot::empty()),
            MemoryThresholds::for_environment(lambda),
        )
    }

    fn with_rss(rss: u64) -> Snapshot {
        let mut s = crate::checks::testing::healthy_snapshot();
        s.memory = MemoryStats {
            rss_bytes: Some(rss),
            virtual_bytes: Some(rss * 4),
            peak_rss_bytes: Some(rss),
        };
        s
    }

    #[test]
    fn without_a_limit_the_status_is_unknown() {
        let out = check(false).evaluate(&with_rss(100 << 20));
        assert_eq!(out.status, HealthStatus::Unknown);
        assert!(out.message.contains("no memory limit"));
    }

    #[test]
    fn lambda_limit_wins_and_is_stricter() {
        let mut s = with_rss(100 << 20);
        s.cgroup = Some(CgroupMemory {
            max_bytes: Some(1 << 30),
            ..Default::default()
        });
        assert_eq!(check(false).evaluate(&s).status, HealthStatus::Healthy);
        s.lambda = Some(LambdaEnv {
            memory_limit_bytes: Some(128 << 20),
            initialization_type: None,
            function_name: None,
        });
        let out = check(true).evaluate(&s);
        // 100 MiB of 128 MiB is 78 %: degraded with the Lambda levels, healthy with the others.
        assert_eq!(out.status, HealthStatus::Degraded, "{}", out.message);
        assert!(out.message.contains("lambda memory size"));
        assert_eq!(check(false).evaluate(&s).status, HealthStatus::Healthy);
        s.memory.rss_bytes = Some(125 << 20);
        assert_eq!(check(true).evaluate(&s).status, HealthStatus::Unhealthy);
    }

    /// The OOM killer counts the cgroup's working set, not this process's RSS: a small
    /// process in a cgroup whose other processes fill the limit is in danger.
    #[test]
    fn a_cgroup_limit_is_judged_on_the_cgroup_working_set() {
        let mut s = with_rss(50 << 20);
        s.cgroup = Some(CgroupMemory {
            version: 2,
            current_bytes: Some(1000 << 20),
            max_bytes: Some(1 << 30),
            own_max_bytes: Some(2 << 30),
            inactive_file_bytes: Some(20 << 20),
            ..Default::default()
        });
        let out = check(false).evaluate(&s);
        assert_eq!(out.status, HealthStatus::Unhealthy, "{}", out.message);
        assert!(
            out.message.contains("cgroup working set 980.0 MiB"),
            "{}",
            out.message
        );
        // Page cache the kernel can drop does not count.
        s.cgroup.as_mut().unwrap().inactive_file_bytes = Some(600 << 20);
        assert_eq!(check(false).evaluate(&s).status, HealthStatus::Healthy);
    }

    #[test]
    fn a_new_oom_kill_degrades_the_check() {
        let check = check(false).clone();
        let mut s = with_rss(50 << 20);
        s.cgroup = Some(CgroupMemory {
            version: 2,
            current_bytes: Some(100 << 20),
            max_bytes: Some(1 << 30),
            oom_kill_events: Some(2),
            ..Default::default()
        });
        // Kills from before the monitor are a figure, not news.
        let first = check.evaluate(&s);
        assert_eq!(first.status, HealthStatus::Healthy, "{}", first.message);
        s.cgroup.as_mut().unwrap().oom_kill_events = Some(3);
        let out = check.evaluate(&s);
        assert_eq!(out.status, HealthStatus::Degraded, "{}", out.message);
        assert!(out.message.contains("OOM killer"), "{}", out.message);
        // Still degraded on the next look within the window.
        assert_eq!(check.evaluate(&s).status, HealthStatus::Degraded);
        let zero = MemoryCheck::new(
            Monitor::fixed(Snapshot::empty()),
            MemoryThresholds {
                oom_kill_window: Duration::ZERO,
                ..MemoryThresholds::for_environment(false)
            },
        );
        zero.evaluate(&s);
        s.cgroup.as_mut().unwrap().oom_kill_events = Some(4);
        assert_eq!(zero.evaluate(&s).status, HealthStatus::Healthy);
    }

    fn heap(live: u64, slope: Option<f64>, fit: Option<f64>) -> HeapStats {
        HeapStats {
            counts: AllocStats {
                live_bytes: live,
                live_allocations: live / 100,
                ..Default::default()
            },
            allocations_per_second: Some(1000.0),
            bytes_per_second: Some(100_000.0),
            growth_bytes_per_second: slope,
            growth_fit: fit,
            objects_growth_per_second: slope.map(|s| s / 100.0),
            objects_growth_fit: fit,
        }
    }

    fn heap_check(limit: u64) -> HeapCheck {
        HeapCheck::new(
            Monitor::fixed(Snapshot::empty()),
            HeapThresholds::default(),
            Some(limit),
        )
    }

    #[test]
    fn steady_heap_growth_towards_the_limit_warns_after_the_warm_up() {
        let check = heap_check(1 << 30);
        let mut s = with_rss(512 << 20);
        s.uptime_seconds = Some(3600.0);
        s.alloc = Some(heap(400 << 20, Some(1.0 * 1024.0 * 1024.0), Some(0.95)));
        // 512 MiB of headroom at 1 MiB/s: 512 s, past the fail level, yet a heuristic
        // only warns.
        let out = check.evaluate(&s);
        assert_eq!(out.status, HealthStatus::Degraded, "{}", out.message);
        assert!(out.message.contains("grow steadily"));
        // A noisy trend is not a leak.
        s.alloc = Some(heap(400 << 20, Some(1.0 * 1024.0 * 1024.0), Some(0.3)));
        assert_eq!(check.evaluate(&s).status, HealthStatus::Healthy);
        // Slow growth: about 2 h of headroom.
        s.alloc = Some(heap(400 << 20, Some(70_000.0), Some(0.95)));
        assert_eq!(check.evaluate(&s).status, HealthStatus::Healthy);
    }

    /// A cache warming up in a straight line is not a leak.
    #[test]
    fn no_trend_is_judged_during_the_warm_up() {
        let check = heap_check(1 << 30);
        let mut s = with_rss(512 << 20);
        s.uptime_seconds = Some(120.0);
        s.alloc = Some(heap(400 << 20, Some(1.0 * 1024.0 * 1024.0), Some(0.99)));
        let out = check.evaluate(&s);
        assert_eq!(out.status, HealthStatus::Healthy, "{}", out.message);
        assert!(out.message.contains("warm-up"), "{}", out.message);
    }

    /// Bytes growing while the allocation count does not (a buffer growing in place) is
    /// no leak of objects.
    #[test]
    fn growth_needs_live_allocations_to_grow_too() {
        let check = heap_check(1 << 30);
        let mut s = with_rss(512 << 20);
        s.uptime_seconds = Some(3600.0);
        let mut h = heap(400 << 20, Some(1.0 * 1024.0 * 1024.0), Some(0.95));
        h.objects_growth_per_second = Some(0.0);
        s.alloc = Some(h);
        assert_eq!(check.evaluate(&s).status, HealthStatus::Healthy);
    }

    #[test]
    fn the_allocation_rate_is_judged_and_observed() {
        let check = heap_check(16 << 30);
        let mut s = with_rss(100 << 20);
        let mut h = heap(10 << 20, None, None);
        h.allocations_per_second = Some(8e6);
        s.alloc = Some(h);
        let out = check.evaluate(&s);
        assert_eq!(out.status, HealthStatus::Degraded, "{}", out.message);
        assert!(out.message.contains("8000000 allocations per second"));
        assert!(
            out.observations
                .iter()
                .any(|o| o.measurement == "allocation_rate" && o.value == 8e6)
        );
    }

    #[test]
    fn waste_ratio_needs_a_large_enough_heap() {
        let check = heap_check(16 << 30);
        let mut s = with_rss(800 << 20);
        s.alloc = Some(heap(10 << 20, None, None));
        assert_eq!(check.evaluate(&s).status, HealthStatus::Healthy);
        s.alloc = Some(heap(200 << 20, None, None));
        let out = check.evaluate(&s);
        assert_eq!(out.status, HealthStatus::Degraded);
        assert!(
            out.observations
                .iter()
                .any(|o| o.measurement == "waste_ratio" && (o.value - 4.0).abs() < 1e-9)
        );
    }

    #[test]
    fn jemalloc_figures_stand_in_for_the_counting_allocator() {
        let check = heap_check(16 << 30);
        let mut s = with_rss(800 << 20);
        s.jemalloc = Some(crate::snapshot::JemallocStats {
            allocated_bytes: 100 << 20,
            active_bytes: 110 << 20,
            resident_bytes: 120 << 20,
            mapped_bytes: 130 << 20,
            retained_bytes: 0,
            metadata_bytes: 1 << 20,
        });
        let out = check.evaluate(&s);
        assert_eq!(out.status, HealthStatus::Degraded, "{}", out.message);
        assert!(out.message.contains("8.00 times the live heap"));
    }

    #[test]
    fn physical_memory_is_read() {
        assert!(physical_memory_bytes().unwrap() > 64 << 20);
    }
}
