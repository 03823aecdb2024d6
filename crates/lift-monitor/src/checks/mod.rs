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
pub use memory::{HeapCheck, HeapThresholds, MemoryCheck, MemoryThresholds};
pub use network::{Endpoint, NetworkCheck};
pub use resources::{ResourceCheck, ResourceThresholds};
pub use stall::StallCheck;

use chrono::{DateTime, Utc};
use lift_core::{CheckOutcome, HealthStatus, Observation};

use crate::report::{CheckDetails, Verdict};
use crate::threshold::Threshold;

/// The parts of one check: each measured part has a status and a sentence; the outcome
/// takes the worst status and the sentences of the parts that have it.
///
/// A part judged by [`Findings::judge`] belongs to the observation of the judged value, so
/// that `application/health+json` gives every entry its own status and output; the
/// manager collects these details through [`details::report`].
#[derive(Debug)]
pub(crate) struct Findings {
    /// Status, sentence, and the index of the observation the part judges.
    parts: Vec<(HealthStatus, String, Option<usize>)>,
    observations: Vec<Observation>,
    observed_at: Option<DateTime<Utc>>,
    component_type: &'static str,
    /// The worst status a part may have: heuristics warn and never fail.
    cap: HealthStatus,
}

impl Default for Findings {
    fn default() -> Self {
        Findings {
            parts: Vec::new(),
            observations: Vec::new(),
            observed_at: None,
            component_type: "system",
            cap: HealthStatus::Unhealthy,
        }
    }
}

impl Findings {
    /// Findings about figures observed at `at` (a snapshot's time).
    pub(crate) fn at(at: DateTime<Utc>) -> Self {
        Findings {
            observed_at: Some(at),
            ..Findings::default()
        }
    }

    /// Caps every part's status at `cap`.
    pub(crate) fn cap_at(mut self, cap: HealthStatus) -> Self {
        self.cap = cap;
        self
    }

    /// The health+json `componentType`: `system` (the default), `component` or `datastore`.
    pub(crate) fn component_type(mut self, component_type: &'static str) -> Self {
        self.component_type = component_type;
        self
    }

    pub(crate) fn observe(&mut self, measurement: impl Into<String>, value: f64, unit: &str) {
        self.observations.push(Observation {
            measurement: measurement.into(),
            value,
            unit: unit.to_owned(),
        });
    }

    pub(crate) fn add(&mut self, status: HealthStatus, sentence: impl Into<String>) {
        self.parts
            .push((status.min(self.cap), sentence.into(), None));
    }

    /// Adds a part judged by `threshold`, describing the value with `describe`. The part
    /// belongs to the latest observation of exactly this value not judged yet.
    pub(crate) fn judge(
        &mut self,
        threshold: &Threshold,
        value: f64,
        describe: impl FnOnce() -> String,
    ) {
        let status = threshold.status(value).min(self.cap);
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
        let index = self
            .observations
            .iter()
            .rposition(|o| o.value.to_bits() == value.to_bits());
        let index = index.filter(|i| !self.parts.iter().any(|(_, _, p)| *p == Some(*i)));
        self.parts.push((status, sentence, index));
    }

    pub(crate) fn finish(self, empty_message: &str) -> CheckOutcome {
        let status = HealthStatus::aggregate(self.parts.iter().map(|(s, _, _)| *s));
        let message = if self.parts.is_empty() {
            empty_message.to_owned()
        } else {
            sentences(self.parts.iter(), status)
        };
        details::report(self.details(status, &message));
        let mut outcome = CheckOutcome::new(status, message);
        outcome.observations = self.observations;
        outcome
    }

    /// Resolves a verdict for every observation: its own part; else the worst part of
    /// the same instance (`measurement@instance`); else the worst part of the
    /// observations without an instance; else the check's.
    fn details(&self, status: HealthStatus, message: &str) -> CheckDetails {
        let instance = |i: usize| {
            self.observations[i]
                .measurement
                .split_once('@')
                .map(|(_, instance)| instance)
        };
        let verdict_of = |parts: Vec<&(HealthStatus, String, Option<usize>)>| -> Option<Verdict> {
            let worst = HealthStatus::aggregate(parts.iter().map(|(s, _, _)| *s));
            (!parts.is_empty()).then(|| Verdict::new(worst, sentences(parts.into_iter(), worst)))
        };
        let attached = |i: usize| self.parts.iter().filter(move |(_, _, p)| *p == Some(i));
        let observations = (0..self.observations.len())
            .map(|i| {
                if let Some(own) = verdict_of(attached(i).collect()) {
                    return own;
                }
                let same_group = self
                    .parts
                    .iter()
                    .filter(|(_, _, p)| p.is_some_and(|j| instance(j) == instance(i)))
                    .collect();
                verdict_of(same_group).unwrap_or_else(|| Verdict::new(status, message.to_owned()))
            })
            .collect();
        let unmeasured = verdict_of(self.parts.iter().filter(|(_, _, p)| p.is_none()).collect())
            .filter(|v| v.status != HealthStatus::Healthy);
        CheckDetails {
            observed_at: self.observed_at,
            component_type: Some(self.component_type.to_owned()),
            observations,
            unmeasured,
        }
    }
}

/// The sentences of the parts with `status`, or of every part when it is healthy.
fn sentences<'a>(
    parts: impl Iterator<Item = &'a (HealthStatus, String, Option<usize>)>,
    status: HealthStatus,
) -> String {
    parts
        .filter(|(s, _, _)| status == HealthStatus::Healthy || *s == status)
        .map(|(_, m, _)| m.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// How the checks of this crate hand their per-observation details to the
/// [`crate::HealthManager`] that runs them, alongside the `CheckOutcome` the
/// `lift_core::HealthCheck` trait returns.
pub(crate) mod details {
    use std::cell::RefCell;
    use std::future::Future;

    use lift_core::CheckOutcome;

    use crate::report::CheckDetails;

    tokio::task_local! {
        static DETAILS: RefCell<Option<CheckDetails>>;
    }

    /// Hands `details` to the manager running the current check; a no-op elsewhere.
    pub(crate) fn report(details: CheckDetails) {
        let _ = DETAILS.try_with(|slot| *slot.borrow_mut() = Some(details));
    }

    /// Runs a check, collecting the details it reported.
    pub(crate) async fn collect(
        check: impl Future<Output = CheckOutcome>,
    ) -> (CheckOutcome, Option<CheckDetails>) {
        DETAILS
            .scope(RefCell::new(None), async move {
                let outcome = check.await;
                let details = DETAILS.with(|slot| slot.borrow_mut().take());
                (outcome, details)
            })
            .await
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
