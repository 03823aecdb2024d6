//! The project config file, `lift.toml`: its shape, where it is found, and
//! how it is read.
//!
//! ```toml
//! default_environment = "dev"
//!
//! [environments.dev]
//! secrets = { path = ".lift/dev/secrets", key_file = ".lift/dev/secrets.key" }
//! audit = { log = ".lift/dev/audit.jsonl", key_file = ".lift/dev/audit.key" }
//! deploy = { project_dir = "infra", stack = "dev" }
//!
//! [environments.prod]
//! class = "production"
//! secrets = { aws = { region = "eu-west-1", prefix = "prod/" } }
//! audit = { log = "/var/log/lift/audit.jsonl", key_file = "/etc/lift/audit.key" }
//! deploy = { project_dir = "infra", stack = "prod", backend_url = "s3://state-bucket" }
//! health = { url = "https://api.example.com/health" }
//! ```
//!
//! Relative paths are relative to the directory of the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lift::{Error, ErrorKind};
use serde::Deserialize;
use toml::Spanned;

/// The name of the project config file lift looks for.
pub(crate) const FILE_NAME: &str = "lift.toml";

/// The largest config file lift reads; anything larger is not a hand-written config.
const MAX_LEN: u64 = 1024 * 1024;

/// The whole of `lift.toml`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "lift.toml", description = "The lift project config file")]
pub(crate) struct ProjectConfig {
    /// The environment used when neither `--env` nor `LIFT_ENV` selects one.
    #[serde(default)]
    pub(crate) default_environment: Option<String>,
    /// The named environments.
    #[serde(default)]
    pub(crate) environments: BTreeMap<String, EnvironmentConfig>,
}

/// One `[environments.NAME]` table.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnvironmentConfig {
    /// `development` (the default) or `production`. A production-class
    /// environment turns every rule of its policy on.
    #[serde(default)]
    #[schemars(with = "Option<EnvironmentClass>")]
    pub(crate) class: Option<Spanned<EnvironmentClass>>,
    /// The secret store.
    #[serde(default)]
    pub(crate) secrets: Option<lift::secrets::StoreSettings>,
    /// The audit trail.
    #[serde(default)]
    pub(crate) audit: Option<lift::audit::AuditSettings>,
    /// The Pulumi project and stack.
    #[serde(default)]
    pub(crate) deploy: Option<lift::pulumi::DeploySettings>,
    /// The service's health endpoint.
    #[serde(default)]
    pub(crate) health: Option<lift::monitor::HealthSettings>,
    /// Rules set one by one; each overrides what the class implies.
    #[serde(default)]
    pub(crate) policy: PolicyConfig,
}

/// An environment's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EnvironmentClass {
    /// Anything goes.
    #[default]
    Development,
    /// Every policy rule is on unless the file turns it off.
    Production,
}

impl EnvironmentClass {
    /// The class as the file spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EnvironmentClass::Development => "development",
            EnvironmentClass::Production => "production",
        }
    }
}

/// The `[environments.NAME.policy]` table.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyConfig {
    /// Refuse an unencrypted (`--plaintext`) secret store.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub(crate) refuse_plaintext_store: Option<Spanned<bool>>,
    /// Refuse fault injection (`lift secrets rotate --inject-fault`).
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub(crate) refuse_fault_injection: Option<Spanned<bool>>,
    /// Refuse `lift audit verify --allow-unanchored`.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub(crate) refuse_allow_unanchored: Option<Spanned<bool>>,
    /// Run no command that changes state without an audit log.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub(crate) require_audit_log: Option<Spanned<bool>>,
    /// Make `lift deploy destroy` ask for the stack name to be typed (or,
    /// without a terminal, need `--yes --confirm-stack NAME`).
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub(crate) confirm_destroy: Option<Spanned<bool>>,
}

/// A config file that was found and read.
#[derive(Debug)]
pub(crate) struct LoadedConfig {
    /// The file.
    pub(crate) path: PathBuf,
    /// Its text, kept to turn byte offsets into line numbers.
    text: String,
    /// What it says.
    pub(crate) config: ProjectConfig,
}

impl LoadedConfig {
    /// The directory relative paths in the file are relative to.
    pub(crate) fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// `path:line` of a byte offset in the file.
    pub(crate) fn location(&self, offset: usize) -> String {
        let line = self
            .text
            .as_bytes()
            .get(..offset)
            .map_or(0, |before| before.iter().filter(|&&b| b == b'\n').count())
            + 1;
        format!("{}:{line}", self.path.display())
    }

    /// Resolves a path written in the file against the file's directory.
    pub(crate) fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.dir().join(path)
        }
    }
}

/// Finds and reads the project config: `explicit` (`--config`), or the
/// nearest `lift.toml` in `start` or one of its parents. `Ok(None)` when
/// there is none to find.
pub(crate) fn load(explicit: Option<&Path>, start: &Path) -> lift::Result<Option<LoadedConfig>> {
    let path = match explicit {
        Some(path) => {
            if !path.is_file() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "the config file {} does not exist or is not a file; check --config / LIFT_CONFIG",
                        path.display()
                    ),
                ));
            }
            path.to_path_buf()
        }
        None => match find(start) {
            Some(path) => path,
            None => return Ok(None),
        },
    };
    read(&path).map(Some)
}

/// The nearest `lift.toml` in `start` or its parents.
fn find(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}

/// Reads and parses one config file.
fn read(path: &Path) -> lift::Result<LoadedConfig> {
    let bad = |what: String| Error::new(ErrorKind::InvalidInput, what);
    let len = std::fs::metadata(path)
        .map_err(|err| bad(format!("cannot read {}: {err}", path.display())))?
        .len();
    if len > MAX_LEN {
        return Err(bad(format!(
            "{} is {len} bytes; a lift config file may be at most {MAX_LEN}",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|err| bad(format!("cannot read {}: {err}", path.display())))?;
    let config: ProjectConfig = toml::from_str(&text).map_err(|err| {
        let line = err.span().map(|span| {
            text.as_bytes()
                .get(..span.start)
                .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
                + 1
        });
        let place = match line {
            Some(line) => format!("{}:{line}", path.display()),
            None => path.display().to_string(),
        };
        bad(format!(
            "{place}: {}; see docs/operations.md#environments for the file's shape",
            err.message()
        ))
    })?;
    // An absolute path keeps `env show` and relative paths unambiguous
    // whatever directory a command later changes to.
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(LoadedConfig { path, text, config })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join(FILE_NAME);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn finds_the_nearest_file_from_a_subdirectory() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "[environments.dev]\n");
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let loaded = load(None, &sub).unwrap().unwrap();
        assert_eq!(
            loaded.path.canonicalize().unwrap(),
            dir.path().join(FILE_NAME).canonicalize().unwrap()
        );
        assert!(loaded.config.environments.contains_key("dev"));
    }

    #[test]
    fn a_missing_explicit_file_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(Some(&dir.path().join("nope.toml")), dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("nope.toml"), "{err}");
    }

    #[test]
    fn a_typo_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "[environments.prod]\nclass = \"production\"\nsecrets = { paht = \"x\" }\n",
        );
        let err = load(Some(&path), dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("lift.toml:3"), "{err}");
        assert!(err.message().contains("paht"), "{err}");
    }

    #[test]
    fn locations_and_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "[environments.prod]\n\nclass = \"production\"\naudit = { log = \"a.jsonl\" }\n",
        );
        let loaded = load(Some(&path), dir.path()).unwrap().unwrap();
        let prod = &loaded.config.environments["prod"];
        let class = prod.class.as_ref().unwrap();
        assert_eq!(*class.get_ref(), EnvironmentClass::Production);
        assert!(loaded.location(class.span().start).ends_with("lift.toml:3"));
        let log = prod.audit.as_ref().unwrap().log.as_deref().unwrap();
        assert!(loaded.resolve(log).starts_with(loaded.dir()));
    }
}
