//! The walkthrough's bookkeeping: numbering, timing, printing and recording steps.

use std::time::Instant;

use super::report::{DemoStep, StepStatus};
use crate::context::Context;

/// The steps run so far, and how to print them.
pub(super) struct Walkthrough<'a> {
    ctx: &'a Context,
    /// Whether the status words are coloured.
    color: bool,
    pub(super) steps: Vec<DemoStep>,
}

impl<'a> Walkthrough<'a> {
    pub(super) fn new(ctx: &'a Context, color: bool) -> Self {
        Walkthrough {
            ctx,
            color,
            steps: Vec::new(),
        }
    }

    /// Runs one step, prints its outcome and records it. Returns the step's value when it succeeded.
    pub(super) async fn step<T>(
        &mut self,
        name: &str,
        run: impl std::future::Future<Output = lift::Result<(T, String)>>,
    ) -> Option<T> {
        let number = self.steps.len() + 1;
        self.ctx.say(format!("\n[{number}] {name}"));
        let started = Instant::now();
        let result = run.await;
        let millis = started.elapsed().as_millis();
        let (status, detail, value) = match result {
            Ok((value, detail)) => (StepStatus::Ok, detail, Some(value)),
            Err(err) => (StepStatus::Failed, format!("{err} ({})", err.kind()), None),
        };
        for line in detail.lines() {
            self.ctx.say(format!("    {line}"));
        }
        self.ctx
            .say(format!("    -> {} in {millis} ms", self.paint(status)));
        self.steps.push(DemoStep {
            name: name.to_owned(),
            status,
            detail,
            millis,
        });
        value
    }

    /// Records a step that did not run, and why.
    pub(super) fn skip(&mut self, name: &str, why: String) {
        let number = self.steps.len() + 1;
        self.ctx.say(format!(
            "\n[{number}] {name}\n    {}: {why}",
            self.paint(StepStatus::Skipped)
        ));
        self.steps.push(DemoStep {
            name: name.to_owned(),
            status: StepStatus::Skipped,
            detail: why,
            millis: 0,
        });
    }

    /// The status word, in green, red or yellow when colour is on.
    fn paint(&self, status: StepStatus) -> String {
        paint(status, self.color)
    }
}

fn paint(status: StepStatus, color: bool) -> String {
    if !color {
        return status.as_str().to_owned();
    }
    let code = match status {
        StepStatus::Ok => "32",
        StepStatus::Failed => "31",
        StepStatus::Skipped => "33",
    };
    format!("\x1b[{code}m{}\x1b[0m", status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_when_asked() {
        assert_eq!(paint(StepStatus::Ok, false), "ok");
        assert_eq!(paint(StepStatus::Failed, true), "\x1b[31mfailed\x1b[0m");
    }
}
