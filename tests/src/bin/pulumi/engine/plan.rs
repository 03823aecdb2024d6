//! Planning `preview`/`up`: evaluating the program and diffing it against the state.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::STACK_TYPE;
use super::run::Run;
use super::selection::glob_match;
use super::step::{Step, default_provider};
use crate::clock;
use crate::error::CliError;
use crate::events::PropertyDiff;
use crate::project::{self, DeclaredResource, Program};
use crate::settings::ConfigEntry;
use crate::store::{ResourceState, StackState};

impl Run<'_> {
    pub(super) fn stack_step(
        &self,
        state: &StackState,
        stack_urn: &str,
        outputs: &serde_json::Map<String, Value>,
    ) -> Step {
        let old = state.stack_resource().cloned();
        let now = clock::format_millis(clock::now_millis());
        let new = ResourceState {
            urn: stack_urn.to_owned(),
            ty: STACK_TYPE.to_owned(),
            custom: false,
            id: String::new(),
            parent: String::new(),
            inputs: serde_json::Map::new(),
            outputs: outputs.clone(),
            provider: String::new(),
            protect: false,
            dependencies: Vec::new(),
            created: old
                .as_ref()
                .map(|o| o.created.clone())
                .unwrap_or_else(|| now.clone()),
            modified: now,
        };
        Step {
            op: if old.is_some() { "same" } else { "create" },
            name: format!("{}-{}", self.project.name, self.stack),
            urn: stack_urn.to_owned(),
            ty: STACK_TYPE.to_owned(),
            old,
            new: Some(new),
            keys: Vec::new(),
            diffs: Vec::new(),
            detailed: None,
        }
    }

    /// Plans `preview`/`up` steps, iterating until replacements (which change IDs) settle.
    pub(super) fn plan(
        &self,
        state: &StackState,
        config: &BTreeMap<String, ConfigEntry>,
    ) -> Result<(Program, Vec<Step>), CliError> {
        let ids: BTreeMap<String, String> = state
            .resources
            .iter()
            .map(|r| (r.urn.clone(), r.id.clone()))
            .collect();
        let forced: Vec<String> = self.ctx.args.values("replace");
        let mut replaced: Vec<String> = Vec::new();
        for _ in 0..8 {
            let program = project::evaluate(self.project, self.stack, config, &ids, &replaced)?;
            let steps = self.diff_steps(state, &program, &forced);
            let now_replaced: Vec<String> = steps
                .iter()
                .filter(|s| s.op == "replace")
                .map(|s| s.urn.clone())
                .collect();
            if now_replaced.iter().all(|u| replaced.contains(u)) {
                return Ok((program, steps));
            }
            for u in now_replaced {
                if !replaced.contains(&u) {
                    replaced.push(u);
                }
            }
        }
        Err(CliError::program("replacements did not settle".to_owned()))
    }

    pub(super) fn diff_steps(
        &self,
        state: &StackState,
        program: &Program,
        forced: &[String],
    ) -> Vec<Step> {
        let now = clock::format_millis(clock::now_millis());
        let old: BTreeMap<&str, &ResourceState> = state
            .resources
            .iter()
            .map(|r| (r.urn.as_str(), r))
            .collect();
        program
            .resources
            .iter()
            .map(|d| {
                let prev = old.get(d.urn.as_str()).copied();
                let new = self.declared_state(d, prev, &now);
                let (op, keys, diffs, detailed) = match prev {
                    None => ("create", Vec::new(), Vec::new(), None),
                    Some(p) => {
                        let diffs = changed_keys(&p.inputs, &d.inputs);
                        let detailed: BTreeMap<String, PropertyDiff> = diffs
                            .iter()
                            .map(|k| {
                                let kind = if !p.inputs.contains_key(k) {
                                    "add"
                                } else if !d.inputs.contains_key(k) {
                                    "delete"
                                } else {
                                    "update"
                                };
                                let replaces =
                                    d.replace_on_changes.iter().any(|r| r == k || r == "*");
                                let kind = if replaces {
                                    format!("{kind}-replace")
                                } else {
                                    kind.to_owned()
                                };
                                (
                                    k.clone(),
                                    PropertyDiff {
                                        diff_kind: kind,
                                        input_diff: true,
                                    },
                                )
                            })
                            .collect();
                        let keys: Vec<String> = diffs
                            .iter()
                            .filter(|k| d.replace_on_changes.iter().any(|r| r == *k || r == "*"))
                            .cloned()
                            .collect();
                        let force = forced.iter().any(|f| glob_match(f, &d.urn));
                        if force || !keys.is_empty() {
                            ("replace", keys, diffs, Some(detailed))
                        } else if !diffs.is_empty() {
                            ("update", Vec::new(), diffs, Some(detailed))
                        } else {
                            ("same", Vec::new(), Vec::new(), None)
                        }
                    }
                };
                Step {
                    op,
                    name: d.name.clone(),
                    urn: d.urn.clone(),
                    ty: d.ty.clone(),
                    old: prev.cloned(),
                    new: Some(new),
                    keys,
                    diffs,
                    detailed,
                }
            })
            .collect()
    }

    pub(super) fn declared_state(
        &self,
        d: &DeclaredResource,
        prev: Option<&ResourceState>,
        now: &str,
    ) -> ResourceState {
        let mut outputs = d.inputs.clone();
        let id = d.resolved_id.clone();
        if !d.component {
            outputs.insert("id".to_owned(), Value::String(id.clone()));
        }
        ResourceState {
            urn: d.urn.clone(),
            ty: d.ty.clone(),
            custom: !d.component,
            id,
            parent: d.parent.clone(),
            inputs: d.inputs.clone(),
            outputs,
            // A component has no provider, and neither has a provider resource.
            provider: if d.component || d.ty.starts_with("pulumi:providers:") {
                String::new()
            } else {
                default_provider(self.stack, &self.project.name, &d.ty)
            },
            protect: d.protect,
            dependencies: d.dependencies.clone(),
            created: prev
                .map(|p| p.created.clone())
                .unwrap_or_else(|| now.to_owned()),
            modified: now.to_owned(),
        }
    }
}

/// Input keys whose values differ between two input maps.
pub(super) fn changed_keys(
    old: &serde_json::Map<String, Value>,
    new: &serde_json::Map<String, Value>,
) -> Vec<String> {
    let mut keys: BTreeSet<&String> = old.keys().collect();
    keys.extend(new.keys());
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_keys_cover_adds_updates_and_removals() {
        let old = json!({"a": 1, "b": 2}).as_object().cloned().unwrap();
        let new = json!({"a": 1, "b": 3, "c": 4})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(changed_keys(&old, &new), vec!["b", "c"]);
    }
}
