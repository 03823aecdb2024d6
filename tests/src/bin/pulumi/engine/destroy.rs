//! `destroy`: deletes dependents before what they depend on, the stack resource last.
//!
//! As the engine's step executor does, deletions go in waves: every resource that nothing left
//! depends on starts at once (their `resourcePreEvent`s), then they finish (their `resOutputsEvent`s).

use std::collections::BTreeSet;

use super::STACK_TYPE;
use super::run::{Outcome, Run};
use super::selection::Selection;
use super::step::{Step, default_provider_state, is_internal_urn};
use crate::store::{ResourceState, StackState};

impl Run<'_> {
    pub(super) fn destroy(&mut self, state: &StackState) -> Outcome {
        self.maybe_wait();
        let selection = Selection::from(self.ctx);
        let links: Vec<(String, Vec<String>)> = state
            .resources
            .iter()
            .map(|r| {
                let mut l = r.dependencies.clone();
                l.push(r.parent.clone());
                (r.urn.clone(), l)
            })
            .collect();
        let chosen = selection.decide(&links);
        let continue_on_error = self.ctx.args.bool("continue-on-error");
        let mut kept: BTreeSet<String> = BTreeSet::new();
        // The default providers the resources use go too, after the last of their users.
        let mut all = state.resources.clone();
        for r in state.resources.iter().filter(|_| self.default_providers) {
            if let Some(p) = default_provider_state(&r.provider) {
                if !all.iter().any(|q| q.urn == p.urn) {
                    all.push(p);
                }
            }
        }
        for wave in waves(&all) {
            let mut started: Vec<Step> = Vec::new();
            for r in wave {
                let is_stack = r.ty == STACK_TYPE;
                let selected = if is_stack || is_internal_urn(&r.urn) {
                    !selection.restricted()
                } else {
                    chosen.contains(&r.urn)
                };
                // A resource whose dependent was kept must stay too.
                let needed = all
                    .iter()
                    .any(|d| kept.contains(&d.urn) && depends_on(d, &r.urn));
                if !selected
                    || needed
                    || self.cancelled
                    || (self.failed && !continue_on_error)
                    || (is_stack && self.failed)
                    || !self.maybe_wait()
                {
                    kept.insert(r.urn.clone());
                    continue;
                }
                let step = Step {
                    op: "delete",
                    name: r.urn.rsplit("::").next().unwrap_or_default().to_owned(),
                    urn: r.urn.clone(),
                    ty: r.ty.clone(),
                    old: Some(r.clone()),
                    new: None,
                    keys: Vec::new(),
                    diffs: Vec::new(),
                    detailed: None,
                };
                if r.protect {
                    self.protected(&step);
                    kept.insert(r.urn.clone());
                } else if self.start(&step) {
                    started.push(step);
                } else {
                    kept.insert(r.urn.clone());
                }
            }
            for step in &started {
                self.complete(step);
            }
        }
        let kept: Vec<ResourceState> = state
            .resources
            .iter()
            .filter(|r| kept.contains(&r.urn))
            .cloned()
            .collect();
        let outputs = kept
            .iter()
            .find(|r| r.ty == STACK_TYPE)
            .map(|r| r.outputs.clone())
            .unwrap_or_default();
        (kept, outputs)
    }
}

/// Whether `d` must go before the resource `urn`: its child, its dependent, or its user when `urn`
/// is a provider.
fn depends_on(d: &ResourceState, urn: &str) -> bool {
    d.parent == urn
        || d.dependencies.iter().any(|x| x == urn)
        || d.provider.rsplit_once("::").is_some_and(|(p, _)| p == urn)
}

/// The resources in deletion waves: a resource comes one wave after the last of its dependents
/// (children and resources that depend on it); within a wave, in reverse state order.
fn waves(resources: &[ResourceState]) -> Vec<Vec<&ResourceState>> {
    let mut wave_of: Vec<usize> = vec![0; resources.len()];
    // Dependents come later in state order, so a reverse walk sees them first.
    for i in (0..resources.len()).rev() {
        let urn = &resources[i].urn;
        wave_of[i] = resources
            .iter()
            .enumerate()
            .skip(i + 1)
            .filter(|(_, d)| depends_on(d, urn))
            .map(|(j, _)| wave_of[j] + 1)
            .max()
            .unwrap_or(0);
    }
    let count = wave_of.iter().max().map_or(0, |m| m + 1);
    (0..count)
        .map(|w| {
            resources
                .iter()
                .enumerate()
                .rev()
                .filter(|(i, _)| wave_of[*i] == w)
                .map(|(_, r)| r)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(urn: &str, parent: &str, deps: &[&str]) -> ResourceState {
        ResourceState {
            urn: urn.to_owned(),
            ty: "t:m:R".to_owned(),
            custom: true,
            id: String::new(),
            parent: parent.to_owned(),
            inputs: serde_json::Map::new(),
            outputs: serde_json::Map::new(),
            provider: String::new(),
            protect: false,
            dependencies: deps.iter().map(|d| (*d).to_owned()).collect(),
            created: String::new(),
            modified: String::new(),
        }
    }

    #[test]
    fn independent_resources_share_a_wave_and_the_stack_goes_last() {
        let all = vec![
            resource("stack", "", &[]),
            resource("a", "stack", &[]),
            resource("b", "stack", &[]),
            resource("c", "stack", &["a"]),
        ];
        let names: Vec<Vec<&str>> = waves(&all)
            .iter()
            .map(|w| w.iter().map(|r| r.urn.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["c", "b"], vec!["a"], vec!["stack"]]);
    }
}
