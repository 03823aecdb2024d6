//! Threads, tokio tasks and file descriptors against their thresholds.

use lift_core::{CheckOutcome, HealthCheck, HealthStatus};

use super::Findings;
use crate::monitor::Monitor;
use crate::threshold::Threshold;

/// The thresholds of [`ResourceCheck`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct ResourceThresholds {
    /// OS threads. Lambda: warn 512, fail 900 (Lambda allows 1,024 processes and threads).
    /// Elsewhere: warn 1,000, fail 4,000.
    pub threads: Threshold,
    /// Alive tokio tasks: warn 10,000, fail 100,000.
    pub tasks: Threshold,
    /// Tasks waiting in tokio's global queue, a sign the workers cannot keep up: warn 1,000, fail 10,000.
    pub global_queue_depth: Threshold,
    /// Open descriptors in percent of the soft `RLIMIT_NOFILE`: warn 80, fail 95.
    pub fds_percent: Threshold,
}

impl ResourceThresholds {
    /// The defaults for Lambda (`lambda`) or elsewhere.
    pub fn for_environment(lambda: bool) -> Self {
        ResourceThresholds {
            threads: if lambda {
                Threshold::above(512.0, 900.0)
            } else {
                Threshold::above(1000.0, 4000.0)
            },
            tasks: Threshold::above(10_000.0, 100_000.0),
            global_queue_depth: Threshold::above(1000.0, 10_000.0),
            fds_percent: Threshold::above(80.0, 95.0),
        }
    }
}

impl Default for ResourceThresholds {
    fn default() -> Self {
        Self::for_environment(crate::snapshot::in_lambda())
    }
}

/// Checks threads, tokio tasks and open descriptors. Name: `resources`.
#[derive(Debug, Clone)]
pub struct ResourceCheck {
    monitor: Monitor,
    thresholds: ResourceThresholds,
}

impl ResourceCheck {
    /// A check of `monitor`'s snapshots with `thresholds`.
    pub fn new(monitor: Monitor, thresholds: ResourceThresholds) -> Self {
        ResourceCheck {
            monitor,
            thresholds,
        }
    }

    /// Judges a snapshot.
    pub fn evaluate(&self, snapshot: &crate::Snapshot) -> CheckOutcome {
        let t = &self.thresholds;
        let mut f = Findings::at(snapshot.taken_at);
        if snapshot.sequence == 0 {
            return CheckOutcome::unknown("no sample taken yet");
        }
        match snapshot.threads {
            Some(n) => {
                f.observe("threads", n as f64, "count");
                f.judge(&t.threads, n as f64, || format!("{n} threads"));
            }
            None => f.add(HealthStatus::Unknown, "thread count unavailable"),
        }
        if let Some(tokio) = snapshot.tokio {
            f.observe("tasks", tokio.alive_tasks as f64, "count");
            f.observe(
                "global_queue_depth",
                tokio.global_queue_depth as f64,
                "count",
            );
            f.judge(&t.tasks, tokio.alive_tasks as f64, || {
                format!("{} tokio tasks", tokio.alive_tasks)
            });
            f.judge(
                &t.global_queue_depth,
                tokio.global_queue_depth as f64,
                || format!("{} tasks queued", tokio.global_queue_depth),
            );
        }
        match (snapshot.fds.open, snapshot.fds.soft_limit) {
            (Some(open), Some(limit)) if limit > 0 => {
                let percent = open as f64 * 100.0 / limit as f64;
                f.observe("open_fds", open as f64, "count");
                f.observe("fd_limit", limit as f64, "count");
                f.observe("fds_used", percent, "percent");
                f.judge(&t.fds_percent, percent, || {
                    let mut s = format!("{open} of {limit} file descriptors open");
                    if t.fds_percent.status(percent) > HealthStatus::Healthy {
                        s.push_str(", close leaked descriptors or raise the limit (ulimit -n)");
                    }
                    s
                });
            }
            (Some(open), None) if snapshot.fds.unlimited => {
                f.observe("open_fds", open as f64, "count");
                f.add(
                    HealthStatus::Healthy,
                    format!("{open} file descriptors open, no limit"),
                );
            }
            _ => f.add(HealthStatus::Unknown, "open file descriptors unavailable"),
        }
        f.finish("no resource figures")
    }
}

#[async_trait::async_trait]
impl HealthCheck for ResourceCheck {
    fn name(&self) -> &str {
        "resources"
    }

    async fn check(&self) -> CheckOutcome {
        self.evaluate(&self.monitor.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::healthy_snapshot;
    use crate::snapshot::{FdStats, TokioStats};

    fn check() -> ResourceCheck {
        ResourceCheck::new(
            Monitor::fixed(crate::Snapshot::empty()),
            ResourceThresholds::for_environment(false),
        )
    }

    #[test]
    fn judges_fds_against_the_soft_limit() {
        let mut s = healthy_snapshot();
        s.fds = FdStats {
            open: Some(100),
            soft_limit: Some(1024),
            hard_limit: Some(4096),
            unlimited: false,
        };
        assert_eq!(check().evaluate(&s).status, HealthStatus::Healthy);
        s.fds.open = Some(900);
        let out = check().evaluate(&s);
        assert_eq!(out.status, HealthStatus::Degraded);
        assert!(out.message.contains("900 of 1024"), "{}", out.message);
        s.fds.open = Some(1000);
        assert_eq!(check().evaluate(&s).status, HealthStatus::Unhealthy);
    }

    #[test]
    fn lambda_thread_limits_are_tighter() {
        let mut s = healthy_snapshot();
        s.fds = FdStats {
            open: Some(10),
            soft_limit: Some(1024),
            hard_limit: None,
            unlimited: false,
        };
        s.threads = Some(600);
        assert_eq!(check().evaluate(&s).status, HealthStatus::Healthy);
        let lambda = ResourceCheck::new(
            Monitor::fixed(s.clone()),
            ResourceThresholds::for_environment(true),
        );
        assert_eq!(lambda.evaluate(&s).status, HealthStatus::Degraded);
    }

    #[test]
    fn missing_figures_are_unknown_not_healthy() {
        let s = healthy_snapshot();
        assert_eq!(check().evaluate(&s).status, HealthStatus::Unknown);
        assert_eq!(
            check().evaluate(&crate::Snapshot::empty()).status,
            HealthStatus::Unknown
        );
    }

    #[test]
    fn queued_tasks_degrade() {
        let mut s = healthy_snapshot();
        s.fds = FdStats {
            open: Some(10),
            soft_limit: Some(1024),
            hard_limit: None,
            unlimited: false,
        };
        s.tokio = Some(TokioStats {
            workers: 2,
            alive_tasks: 50,
            global_queue_depth: 5000,
            blocked_workers: Some(0),
            busy_percent: Some(10.0),
        });
        let out = check().evaluate(&s);
        assert_eq!(out.status, HealthStatus::Degraded);
        assert!(out.message.contains("5000 tasks queued"));
    }
}
