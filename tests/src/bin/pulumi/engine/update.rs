//! `up` and `preview`: the program's steps in order, then deletions and the originals of replacements.

use std::collections::BTreeSet;

use super::STACK_TYPE;
use super::run::{Outcome, Run};
use super::selection::{Selection, glob_match};
use super::step::{Step, default_provider_state, default_provider_step, meta};
use crate::project::{self, Program};
use crate::settings::ConfigEntry;
use crate::store::{ResourceState, StackState};
use std::collections::BTreeMap;

impl Run<'_> {
    pub(super) fn update(
        &mut self,
        state: &StackState,
        config: &BTreeMap<String, ConfigEntry>,
    ) -> Option<Outcome> {
        let stack_urn = project::urn(
            self.stack,
            &self.project.name,
            STACK_TYPE,
            &format!("{}-{}", self.project.name, self.stack),
        );
        let (program, steps) = match self.plan(state, config) {
            Ok(p) => p,
            Err(e) => {
                let msg = format!("{}: {}", self.project_file_name(), e.message);
                return Some(self.program_failure(state, &stack_urn, &msg));
            }
        };
        let stack_step = self.stack_step(
            state,
            &program.stack_urn,
            &state
                .stack_resource()
                .map(|r| r.outputs.clone())
                .unwrap_or_default(),
        );
        self.log
            .resource_pre(&meta(&stack_step, stack_step.op, false), self.preview);
        if self.preview {
            // A preview shows the stack's outputs at once and again at the end; an update only at the end.
            self.log
                .res_outputs(&meta(&stack_step, stack_step.op, true), self.preview);
        }
        self.count(stack_step.op);
        self.registrations(config, &program);
        for (_, message) in &program.output_errors {
            self.log.diagnostic("", "error", message);
            self.diagnostics.push((String::new(), message.clone()));
        }
        if stack_step.op == "create" {
            self.show("create", &stack_step, true);
        }
        // A slow mode pauses here, mid-update, with the lock held and the first events written.
        self.maybe_wait();
        if self.ctx.args.bool("refresh") {
            // `--refresh` reads every custom resource first. As in the engine's refresh-with-program
            // streams, these steps are shown but not counted in the summary.
            for r in state.resources.iter().filter(|r| r.custom) {
                let step = Step {
                    op: "refresh",
                    name: r.urn.rsplit("::").next().unwrap_or_default().to_owned(),
                    urn: r.urn.clone(),
                    ty: r.ty.clone(),
                    old: Some(r.clone()),
                    new: Some(r.clone()),
                    keys: Vec::new(),
                    diffs: Vec::new(),
                    detailed: None,
                };
                let result_op = if self.preview { "refresh" } else { "same" };
                self.log
                    .resource_pre(&meta(&step, "refresh", false), self.preview);
                self.log
                    .res_outputs(&meta(&step, result_op, true), self.preview);
            }
        }

        let selection = Selection::from(self.ctx);
        let links: Vec<(String, Vec<String>)> = program
            .resources
            .iter()
            .map(|d| {
                let mut l = d.dependencies.clone();
                l.push(d.parent.clone());
                (d.urn.clone(), l)
            })
            .collect();
        let chosen = selection.decide(&links);
        let continue_on_error = self.ctx.args.bool("continue-on-error");
        let mut result: Vec<ResourceState> = Vec::new();
        let mut replaced_old: Vec<Step> = Vec::new();
        let declared: BTreeSet<&str> = program.resources.iter().map(|d| d.urn.as_str()).collect();
        // The default providers whose steps were written.
        let mut providers: BTreeSet<String> = BTreeSet::new();
        // With --continue-on-error the engine goes on, but skips whatever depends on a failed resource.
        let mut broken: BTreeSet<String> = BTreeSet::new();
        for step in &steps {
            let links = step
                .new
                .as_ref()
                .map(|n| {
                    let mut l = n.dependencies.clone();
                    l.push(n.parent.clone());
                    l
                })
                .unwrap_or_default();
            if links.iter().any(|l| broken.contains(l)) {
                broken.insert(step.urn.clone());
                if let Some(old) = &step.old {
                    result.push(old.clone());
                }
                continue;
            }
            if !chosen.contains(&step.urn) || (self.failed && !continue_on_error) || self.cancelled
            {
                if let Some(old) = &step.old {
                    result.push(old.clone());
                }
                continue;
            }
            if !self.maybe_wait() {
                if let Some(old) = &step.old {
                    result.push(old.clone());
                }
                continue;
            }
            if self.default_providers {
                self.default_provider_for(step, state, &mut providers);
            }
            if self.apply(step) {
                if let Some(new) = &step.new {
                    result.push(new.clone());
                }
                if step.op == "replace" {
                    replaced_old.push(step.clone());
                }
            } else {
                broken.insert(step.urn.clone());
                if let Some(old) = &step.old {
                    result.push(old.clone());
                }
            }
        }
        for (name, _) in &program.output_errors {
            // The YAML host reports each output it could not register, and the update fails without
            // an `update failed` diagnostic;
            // as the program did not finish, nothing is deleted.
            let message = format!("Error registering output [{name}]: no diagnostics");
            self.log.diagnostic("", "error", &message);
            self.diagnostics.push((String::new(), message));
            self.failed = true;
            self.program_failed = true;
        }
        // Deletions of resources no longer declared, in reverse order, then the originals of replacements.
        let mut leftovers: Vec<ResourceState> = Vec::new();
        for old in state.resources.iter().rev() {
            if old.ty == STACK_TYPE || declared.contains(old.urn.as_str()) {
                continue;
            }
            let targeted = !selection.restricted()
                || (selection.targets.iter().any(|p| glob_match(p, &old.urn))
                    && !selection.excludes.iter().any(|p| glob_match(p, &old.urn)));
            if !targeted
                || (self.failed && !continue_on_error)
                || self.program_failed
                || self.cancelled
            {
                leftovers.push(old.clone());
                continue;
            }
            let step = Step {
                op: "delete",
                name: old.urn.rsplit("::").next().unwrap_or_default().to_owned(),
                urn: old.urn.clone(),
                ty: old.ty.clone(),
                old: Some(old.clone()),
                new: None,
                keys: Vec::new(),
                diffs: Vec::new(),
                detailed: None,
            };
            if old.protect {
                self.protected(&step);
                leftovers.push(old.clone());
                continue;
            }
            if !self.apply(&step) {
                leftovers.push(old.clone());
            }
        }
        for step in replaced_old {
            let mut original = step.clone();
            original.new = None;
            self.log
                .resource_pre(&meta(&original, "delete-replaced", false), self.preview);
            self.log
                .res_outputs(&meta(&original, "delete-replaced", true), self.preview);
        }
        let mut outputs = serde_json::Map::new();
        if self.failed && !self.cancelled {
            // A failed update still finishes the stack resource, with the outputs it had.
            self.log
                .res_outputs(&meta(&stack_step, stack_step.op, true), self.preview);
        } else if !self.cancelled {
            outputs = program.outputs.clone();
            let mut final_stack = stack_step.clone();
            if let Some(n) = final_stack.new.as_mut() {
                n.outputs = outputs.clone();
            }
            self.log
                .res_outputs(&meta(&final_stack, final_stack.op, true), self.preview);
        }
        let mut resources = Vec::new();
        let mut stack_res = stack_step.new.clone()?;
        stack_res.outputs = if self.failed || self.cancelled {
            state
                .stack_resource()
                .map(|r| r.outputs.clone())
                .unwrap_or_default()
        } else {
            outputs.clone()
        };
        resources.push(stack_res);
        resources.extend(result);
        leftovers.reverse();
        resources.extend(leftovers);
        Some((resources, outputs))
    }

    /// The YAML language host's debug diagnostics as it registers the config and the resources: the
    /// project's declared keys as written, then each stack key by its short name, the declared first.
    fn registrations(&mut self, config: &BTreeMap<String, ConfigEntry>, program: &Program) {
        if self.project.doc.get("runtime").and_then(|r| r.as_str()) != Some("yaml") {
            return;
        }
        let project = self.project.name.as_str();
        let declared = self.project.declared_config_keys();
        let full = |k: &str| {
            if k.contains(':') {
                k.to_owned()
            } else {
                format!("{project}:{k}")
            }
        };
        let short = |k: &str| match k.split_once(':') {
            Some((ns, rest)) if ns == project => rest.to_owned(),
            _ => k.to_owned(),
        };
        let mut names: Vec<String> = declared.clone();
        let (mut first, mut rest): (Vec<&String>, Vec<&String>) = config
            .keys()
            .partition(|k| declared.iter().any(|d| full(d) == **k));
        first.append(&mut rest);
        names.extend(first.into_iter().map(|k| short(k)));
        for name in names {
            self.log
                .diagnostic("", "debug", &format!("Registering config [{name}]"));
        }
        for resource in &program.resources {
            self.log.diagnostic(
                "",
                "debug",
                &format!("Registering resource [{}]", resource.name),
            );
        }
    }

    /// Writes the step of the default provider a resource uses, the first time one needs it: `create`
    /// when no resource in the state used it yet, else `same`.
    fn default_provider_for(
        &mut self,
        step: &Step,
        state: &StackState,
        done: &mut BTreeSet<String>,
    ) {
        let Some(reference) = step.new.as_ref().map(|n| n.provider.as_str()) else {
            return;
        };
        let Some(provider) = default_provider_state(reference) else {
            return;
        };
        if !done.insert(provider.urn.clone()) {
            return;
        }
        let known = state.resources.iter().any(|r| r.provider == reference);
        let op = if known { "same" } else { "create" };
        self.internal_step(&default_provider_step(&provider, op));
    }
}
