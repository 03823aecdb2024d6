//! The document `lift demo --json` prints. A leaf: it knows nothing of the
//! walkthrough, so that the schema list can name it without a cycle.

use serde::Serialize;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StepStatus {
    /// The step ran and succeeded.
    Ok,
    /// The step ran and failed.
    Failed,
    /// The step did not run; `detail` says why.
    Skipped,
}

impl StepStatus {
    /// The word printed for people, the same as in JSON.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StepStatus::Ok => "ok",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }
    }
}

/// One step of the walkthrough, as `--json` prints it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct DemoStep {
    /// The step's name.
    pub(crate) name: String,
    /// `ok`, `failed` or `skipped`.
    pub(crate) status: StepStatus,
    /// What happened, with the figures that matter.
    pub(crate) detail: String,
    /// How long the step took, in milliseconds.
    pub(crate) millis: u128,
}

/// The document `lift demo --json` prints.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct DemoReport {
    /// Where the demo's files are (removed when `--remove` was given).
    pub(crate) directory: String,
    /// Whether every step that ran succeeded.
    pub(crate) ok: bool,
    /// The steps, in order.
    pub(crate) steps: Vec<DemoStep>,
}

impl DemoReport {
    /// A report over `steps`: ok when none failed.
    pub(crate) fn new(directory: String, steps: Vec<DemoStep>) -> Self {
        let ok = steps.iter().all(|s| s.status != StepStatus::Failed);
        DemoReport {
            directory,
            ok,
            steps,
        }
    }

    /// How many steps ended with `status`.
    pub(crate) fn count(&self, status: StepStatus) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(status: StepStatus) -> DemoStep {
        DemoStep {
            name: "x".to_owned(),
            status,
            detail: String::new(),
            millis: 1,
        }
    }

    #[test]
    fn a_skipped_step_does_not_fail_the_report_and_a_failed_one_does() {
        let report = DemoReport::new(
            "/d".to_owned(),
            vec![step(StepStatus::Ok), step(StepStatus::Skipped)],
        );
        assert!(report.ok);
        assert_eq!(report.count(StepStatus::Skipped), 1);
        let failed = DemoReport::new("/d".to_owned(), vec![step(StepStatus::Failed)]);
        assert!(!failed.ok);
    }

    #[test]
    fn statuses_serialize_as_the_words_people_see() {
        for status in [StepStatus::Ok, StepStatus::Failed, StepStatus::Skipped] {
            let json = serde_json::to_value(status).unwrap_or_default();
            assert_eq!(json, status.as_str());
        }
    }
}
