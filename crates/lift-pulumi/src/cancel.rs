//! Cancelling the update that runs on a stack, truthfully on every backend.
//!
//! `pulumi cancel` means different things on different backends:
//!
//! - On the Pulumi Cloud, the service cancels the running update.
//! - On a DIY backend (`file://`, `s3://`, `gs://`, `azblob://`, `postgres://`),
//!   it only deletes the stack's lock files. An update that is running goes
//!   on, and a second update started then can corrupt the state.
//!
//! So [`crate::Stack::cancel`] does this, in order:
//!
//! 1. An operation this [`crate::Workspace`] runs on the stack is interrupted
//!    (SIGINT to its pulumi, which stops after the steps in flight and
//!    releases the lock).
//! 2. On a `file://` backend, the lock files are read. A pulumi on this host
//!    that lift started (its environment carries [`OWNER_ENV`]) is sent
//!    SIGINT, and lift waits for it to stop. A live pulumi that lift did not
//!    start is not touched: the call fails with [`Error::UpdateRunning`]
//!    unless [`CancelOptions::force`] is set.
//! 3. Otherwise lift runs `pulumi cancel --yes` and says what that did: on
//!    DIY backends, it broke the lock, and the update, if any, may still run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::audit::Auditor;
use crate::error::{Error, Result};
use crate::names::StackName;
use crate::process::OWNER_ENV;
use crate::workspace::Workspace;

/// Options of [`crate::Stack::cancel`].
///
/// ```
/// use std::time::Duration;
/// use lift_pulumi::CancelOptions;
///
/// let options = CancelOptions::default().force(true).wait(Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct CancelOptions {
    force: bool,
    wait: Duration,
}

impl Default for CancelOptions {
    fn default() -> Self {
        CancelOptions {
            force: false,
            wait: Duration::from_secs(120),
        }
    }
}

impl CancelOptions {
    /// Breaks the lock even when a live pulumi that lift did not start holds it.
    pub fn force(mut self, yes: bool) -> Self {
        self.force = yes;
        self
    }

    /// How long to wait for an interrupted pulumi to stop (default 2 minutes).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }
}

/// Who holds a DIY backend's stack lock, from its lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The pulumi process.
    pub pid: u32,
    /// The user it runs as.
    #[serde(default)]
    pub username: String,
    /// The host it runs on.
    #[serde(default)]
    pub hostname: String,
    /// When it took the lock.
    #[serde(default)]
    pub timestamp: String,
    /// Whether it is alive: `None` when it runs on another host.
    #[serde(skip_deserializing)]
    pub alive: Option<bool>,
    /// Whether lift started it.
    #[serde(skip_deserializing)]
    pub lift_owned: bool,
    /// The lift process that started it, when that process cancels cleanly on SIGINT.
    #[serde(skip_deserializing)]
    pub interruptible_owner: Option<u32>,
}

/// What [`crate::Stack::cancel`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CancelOutcome {
    /// Operations this workspace ran on the stack were interrupted.
    Interrupted {
        /// How many.
        operations: usize,
    },
    /// An update that lift started on this host was interrupted: the lift
    /// process that runs it (when it cancels cleanly on SIGINT, as the `lift`
    /// CLI does), or else pulumi itself, was sent SIGINT.
    Signalled {
        /// The process that was signalled.
        pid: u32,
        /// Whether the update's pulumi stopped within the wait.
        stopped: bool,
    },
    /// The Pulumi Cloud cancelled the running update.
    CancelledByBackend,
    /// The DIY backend's lock was deleted. The update, if one was running,
    /// may still be running.
    LockBroken {
        /// The lock holders lift could read (none on non-file backends).
        holders: Vec<LockHolder>,
        /// Whether lift could read the locks (only on `file://` backends).
        locks_readable: bool,
    },
}

impl CancelOutcome {
    /// One sentence saying what happened, for people.
    pub fn describe(&self, stack: &str) -> String {
        match self {
            CancelOutcome::Interrupted { operations } => format!(
                "interrupted {operations} operation(s) this process ran on stack {stack}; pulumi stops after the steps in flight and releases the lock"
            ),
            CancelOutcome::Signalled { pid, stopped: true } => format!(
                "interrupted the update on stack {stack} (pulumi pid {pid}, started by lift); it stopped and released the lock"
            ),
            CancelOutcome::Signalled {
                pid,
                stopped: false,
            } => format!(
                "sent an interrupt to the update on stack {stack} (pulumi pid {pid}, started by lift); it has not stopped yet, so the stack stays locked until it does"
            ),
            CancelOutcome::CancelledByBackend => {
                format!("the backend cancelled the update running on stack {stack}")
            }
            CancelOutcome::LockBroken {
                holders,
                locks_readable,
            } => {
                let running = holders.iter().any(|h| h.alive != Some(false));
                if *locks_readable && holders.is_empty() {
                    format!("stack {stack} was not locked; nothing was running")
                } else if *locks_readable && !running {
                    format!(
                        "broke the stale lock of stack {stack}; the process that held it is gone"
                    )
                } else {
                    format!(
                        "broke the lock of stack {stack}; this backend cannot stop a running update, so an update, if one was running, may still be running: make sure it has ended before you start another"
                    )
                }
            }
        }
    }

    /// `interrupted`, `signalled`, `cancelled_by_backend` or `lock_broken`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CancelOutcome::Interrupted { .. } => "interrupted",
            CancelOutcome::Signalled { .. } => "signalled",
            CancelOutcome::CancelledByBackend => "cancelled_by_backend",
            CancelOutcome::LockBroken { .. } => "lock_broken",
        }
    }
}

/// Cancels the update running on `stack` of `workspace`, audited.
pub(crate) async fn cancel(
    workspace: &Workspace,
    stack: &StackName,
    options: CancelOptions,
) -> Result<CancelOutcome> {
    let audit = Auditor::new(workspace.session(), stack, "cancel").detail("force", options.force);
    audit.started().await?;
    let result = cancel_unaudited(workspace, stack, options).await;
    match &result {
        Ok(outcome) => {
            audit
                .succeeded(vec![("outcome", outcome.as_str().into())])
                .await;
        }
        Err(err) => audit.failed(err, Vec::new()).await,
    }
    result
}

async fn cancel_unaudited(
    workspace: &Workspace,
    stack: &StackName,
    options: CancelOptions,
) -> Result<CancelOutcome> {
    let session = workspace.session();
    let operations = session.cancel_running(stack);
    if operations > 0 {
        return Ok(CancelOutcome::Interrupted { operations });
    }
    let url = workspace.whoami().await?.url;
    let Some(diy) = DiyBackend::from_url(&url, workspace.cwd()) else {
        session
            .run_ok(&["cancel", "--yes"], Some(stack), None)
            .await?;
        return Ok(CancelOutcome::CancelledByBackend);
    };
    let holders = match &diy.local_root {
        Some(root) => {
            let project = project_of(stack, workspace.cwd());
            read_lock_holders(root, project.as_deref(), stack.stack())?
        }
        None => Vec::new(),
    };
    if !options.force {
        if let Some(owned) = holders
            .iter()
            .find(|h| h.alive == Some(true) && h.lift_owned)
        {
            let signalled = owned.interruptible_owner.unwrap_or(owned.pid);
            let stopped = interrupt_and_wait(signalled, owned.pid, options.wait).await;
            return Ok(CancelOutcome::Signalled {
                pid: signalled,
                stopped,
            });
        }
        if let Some(live) = holders.iter().find(|h| h.alive == Some(true)) {
            return Err(Error::UpdateRunning {
                stack: stack.to_string(),
                pid: live.pid,
                hostname: live.hostname.clone(),
            });
        }
    }
    session
        .run_ok(&["cancel", "--yes"], Some(stack), None)
        .await?;
    Ok(CancelOutcome::LockBroken {
        holders,
        locks_readable: diy.local_root.is_some(),
    })
}

/// A DIY backend, and its root directory when it is a local one.
#[derive(Debug, PartialEq, Eq)]
struct DiyBackend {
    local_root: Option<PathBuf>,
}

impl DiyBackend {
    fn from_url(url: &str, cwd: &Path) -> Option<Self> {
        let scheme = url.split_once("://").map(|(scheme, _)| scheme)?;
        match scheme {
            "file" => {
                let rest = &url["file://".len()..];
                let path = rest.split(['?', '#']).next().unwrap_or(rest);
                let root = if let Some(home_relative) = path.strip_prefix('~') {
                    std::env::var_os("HOME")
                        .map(PathBuf::from)
                        .map(|home| home.join(home_relative.trim_start_matches('/')))
                } else if path.starts_with('/') {
                    Some(PathBuf::from(path))
                } else {
                    Some(cwd.join(path))
                };
                Some(DiyBackend { local_root: root })
            }
            "s3" | "gs" | "azblob" | "postgres" | "postgresql" => {
                Some(DiyBackend { local_root: None })
            }
            _ => None,
        }
    }
}

/// The project of a stack: from a fully qualified name, or from the
/// `name:` line of the project's `Pulumi.yaml`.
fn project_of(stack: &StackName, cwd: &Path) -> Option<String> {
    let parts: Vec<&str> = stack.as_str().split('/').collect();
    if let [_, project, _] = parts[..] {
        return Some(project.to_owned());
    }
    ["Pulumi.yaml", "Pulumi.yml"].iter().find_map(|file| {
        let text = std::fs::read_to_string(cwd.join(file)).ok()?;
        project_name(&text)
    })
}

/// The top-level `name:` of a `Pulumi.yaml`.
fn project_name(yaml: &str) -> Option<String> {
    yaml.lines().find_map(|line| {
        let value = line.strip_prefix("name:")?;
        let value = value.split(" #").next().unwrap_or(value).trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// Reads the lock files of `stack` under a local DIY backend's root. The
/// project-scoped layout keeps them in `.pulumi/locks/organization/PROJECT/STACK/`,
/// the legacy layout in `.pulumi/locks/STACK/`.
fn read_lock_holders(root: &Path, project: Option<&str>, stack: &str) -> Result<Vec<LockHolder>> {
    let locks = root.join(".pulumi").join("locks");
    let mut dirs = vec![locks.join(stack)];
    if let Some(project) = project {
        dirs.insert(0, locks.join("organization").join(project).join(stack));
    }
    let host = nix::unistd::gethostname()
        .ok()
        .map(|h| h.to_string_lossy().into_owned());
    let mut holders = Vec::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => {
                return Err(Error::io(
                    format!("cannot read the lock directory {}", dir.display()),
                    err,
                ));
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            // A lock file is a few hundred bytes; anything larger is not one.
            let Ok(bytes) = read_small(&path, 64 * 1024) else {
                continue;
            };
            let Ok(mut holder) = serde_json::from_slice::<LockHolder>(&bytes) else {
                continue;
            };
            if host.as_deref() == Some(holder.hostname.as_str()) {
                holder.alive = Some(process_alive(holder.pid));
                if holder.alive == Some(true) {
                    if let Some(owner) = owner_of(holder.pid) {
                        holder.lift_owned = true;
                        holder.interruptible_owner = owner.interruptible.then_some(owner.pid);
                    }
                }
            }
            holders.push(holder);
        }
    }
    Ok(holders)
}

fn read_small(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// The lift process that started a pulumi, from [`OWNER_ENV`] in its
/// environment (readable only for processes of the same user, which lift's
/// own children are).
struct Owner {
    pid: u32,
    interruptible: bool,
}

fn owner_of(pid: u32) -> Option<Owner> {
    let environ = read_small(Path::new(&format!("/proc/{pid}/environ")), 1024 * 1024).ok()?;
    let marker = format!("{OWNER_ENV}=");
    let value = environ
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(marker.as_bytes()))?;
    parse_owner(&String::from_utf8_lossy(value))
}

fn parse_owner(value: &str) -> Option<Owner> {
    let (pid, interruptible) = match value.split_once(':') {
        Some((pid, "interruptible")) => (pid, true),
        Some(_) => return None,
        None => (value, false),
    };
    let pid: u32 = pid.parse().ok()?;
    // Only a live owner that is pulumi's parent still runs the update.
    Some(Owner {
        pid,
        interruptible: interruptible && process_alive(pid),
    })
}

/// SIGINT to `target`: the owning lift process, which cancels cleanly, or
/// pulumi's process group (lift starts each pulumi as a group leader). Then
/// waits for pulumi to exit.
async fn interrupt_and_wait(target: u32, pulumi: u32, wait: Duration) -> bool {
    let Ok(raw) = i32::try_from(target) else {
        return false;
    };
    let pid = nix::unistd::Pid::from_raw(raw);
    if target != pulumi || nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGINT).is_err()
    {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
    }
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if !process_alive(pulumi) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    !process_alive(pulumi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_are_told_apart() {
        let cwd = Path::new("/work/infra");
        assert_eq!(
            DiyBackend::from_url("file:///var/state?x=1", cwd),
            Some(DiyBackend {
                local_root: Some(PathBuf::from("/var/state"))
            })
        );
        assert_eq!(
            DiyBackend::from_url("file://state", cwd),
            Some(DiyBackend {
                local_root: Some(PathBuf::from("/work/infra/state"))
            })
        );
        assert_eq!(
            DiyBackend::from_url("s3://bucket?region=us-east-1", cwd),
            Some(DiyBackend { local_root: None })
        );
        assert_eq!(DiyBackend::from_url("https://api.pulumi.com", cwd), None);
    }

    #[test]
    fn project_names_come_from_the_top_level_name() {
        assert_eq!(
            project_name("name: api # the project\nruntime: yaml\n").as_deref(),
            Some("api")
        );
        assert_eq!(
            project_name("runtime: yaml\nname: \"quoted\"\n").as_deref(),
            Some("quoted")
        );
        assert_eq!(project_name("config:\n  name: nested\n"), None);
    }

    #[test]
    fn lock_files_are_read_and_liveness_checked() {
        let dir = tempfile::tempdir().unwrap();
        let locks = dir.path().join(".pulumi/locks/organization/api/dev");
        std::fs::create_dir_all(&locks).unwrap();
        let host = nix::unistd::gethostname()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let me = std::process::id();
        std::fs::write(
            locks.join("a.json"),
            format!(r#"{{"pid":{me},"username":"u","hostname":"{host}","timestamp":"t"}}"#),
        )
        .unwrap();
        std::fs::write(
            locks.join("b.json"),
            r#"{"pid":1,"username":"u","hostname":"elsewhere","timestamp":"t"}"#,
        )
        .unwrap();
        std::fs::write(locks.join("junk.json"), "not json").unwrap();
        let mut holders = read_lock_holders(dir.path(), Some("api"), "dev").unwrap();
        holders.sort_by_key(|h| h.hostname != host);
        assert_eq!(holders.len(), 2);
        assert_eq!(holders[0].pid, me);
        assert_eq!(holders[0].alive, Some(true));
        assert!(!holders[0].lift_owned);
        assert_eq!(holders[1].alive, None);
        assert!(
            read_lock_holders(dir.path(), Some("api"), "prod")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn owners_parse_with_and_without_interrupts() {
        let me = std::process::id();
        let owner = parse_owner(&format!("{me}:interruptible")).unwrap();
        assert!(owner.interruptible);
        assert_eq!(owner.pid, me);
        assert!(!parse_owner(&me.to_string()).unwrap().interruptible);
        assert!(parse_owner("12:other").is_none());
        assert!(parse_owner("x").is_none());
    }

    #[test]
    fn outcomes_say_what_happened() {
        let broken = CancelOutcome::LockBroken {
            holders: Vec::new(),
            locks_readable: false,
        };
        assert!(broken.describe("dev").contains("may still be running"));
        let nothing = CancelOutcome::LockBroken {
            holders: Vec::new(),
            locks_readable: true,
        };
        assert!(nothing.describe("dev").contains("not locked"));
        let json = serde_json::to_value(CancelOutcome::Signalled {
            pid: 7,
            stopped: true,
        })
        .unwrap();
        assert_eq!(json["outcome"], "signalled");
    }
}
