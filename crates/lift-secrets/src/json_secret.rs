//! The next value of a rotation: a fresh value of the declared kind, or, for a JSON
//! key/value secret (AWS's usual shape, `{"username", "password", "host", ...}`),
//! the same object with only one field replaced, as AWS's rotation templates do.
//!
//! Nothing of the old value's content decides the new value's shape: the kind is
//! declared, and a JSON object keeps its other fields exactly because consumers read them.

use lift_core::{SecretName, SecretValue};
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use crate::generate::ValueKind;
use crate::{Error, Result};

/// The field a rotation changes in a JSON key/value secret, as AWS's templates do.
pub const DEFAULT_JSON_FIELD: &str = "password";

/// The value createSecret writes as AWSPENDING.
///
/// `field` names the JSON field to rotate; without it, a JSON object's `password` field
/// is rotated, and any other value is replaced whole.
pub(crate) fn next_value(
    name: &SecretName,
    current: Option<&SecretValue>,
    kind: &ValueKind,
    field: Option<&str>,
) -> Result<SecretValue> {
    let object = current.and_then(|value| parse_object(value.expose()));
    let Some(mut object) = object else {
        if let Some(field) = field {
            return Err(Error::InvalidInput(format!(
                "secret {name} is not a JSON object, so it has no field {field:?} to rotate; rotate it without --field"
            )));
        }
        return kind.generate();
    };
    let field = field.unwrap_or(DEFAULT_JSON_FIELD);
    let result = replace_field(name, &mut object, kind, field);
    wipe(&mut object);
    result
}

/// The value as a JSON object, or `None` when it is not one.
fn parse_object(bytes: &[u8]) -> Option<Value> {
    // Only objects are key/value secrets: a password that happens to be a JSON number
    // or string is replaced whole.
    if !bytes.trim_ascii_start().starts_with(b"{") {
        return None;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value @ Value::Object(_)) => Some(value),
        Ok(mut other) => {
            wipe(&mut other);
            None
        }
        Err(_) => None,
    }
}

fn replace_field(
    name: &SecretName,
    object: &mut Value,
    kind: &ValueKind,
    field: &str,
) -> Result<SecretValue> {
    let Some(slot) = object.get_mut(field).filter(|v| v.is_string()) else {
        return Err(Error::InvalidInput(format!(
            "secret {name} is a JSON object without a string field {field:?} to rotate; name the field with --field (every other field is kept)"
        )));
    };
    let fresh = kind.generate()?;
    let Some(text) = fresh.expose_str() else {
        return Err(Error::InvalidInput(format!(
            "the {kind} kind generates binary values, which JSON field {field:?} of secret {name} cannot hold; choose password, token, hex, base64, uuid or jwt"
        )));
    };
    if let Value::String(old) = slot {
        old.zeroize();
    }
    *slot = Value::String(text.to_owned());
    // Sized up front so that the buffer never reallocates and leaves no copy behind:
    // a string escapes to at most six bytes per byte, and the rest is no longer than before.
    let capacity = object_len_bound(object);
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    serde_json::to_writer(&mut *out, object).map_err(|e| {
        Error::InvalidInput(format!(
            "cannot write the rotated JSON of secret {name}: {e}"
        ))
    })?;
    Ok(SecretValue::new(std::mem::take(&mut *out)))
}

/// An upper bound of the serialized length of `value`.
fn object_len_bound(value: &Value) -> usize {
    match value {
        Value::String(s) => 2 + 6 * s.len(),
        Value::Array(items) => 2 + items.iter().map(|v| object_len_bound(v) + 1).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| 2 + 6 * k.len() + 1 + object_len_bound(v) + 1)
                .sum::<usize>()
        }
        // The longest rendering of an f64, i64 or u64 is well under 48 bytes.
        Value::Number(_) => 48,
        Value::Bool(_) | Value::Null => 5,
    }
}

/// Overwrites every string of `value` (the parts of the old secret) before it is dropped.
fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        Value::Number(_) | Value::Bool(_) | Value::Null => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> SecretName {
        "prod/db".parse().unwrap()
    }

    #[test]
    fn only_the_password_field_changes() {
        let old = SecretValue::from(
            r#"{"engine":"postgres","host":"db.internal","password":"old-pass","port":5432,"username":"app","options":{"ssl":true},"replicas":["a","b"]}"#,
        );
        let new = next_value(&name(), Some(&old), &ValueKind::rotation_default(), None).unwrap();
        let before: Value = serde_json::from_slice(old.expose()).unwrap();
        let after: Value = serde_json::from_slice(new.expose()).unwrap();
        for key in ["engine", "host", "port", "username", "options", "replicas"] {
            assert_eq!(before[key], after[key], "{key} is kept");
        }
        let password = after["password"].as_str().unwrap();
        assert_ne!(password, "old-pass");
        assert_eq!(password.chars().count(), 32);
        assert_eq!(
            after.as_object().unwrap().len(),
            7,
            "no field added or lost"
        );
    }

    #[test]
    fn a_named_field_is_rotated_and_missing_fields_are_refused() {
        let old = SecretValue::from(r#"{"user":"app","apiKey":"k-1"}"#);
        let kind: ValueKind = "hex:16".parse().unwrap();
        let new = next_value(&name(), Some(&old), &kind, Some("apiKey")).unwrap();
        let after: Value = serde_json::from_slice(new.expose()).unwrap();
        assert_eq!(after["user"], "app");
        assert_eq!(after["apiKey"].as_str().unwrap().len(), 32);
        let err = next_value(&name(), Some(&old), &kind, None).unwrap_err();
        assert!(err.to_string().contains("--field"), "{err}");
        assert!(!err.to_string().contains("k-1"), "{err}");
        let binary = ValueKind::Bytes { len: 8 };
        assert!(next_value(&name(), Some(&old), &binary, Some("apiKey")).is_err());
    }

    #[test]
    fn other_values_are_replaced_whole() {
        for old in ["plain-password", "12345", "\"quoted\"", "{not json"] {
            let value = SecretValue::from(old);
            let new =
                next_value(&name(), Some(&value), &ValueKind::rotation_default(), None).unwrap();
            assert_eq!(new.len(), 32, "{old}");
            assert!(
                next_value(
                    &name(),
                    Some(&value),
                    &ValueKind::rotation_default(),
                    Some("password")
                )
                .is_err()
            );
        }
    }
}
