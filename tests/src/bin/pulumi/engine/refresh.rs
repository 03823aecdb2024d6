//! `refresh`: reads every resource back; `FAKE_PULUMI_DRIFT` makes some come back changed.

use serde_json::json;

use super::run::{Outcome, Run};
use super::selection::Selection;
use super::step::{Step, default_provider_state, default_provider_step};
use crate::clock;
use crate::store::{ResourceState, StackState};

impl Run<'_> {
    pub(super) fn refresh(&mut self, state: &StackState) -> Outcome {
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
        let mut refreshed: Vec<ResourceState> = Vec::new();
        for r in &state.resources {
            // Every resource is read back, the stack and components too (they never drift).
            if !chosen.contains(&r.urn) || self.cancelled {
                refreshed.push(r.clone());
                continue;
            }
            if !self.maybe_wait() {
                refreshed.push(r.clone());
                continue;
            }
            let name = r.urn.rsplit("::").next().unwrap_or_default().to_owned();
            let mut new = r.clone();
            let drifted = r.custom
                && self
                    .ctx
                    .faults
                    .drift
                    .iter()
                    .any(|d| *d == name || *d == r.urn);
            if drifted {
                // The "cloud" changed behind Pulumi's back: the refresh reads a new output.
                new.outputs.insert(
                    "driftedAt".to_owned(),
                    json!(clock::format_millis(clock::now_millis())),
                );
            }
            let step = Step {
                op: "refresh",
                name,
                urn: r.urn.clone(),
                ty: r.ty.clone(),
                old: Some(r.clone()),
                new: Some(new.clone()),
                keys: Vec::new(),
                diffs: if drifted {
                    vec!["driftedAt".to_owned()]
                } else {
                    Vec::new()
                },
                detailed: None,
            };
            if self.apply(&step) && drifted {
                refreshed.push(new);
            } else {
                refreshed.push(r.clone());
            }
            continue;
        }
        // Then the default providers the resources use, which the engine refreshes too.
        let mut providers: Vec<ResourceState> = Vec::new();
        for r in state.resources.iter().filter(|_| self.default_providers) {
            if let Some(p) = default_provider_state(&r.provider) {
                if !self.cancelled && !providers.iter().any(|q| q.urn == p.urn) {
                    providers.push(p);
                }
            }
        }
        for p in &providers {
            self.internal_step(&default_provider_step(p, "refresh"));
        }
        let outputs = state
            .stack_resource()
            .map(|r| r.outputs.clone())
            .unwrap_or_default();
        (refreshed, outputs)
    }
}
