//! Secret values as the fake keeps them: sealed in Pulumi's secret envelope, opened again, and
//! rendered blinded, revealed or in an export's form.
//!
//! The "ciphertext" is a reversible encoding, not encryption: enough that a secret never appears
//! verbatim in the fake's files, which tests can check.

use serde_json::Value;

/// The secret signature key Pulumi uses in checkpoints and exports.
pub(crate) const SECRET_SIG_KEY: &str = "4dabf18193072939515e22adb298388d";
/// The secret signature value Pulumi uses in checkpoints and exports.
pub(crate) const SECRET_SIG: &str = "1b47061264138c4ac30d75fd1eb44270";
/// What Pulumi prints instead of a secret value.
pub(crate) const BLINDED: &str = "[secret]";

/// Seals a value as a secret, the way it sits in state: Pulumi's signature object with a ciphertext.
///
/// The "ciphertext" is a reversible hex encoding, not encryption: enough that a secret never appears
/// verbatim in the fake's files, which tests can check.
pub(crate) fn seal(v: &Value) -> Value {
    let plain = v.to_string();
    let hex: String = plain.bytes().map(|b| format!("{:02x}", b ^ 0x5a)).collect();
    serde_json::json!({ SECRET_SIG_KEY: SECRET_SIG, "ciphertext": format!("fakev1:{hex}") })
}

/// Whether a value is a sealed (or exported plaintext) secret.
pub(crate) fn is_sealed(v: &Value) -> bool {
    v.get(SECRET_SIG_KEY).and_then(Value::as_str) == Some(SECRET_SIG)
}

/// Opens a sealed secret; `None` if the value is not a secret of a known form.
pub(crate) fn unseal(v: &Value) -> Option<Value> {
    if !is_sealed(v) {
        return None;
    }
    if let Some(p) = v.get("plaintext").and_then(Value::as_str) {
        return serde_json::from_str(p).ok();
    }
    let c = v.get("ciphertext")?.as_str()?.strip_prefix("fakev1:")?;
    let bytes: Option<Vec<u8>> = (0..c.len())
        .step_by(2)
        .map(|i| {
            c.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .map(|b| b ^ 0x5a)
        })
        .collect();
    serde_json::from_slice(&bytes?).ok()
}

/// How to render secrets when presenting a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Secrets {
    /// Replace each secret with `"[secret]"`.
    Blind,
    /// Show the plaintext.
    Reveal,
    /// Keep the sealed form (state and plain export).
    Sealed,
    /// Export form with `--show-secrets`: signature object with a JSON-encoded `plaintext`.
    ExportPlain,
}

/// Renders a value, treating sealed secrets as asked.
pub(crate) fn render(v: &Value, mode: Secrets) -> Value {
    if is_sealed(v) {
        let inner = unseal(v).unwrap_or(Value::Null);
        return match mode {
            Secrets::Blind => Value::String(BLINDED.to_owned()),
            Secrets::Reveal => render(&inner, mode),
            Secrets::Sealed => v.clone(),
            Secrets::ExportPlain => serde_json::json!({
                SECRET_SIG_KEY: SECRET_SIG,
                "plaintext": render(&inner, Secrets::Reveal).to_string(),
            }),
        };
    }
    match v {
        Value::Array(a) => Value::Array(a.iter().map(|x| render(x, mode)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), render(x, mode)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether a value contains a secret anywhere.
pub(crate) fn contains_secret(v: &Value) -> bool {
    if is_sealed(v) {
        return true;
    }
    match v {
        Value::Array(a) => a.iter().any(contains_secret),
        Value::Object(o) => o.values().any(contains_secret),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_round_trip_and_hide_their_plaintext() {
        let v = serde_json::json!({"password": "hunter2", "n": 3});
        let sealed = seal(&v);
        assert!(is_sealed(&sealed));
        assert!(!sealed.to_string().contains("hunter2"));
        assert_eq!(unseal(&sealed), Some(v.clone()));
        let doc = serde_json::json!({"a": sealed, "b": "open"});
        assert!(contains_secret(&doc));
        assert_eq!(
            render(&doc, Secrets::Blind),
            serde_json::json!({"a": "[secret]", "b": "open"})
        );
        assert_eq!(
            render(&doc, Secrets::Reveal),
            serde_json::json!({"a": v, "b": "open"})
        );
        let exported = render(&doc, Secrets::ExportPlain);
        assert_eq!(
            unseal(&exported["a"]),
            Some(serde_json::json!({"password": "hunter2", "n": 3}))
        );
    }
}
