//! The property changes of a step, as pulumi shows them: a `[diff: ~a +b -c]`
//! suffix on the step's line, and with `--diff` one line per property with
//! its old and new input. Secret values never show: the engine writes them
//! as `[secret]` in the event log, and a value still in its secret envelope
//! is shown as `[secret]` here.

use std::collections::BTreeMap;

use lift::pulumi::{DiffKind, StepEventMetadata};
use serde::Serialize;
use serde_json::Value;

/// pulumi's signature key of a secret value's envelope.
const SECRET_SIG: &str = "4dabf18193072939515e22adb298388d";

/// The longest value a `--diff` line shows before cutting it short.
const VALUE_WIDTH: usize = 60;

/// One changed property of a step.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub(crate) struct PropertyChange {
    /// The property path, such as `tags.Name`.
    pub(crate) path: String,
    /// `add`, `update`, `delete`, or one of those with `-replace` when the
    /// change forces a replacement.
    pub(crate) kind: String,
    /// Whether the change is between old and new inputs (rather than old
    /// state and new inputs).
    #[serde(rename = "inputDiff")]
    pub(crate) input_diff: bool,
    /// The old input, when the event carries it (`[secret]` for a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) old: Option<Value>,
    /// The new input, when the event carries it (`[secret]` for a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) new: Option<Value>,
}

/// The changes a step's metadata describes: its detailed diff when the
/// provider gave one, else its list of changed keys.
pub(crate) fn changes_of(metadata: &StepEventMetadata) -> Vec<PropertyChange> {
    let old = inputs(metadata.old.as_ref());
    let new = inputs(metadata.new.as_ref());
    let value_at = |map: &Option<serde_json::Map<String, Value>>, path: &str| {
        map.as_ref().and_then(|m| lookup(m, path)).map(redact)
    };
    if let Some(Some(detailed)) = &metadata.detailed_diff {
        return detailed
            .iter()
            .map(|(path, diff)| PropertyChange {
                path: path.clone(),
                kind: diff.diff_kind.as_str().to_owned(),
                input_diff: diff.input_diff,
                old: value_at(&old, path),
                new: value_at(&new, path),
            })
            .collect();
    }
    metadata
        .diffs
        .iter()
        .flatten()
        .map(|path| {
            let old_value = value_at(&old, path);
            let new_value = value_at(&new, path);
            let kind = match (&old_value, &new_value) {
                (None, Some(_)) => DiffKind::Add,
                (Some(_), None) => DiffKind::Delete,
                _ => DiffKind::Update,
            };
            PropertyChange {
                path: path.clone(),
                kind: kind.as_str().to_owned(),
                input_diff: false,
                old: old_value,
                new: new_value,
            }
        })
        .collect()
}

/// A state's inputs, when the event carries them.
fn inputs(state: Option<&lift::pulumi::RawState>) -> Option<serde_json::Map<String, Value>> {
    state
        .and_then(|s| s.parse().ok())
        .and_then(|s| s.inputs)
        .and_then(|raw| raw.parse().ok())
}

/// The value at a property path (`a.b`, `a[0]`, `a["b.c"]`), when simple enough to follow.
fn lookup<'a>(map: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let (key, index) = split_index(first);
    let mut value = map.get(key)?;
    if let Some(i) = index {
        value = value.get(i)?;
    }
    for part in parts {
        let (key, index) = split_index(part);
        value = value.get(key)?;
        if let Some(i) = index {
            value = value.get(i)?;
        }
    }
    Some(value)
}

/// `name[3]` → (`name`, 3).
fn split_index(part: &str) -> (&str, Option<usize>) {
    match part.strip_suffix(']').and_then(|p| p.split_once('[')) {
        Some((key, index)) => (key, index.parse().ok()),
        None => (part, None),
    }
}

/// A value with every secret envelope replaced by `"[secret]"`.
fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) if map.contains_key(SECRET_SIG) => Value::String("[secret]".into()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), redact(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// pulumi's symbol for a property change.
fn symbol(kind: &str) -> &'static str {
    match kind {
        "add" => "+",
        "add-replace" => "+-",
        "delete" => "-",
        "delete-replace" => "-+",
        "update-replace" => "+-",
        _ => "~",
    }
}

/// The suffix of a step's line: ` [diff: ~size +tags -acl]`, or nothing.
pub(crate) fn summary(changes: &[PropertyChange]) -> String {
    if changes.is_empty() {
        return String::new();
    }
    let keys: Vec<String> = changes
        .iter()
        .map(|c| format!("{}{}", symbol(&c.kind), c.path))
        .collect();
    format!(" [diff: {}]", keys.join(" "))
}

/// `--diff`'s lines for a step: `~ size: 1 => 2`, indented under the step.
pub(crate) fn detail_lines(indent: usize, changes: &[PropertyChange]) -> Vec<String> {
    changes
        .iter()
        .map(|c| {
            let show = |v: &Option<Value>| v.as_ref().map(short);
            let values = match (show(&c.old), show(&c.new)) {
                (Some(old), Some(new)) => format!(": {old} => {new}"),
                (None, Some(new)) => format!(": {new}"),
                (Some(old), None) => format!(": {old}"),
                (None, None) => String::new(),
            };
            format!(
                "{:indent$}{:>2} {}{values}",
                "",
                symbol(&c.kind),
                c.path,
                indent = indent * 2 + 8
            )
        })
        .collect()
}

/// A value as compact JSON, cut at [`VALUE_WIDTH`] characters.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= VALUE_WIDTH {
        return text;
    }
    let cut: String = text.chars().take(VALUE_WIDTH).collect();
    format!("{cut}…")
}

/// The changes of every step seen, by URN (the last step of a URN wins).
pub(crate) type ChangesByUrn = BTreeMap<String, Vec<PropertyChange>>;

#[cfg(test)]
mod tests {
    use super::*;
    use lift::pulumi::EngineEvent;

    fn step(json: &str) -> StepEventMetadata {
        let event: EngineEvent = serde_json::from_str(json).unwrap();
        event.step().unwrap().clone()
    }

    #[test]
    fn detailed_diffs_name_each_property_with_its_values() {
        let metadata = step(
            r#"{"sequence":3,"timestamp":1,"resourcePreEvent":{"metadata":{"op":"update","urn":"urn:pulumi:dev::p::aws:s3:Bucket::b","type":"aws:s3:Bucket",
            "old":{"type":"aws:s3:Bucket","urn":"u","id":"b","parent":"","inputs":{"size":1,"tags":{"Name":"a"},"token":{"4dabf18193072939515e22adb298388d":"1b47061264138c4ac30d75fd1eb44270","value":"old-canary"}},"outputs":{},"provider":""},
            "new":{"type":"aws:s3:Bucket","urn":"u","id":"b","parent":"","inputs":{"size":2,"tags":{"Name":"b"},"token":{"4dabf18193072939515e22adb298388d":"1b47061264138c4ac30d75fd1eb44270","value":"new-canary"}},"outputs":{},"provider":""},
            "diffs":["size","tags","token"],
            "detailedDiff":{"size":{"diffKind":"update-replace","inputDiff":true},"tags.Name":{"diffKind":"update","inputDiff":true},"token":{"diffKind":"update","inputDiff":true}},"provider":""}}}"#,
        );
        let changes = changes_of(&metadata);
        assert_eq!(changes.len(), 3);
        assert_eq!(summary(&changes), " [diff: +-size ~tags.Name ~token]");
        let lines = detail_lines(0, &changes).join("\n");
        assert!(lines.contains("+- size: 1 => 2"), "{lines}");
        assert!(lines.contains("~ tags.Name: \"a\" => \"b\""), "{lines}");
        assert!(
            lines.contains("~ token: \"[secret]\" => \"[secret]\""),
            "{lines}"
        );
        assert!(!lines.contains("canary"), "{lines}");
        let json = serde_json::to_string(&changes).unwrap();
        assert!(!json.contains("canary"), "{json}");
    }

    #[test]
    fn plain_diffs_fall_back_to_keys() {
        let metadata = step(
            r#"{"sequence":3,"timestamp":1,"resourcePreEvent":{"metadata":{"op":"update","urn":"u","type":"t","old":null,"new":null,"diffs":["a"],"provider":""}}}"#,
        );
        let changes = changes_of(&metadata);
        assert_eq!(summary(&changes), " [diff: ~a]");
        assert_eq!(detail_lines(1, &changes), vec!["           ~ a".to_owned()]);
        assert!(summary(&[]).is_empty());
    }

    #[test]
    fn a_real_engine_replacement_shows_its_property() {
        // Recorded from Pulumi's own lifecycle tests (see tests/fixtures/pulumi).
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/pulumi/pulumi-lifecycle/TestDBRReplaceOnChanges__1.jsonl");
        let text = std::fs::read_to_string(path).unwrap();
        let replace = text
            .lines()
            .filter_map(|line| serde_json::from_str::<EngineEvent>(line).ok())
            .filter(|event| matches!(event.payload, lift::pulumi::EventPayload::ResourcePre(_)))
            .filter_map(|event| event.step().cloned())
            .find(|step| step.urn.ends_with("::resA") && step.op.as_str() == "replace")
            .unwrap();
        let changes = changes_of(&replace);
        assert_eq!(summary(&changes), " [diff: ~value]");
        assert_eq!(
            detail_lines(0, &changes),
            vec!["         ~ value: \"foo\" => \"bar\"".to_owned()]
        );
    }

    #[test]
    fn long_values_are_cut() {
        let long = Value::String("x".repeat(200));
        assert!(short(&long).ends_with('…'));
        assert!(short(&long).chars().count() <= VALUE_WIDTH + 1);
    }
}
