//! Runtime stalls against their thresholds.

use lift_core::{CheckOutcome, HealthCheck};

use super::Findings;
use crate::monitor::Monitor;
use crate::threshold::Threshold;

/// Checks the p99 heartbeat lag of the tokio runtime, the way a long GC pause would be
/// checked in Go. Name: `runtime`.
///
/// Default thresholds on the p99 lag over the window: warn 50 ms, fail 500 ms. In Lambda the
/// heartbeat skips the gaps between invocations (see [`crate::InvocationBracket`]), so the
/// same levels apply. On a multi-thread runtime it also judges tokio's worker metrics: a
/// worker stuck in one poll is degraded, all workers stuck is unhealthy.
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
        let mut f = Findings::at(snapshot.taken_at);
        let blocked = snapshot
            .tokio
            .and_then(|t| Some((t.blocked_workers?, t.workers)));
        if let Some((blocked, workers)) = blocked {
            f.observe("blocked_workers", blocked as f64, "count");
            // One blocked worker slows the runtime; all of them blocked stop it.
            let threshold = Threshold::above(1.0, workers.max(1) as f64);
            f.judge(&threshold, blocked as f64, || {
                format!(
                    "{blocked} of {workers} tokio workers stuck in one poll since the last sample; move blocking work to spawn_blocking"
                )
            });
        }
        let Some(stall) = snapshot.stall else {
            if blocked.is_some() {
                return f.finish("");
            }
            return CheckOutcome::unknown(
                "no heartbeat measured yet; the monitor runs one unless its stall config is None",
            );
        };
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

    /// The heartbeat runs on a healthy worker and sees no lag; the worker metrics see
    /// the blocked one.
    #[test]
    fn judges_blocked_workers_the_heartbeat_misses() {
        let check = StallCheck::new(
            Monitor::fixed(crate::Snapshot::empty()),
            StallCheck::DEFAULT,
        );
        let mut s = crate::checks::testing::healthy_snapshot();
        s.stall = Some(StallStats {
            latest_seconds: 0.001,
            max_seconds: 0.002,
            p99_seconds: 0.001,
            samples: 100,
            suspensions: 0,
        });
        let tokio = |blocked| crate::snapshot::TokioStats {
            workers: 4,
            alive_tasks: 10,
            global_queue_depth: 0,
            blocked_workers: Some(blocked),
            busy_percent: Some(30.0),
        };
        s.tokio = Some(tokio(0));
        assert_eq!(check.evaluate(&s).status, HealthStatus::Healthy);
        s.tokio = Some(tokio(1));
        let out = check.evaluate(&s);
        assert_eq!(out.status, HealthStatus::Degraded, "{}", out.message);
        assert!(out.message.contains("1 of 4 tokio workers stuck"));
        s.tokio = Some(tokio(4));
        assert_eq!(check.evaluate(&s).status, HealthStatus::Unhealthy);
    }

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
