//! CPU use between samples against its thresholds.

use lift_core::{CheckOutcome, HealthCheck, HealthStatus};

use super::Findings;
use crate::monitor::Monitor;
use crate::threshold::Threshold;

/// Checks CPU use in percent of the available cores. Name: `cpu`.
///
/// Default thresholds: warn 85, fail 98. In Lambda, CPU is allotted in proportion to the
/// memory size, so a function pinned at its share is as short of CPU as a saturated host.
#[derive(Debug, Clone)]
pub struct CpuCheck {
    monitor: Monitor,
    threshold: Threshold,
}

impl CpuCheck {
    /// The default thresholds.
    pub const DEFAULT: Threshold = Threshold::above(85.0, 98.0);

    /// A check of `monitor`'s snapshots.
    pub fn new(monitor: Monitor, threshold: Threshold) -> Self {
        CpuCheck { monitor, threshold }
    }

    /// Judges a snapshot.
    pub fn evaluate(&self, snapshot: &crate::Snapshot) -> CheckOutcome {
        let mut f = Findings::at(snapshot.taken_at);
        if let Some(seconds) = snapshot
            .cpu
            .user_seconds
            .zip(snapshot.cpu.system_seconds)
            .map(|(u, s)| u + s)
        {
            f.observe("cpu_time", seconds, "seconds");
        }
        let Some(percent) = snapshot.cpu.percent_of_capacity() else {
            f.add(
                HealthStatus::Unknown,
                "cpu use needs a full CPU window (SamplerOptions::cpu_window, 1 s by default); none measured yet",
            );
            return f.finish("");
        };
        let cores = snapshot.cpu.cores.unwrap_or(1);
        let window = snapshot
            .cpu
            .window_seconds
            .map(|w| format!(" over {}", crate::units::format_seconds(w)))
            .unwrap_or_default();
        f.observe("utilization", percent, "percent");
        f.judge(&self.threshold, percent, || {
            format!("cpu at {percent:.1}% of {cores} cores{window}")
        });
        f.finish("")
    }
}

#[async_trait::async_trait]
impl HealthCheck for CpuCheck {
    fn name(&self) -> &str {
        "cpu"
    }

    async fn check(&self) -> CheckOutcome {
        self.evaluate(&self.monitor.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_percent_of_capacity() {
        let check = CpuCheck::new(Monitor::fixed(crate::Snapshot::empty()), CpuCheck::DEFAULT);
        let mut s = crate::checks::testing::healthy_snapshot();
        assert_eq!(check.evaluate(&s).status, HealthStatus::Unknown);
        s.cpu.cores = Some(2);
        s.cpu.percent = Some(100.0);
        let out = check.evaluate(&s);
        assert_eq!(out.status, HealthStatus::Healthy);
        assert!(out.message.contains("50.0% of 2 cores"));
        s.cpu.percent = Some(190.0);
        assert_eq!(check.evaluate(&s).status, HealthStatus::Degraded);
        s.cpu.percent = Some(199.0);
        assert_eq!(check.evaluate(&s).status, HealthStatus::Unhealthy);
    }
}
