//! Resident memory against the effective limit, heap growth and heap waste.

use lift_core::{CheckOutcome, HealthCheck, HealthStatus};

use super::Findings;
use crate::monitor::Monitor;
use crate::threshold::Threshold;
use crate::units::{format_bytes, format_seconds};

/// The thresholds of [`MemoryCheck`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct MemoryThresholds {
    /// RSS in percent of the effective limit (Lambda memory size, else cgroup `memory.max`,
    /// else `limit_bytes`). Lambda: warn 75, fail 90, because Lambda's limit also covers
    /// extensions and the runtime. Elsewhere: warn 80, fail 95.
    pub rss_percent: Threshold,
    /// The limit to use when neither Lambda nor the cgroup sets one.
    pub limit_bytes: Option<u64>,
    /// Seconds until RSS reaches the limit if the live heap keeps growing at its fitted
    /// rate (the leak heuristic): warn below 3,600, fail below 600.
    pub exhaustion_seconds: Threshold,
    /// The heap trend counts only when a straight line fits it this well (R²). Default 0.8.
    pub min_growth_fit: f64,
    /// RSS divided by the live heap (fragmentation, caches, unreturned memory): warn 3, fail 6.
    pub waste_ratio: Threshold,
    /// The waste ratio is judged only above this live heap, since a small heap's RSS is
    /// dominated by code and stacks. Default 64 MiB.
    pub waste_min_heap_bytes: u64,
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
            exhaustion_seconds: Threshold::below(3600.0, 600.0),
            min_growth_fit: 0.8,
            waste_ratio: Threshold::above(3.0, 6.0),
            waste_min_heap_bytes: 64 << 20,
        }
    }

    /// Sets the limit used when neither Lambda nor the cgroup sets one.
    #[must_use]
    pub fn with_limit(mut self, limit_bytes: Option<u64>) -> Self {
        self.limit_bytes = limit_bytes;
        self
    }
}

impl Default for MemoryThresholds {
    fn default() -> Self {
        Self::for_environment(super::in_lambda())
    }
}

/// Checks RSS against the effective memory limit, the live-heap trend (leak heuristic)
/// and the RSS-to-heap waste ratio. Name: `memory`.
///
/// Observations: `rss`, `limit`, `utilization`, and with [`crate::CountingAlloc`]
/// installed, `heap_live`, `heap_growth`, `waste_ratio`.
#[derive(Debug, Clone)]
pub struct MemoryCheck {
    monitor: Monitor,
    thresholds: MemoryThresholds,
}

impl MemoryCheck {
    /// A check of `monitor`'s snapshots.
    pub fn new(monitor: Monitor, thresholds: MemoryThresholds) -> Self {
        MemoryCheck {
            monitor,
            thresholds,
        }
    }

    /// Judges a snapshot.
    pub fn evaluate(&self, snapshot: &crate::Snapshot) -> CheckOutcome {
        if snapshot.sequence == 0 {
            return CheckOutcome::unknown("no sample taken yet");
        }
        let t = &self.thresholds;
        let mut f = Findings::at(snapshot.taken_at);
        let rss = snapshot.memory.rss_bytes;
        let limit = snapshot.memory_limit(t.limit_bytes);
        if let Some(rss) = rss {
            f.observe("rss", rss as f64, "bytes");
        }
        match (rss, limit) {
            (Some(rss), Some((limit, source))) if limit > 0 => {
                let percent = rss as f64 * 100.0 / limit as f64;
                f.observe("limit", limit as f64, "bytes");
                f.observe("utilization", percent, "percent");
                f.judge(&t.rss_percent, percent, || {
                    format!(
                        "rss {} is {percent:.1}% of the {} {}",
                        format_bytes(rss as f64),
                        source.as_str(),
                        format_bytes(limit as f64)
                    )
                });
            }
            (Some(rss), _) => f.add(
                HealthStatus::Unknown,
                format!(
                    "rss {} but no memory limit is known; set one in MemoryThresholds::limit_bytes",
                    format_bytes(rss as f64)
                ),
            ),
            (None, _) => f.add(HealthStatus::Unknown, "rss unavailable"),
        }
        if let Some(cgroup) = snapshot.cgroup
            && let Some(kills) = cgroup.oom_kill_events
        {
            f.observe("oom_kills", kills as f64, "count");
        }
        if let Some(heap) = snapshot.alloc {
            let live = heap.counts.live_bytes;
            f.observe("heap_live", live as f64, "bytes");
            if let (Some(slope), Some(fit)) = (heap.growth_bytes_per_second, heap.growth_fit) {
                f.observe("heap_growth", slope, "bytes/s");
                if slope > 0.0
                    && fit >= t.min_growth_fit
                    && let (Some(rss), Some((limit, _))) = (rss, limit)
                {
                    let headroom = limit.saturating_sub(rss) as f64;
                    let seconds = headroom / slope;
                    f.observe("time_to_limit", seconds, "seconds");
                    f.judge(&t.exhaustion_seconds, seconds, || {
                        format!(
                            "heap grows steadily at {}/s (fit {fit:.2}); the limit is reached in about {}",
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
        }
        f.finish("")
    }
}

/// Judges RSS against the live heap, when the heap is large enough for the ratio to mean something.
fn waste(f: &mut Findings, t: &MemoryThresholds, rss: Option<u64>, live: u64) {
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

/// The machine's physical memory, from `sysinfo(2)`: a sensible configured limit outside
/// Lambda and cgroups.
pub fn physical_memory_bytes() -> Option<u64> {
    nix::sys::sysinfo::sysinfo()
        .ok()
        .map(|info| info.ram_total())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alloc::AllocStats;
    use crate::snapshot::{CgroupMemory, HeapStats, LambdaEnv, MemoryStats};

    fn check(lambda: bool) -> MemoryCheck {
        MemoryCheck::new(
            Monitor::fixed(crate::Snapshot::empty()),
            MemoryThresholds::for_environment(lambda),
        )
    }

    fn with_rss(rss: u64) -> crate::Snapshot {
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

    fn heap(live: u64, slope: Option<f64>, fit: Option<f64>) -> HeapStats {
        HeapStats {
            counts: AllocStats {
                live_bytes: live,
                ..Default::default()
            },
            allocations_per_second: None,
            bytes_per_second: None,
            growth_bytes_per_second: slope,
            growth_fit: fit,
        }
    }

    #[test]
    fn steady_heap_growth_towards_the_limit_is_flagged() {
        let thresholds = MemoryThresholds::for_environment(false).with_limit(Some(1 << 30));
        let check = MemoryCheck::new(Monitor::fixed(crate::Snapshot::empty()), thresholds);
        let mut s = with_rss(512 << 20);
        s.alloc = Some(heap(400 << 20, Some(1.0 * 1024.0 * 1024.0), Some(0.95)));
        // 512 MiB of headroom at 1 MiB/s: 512 s, below the fail level.
        let out = check.evaluate(&s);
        assert_eq!(out.status, HealthStatus::Unhealthy, "{}", out.message);
        assert!(out.message.contains("grows steadily"));
        // A noisy trend is not a leak.
        s.alloc = Some(heap(400 << 20, Some(1.0 * 1024.0 * 1024.0), Some(0.3)));
        assert_eq!(check.evaluate(&s).status, HealthStatus::Healthy);
        // Slow growth: about 2 h of headroom.
        s.alloc = Some(heap(400 << 20, Some(70_000.0), Some(0.95)));
        assert_eq!(check.evaluate(&s).status, HealthStatus::Healthy);
    }

    #[test]
    fn waste_ratio_needs_a_large_enough_heap() {
        let thresholds = MemoryThresholds::for_environment(false).with_limit(Some(16 << 30));
        let check = MemoryCheck::new(Monitor::fixed(crate::Snapshot::empty()), thresholds);
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
        let thresholds = MemoryThresholds::for_environment(false).with_limit(Some(16 << 30));
        let check = MemoryCheck::new(Monitor::fixed(crate::Snapshot::empty()), thresholds);
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
        assert_eq!(out.status, HealthStatus::Unhealthy, "{}", out.message);
        assert!(out.message.contains("8.00 times the live heap"));
    }

    #[test]
    fn physical_memory_is_read() {
        assert!(physical_memory_bytes().unwrap() > 64 << 20);
    }
}
