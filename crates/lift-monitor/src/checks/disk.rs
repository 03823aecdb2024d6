//! Space on the sampled paths against its thresholds.

use lift_core::{CheckOutcome, HealthCheck, HealthStatus};

use super::Findings;
use crate::monitor::Monitor;
use crate::threshold::Threshold;
use crate::units::format_bytes;

/// Checks the space used on every path the sampler watches (`df`'s Use%). Name: `disk`.
///
/// Default thresholds: warn 80 %, fail 95 %, in Lambda too (its `/tmp` is 512 MB to 10 GB
/// of ephemeral storage that fills up across warm invocations).
///
/// Observations are named `utilization@PATH` and `available@PATH`.
#[derive(Debug, Clone)]
pub struct DiskCheck {
    monitor: Monitor,
    threshold: Threshold,
}

impl DiskCheck {
    /// The default thresholds, in percent used.
    pub const DEFAULT: Threshold = Threshold::above(80.0, 95.0);

    /// A check of `monitor`'s snapshots.
    pub fn new(monitor: Monitor, threshold: Threshold) -> Self {
        DiskCheck { monitor, threshold }
    }

    /// Judges a snapshot.
    pub fn evaluate(&self, snapshot: &crate::Snapshot) -> CheckOutcome {
        if snapshot.sequence == 0 {
            return CheckOutcome::unknown("no sample taken yet");
        }
        let mut f = Findings::at(snapshot.taken_at);
        for disk in &snapshot.disks {
            let path = &disk.path;
            match (disk.used_percent(), disk.available_bytes, disk.total_bytes) {
                (Some(used), Some(avail), Some(total)) => {
                    f.observe(format!("utilization@{path}"), used, "percent");
                    f.observe(format!("available@{path}"), avail as f64, "bytes");
                    f.judge(&self.threshold, used, || {
                        format!(
                            "{path}: {used:.1}% used, {} of {} available",
                            format_bytes(avail as f64),
                            format_bytes(total as f64)
                        )
                    });
                }
                _ => f.add(
                    HealthStatus::Unknown,
                    format!("{path}: cannot stat the file system"),
                ),
            }
        }
        // With no paths there are no parts, and no parts aggregate to unknown.
        f.finish("no disk paths configured")
    }
}

#[async_trait::async_trait]
impl HealthCheck for DiskCheck {
    fn name(&self) -> &str {
        "disk"
    }

    async fn check(&self) -> CheckOutcome {
        self.evaluate(&self.monitor.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::DiskStats;
    use std::sync::Arc;

    fn disk(path: &str, total: u64, free: u64, avail: u64) -> DiskStats {
        DiskStats {
            path: Arc::from(path),
            total_bytes: Some(total),
            free_bytes: Some(free),
            available_bytes: Some(avail),
        }
    }

    #[test]
    fn the_worst_path_decides() {
        let check = DiskCheck::new(Monitor::fixed(crate::Snapshot::empty()), DiskCheck::DEFAULT);
        let mut s = crate::checks::testing::healthy_snapshot();
        assert_eq!(check.evaluate(&s).status, HealthStatus::Unknown);
        s.disks = vec![disk("/srv", 1000, 500, 500), disk("/tmp", 1000, 100, 100)];
        let out = check.evaluate(&s);
        assert_eq!(out.status, HealthStatus::Degraded);
        assert!(
            out.message.starts_with("/tmp: 90.0% used"),
            "{}",
            out.message
        );
        assert_eq!(out.observations[0].measurement, "utilization@/srv");
        s.disks.push(DiskStats {
            path: Arc::from("/gone"),
            total_bytes: None,
            free_bytes: None,
            available_bytes: None,
        });
        s.disks[1] = disk("/tmp", 1000, 10, 10);
        assert_eq!(check.evaluate(&s).status, HealthStatus::Unhealthy);
    }
}
