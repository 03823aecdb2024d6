//! A stack: configuration, tags, state export and import, outputs and history.
//!
//! The four operations (preview, up, refresh, destroy) live in `operation.rs`.

use std::collections::BTreeMap;
use std::ffi::OsString;

use lift_core::{OutputValue, SecretValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use crate::audit::Auditor;
use crate::cancel::{CancelOptions, CancelOutcome};
use crate::error::{Error, Result};
use crate::names::{StackName, check_key};
use crate::process::{Finished, Invocation, parse_json, parse_secret_json};
use crate::tempdir::private_temp_dir;
use crate::workspace::Workspace;

/// The first CLI whose `config set` takes `--raw` (keep stdin's trailing newlines).
const CONFIG_RAW_SINCE: semver::Version = semver::Version::new(3, 247, 0);

/// The text `pulumi stack output --json` prints in place of a secret value.
const SECRET_SENTINEL: &str = "[secret]";

/// A stack of a [`Workspace`]. Every command names it with `--stack`, so
/// several stacks can be driven at once from one process.
#[derive(Debug, Clone)]
pub struct Stack {
    workspace: Workspace,
    name: StackName,
}

/// A configuration value: plain text, or a secret kept redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigValue {
    /// A plain value.
    Plain(String),
    /// A secret value (stored encrypted by Pulumi).
    Secret(SecretValue),
    /// A secret whose value was not decrypted ([`Stack::config_list`] without
    /// [`ConfigOptions::show_secrets`]).
    HiddenSecret,
}

impl ConfigValue {
    /// Whether the value is secret.
    pub fn is_secret(&self) -> bool {
        matches!(self, ConfigValue::Secret(_) | ConfigValue::HiddenSecret)
    }

    /// The plain value, or `None` for a secret.
    pub fn as_plain(&self) -> Option<&str> {
        match self {
            ConfigValue::Plain(value) => Some(value),
            ConfigValue::Secret(_) | ConfigValue::HiddenSecret => None,
        }
    }
}

/// Options of the config commands.
///
/// ```
/// use lift_pulumi::ConfigOptions;
///
/// let options = ConfigOptions::default().path(true);
/// assert!(options.is_path());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct ConfigOptions {
    path: bool,
    plaintext: bool,
    show_secrets: bool,
}

impl ConfigOptions {
    /// Treats the key as a property path (`--path`), such as `app:servers[0].port`.
    pub fn path(mut self, yes: bool) -> Self {
        self.path = yes;
        self
    }

    /// Stores a plain value even if pulumi's guard takes it for a secret
    /// (`--plaintext`). Without it, pulumi refuses a value that looks like a
    /// secret, and [`Stack::config_set`] fails with [`Error::LooksLikeSecret`].
    pub fn plaintext(mut self, yes: bool) -> Self {
        self.plaintext = yes;
        self
    }

    /// Decrypts secret values in [`Stack::config_list`] (`--show-secrets`).
    /// Without it, secrets list as [`ConfigValue::HiddenSecret`] and the
    /// passphrase or KMS key is never used.
    pub fn show_secrets(mut self, yes: bool) -> Self {
        self.show_secrets = yes;
        self
    }

    /// Whether keys are property paths.
    pub fn is_path(&self) -> bool {
        self.path
    }
}

/// One entry of `pulumi stack history --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateSummary {
    /// The stack's version after the update. DIY backends (file, S3, ...)
    /// do not number their updates and print 0.
    pub version: u64,
    /// `update`, `preview`, `refresh`, `destroy`, ...
    #[serde(default)]
    pub kind: String,
    /// When it started.
    #[serde(default)]
    pub start_time: String,
    /// The update's message.
    #[serde(default)]
    pub message: String,
    /// Environment metadata (git commit, CI system, ...).
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// `succeeded`, `failed` or `in-progress`.
    #[serde(default)]
    pub result: String,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Step counts by operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_changes: Option<BTreeMap<String, i64>>,
    /// A console link, when the backend records one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permalink: Option<String>,
}

#[derive(Deserialize)]
struct RawConfigValue {
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    secret: bool,
}

impl RawConfigValue {
    fn into_value(mut self) -> ConfigValue {
        let text = match self.value.take() {
            Some(Value::String(text)) => Some(text),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        match (self.secret, text) {
            (true, Some(text)) => ConfigValue::Secret(SecretValue::from(text)),
            (true, None) => ConfigValue::HiddenSecret,
            (false, text) => ConfigValue::Plain(text.unwrap_or_default()),
        }
    }
}

impl Stack {
    pub(crate) fn new(workspace: Workspace, name: StackName) -> Self {
        Stack { workspace, name }
    }

    /// The stack's name.
    pub fn name(&self) -> &StackName {
        &self.name
    }

    /// The workspace the stack belongs to.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// Builds the argument list: the words, then `--stack NAME --non-interactive`.
    pub(crate) fn args(&self, words: &[&str]) -> Vec<OsString> {
        let mut args: Vec<OsString> = words.iter().map(OsString::from).collect();
        args.push("--stack".into());
        args.push(self.name.as_str().into());
        args.push("--non-interactive".into());
        args
    }

    /// Runs a stack command and fails on a non-zero exit.
    pub(crate) async fn run_ok(
        &self,
        words: &[&str],
        stdin: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Finished> {
        let invocation = Invocation {
            args: self.args(words),
            stdin,
            timeout: self.workspace.inner.command_timeout,
            ..Invocation::default()
        };
        self.workspace.execute(invocation, Some(&self.name)).await
    }

    /// Reads one config value (`pulumi config get KEY --json`). Secret values come back wrapped.
    pub async fn config_get(&self, key: &str, options: ConfigOptions) -> Result<ConfigValue> {
        check_key("config key", key)?;
        let mut words = vec!["config", "get", key, "--json"];
        if options.path {
            words.push("--path");
        }
        let mut finished = self.run_ok(&words, None).await?;
        let raw: Result<RawConfigValue> = parse_secret_json(&finished.stdout, "pulumi config get");
        finished.stdout.zeroize();
        Ok(raw?.into_value())
    }

    /// Sets a config value. The value goes to pulumi on stdin, never on the
    /// command line: `/proc/PID/cmdline` is readable by every user.
    ///
    /// The value is stored byte for byte, trailing newlines included (a PEM
    /// key keeps its last newline): lift passes `--raw` to CLIs that take it
    /// (3.247 and newer) and, for older ones, adds the one newline pulumi
    /// strips. A value ending in `\r` cannot be kept whole by those older
    /// CLIs, and is refused.
    pub async fn config_set(
        &self,
        key: &str,
        value: &ConfigValue,
        options: ConfigOptions,
    ) -> Result<()> {
        check_key("config key", key)?;
        let (flag, bytes) = match value {
            ConfigValue::Plain(text) => {
                (options.plaintext.then_some("--plaintext"), text.as_bytes())
            }
            ConfigValue::Secret(secret) => (Some("--secret"), secret.expose()),
            ConfigValue::HiddenSecret => {
                return Err(Error::InvalidInput(format!(
                    "cannot set {key} to a hidden secret: give the secret's value"
                )));
            }
        };
        let mut words = vec!["config", "set", key];
        words.extend(flag);
        if options.path {
            words.push("--path");
        }
        let mut stdin = Zeroizing::new(Vec::with_capacity(bytes.len() + 1));
        stdin.extend_from_slice(bytes);
        if self.workspace.cli().version() >= &CONFIG_RAW_SINCE {
            words.push("--raw");
        } else if bytes.last() == Some(&b'\r') {
            return Err(Error::InvalidInput(format!(
                "the value of {key} ends with a carriage return, which pulumi {} strips; keeping it needs `config set --raw`, which needs pulumi {CONFIG_RAW_SINCE} or newer",
                self.workspace.cli().version()
            )));
        } else {
            // Older CLIs strip one trailing newline from stdin: give them one to strip.
            stdin.push(b'\n');
        }
        let audit = Auditor::new(&self.workspace, &self.name, "config.set")
            .detail("key", key)
            .detail("secret", value.is_secret())
            .detail("path", options.path);
        audit
            .run(self.run_ok(&words, Some(stdin)))
            .await
            .map(|_| ())
    }

    /// Removes a config value.
    pub async fn config_remove(&self, key: &str, options: ConfigOptions) -> Result<()> {
        check_key("config key", key)?;
        let mut words = vec!["config", "rm", key];
        if options.path {
            words.push("--path");
        }
        let audit = Auditor::new(&self.workspace, &self.name, "config.rm")
            .detail("key", key)
            .detail("path", options.path);
        audit.run(self.run_ok(&words, None)).await.map(|_| ())
    }

    /// Every config value (`pulumi config --json`). Secrets are decrypted
    /// only with [`ConfigOptions::show_secrets`]; otherwise they list as
    /// [`ConfigValue::HiddenSecret`].
    pub async fn config_list(
        &self,
        options: ConfigOptions,
    ) -> Result<BTreeMap<String, ConfigValue>> {
        let mut words = vec!["config", "--json"];
        if options.show_secrets {
            words.push("--show-secrets");
        }
        let mut finished = self.run_ok(&words, None).await?;
        let raw: Result<BTreeMap<String, RawConfigValue>> =
            parse_secret_json(&finished.stdout, "pulumi config --json");
        finished.stdout.zeroize();
        Ok(raw?.into_iter().map(|(k, v)| (k, v.into_value())).collect())
    }

    /// Reads a tag.
    pub async fn tag_get(&self, name: &str) -> Result<String> {
        check_key("tag name", name)?;
        let finished = self.run_ok(&["stack", "tag", "get", name], None).await?;
        Ok(finished.stdout.trim_end_matches(['\n', '\r']).to_owned())
    }

    /// Sets a tag.
    pub async fn tag_set(&self, name: &str, value: &str) -> Result<()> {
        check_key("tag name", name)?;
        if value.starts_with('-') {
            return Err(Error::InvalidInput(
                "tag values must not start with '-': pulumi would read them as a flag".to_owned(),
            ));
        }
        let audit = Auditor::new(&self.workspace, &self.name, "tag.set")
            .detail("tag", name)
            .detail("value", value);
        audit
            .run(self.run_ok(&["stack", "tag", "set", name, value], None))
            .await
            .map(|_| ())
    }

    /// Removes a tag.
    pub async fn tag_remove(&self, name: &str) -> Result<()> {
        check_key("tag name", name)?;
        let audit = Auditor::new(&self.workspace, &self.name, "tag.rm").detail("tag", name);
        audit
            .run(self.run_ok(&["stack", "tag", "rm", name], None))
            .await
            .map(|_| ())
    }

    /// Every tag (`pulumi stack tag ls --json`).
    pub async fn tag_list(&self) -> Result<BTreeMap<String, String>> {
        let finished = self.run_ok(&["stack", "tag", "ls", "--json"], None).await?;
        parse_json(&finished.stdout, "pulumi stack tag ls --json")
    }

    /// Exports the stack's state (`pulumi stack export`). Secrets stay
    /// encrypted in it. The export is audited: a state file names every
    /// resource and is worth knowing who took.
    pub async fn export(&self) -> Result<Value> {
        let audit = Auditor::new(&self.workspace, &self.name, "stack.export");
        audit
            .run(async {
                let finished = self.run_ok(&["stack", "export"], None).await?;
                parse_json(&finished.stdout, "pulumi stack export")
            })
            .await
    }

    /// Imports a state (`pulumi stack import --file`), through a file in a
    /// private temporary directory that is removed afterwards.
    pub async fn import(&self, state: &Value) -> Result<()> {
        let dir = private_temp_dir()?;
        let path = dir.path().join("state.json");
        let bytes = serde_json::to_vec(state).map_err(|err| {
            Error::InvalidInput(format!("cannot serialize the state to import: {err}"))
        })?;
        write_private(&path, &bytes).await?;
        let file = path.to_string_lossy().into_owned();
        let audit =
            Auditor::new(&self.workspace, &self.name, "stack.import").detail("bytes", bytes.len());
        let result = audit
            .run(self.run_ok(&["stack", "import", "--file", &file], None))
            .await;
        drop(dir);
        result.map(|_| ())
    }

    /// The stack's outputs. Secret outputs are wrapped in [`SecretValue`]:
    /// a string's bytes, or the JSON text of any other value.
    ///
    /// Which outputs are secret is learned from `pulumi stack output --json`,
    /// which prints `[secret]` for them; the values come from a second run
    /// with `--show-secrets`. Both run at once.
    pub async fn outputs(&self) -> Result<BTreeMap<String, OutputValue>> {
        let masked = self.run_ok(&["stack", "output", "--json"], None);
        let revealed = self.run_ok(&["stack", "output", "--json", "--show-secrets"], None);
        let (masked, revealed) = tokio::join!(masked, revealed);
        let masked: BTreeMap<String, Value> =
            parse_json(&masked?.stdout, "pulumi stack output --json")?;
        let mut revealed = revealed?;
        let parsed: Result<BTreeMap<String, Value>> = parse_secret_json(
            &revealed.stdout,
            "pulumi stack output --json --show-secrets",
        );
        revealed.stdout.zeroize();
        Ok(merge_outputs(&masked, parsed?))
    }

    /// The latest `page_size` updates, newest first.
    pub async fn history(&self, page_size: u32) -> Result<Vec<UpdateSummary>> {
        let size = page_size.max(1).to_string();
        let finished = self
            .run_ok(
                &[
                    "stack",
                    "history",
                    "--json",
                    "--page-size",
                    &size,
                    "--page",
                    "1",
                ],
                None,
            )
            .await?;
        parse_json(&finished.stdout, "pulumi stack history --json")
    }

    /// Cancels the update running on this stack. See [`crate::cancel`] for
    /// what that means on each backend.
    pub async fn cancel(&self, options: CancelOptions) -> Result<CancelOutcome> {
        crate::cancel::cancel(self, options).await
    }
}

/// Pairs the masked and revealed outputs: an output whose masked form
/// contains `[secret]` anywhere is secret as a whole (as in Pulumi's Go SDK).
fn merge_outputs(
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

async fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(|err| Error::io(format!("cannot create {}", path.display()), err))?;
    file.write_all(bytes)
        .await
        .map_err(|err| Error::io(format!("cannot write {}", path.display()), err))?;
    file.flush()
        .await
        .map_err(|err| Error::io(format!("cannot write {}", path.display()), err))
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
        let outputs = merge_outputs(&masked, revealed);
        assert!(!outputs["url"].is_secret());
        let OutputValue::Secret(key) = &outputs["key"] else {
            panic!("key should be secret")
        };
        assert_eq!(key.expose(), b"hunter2");
        assert!(outputs["nested"].is_secret());
        assert!(!format!("{outputs:?}").contains("hunter2"));
    }

    #[test]
    fn config_values_keep_secrets_wrapped() {
        let raw: RawConfigValue =
            serde_json::from_str(r#"{"value":"s3cr3t","secret":true}"#).unwrap();
        let value = raw.into_value();
        assert!(value.is_secret());
        assert_eq!(value.as_plain(), None);
        assert!(!format!("{value:?}").contains("s3cr3t"));
        let raw: RawConfigValue =
            serde_json::from_str(r#"{"value":"us-east-1","secret":false}"#).unwrap();
        assert_eq!(raw.into_value().as_plain(), Some("us-east-1"));
    }
}
