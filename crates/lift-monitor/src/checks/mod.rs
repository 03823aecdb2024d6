//! The health checks lift-monitor provides. Each implements [`lift_core::HealthCheck`].

mod cpu;
mod custom;
mod disk;
mod memory;
mod network;
mod resources;
mod stall;

pub use cpu::CpuCheck;
pub use custom::{AsyncFnCheck, FnCheck};
pub use disk::DiskCheck;
pub use memory::physical_memory_bytes;
pub use memory::{MemoryCheck, MemoryThresholds};
pub use network::{Endpoint, NetworkCheck};
pub use resources::{ResourceCheck, ResourceThresholds};
pub use stall::StallCheck;

use lift_core::{CheckOutcome, HealthStatus, Observation};

use crate::threshold::Threshold;

/// Whether this process runs in AWS Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set), which
/// selects the Lambda defaults of the thresholds.
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// The parts of one check: each measured part has a status and a sentence; the outcome
/// takes the worst status and the sentences of the parts that have it.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    parts: Vec<(HealthStatus, String)>,
    observations: Vec<Observation>,
}

impl Findings {
    pub(crate) fn observe(&mut self, measurement: impl Into<String>, value: f64, unit: &str) {
        self.observations.push(Observation {
            measurement: measurement.into(),
            value,
            unit: unit.to_owned(),
        });
    }

    pub(crate) fn add(&mut self, status: HealthStatus, sentence: impl Into<String>) {
        self.parts.push((status, sentence.into()));
    }

    /// Adds a part judged by `threshold`, describing the value with `describe`.
    pub(crate) fn judge(
        &mut self,
        threshold: &Threshold,
        value: f64,
        describe: impl FnOnce() -> String,
    ) {
        let status = threshold.status(value);
        let mut sentence = describe();
        match status {
            HealthStatus::Unhealthy => {
                sentence.push_str(&format!(" (fail level {})", trim(threshold.fail)))
            }
            HealthStatus::Degraded => {
                sentence.push_str(&format!(" (warn level {})", trim(threshold.warn)))
            }
            _ => {}
        }
        self.add(status, sentence);
    }

    pub(crate) fn finish(self, empty_message: &str) -> CheckOutcome {
        let status = HealthStatus::aggregate(self.parts.iter().map(|(s, _)| *s));
        let message = if self.parts.is_empty() {
            empty_message.to_owned()
        } else if status == HealthStatus::Healthy {
            self.parts
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            self.parts
                .iter()
                .filter(|(s, _)| *s == status)
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut outcome = CheckOutcome::new(status, message);
        outcome.observations = self.observations;
        outcome
    }
}

fn trim(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::snapshot::Snapshot;

    /// A snapshot as a healthy small service would have it, for the checks' tests.
    pub(crate) fn healthy_snapshot() -> Snapshot {
        let mut s = Snapshot::empty();
        s.sequence = 7;
        s.threads = Some(12);
        s
    }
}
