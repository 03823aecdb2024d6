//! Failure injection, so that users can test how their workflows handle a failed rotation.

use std::sync::{Arc, Mutex, PoisonError};

use lift_core::SecretName;

use crate::generate::unit_interval;
use crate::rotation_state::RotationStep;

/// When a planned fault fires.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum FaultTrigger {
    /// Every time the step runs.
    Always,
    /// The next `n` times the step runs, then never.
    Times(u32),
    /// Each time with this probability, 0.0 to 1.0, drawn from the CSPRNG.
    Probability(f64),
}

/// One planned fault: fail `step` (of `secret`, or of every secret) with `message`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    /// The step to fail.
    pub step: RotationStep,
    /// When to fail it.
    pub trigger: FaultTrigger,
    /// The error message to report (never a value).
    pub message: String,
    /// Only this secret, or every secret when `None`.
    pub secret: Option<SecretName>,
}

impl FaultPlan {
    /// Fails `step` according to `trigger`, for every secret.
    pub fn new(step: RotationStep, trigger: FaultTrigger, message: impl Into<String>) -> Self {
        FaultPlan {
            step,
            trigger,
            message: message.into(),
            secret: None,
        }
    }

    /// Restricts the plan to one secret.
    #[must_use]
    pub fn for_secret(mut self, name: SecretName) -> Self {
        self.secret = Some(name);
        self
    }
}

/// The planned faults of a rotation engine. Clones share the plans.
///
/// Injected failures behave like real ones (the step fails, policy decides
/// what stays), and rotation history marks them as injected.
#[derive(Debug, Clone, Default)]
pub struct FaultInjector {
    plans: Arc<Mutex<Vec<FaultPlan>>>,
}

impl FaultInjector {
    /// Adds a plan.
    pub fn inject(&self, plan: FaultPlan) {
        self.plans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(plan);
    }

    /// Removes every plan.
    pub fn clear(&self) {
        self.plans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The message of the fault that fires now for `step` of `name`, if any.
    pub(crate) fn fire(&self, name: &SecretName, step: RotationStep) -> Option<String> {
        let mut plans = self.plans.lock().unwrap_or_else(PoisonError::into_inner);
        let mut fired = None;
        for plan in plans.iter_mut() {
            if plan.step != step || plan.secret.as_ref().is_some_and(|s| s != name) {
                continue;
            }
            let fires = match &mut plan.trigger {
                FaultTrigger::Always => true,
                FaultTrigger::Times(0) => false,
                FaultTrigger::Times(n) => {
                    *n -= 1;
                    true
                }
                // Without randomness, a probabilistic fault does not fire.
                FaultTrigger::Probability(p) => unit_interval().is_ok_and(|x| x < *p),
            };
            if fires {
                fired = Some(plan.message.clone());
                break;
            }
        }
        plans.retain(|p| p.trigger != FaultTrigger::Times(0));
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_run_out_and_probabilities_hold() {
        let faults = FaultInjector::default();
        let name: SecretName = "a".parse().unwrap();
        faults.inject(FaultPlan::new(
            RotationStep::SetSecret,
            FaultTrigger::Times(2),
            "boom",
        ));
        assert_eq!(faults.fire(&name, RotationStep::TestSecret), None);
        assert_eq!(
            faults.fire(&name, RotationStep::SetSecret).as_deref(),
            Some("boom")
        );
        assert!(faults.fire(&name, RotationStep::SetSecret).is_some());
        assert!(faults.fire(&name, RotationStep::SetSecret).is_none());
        faults.inject(FaultPlan::new(
            RotationStep::TestSecret,
            FaultTrigger::Probability(0.25),
            "flaky",
        ));
        let fired = (0..4000)
            .filter(|_| faults.fire(&name, RotationStep::TestSecret).is_some())
            .count();
        assert!((800..1200).contains(&fired), "{fired} of 4000 at p=0.25");
        faults.clear();
        let other: SecretName = "b".parse().unwrap();
        faults.inject(
            FaultPlan::new(RotationStep::CreateSecret, FaultTrigger::Always, "x")
                .for_secret(other.clone()),
        );
        assert!(faults.fire(&name, RotationStep::CreateSecret).is_none());
        assert!(faults.fire(&other, RotationStep::CreateSecret).is_some());
    }
}
