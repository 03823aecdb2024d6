//! A stack and every command on it: configuration, tags, state export and
//! import, outputs, history, cancel, and the four operations.
//!
//! The commands that need more than a few lines live in their own modules,
//! which take the workspace's session and the stack's name:
//! `operation.rs` (preview, up, refresh, destroy), `outputs.rs` and
//! `cancel.rs`.

use std::collections::BTreeMap;

use lift_core::{DeploySummary, Deployer, OutputValue, SecretValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use crate::audit::Auditor;
use crate::cancel::{CancelOptions, CancelOutcome};
use crate::error::{Error, Result};
use crate::names::{StackName, check_key};
use crate::operation::{OpOptions, OpResult, Operation};
use crate::process::{Finished, parse_json, parse_secret_json};
use crate::session::Session;
use crate::tempdir::private_temp_dir;
use crate::workspace::Workspace;
use crate::{cancel, operation, outputs};

/// The first CLI whose `config set` takes `--raw` (keep stdin's trailing newlines).
const CONFIG_RAW_SINCE: semver::Version = semver::Version::new(3, 247, 0);

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

    fn session(&self) -> &Session {
        self.workspace.session()
    }

    /// Runs a stack command (`WORDS --stack NAME --non-interactive`) and fails on a non-zero exit.
    pub(crate) async fn run_ok(
        &self,
        words: &[&str],
        stdin: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Finished> {
        self.session().run_ok(words, Some(&self.name), stdin).await
    }

    /// Computes the changes an update would make.
    pub async fn preview(&self, options: OpOptions) -> Result<OpResult> {
        self.operate(Operation::Preview, options).await
    }

    /// Creates or updates the stack's resources.
    pub async fn up(&self, options: OpOptions) -> Result<OpResult> {
        self.operate(Operation::Up, options).await
    }

    /// Reconciles the state with what exists in the cloud.
    pub async fn refresh(&self, options: OpOptions) -> Result<OpResult> {
        self.operate(Operation::Refresh, options).await
    }

    /// Deletes every resource of the stack.
    pub async fn destroy(&self, options: OpOptions) -> Result<OpResult> {
        self.operate(Operation::Destroy, options).await
    }

    /// Runs one operation. Dropping the future interrupts pulumi and removes the event log.
    ///
    /// A completed update stays completed: when reading its outputs or the
    /// history afterwards fails, the result carries a warning instead of an
    /// error. [`Stack::cancel`] on the same workspace interrupts it.
    pub async fn operate(&self, op: Operation, options: OpOptions) -> Result<OpResult> {
        operation::run(self.session(), &self.name, op, options).await
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
        let audit = Auditor::new(self.session(), &self.name, "config.set")
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
        let audit = Auditor::new(self.session(), &self.name, "config.rm")
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
        let audit = Auditor::new(self.session(), &self.name, "tag.set")
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
        let audit = Auditor::new(self.session(), &self.name, "tag.rm").detail("tag", name);
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
        let audit = Auditor::new(self.session(), &self.name, "stack.export");
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
            Auditor::new(self.session(), &self.name, "stack.import").detail("bytes", bytes.len());
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
        outputs::read(self.session(), &self.name).await
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

    /// Cancels the update running on this stack. See [`CancelOutcome`] for
    /// what it did on each backend.
    pub async fn cancel(&self, options: CancelOptions) -> Result<CancelOutcome> {
        cancel::cancel(&self.workspace, &self.name, options).await
    }
}

#[async_trait::async_trait]
impl Deployer for Stack {
    async fn preview(&self) -> lift_core::Result<DeploySummary> {
        Ok(Stack::preview(self, OpOptions::default()).await?.summary)
    }

    async fn up(&self) -> lift_core::Result<DeploySummary> {
        Ok(Stack::up(self, OpOptions::default()).await?.summary)
    }

    async fn destroy(&self) -> lift_core::Result<DeploySummary> {
        Ok(Stack::destroy(self, OpOptions::default()).await?.summary)
    }

    async fn outputs(&self) -> lift_core::Result<BTreeMap<String, OutputValue>> {
        Ok(Stack::outputs(self).await?)
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
