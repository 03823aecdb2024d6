//! A stack's config: its entries, and its settings file, `Pulumi.<stack>.yaml` beside
//! `Pulumi.yaml`, which holds them and the salt of its passphrase, as pulumi keeps them.
//!
//! ```yaml
//! encryptionsalt: fakev1:0123456789abcdef
//! config:
//!   demo:region: eu-west-1
//!   demo:token:
//!     secure: fakev1:…
//! ```
//!
//! A secret is written as `secure:` and the fake's ciphertext (see [`secret::seal`]), so that no
//! secret is ever written in clear; `--path` values are nested YAML with secure leaves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::CliError;
use crate::{secret, yaml};

/// One configuration entry of a stack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ConfigEntry {
    /// The value: a string, or an object/array for `--path` values. Secret leaves are
    /// [sealed](secret::seal).
    pub(crate) value: Value,
    /// Whether the top-level value is secret (`--secret` without `--path`).
    #[serde(default)]
    pub(crate) secret: bool,
}

/// What `Pulumi.<stack>.yaml` holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Settings {
    /// The passphrase's fingerprint, recorded at `stack init` (`encryptionsalt`).
    pub(crate) encryption_salt: Option<String>,
    /// Config by fully qualified key.
    pub(crate) config: BTreeMap<String, ConfigEntry>,
}

fn path(dir: &Path, stack: &str) -> PathBuf {
    dir.join(format!("Pulumi.{stack}.yaml"))
}

/// Reads a stack's settings; a missing file is empty settings.
pub(crate) fn load(dir: &Path, stack: &str) -> Result<Settings, CliError> {
    let file = path(dir, stack);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
        Err(e) => return Err(CliError::io("reading", &file, &e)),
    };
    let doc = yaml::parse(&text)
        .map_err(|e| CliError::new(format!("could not parse {}: {e}", file.display())))?
        .to_json();
    let encryption_salt = doc
        .get("encryptionsalt")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut config = BTreeMap::new();
    if let Some(Value::Object(entries)) = doc.get("config") {
        for (key, value) in entries {
            let entry = match secure(value) {
                Some(ciphertext) => ConfigEntry {
                    value: sealed(ciphertext),
                    secret: true,
                },
                None => ConfigEntry {
                    value: match value {
                        Value::String(_) | Value::Object(_) | Value::Array(_) => unsecure(value),
                        other => Value::String(other.to_string()),
                    },
                    secret: false,
                },
            };
            config.insert(key.clone(), entry);
        }
    }
    Ok(Settings {
        encryption_salt,
        config,
    })
}

/// Writes a stack's settings.
pub(crate) fn save(dir: &Path, stack: &str, settings: &Settings) -> Result<(), CliError> {
    /// The file's layout: the salt first, as pulumi writes it.
    #[derive(serde::Serialize)]
    struct File<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        encryptionsalt: Option<&'a str>,
        #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
        config: serde_json::Map<String, Value>,
    }
    let doc = File {
        encryptionsalt: settings.encryption_salt.as_deref(),
        config: settings
            .config
            .iter()
            .map(|(k, e)| (k.clone(), secured(&e.value)))
            .collect(),
    };
    let file = path(dir, stack);
    let text = yaml::to_string(&doc)
        .map_err(|e| CliError::new(format!("writing {}: {e}", file.display())))?;
    let tmp = dir.join(format!(".Pulumi.{stack}.yaml.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| CliError::io("writing", &tmp, &e))?;
    std::fs::rename(&tmp, &file).map_err(|e| CliError::io("renaming", &file, &e))
}

/// Deletes a stack's settings file, as `pulumi stack rm` does without `--preserve-config`.
pub(crate) fn remove(dir: &Path, stack: &str) -> Result<(), CliError> {
    let file = path(dir, stack);
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(CliError::io("removing", &file, &e))
        }
        _ => Ok(()),
    }
}

/// The ciphertext of a `{secure: …}` value.
fn secure(v: &Value) -> Option<&str> {
    match v {
        Value::Object(o) if o.len() == 1 => o.get("secure").and_then(Value::as_str),
        _ => None,
    }
}

/// The fake's sealed form of a ciphertext.
fn sealed(ciphertext: &str) -> Value {
    json!({ secret::SECRET_SIG_KEY: secret::SECRET_SIG, "ciphertext": ciphertext })
}

/// Sealed secrets, at any depth, as `{secure: ciphertext}`.
fn secured(v: &Value) -> Value {
    if secret::is_sealed(v) {
        if let Some(c) = v.get("ciphertext").and_then(Value::as_str) {
            return json!({ "secure": c });
        }
    }
    match v {
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), secured(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(secured).collect()),
        other => other.clone(),
    }
}

/// `{secure: ciphertext}`, at any depth, as sealed secrets.
fn unsecure(v: &Value) -> Value {
    if let Some(c) = secure(v) {
        return sealed(c);
    }
    match v {
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), unsecure(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(unsecure).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_without_a_secret_in_clear() {
        let dir = std::env::temp_dir().join(format!("fake-pulumi-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = BTreeMap::new();
        config.insert(
            "demo:region".to_owned(),
            ConfigEntry {
                value: json!("eu-west-1"),
                secret: false,
            },
        );
        config.insert(
            "demo:token".to_owned(),
            ConfigEntry {
                value: secret::seal(&json!("hunter2")),
                secret: true,
            },
        );
        config.insert(
            "demo:servers".to_owned(),
            ConfigEntry {
                value: json!([{"port": 8080, "key": secret::seal(&json!("k"))}]),
                secret: false,
            },
        );
        let settings = Settings {
            encryption_salt: Some("fakev1:abc".to_owned()),
            config,
        };
        save(&dir, "dev", &settings).unwrap();
        let text = std::fs::read_to_string(dir.join("Pulumi.dev.yaml")).unwrap();
        assert!(text.starts_with("encryptionsalt: fakev1:abc\n"), "{text}");
        assert!(text.contains("demo:region: eu-west-1"), "{text}");
        assert!(text.contains("secure: "), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(load(&dir, "dev").unwrap(), settings);
        remove(&dir, "dev").unwrap();
        assert_eq!(load(&dir, "dev").unwrap(), Settings::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
