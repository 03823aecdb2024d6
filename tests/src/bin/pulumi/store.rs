//! The fake backend: where stacks live, their JSON state files, locks and the selected stack.
//!
//! Layout under the state root (see the README):
//! - `.pulumi/stacks/<project>/<stack>.json`: one [`StackState`] per stack;
//! - `.pulumi/locks/<project>/<stack>/<id>.json`: a lock per running update, as the diy backend does;
//! - `.pulumi/workspaces/<project>.json`: the selected ("current") stack.
//!
//! The state root is the directory of `PULUMI_BACKEND_URL=file://<dir>` (a "diy" backend, like the real
//! file backend), or `$PULUMI_HOME/fake-cloud` when the URL is absent or `https://…` (a "cloud" backend,
//! which prints permalinks and reports lock conflicts as HTTP 409 like the Pulumi Cloud does).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock;
use crate::error::CliError;
use crate::settings::{self, ConfigEntry};

/// Which kind of backend the state root emulates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BackendKind {
    /// A `file://` backend: locks conflict with "the stack is currently locked by".
    Diy,
    /// A Pulumi Cloud look-alike: permalinks, and lock conflicts as `[409] Conflict`.
    Cloud {
        /// The console URL, e.g. `https://app.pulumi.com`.
        console: String,
    },
}

/// The resolved backend.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    /// The state root directory.
    pub(crate) root: PathBuf,
    /// The URL that `whoami` reports.
    pub(crate) url: String,
    /// The emulated backend kind.
    pub(crate) kind: BackendKind,
    /// The project's directory, where each stack's `Pulumi.<stack>.yaml` holds its config.
    pub(crate) project_dir: Option<PathBuf>,
}

impl Backend {
    /// Resolves the backend from `PULUMI_BACKEND_URL` and `PULUMI_HOME`.
    pub(crate) fn from_env() -> Result<Backend, CliError> {
        let home_dir = std::env::var_os("HOME").map(PathBuf::from);
        let pulumi_home = match std::env::var_os("PULUMI_HOME") {
            Some(h) if !h.is_empty() => PathBuf::from(h),
            _ => match &home_dir {
                Some(h) => h.join(".pulumi"),
                None => {
                    return Err(CliError::new(
                        "could not find the Pulumi home directory: set PULUMI_HOME or HOME",
                    ));
                }
            },
        };
        let url = std::env::var("PULUMI_BACKEND_URL").unwrap_or_default();
        if let Some(rest) = url.strip_prefix("file://") {
            let dir = if rest == "~" || rest.is_empty() {
                home_dir
                    .ok_or_else(|| CliError::new("could not resolve file://~: HOME is not set"))?
            } else if let Some(sub) = rest.strip_prefix("~/") {
                home_dir
                    .ok_or_else(|| CliError::new("could not resolve file://~: HOME is not set"))?
                    .join(sub)
            } else {
                PathBuf::from(rest.split('?').next().unwrap_or(rest))
            };
            if !dir.is_dir() {
                return Err(CliError::new(format!(
                    "unable to open bucket {url}: open {}: no such file or directory",
                    dir.display()
                )));
            }
            return Ok(Backend {
                root: dir,
                url,
                kind: BackendKind::Diy,
                project_dir: None,
            });
        }
        if !url.is_empty() && !url.starts_with("https://") && !url.starts_with("http://") {
            return Err(CliError::new(format!(
                "the fake pulumi does not support the backend URL {url}; use file://<dir> or https://"
            )));
        }
        let api = if url.is_empty() {
            "https://api.pulumi.com".to_owned()
        } else {
            url.clone()
        };
        let console = api.replacen("://api.", "://app.", 1);
        Ok(Backend {
            root: pulumi_home.join("fake-cloud"),
            url: api,
            kind: BackendKind::Cloud { console },
            project_dir: None,
        })
    }

    /// The same backend, reading and writing stack config in `dir`'s `Pulumi.<stack>.yaml` files.
    pub(crate) fn with_project_dir(mut self, dir: Option<PathBuf>) -> Backend {
        self.project_dir = dir;
        self
    }

    fn dot(&self) -> PathBuf {
        self.root.join(".pulumi")
    }

    /// The path of a stack's state file.
    pub(crate) fn stack_path(&self, project: &str, stack: &str) -> PathBuf {
        self.dot()
            .join("stacks")
            .join(project)
            .join(format!("{stack}.json"))
    }

    /// The lock directory of a stack.
    pub(crate) fn lock_dir(&self, project: &str, stack: &str) -> PathBuf {
        self.dot().join("locks").join(project).join(stack)
    }

    /// Lists stack names of a project, sorted.
    pub(crate) fn list_stacks(&self, project: &str) -> Result<Vec<String>, CliError> {
        let dir = self.dot().join("stacks").join(project);
        let mut names = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
            Err(e) => return Err(CliError::io("listing stacks", &dir, &e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".json") {
                names.push(stem.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Loads a stack, failing like Pulumi when it does not exist.
    pub(crate) fn load(&self, project: &str, stack: &str) -> Result<StackState, CliError> {
        let path = self.stack_path(project, stack);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::stack_not_found(stack));
            }
            Err(e) => return Err(CliError::io("reading stack", &path, &e)),
        };
        let mut state: StackState = serde_json::from_str(&text).map_err(|e| {
            CliError::new(format!(
                "could not deserialize deployment: {}: {e}",
                path.display()
            ))
        })?;
        if let Some(dir) = &self.project_dir {
            let settings = settings::load(dir, stack)?;
            state.config = settings.config;
            state.passphrase_check = settings.encryption_salt;
        }
        Ok(state)
    }

    /// Whether a stack exists.
    pub(crate) fn exists(&self, project: &str, stack: &str) -> bool {
        self.stack_path(project, stack).is_file()
    }

    /// Saves a stack atomically (write to a temporary file, then rename).
    pub(crate) fn save(&self, state: &StackState) -> Result<(), CliError> {
        let path = self.stack_path(&state.project, &state.name);
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| CliError::io("creating", dir, &e))?;
        let tmp = dir.join(format!(".{}.{}.tmp", state.name, std::process::id()));
        let mut stored = state.clone();
        if let Some(project_dir) = &self.project_dir {
            // As in pulumi, config and the passphrase's salt live in the project's
            // Pulumi.<stack>.yaml, not in the state.
            settings::save(
                project_dir,
                &state.name,
                &settings::Settings {
                    encryption_salt: state.passphrase_check.clone(),
                    config: state.config.clone(),
                },
            )?;
            stored.config.clear();
            stored.passphrase_check = None;
        }
        let text = serde_json::to_string_pretty(&stored)
            .map_err(|e| CliError::new(format!("serializing stack: {e}")))?;
        fs::write(&tmp, text).map_err(|e| CliError::io("writing", &tmp, &e))?;
        fs::rename(&tmp, &path).map_err(|e| CliError::io("renaming", &path, &e))
    }

    /// Deletes a stack's state file, and its `Pulumi.<stack>.yaml` unless `keep_config`.
    pub(crate) fn remove(
        &self,
        project: &str,
        stack: &str,
        keep_config: bool,
    ) -> Result<(), CliError> {
        let path = self.stack_path(project, stack);
        fs::remove_file(&path).map_err(|e| CliError::io("removing", &path, &e))?;
        match &self.project_dir {
            Some(dir) if !keep_config => settings::remove(dir, stack),
            _ => Ok(()),
        }
    }

    fn current_path(&self, project: &str) -> PathBuf {
        self.dot()
            .join("workspaces")
            .join(format!("{project}.json"))
    }

    /// The selected stack of a project, if any.
    pub(crate) fn current(&self, project: &str) -> Option<String> {
        let text = fs::read_to_string(self.current_path(project)).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v.get("stack")?.as_str().map(str::to_owned)
    }

    /// Selects (or, with `None`, unselects) the current stack.
    pub(crate) fn set_current(&self, project: &str, stack: Option<&str>) -> Result<(), CliError> {
        let path = self.current_path(project);
        match stack {
            None => match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(CliError::io("removing", &path, &e))
                }
                _ => Ok(()),
            },
            Some(s) => {
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir).map_err(|e| CliError::io("creating", dir, &e))?;
                }
                fs::write(&path, serde_json::json!({ "stack": s }).to_string())
                    .map_err(|e| CliError::io("writing", &path, &e))
            }
        }
    }

    /// Takes the update lock of a stack, failing like the emulated backend when another update holds it.
    pub(crate) fn lock(&self, project: &str, stack: &str) -> Result<Lock, CliError> {
        let dir = self.lock_dir(project, stack);
        fs::create_dir_all(&dir).map_err(|e| CliError::io("creating", &dir, &e))?;
        let existing = lock_files(&dir);
        if !existing.is_empty() {
            return Err(self.conflict(&existing));
        }
        let id = format!("{:x}-{:x}", clock::now_millis(), std::process::id());
        let path = dir.join(format!("{id}.json"));
        let content = serde_json::json!({
            "pid": std::process::id(),
            "username": username(),
            "hostname": hostname(),
            "timestamp": clock::format_millis(clock::now_millis()),
        });
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| CliError::io("creating lock", &path, &e))?;
        file.write_all(content.to_string().as_bytes())
            .map_err(|e| CliError::io("writing lock", &path, &e))?;
        // Two processes may have passed the emptiness check at once: the later one backs off.
        let all = lock_files(&dir);
        if all.len() > 1 {
            let mine_first = all.iter().min() == Some(&path);
            if !mine_first {
                let _ = fs::remove_file(&path);
                return Err(self.conflict(&all));
            }
        }
        Ok(Lock { path })
    }

    fn conflict(&self, locks: &[PathBuf]) -> CliError {
        match &self.kind {
            BackendKind::Cloud { .. } => {
                CliError::new("[409] Conflict: Another update is currently in progress.")
            }
            BackendKind::Diy => {
                let mut msg = format!(
                    "the stack is currently locked by {} lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.",
                    locks.len()
                );
                for l in locks {
                    let who = fs::read_to_string(l)
                        .ok()
                        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                        .map(|v| {
                            format!(
                                "created by {}@{} (pid {}) at {}",
                                v["username"].as_str().unwrap_or("?"),
                                v["hostname"].as_str().unwrap_or("?"),
                                v["pid"],
                                v["timestamp"].as_str().unwrap_or("?")
                            )
                        })
                        .unwrap_or_else(|| "created by an unknown process".to_owned());
                    msg.push_str(&format!("\n  file://{}: {who}", l.display()));
                }
                CliError::new(msg)
            }
        }
    }

    /// Removes every lock of a stack (what `pulumi cancel` does on a diy backend). Returns how many.
    pub(crate) fn break_locks(&self, project: &str, stack: &str) -> Result<usize, CliError> {
        let dir = self.lock_dir(project, stack);
        let locks = lock_files(&dir);
        for l in &locks {
            fs::remove_file(l).map_err(|e| CliError::io("removing lock", l, &e))?;
        }
        Ok(locks.len())
    }

    /// Whether the stack currently has an update in progress.
    pub(crate) fn is_locked(&self, project: &str, stack: &str) -> bool {
        !lock_files(&self.lock_dir(project, stack)).is_empty()
    }

    /// The console URL of a stack, for cloud backends.
    pub(crate) fn stack_url(&self, project: &str, stack: &str) -> Option<String> {
        match &self.kind {
            BackendKind::Cloud { console } => {
                Some(format!("{console}/{}/{project}/{stack}", organization()))
            }
            BackendKind::Diy => None,
        }
    }
}

fn lock_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// An update lock; released on drop.
#[derive(Debug)]
pub(crate) struct Lock {
    path: PathBuf,
}

impl Lock {
    /// Whether the lock file still exists (`pulumi cancel` deletes it).
    pub(crate) fn still_held(&self) -> bool {
        self.path.exists()
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A non-reversible fingerprint of a passphrase (FNV-1a), to detect a wrong one.
pub(crate) fn fingerprint(passphrase: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in passphrase.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The user name `whoami` reports: `FAKE_PULUMI_USER`, else, as pulumi on a diy backend, the OS
/// account running the process.
pub(crate) fn username() -> String {
    std::env::var("FAKE_PULUMI_USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "fake-user".to_owned())
}

/// The organization of a cloud backend.
pub(crate) fn organization() -> String {
    std::env::var("FAKE_PULUMI_ORG")
        .ok()
        .filter(|o| !o.is_empty())
        .unwrap_or_else(username)
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// One resource in a stack's state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ResourceState {
    /// The resource URN.
    pub(crate) urn: String,
    /// The resource type token.
    #[serde(rename = "type")]
    pub(crate) ty: String,
    /// Whether a provider manages it (custom) or it is a component/the stack.
    pub(crate) custom: bool,
    /// The provider-assigned ID (empty for components).
    #[serde(default)]
    pub(crate) id: String,
    /// The parent URN (empty for the stack).
    #[serde(default)]
    pub(crate) parent: String,
    /// Input properties; secret values are sealed.
    #[serde(default)]
    pub(crate) inputs: serde_json::Map<String, Value>,
    /// Output properties; secret values are sealed.
    #[serde(default)]
    pub(crate) outputs: serde_json::Map<String, Value>,
    /// The provider reference (empty for components).
    #[serde(default)]
    pub(crate) provider: String,
    /// Whether deletion is refused.
    #[serde(default)]
    pub(crate) protect: bool,
    /// URNs this resource depends on.
    #[serde(default)]
    pub(crate) dependencies: Vec<String>,
    /// Creation time (RFC 5424).
    #[serde(default)]
    pub(crate) created: String,
    /// Last modification time (RFC 5424).
    #[serde(default)]
    pub(crate) modified: String,
}

/// One entry of `pulumi stack history`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct UpdateRecord {
    /// The update version, counting from 1.
    pub(crate) version: i64,
    /// `update`, `refresh`, `destroy` or `import`.
    pub(crate) kind: String,
    /// Unix milliseconds.
    pub(crate) start_millis: i64,
    /// Unix milliseconds, once finished.
    pub(crate) end_millis: Option<i64>,
    /// The `--message`.
    pub(crate) message: String,
    /// Environment metadata.
    pub(crate) environment: BTreeMap<String, String>,
    /// The configuration used.
    pub(crate) config: BTreeMap<String, ConfigEntry>,
    /// `succeeded`, `failed` or `in-progress`.
    pub(crate) result: String,
    /// Steps by operation.
    pub(crate) resource_changes: BTreeMap<String, i64>,
}

/// The whole state of one stack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct StackState {
    /// The stack name.
    pub(crate) name: String,
    /// The project name.
    pub(crate) project: String,
    /// Configuration by fully qualified key (`project:key`).
    #[serde(default)]
    pub(crate) config: BTreeMap<String, ConfigEntry>,
    /// Stack tags.
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
    /// Resources in dependency order, the stack resource first.
    #[serde(default)]
    pub(crate) resources: Vec<ResourceState>,
    /// Update history, oldest first.
    #[serde(default)]
    pub(crate) history: Vec<UpdateRecord>,
    /// Unix milliseconds of the last finished update.
    #[serde(default)]
    pub(crate) last_update_millis: Option<i64>,
    /// The secrets provider named at `stack init`.
    #[serde(default)]
    pub(crate) secrets_provider: String,
    /// A fingerprint of the passphrase given at `stack init` (only with `FAKE_PULUMI_REQUIRE_PASSPHRASE`).
    #[serde(default)]
    pub(crate) passphrase_check: Option<String>,
}

impl StackState {
    /// A new, empty stack.
    pub(crate) fn new(project: &str, name: &str) -> StackState {
        StackState {
            name: name.to_owned(),
            project: project.to_owned(),
            config: BTreeMap::new(),
            tags: BTreeMap::new(),
            resources: Vec::new(),
            history: Vec::new(),
            last_update_millis: None,
            secrets_provider: "passphrase".to_owned(),
            passphrase_check: None,
        }
    }

    /// The stack resource, if the stack has been deployed.
    pub(crate) fn stack_resource(&self) -> Option<&ResourceState> {
        self.resources
            .iter()
            .find(|r| r.ty == "pulumi:pulumi:Stack")
    }

    /// The next history version.
    pub(crate) fn next_version(&self) -> i64 {
        self.history.iter().map(|h| h.version).max().unwrap_or(0) + 1
    }
}
