//! A stack's outputs: read with `pulumi stack output`, or taken from the
//! engine's own report of the root stack resource when that report says
//! everything `stack output` would.
//!
//! The engine writes its event log with secrets blinded: a secret output
//! appears as Pulumi's signature object with the ciphertext `[secret]`. So
//! the event can stand for `stack output` only when no output holds a
//! secret, nor anything else that is not plain JSON there (an asset, an
//! archive, a resource reference, an unknown value). Otherwise, or when the
//! event is missing, the outputs are read from the CLI.

use std::collections::BTreeMap;

use lift_core::{OutputValue, SecretValue};
use serde_json::Value;
use zeroize::Zeroize;

use crate::error::Result;
use crate::events::RawState;
use crate::names::StackName;
use crate::process::{parse_json, parse_secret_json};
use crate::session::Session;

/// The text `pulumi stack output --json` prints in place of a secret value,
/// and the ciphertext of a secret in the event log.
const SECRET_SENTINEL: &str = "[secret]";

/// The key of Pulumi's signature object, which marks a secret, an asset, an
/// archive, a resource reference or an output value in serialized properties.
const SIGNATURE_KEY: &str = "4dabf18193072939515e22adb298388d";

/// The value Pulumi serializes for an unknown (computed) property.
const UNKNOWN: &str = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/// The type of a stack's root resource.
const ROOT_TYPE: &str = "pulumi:pulumi:Stack";

/// Reads the outputs with the CLI. Secret outputs are wrapped in
/// [`SecretValue`]: a string's bytes, or the JSON text of any other value.
///
/// Which outputs are secret is learned from `pulumi stack output --json`,
/// which prints `[secret]` for them; the values come from a second run with
/// `--show-secrets`. Both run at once.
pub(crate) async fn read(
    session: &Session,
    stack: &StackName,
) -> Result<BTreeMap<String, OutputValue>> {
    let masked = session.run_ok(&["stack", "output", "--json"], Some(stack), None);
    let revealed = session.run_ok(
        &["stack", "output", "--json", "--show-secrets"],
        Some(stack),
        None,
    );
    let (masked, revealed) = tokio::join!(masked, revealed);
    let masked: BTreeMap<String, Value> =
        parse_json(&masked?.stdout, "pulumi stack output --json")?;
    let mut revealed = revealed?;
    let parsed: Result<BTreeMap<String, Value>> = parse_secret_json(
        &revealed.stdout,
        "pulumi stack output --json --show-secrets",
    );
    revealed.stdout.zeroize();
    Ok(merge(&masked, parsed?))
}

/// Whether a resource of this type is a stack's root resource, whose
/// outputs are the stack's.
pub(crate) fn is_root(resource_type: &str) -> bool {
    resource_type == ROOT_TYPE
}

/// The outputs as the engine reported them for the root stack resource, when
/// they are exactly what `stack output` would give: plain JSON, with no
/// secret, asset, archive, resource reference or unknown anywhere. `None`
/// means that the CLI must be asked.
pub(crate) fn from_root_state(state: &RawState) -> Option<BTreeMap<String, OutputValue>> {
    let state = state.parse().ok()?;
    if state.resource_type != ROOT_TYPE || !state.parent.is_empty() {
        return None;
    }
    let outputs: BTreeMap<String, Value> = serde_json::from_str(state.outputs?.get()).ok()?;
    if outputs.values().any(needs_the_cli) {
        return None;
    }
    Some(
        outputs
            .into_iter()
            .map(|(name, value)| (name, OutputValue::Plain(value)))
            .collect(),
    )
}

/// Whether a serialized property is something other than plain JSON, or may
/// be a secret.
fn needs_the_cli(value: &Value) -> bool {
    match value {
        Value::String(text) => text == SECRET_SENTINEL || text == UNKNOWN,
        Value::Array(items) => items.iter().any(needs_the_cli),
        Value::Object(fields) => {
            fields.contains_key(SIGNATURE_KEY) || fields.values().any(needs_the_cli)
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Pairs the masked and revealed outputs: an output whose masked form
/// contains `[secret]` anywhere is secret as a whole (as in Pulumi's Go SDK).
fn merge(
    masked: &BTreeMap<String, Value>,
    revealed: BTreeMap<String, Value>,
) -> BTreeMap<String, OutputValue> {
    revealed
        .into_iter()
        .map(|(name, value)| {
            let secret = masked.get(&name).is_some_and(contains_secret_sentinel);
            let output = if secret {
                let bytes = match value {
                    Value::String(text) => text.into_bytes(),
                    other => other.to_string().into_bytes(),
                };
                OutputValue::Secret(SecretValue::new(bytes))
            } else {
                OutputValue::Plain(value)
            };
            (name, output)
        })
        .collect()
}

fn contains_secret_sentinel(value: &Value) -> bool {
    match value {
        Value::String(text) => text == SECRET_SENTINEL,
        Value::Array(items) => items.iter().any(contains_secret_sentinel),
        Value::Object(fields) => fields.values().any(contains_secret_sentinel),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_outputs_are_wrapped_and_flagged() {
        let masked: BTreeMap<String, Value> = serde_json::from_value(json!({
            "url": "https://x", "key": "[secret]", "nested": {"a": 1, "b": "[secret]"}
        }))
        .unwrap();
        let revealed: BTreeMap<String, Value> = serde_json::from_value(json!({
            "url": "https://x", "key": "hunter2", "nested": {"a": 1, "b": "pw"}
        }))
        .unwrap();
        let outputs = merge(&masked, revealed);
        assert!(!outputs["url"].is_secret());
        let OutputValue::Secret(key) = &outputs["key"] else {
            panic!("key should be secret")
        };
        assert_eq!(key.expose(), b"hunter2");
        assert!(outputs["nested"].is_secret());
        assert!(!format!("{outputs:?}").contains("hunter2"));
    }

    fn root_state(outputs: &Value, parent: &str) -> RawState {
        serde_json::from_value(json!({
            "type": "pulumi:pulumi:Stack",
            "urn": "urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev",
            "id": "",
            "parent": parent,
            "inputs": {},
            "outputs": outputs,
            "provider": ""
        }))
        .unwrap()
    }

    #[test]
    fn plain_root_outputs_are_taken_from_the_event() {
        let outputs = json!({"greeting": "hello <world> & more", "n": 3, "nested": {"list": [1, "a", null], "ok": true}});
        let taken = from_root_state(&root_state(&outputs, "")).unwrap();
        assert_eq!(taken.len(), 3);
        assert_eq!(
            taken["nested"],
            OutputValue::Plain(json!({"list": [1, "a", null], "ok": true}))
        );
        assert!(taken.values().all(|v| !v.is_secret()));
        assert!(
            from_root_state(&root_state(&json!({}), ""))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn anything_but_plain_json_sends_lift_to_the_cli() {
        let blinded =
            json!({SIGNATURE_KEY: "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "[secret]"});
        for outputs in [
            json!({"token": blinded.clone()}),
            json!({"deep": {"list": [blinded]}}),
            json!({"fake": "[secret]"}),
            json!({"computed": UNKNOWN}),
            json!({"asset": {SIGNATURE_KEY: "c44067f5952c0a294b673a41bacd8c17", "text": "x"}}),
        ] {
            assert!(
                from_root_state(&root_state(&outputs, "")).is_none(),
                "{outputs}"
            );
        }
        // Only the root stack resource carries the stack's outputs.
        assert!(from_root_state(&root_state(&json!({"a": 1}), "urn:parent")).is_none());
        let no_outputs: RawState = serde_json::from_value(json!({
            "type": "pulumi:pulumi:Stack", "urn": "u", "id": "", "parent": "", "provider": ""
        }))
        .unwrap();
        assert!(from_root_state(&no_outputs).is_none());
    }
}
