//! Runtime stalls against their thresholds.

use lift_core::{CheckOutcome, HealthCheck};

use super::Findings;
use crate::monitor::Monitor;
use crate::threshold::Threshold;

/// Checks the p99 heartbeat lag of the tokio runtime, the way a long GC pause would be
/// checked in Go. Name: `runtime`.
///
/// Default thresholds on the p99 lag over the window: warn 50 ms, fail 500 ms. In Lambda the
/// heartbeat skips freeze gaps between invocations (see [`crate::StallConfig`]), so the
/// same levels apply.
#[derive(Debug, Clone)]
pub struct StallCheck {
    monitor: Monitor,
    threshold: Threshold,
}

impl StallCheck {
    /// The default thresholds, in seconds.
    pub const DEFAULT: Threshold = Threshold::above(0.05, 0.5);

    /// A check of `monitor`'s snapshots.
    pub fn new(monitor: Monitor, threshold: Threshold) -> Self {
        StallCheck { monitor, threshold }
    }

    /// Judges a snapshot.
    pub fn evaluate(&self, snapshot: &crate::Snapshot) -> CheckOutcome {
        let Some(stall) = snapshot.stall else {
            return CheckOutcome::unknown(
                "no heartbeat measured yet; the monitor runs one unless its stall config is None",
            );
        };
        let mut f = Findings::at(snapshot.taken_at);
        f.observe("stall_p99", stall.p99_seconds, "seconds");
        f.observe("stall_max", stall.max_seconds, "seconds");
        f.observe("stall_latest", stall.latest_seconds, "seconds");
        f.judge(&self.threshold, stall.p99_seconds, || {
            let mut s = format!(
                "scheduler lag p99 {}, max {} over {} heartbeats",
                crate::units::format_seconds(stall.p99_seconds),
                crate::units::format_seconds(stall.max_seconds),
                stall.samples
            );
            if self.threshold.status(stall.p99_seconds) > lift_core::HealthStatus::Healthy {
                s.push_str(", move blocking work to spawn_blocking");
            }
            s
        });
        f.finish("")
    }
}

#[async_trait::async_trait]
impl HealthCheck for StallCheck {
    fn name(&self) -> &str {
        "runtime"
    }

    async fn check(&self) -> CheckOutcome {
        self.evaluate(&self.monitor.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::StallStats;
    use lift_core::HealthStatus;

    #[test]
    fn judges_p99_lag() {
        let check = StallCheck::new(
            Monitor::fixed(crate::Snapshot::empty()),
            StallCheck::DEFAULT,
        );
        let mut s = crate::checks::testing::healthy_snapshot();
        assert_eq!(check.evaluate(&s).status, HealthStatus::Unknown);
        let stats = StallStats {
            latest_seconds: 0.001,
            max_seconds: 0.004,
            p99_seconds: 0.002,
            samples: 100,
            suspensions: 0,
        };
        s.stall = Some(stats);
        assert_eq!(check.evaluate(&s).status, HealthStatus::Healthy);
        s.stall = Some(StallStats {
            p99_seconds: 0.2,
            max_seconds: 0.3,
            ..stats
        });
        let out = check.evaluate(&s);
        assert_eq!(out.status, HealthStatus::Degraded);
        assert!(out.message.contains("spawn_blocking"));
        s.stall = Some(StallStats {
            p99_seconds: 0.6,
            max_seconds: 0.9,
            ..stats
        });
        assert_eq!(check.evaluate(&s).status, HealthStatus::Unhealthy);
    }
}
