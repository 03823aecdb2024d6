//! Shared set-up of the tests against the real, pinned Pulumi CLI.
#![allow(dead_code, reason = "each test file uses a different part")]
#![allow(
    clippy::print_stderr,
    clippy::unwrap_used,
    reason = "a skip says why; a failure should panic"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lift::pulumi::Workspace;
use lift_core::{MemoryAuditSink, SecretValue};
use lift_tests::scenario::{self, PASSPHRASE};

/// The pinned real CLI, or `None` (saying why) when it is not built here.
pub(crate) fn real_pulumi() -> Option<PathBuf> {
    let required = std::env::var("LIFT_TEST_REAL_PULUMI").as_deref() == Ok("1")
        || std::env::var("CI").as_deref() == Ok("true");
    if std::env::var("LIFT_TEST_REAL_PULUMI").as_deref() == Ok("0") {
        eprintln!("skipping: LIFT_TEST_REAL_PULUMI=0");
        return None;
    }
    let given = std::env::var_os("LIFT_REAL_PULUMI")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    let found = given.or_else(cached_build).filter(|p| p.is_file());
    match found {
        Some(path) => Some(path),
        None if required => panic!(
            "the real pulumi CLI is required (LIFT_TEST_REAL_PULUMI=1 or CI=true) but was not found: run `cargo xtask pulumi` (needs Go 1.26) and set LIFT_REAL_PULUMI to the path it prints"
        ),
        None => {
            eprintln!(
                "skipping: no real pulumi CLI; build the pinned one with `cargo xtask pulumi` (needs Go), or set LIFT_REAL_PULUMI"
            );
            None
        }
    }
}

/// Where `cargo xtask pulumi` caches its build, by default.
fn cached_build() -> Option<PathBuf> {
    let base = std::env::var_os("LIFT_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("lift/tools")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/lift/tools")))?;
    let go_mod = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/pulumi/go.mod"),
    )
    .ok()?;
    let version = go_mod.lines().find_map(|l| {
        l.trim()
            .strip_prefix("require github.com/pulumi/pulumi/pkg/v3 ")
            .map(str::to_owned)
    })?;
    let entries = std::fs::read_dir(base).ok()?;
    entries
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy()
                    .starts_with(&format!("pulumi-{version}+"))
            })
        })
        .map(|dir| dir.join("bin/pulumi"))
}

/// `<cache>/bin/pulumi` → `<cache>/language`.
pub(crate) fn language_dir(pulumi: &Path) -> PathBuf {
    pulumi
        .parent()
        .and_then(Path::parent)
        .map(|root| root.join("language"))
        .unwrap_or_default()
}

/// `PATH` with the tools' folder first, so pulumi finds its YAML language host.
pub(crate) fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

/// A project directory with a program, a DIY backend and a PULUMI_HOME.
pub(crate) struct Project {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) pulumi: PathBuf,
    pub(crate) audit: MemoryAuditSink,
}

impl Project {
    pub(crate) fn new(pulumi: &Path, program: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["project", "state", "home"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let project = Project {
            dir,
            pulumi: pulumi.to_path_buf(),
            audit: MemoryAuditSink::new(),
        };
        project.use_program(program);
        project
    }

    pub(crate) fn use_program(&self, program: &str) {
        let source = scenario::scenarios_dir()
            .join("programs")
            .join(program)
            .join("Pulumi.yaml");
        std::fs::copy(source, self.project().join("Pulumi.yaml")).unwrap();
    }

    pub(crate) fn project(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    pub(crate) fn backend(&self) -> String {
        format!("file://{}", self.dir.path().join("state").display())
    }

    /// The folder of the YAML language host (`cargo xtask pulumi` keeps it
    /// apart from the CLI: pulumi prefers a host beside itself to one on PATH).
    pub(crate) fn tools_dir(&self) -> PathBuf {
        language_dir(&self.pulumi)
    }

    /// A workspace on the project, auditing into `self.audit`.
    pub(crate) async fn workspace(&self) -> Workspace {
        self.workspace_with_path(path_with(&self.tools_dir())).await
    }

    pub(crate) async fn workspace_with_path(&self, path: std::ffi::OsString) -> Workspace {
        Workspace::builder(self.project())
            .pulumi(&self.pulumi)
            .backend_url(self.backend())
            .pulumi_home(self.dir.path().join("home"))
            .passphrase(SecretValue::from(PASSPHRASE))
            .env("PATH", path)
            .grace_period(Duration::from_secs(30))
            .audit_sink(Arc::new(self.audit.clone()))
            .build()
            .await
            .unwrap()
    }

    /// Waits until an update holds the stack's lock (pulumi runs the
    /// language host once before it takes the lock, and once while it holds it).
    pub(crate) fn wait_for_lock(&self, stack: &str) {
        self.wait_until_locked(stack, true);
    }

    pub(crate) fn wait_until_locked(&self, stack: &str, locked: bool) {
        let dir = self
            .dir
            .path()
            .join("state/.pulumi/locks/organization/lift-real")
            .join(stack);
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            let now = std::fs::read_dir(&dir)
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(false);
            if now == locked {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the lock of {stack} did not become {locked} within 2 minutes");
    }

    /// A `PATH` whose YAML language host sleeps before it starts, so that an
    /// update holds the stack's lock long enough to be raced or cancelled.
    pub(crate) fn slow_path(&self, seconds: u32) -> std::ffi::OsString {
        slow_host_path(self.dir.path(), &self.pulumi, seconds)
    }
}

/// A `PATH` under `base` whose YAML language host sleeps `seconds` before it
/// starts the real one, then the real host's folder.
pub(crate) fn slow_host_path(base: &Path, pulumi: &Path, seconds: u32) -> std::ffi::OsString {
    let slow = base.join("slow-host");
    std::fs::create_dir_all(&slow).unwrap();
    let host = slow.join("pulumi-language-yaml");
    std::fs::write(
        &host,
        format!(
            "#!/bin/sh\nsleep {seconds}\nexec \"{}\" \"$@\"\n",
            language_dir(pulumi).join("pulumi-language-yaml").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut dirs = vec![slow];
    dirs.extend(std::env::split_paths(&path_with(&language_dir(pulumi))));
    std::env::join_paths(dirs).unwrap()
}
