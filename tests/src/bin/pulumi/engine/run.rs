//! One running operation: its event log, its counts and diagnostics, the slow-mode pause, and the
//! application of one step.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::Value;

use super::screen::{Screen, past, present, symbol};
use super::step::{Step, blinded, is_internal_urn, meta, step_json};
use crate::context::Ctx;
use crate::events::EventLog;
use crate::faults::Slow;
use crate::interrupt::{Interrupts, Woken};
use crate::project::Project;
use crate::store::{self, ResourceState, StackState};

pub(super) struct Run<'a> {
    pub(super) ctx: &'a Ctx,
    pub(super) project: &'a Project,
    pub(super) stack: &'a str,
    pub(super) preview: bool,
    pub(super) log: EventLog,
    pub(super) screen: Screen,
    pub(super) changes: BTreeMap<String, i64>,
    pub(super) diagnostics: Vec<(String, String)>,
    pub(super) failed: bool,
    /// Whether the engine's default-provider steps are written (unless `FAKE_PULUMI_DEFAULT_PROVIDERS=0`).
    pub(super) default_providers: bool,
    /// The program reported its own failure (a YAML evaluation error): pulumi adds no `update failed`.
    pub(super) program_failed: bool,
    pub(super) cancelled: bool,
    pub(super) interrupts: Option<Interrupts>,
    pub(super) slow: Option<Slow>,
    pub(super) waited: bool,
    pub(super) lock: &'a store::Lock,
    pub(super) steps_json: Vec<Value>,
}

/// The result of a successful plan: the new resource list and the stack outputs.
pub(super) type Outcome = (Vec<ResourceState>, serde_json::Map<String, Value>);

impl Run<'_> {
    pub(super) fn count(&mut self, op: &str) {
        *self.changes.entry(op.to_owned()).or_insert(0) += 1;
    }

    /// Pauses once, mid-operation, when a slow mode asks for it. Returns false when cancelled.
    pub(super) fn maybe_wait(&mut self) -> bool {
        if self.waited || self.cancelled {
            return !self.cancelled;
        }
        self.waited = true;
        let timeout = self.ctx.faults.slow_timeout;
        match (self.slow, &self.interrupts) {
            (Some(Slow::WaitSigint), Some(ints)) => {
                let lock = self.lock;
                match ints.wait(timeout, &|| lock.still_held()) {
                    Woken::Interrupted => {
                        let mut out = std::io::stdout().lock();
                        let _ = write!(
                            out,
                            "^C received; cancelling. If you would like to terminate immediately, press ^C again.\nNote that terminating immediately may lead to orphaned resources and other inconsistencies.\n"
                        );
                        let _ = out.flush();
                        self.cancelled = true;
                    }
                    Woken::Cancelled => self.cancelled = true,
                    Woken::TimedOut => {}
                }
            }
            (Some(Slow::IgnoreSigint), _) => std::thread::sleep(timeout),
            _ => {}
        }
        !self.cancelled
    }

    pub(super) fn fails(&self, step: &Step) -> bool {
        self.ctx
            .faults
            .fail_resources
            .iter()
            .any(|f| *f == step.name || *f == step.urn)
    }

    pub(super) fn show(&self, op: &str, step: &Step, done: bool) {
        let ty = step.ty.as_str();
        let text = if self.preview {
            format!(" {}  {ty} {} {op}", symbol(op), step.name)
        } else if done {
            format!(" {}  {ty} {} {}", symbol(op), step.name, past(op))
        } else {
            format!(" {}  {ty} {} {}", symbol(op), step.name, present(op))
        };
        if done || !self.preview {
            self.screen.line(text.trim_end());
        }
        if done && self.ctx.args.bool("diff") {
            self.show_diff(step);
        }
    }

    /// `--diff`: one line per changed input, secrets blinded.
    pub(super) fn show_diff(&self, step: &Step) {
        let old = step
            .old
            .as_ref()
            .map(|r| blinded(&r.inputs))
            .unwrap_or_default();
        let new = step
            .new
            .as_ref()
            .map(|r| blinded(&r.inputs))
            .unwrap_or_default();
        for k in &step.diffs {
            let line = match (old.get(k), new.get(k)) {
                (Some(a), Some(b)) => format!("      ~ {k}: {a} => {b}"),
                (None, Some(b)) => format!("      + {k}: {b}"),
                (Some(a), None) => format!("      - {k}: {a}"),
                (None, None) => continue,
            };
            self.screen.line(&line);
        }
    }

    /// Starts a single-operation step: its `resourcePreEvent`, or its failure when
    /// `FAKE_PULUMI_FAIL_RESOURCE` names it. Returns false if it failed.
    pub(super) fn start(&mut self, step: &Step) -> bool {
        if !is_internal_urn(&step.urn) {
            self.steps_json.push(step_json(step));
            self.show(step.op, step, false);
        }
        self.log
            .resource_pre(&meta(step, step.op, false), self.preview);
        if self.fails(step) && !self.preview {
            self.fail_step(step, step.op);
            return false;
        }
        true
    }

    /// Finishes a step [`start`](Self::start)ed: its `resOutputsEvent`, its count and its line.
    pub(super) fn complete(&mut self, step: &Step) {
        self.log
            .res_outputs(&meta(step, step.op, true), self.preview);
        if !is_internal_urn(&step.urn) {
            self.count(step.op);
            self.show(step.op, step, true);
        }
    }

    /// The engine's own step for a default provider, before the first resource that uses it: written
    /// to the event log, neither counted nor shown.
    pub(super) fn internal_step(&mut self, step: &Step) {
        let result = if step.op == "refresh" {
            "same"
        } else {
            step.op
        };
        self.log
            .resource_pre(&meta(step, step.op, false), self.preview);
        self.log
            .res_outputs(&meta(step, result, true), self.preview);
    }

    /// The injected provider failure of a step.
    fn fail_step(&mut self, step: &Step, op: &str) {
        let msg = format!(
            "{} {} failed: fake provider error injected by FAKE_PULUMI_FAIL_RESOURCE",
            step.ty, step.name
        );
        self.log.diagnostic(&step.urn, "error", &msg);
        self.log.res_op_failed(&meta(step, op, false));
        self.diagnostics.push((step.urn.clone(), msg));
        self.failed = true;
        self.show(&format!("{} failed", present(step.op)), step, true);
    }

    /// Runs one step's events. Returns false if the step failed.
    pub(super) fn apply(&mut self, step: &Step) -> bool {
        let ops: Vec<&str> = match step.op {
            "replace" => vec!["create-replacement", "replace"],
            other => vec![other],
        };
        let planning = self.preview;
        self.steps_json.push(step_json(step));
        if step.op != "same" && step.op != "refresh" {
            self.show(step.op, step, false);
        }
        for (i, op) in ops.iter().enumerate() {
            self.log.resource_pre(&meta(step, op, false), planning);
            if i == 0 && self.fails(step) && step.op != "same" && !self.preview {
                self.fail_step(step, op);
                return false;
            }
            let out_op = match step.op {
                "refresh" if step.diffs.is_empty() => "same",
                "refresh" => "update",
                _ => op,
            };
            self.log.res_outputs(&meta(step, out_op, true), planning);
        }
        self.count(match step.op {
            "refresh" if step.diffs.is_empty() => "same",
            "refresh" => "update",
            other => other,
        });
        if step.op != "same" {
            self.show(step.op, step, true);
        }
        true
    }

    /// A program that fails before it registers the stack resource (a compilation error).
    pub(super) fn compile_failure(&mut self, stack_urn: &str, message: &str) {
        self.log.diagnostic(stack_urn, "error", message);
        self.diagnostics
            .push((stack_urn.to_owned(), message.to_owned()));
        self.failed = true;
    }

    /// A program that fails after registering the stack resource (a runtime error). The stack
    /// resource is in the state afterwards, as with the real engine.
    pub(super) fn program_failure(
        &mut self,
        state: &StackState,
        stack_urn: &str,
        message: &str,
    ) -> Outcome {
        let outputs = state
            .stack_resource()
            .map(|r| r.outputs.clone())
            .unwrap_or_default();
        let step = self.stack_step(state, stack_urn, &outputs);
        self.log
            .resource_pre(&meta(&step, step.op, false), self.preview);
        self.log
            .res_outputs(&meta(&step, step.op, true), self.preview);
        self.count(step.op);
        self.log.diagnostic(stack_urn, "error", message);
        self.diagnostics
            .push((stack_urn.to_owned(), message.to_owned()));
        self.failed = true;
        let mut resources = state.resources.clone();
        if step.old.is_none() {
            if let Some(new) = step.new {
                resources.insert(0, new);
            }
        }
        (resources, outputs)
    }

    pub(super) fn project_file_name(&self) -> String {
        ["Pulumi.yaml", "Pulumi.yml", "Pulumi.json"]
            .iter()
            .map(|f| self.project.dir.join(f))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "Pulumi.yaml".to_owned())
    }

    pub(super) fn protected(&mut self, step: &Step) {
        let msg = format!(
            "unable to delete resource \"{}\"\nas it is currently marked for protection. To unprotect the resource, remove the `protect` flag from the resource in your Pulumi program and run `pulumi up`, or use the command:\n`pulumi state unprotect '{}'`",
            step.urn, step.urn
        );
        self.log
            .resource_pre(&meta(step, "delete", false), self.preview);
        self.log.diagnostic(&step.urn, "error", &msg);
        self.log.res_op_failed(&meta(step, "delete", false));
        self.diagnostics.push((step.urn.clone(), msg));
        self.failed = true;
    }

    /// Ends the operation's diagnostics: a cancelled run gets `update canceled`, a failed one
    /// `update failed` (or its refresh/destroy/preview form) unless its program reported the failure
    /// itself. Returns the summary's result.
    pub(super) fn finish(&mut self, op: super::operation::Operation) -> &'static str {
        if self.cancelled {
            self.log.diagnostic("", "error", "update canceled");
            self.diagnostics
                .push((String::new(), "update canceled".to_owned()));
            self.failed = true;
        } else if self.failed && !self.program_failed {
            let what = match (op, self.preview) {
                (_, true) => "preview failed",
                (super::operation::Operation::Refresh, _) => "refresh failed",
                (super::operation::Operation::Destroy, _) => "destroy failed",
                _ => "update failed",
            };
            self.log.diagnostic("", "error", what);
            self.diagnostics.push((String::new(), what.to_owned()));
        }
        if self.failed { "failed" } else { "succeeded" }
    }
}
