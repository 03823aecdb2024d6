//! A planned step and the forms the engine shows it in: event metadata and `preview --json` steps.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::events::{PropertyDiff, StateMeta, StepMeta};
use crate::secret::{self, Secrets};
use crate::store::ResourceState;

/// One planned step.
#[derive(Debug, Clone)]
pub(super) struct Step {
    pub(super) op: &'static str,
    pub(super) name: String,
    pub(super) urn: String,
    pub(super) ty: String,
    pub(super) old: Option<ResourceState>,
    pub(super) new: Option<ResourceState>,
    pub(super) keys: Vec<String>,
    pub(super) diffs: Vec<String>,
    pub(super) detailed: Option<BTreeMap<String, PropertyDiff>>,
}

pub(super) fn default_provider(stack: &str, project: &str, ty: &str) -> String {
    let pkg = ty.split(':').next().unwrap_or(ty);
    format!(
        "urn:pulumi:{stack}::{project}::pulumi:providers:{pkg}::default::04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    )
}

/// A default provider's state, from the reference a resource holds (`<urn>::<id>`).
pub(super) fn default_provider_state(reference: &str) -> Option<ResourceState> {
    let (urn, id) = reference.rsplit_once("::")?;
    let ty = urn.rsplit("::").nth(1)?;
    if !is_internal_urn(urn) {
        return None;
    }
    Some(ResourceState {
        urn: urn.to_owned(),
        ty: ty.to_owned(),
        custom: true,
        id: id.to_owned(),
        parent: String::new(),
        inputs: serde_json::Map::new(),
        outputs: serde_json::Map::new(),
        provider: String::new(),
        protect: false,
        dependencies: Vec::new(),
        created: String::new(),
        modified: String::new(),
    })
}

/// Whether a URN names a default provider (`pulumi:providers:<pkg>::default`), one of the engine's
/// internal steps: written to the event log, never counted or shown.
pub(super) fn is_internal_urn(urn: &str) -> bool {
    urn.rsplit("::")
        .nth(1)
        .is_some_and(|t| t.starts_with("pulumi:providers:"))
        && urn.rsplit("::").next() == Some("default")
}

/// The step of a default provider: `create`, `same`, `refresh` or `delete`.
pub(super) fn default_provider_step(provider: &ResourceState, op: &'static str) -> Step {
    Step {
        op,
        name: "default".to_owned(),
        urn: provider.urn.clone(),
        ty: provider.ty.clone(),
        old: (op != "create").then(|| provider.clone()),
        new: (op != "delete").then(|| provider.clone()),
        keys: Vec::new(),
        diffs: Vec::new(),
        detailed: None,
    }
}

pub(super) fn blinded(m: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    match secret::render(&Value::Object(m.clone()), Secrets::Blind) {
        Value::Object(o) => o,
        _ => serde_json::Map::new(),
    }
}

/// Event state metadata of a resource; `complete` includes the ID and outputs (after the step).
pub(super) fn state_meta(r: &ResourceState, complete: bool, delete: bool) -> StateMeta {
    StateMeta {
        ty: r.ty.clone(),
        urn: r.urn.clone(),
        custom: r.custom,
        delete,
        id: if complete {
            r.id.clone()
        } else {
            String::new()
        },
        parent: r.parent.clone(),
        protect: r.protect,
        inputs: blinded(&r.inputs),
        outputs: if complete {
            blinded(&r.outputs)
        } else {
            serde_json::Map::new()
        },
        provider: r.provider.clone(),
    }
}

pub(super) fn meta(step: &Step, op: &str, complete: bool) -> StepMeta {
    let deleting = matches!(op, "delete" | "delete-replaced");
    StepMeta {
        op: op.to_owned(),
        urn: step.urn.clone(),
        ty: step.ty.clone(),
        old: step
            .old
            .as_ref()
            .map(|o| state_meta(o, true, op == "delete-replaced")),
        new: if deleting {
            None
        } else {
            step.new.as_ref().map(|n| state_meta(n, complete, false))
        },
        keys: step.keys.clone(),
        diffs: step.diffs.clone(),
        detailed_diff: step.detailed.clone(),
        // As the engine's steps say: the halves of a replacement and a refresh (which reads state
        // rather than following the program) are not logical steps.
        logical: !matches!(op, "delete-replaced" | "create-replacement" | "refresh")
            && step.op != "refresh",
        provider: step
            .new
            .as_ref()
            .or(step.old.as_ref())
            .map(|r| r.provider.clone())
            .unwrap_or_default(),
    }
}

/// A step as `pulumi preview --json` prints it (the Go SDK's `PreviewStep`).
pub(super) fn step_json(step: &Step) -> Value {
    let state = |r: &ResourceState| {
        json!({
            "urn": r.urn,
            "custom": r.custom,
            "type": r.ty,
            "id": r.id,
            "inputs": blinded(&r.inputs),
            "outputs": blinded(&r.outputs),
            "parent": r.parent,
            "provider": r.provider,
        })
    };
    let mut o = serde_json::Map::new();
    o.insert("op".to_owned(), json!(step.op));
    o.insert("urn".to_owned(), json!(step.urn));
    let provider = step
        .new
        .as_ref()
        .or(step.old.as_ref())
        .map(|r| r.provider.clone())
        .unwrap_or_default();
    if !provider.is_empty() {
        o.insert("provider".to_owned(), json!(provider));
    }
    if let Some(old) = &step.old {
        o.insert("oldState".to_owned(), state(old));
    }
    if let Some(new) = &step.new {
        o.insert("newState".to_owned(), state(new));
    }
    if !step.diffs.is_empty() {
        o.insert("diffReasons".to_owned(), json!(step.diffs));
    }
    if !step.keys.is_empty() {
        o.insert("replaceReasons".to_owned(), json!(step.keys));
    }
    o.insert(
        "detailedDiff".to_owned(),
        match &step.detailed {
            Some(d) => json!(
                d.iter()
                    .map(|(k, v)| (
                        k.clone(),
                        json!({"kind": v.diff_kind, "inputDiff": v.input_diff})
                    ))
                    .collect::<serde_json::Map<_, _>>()
            ),
            None => Value::Null,
        },
    );
    Value::Object(o)
}
