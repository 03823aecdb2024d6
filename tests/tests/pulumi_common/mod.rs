//! Shared set-up of the lift-pulumi tests against the fake `pulumi` CLI.
#![allow(dead_code, reason = "each test file uses a different part")]
#![allow(clippy::unwrap_used, reason = "tests: a failure should panic")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lift::pulumi::{StackName, Workspace, WorkspaceBuilder};
use lift_core::MemoryAuditSink;

/// The program every test deploys: two resources, a plain and a secret output.
pub(crate) const PROGRAM: &str = r#"name: demo
runtime: yaml
config:
  greeting:
    default: hello
resources:
  bucket:
    type: aws:s3:Bucket
    properties:
      acl: private
  object:
    type: aws:s3:BucketObject
    properties:
      bucket: ${bucket.id}
      content: ${greeting}
outputs:
  bucketName: ${bucket.id}
  greeting: ${greeting}
  password:
    fn::secret: hunter2
"#;

/// A project directory, a diy state backend and a PULUMI_HOME, all in one temp dir.
pub(crate) struct Project {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) audit: MemoryAuditSink,
}

impl Project {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Pulumi.yaml"), PROGRAM).unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        Project {
            dir,
            audit: MemoryAuditSink::new(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The file where the fake records each invocation's argv.
    pub(crate) fn record_file(&self) -> PathBuf {
        self.dir.path().join("argv.jsonl")
    }

    /// A builder with the fake CLI, the diy backend, the audit sink and a short grace period.
    pub(crate) fn builder(&self) -> WorkspaceBuilder {
        Workspace::builder(self.path())
            .pulumi(fake_pulumi())
            .backend_url(format!("file://{}", self.path().join("state").display()))
            .pulumi_home(self.path().join("home"))
            .env("FAKE_PULUMI_RECORD", self.record_file())
            .grace_period(Duration::from_secs(5))
            .audit_sink(Arc::new(self.audit.clone()))
    }

    pub(crate) async fn workspace(&self) -> Workspace {
        self.builder().build().await.unwrap()
    }

    /// Every argv the fake was run with, in order.
    pub(crate) fn recorded(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.record_file())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

pub(crate) fn fake_pulumi() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pulumi"))
}

pub(crate) fn stack(name: &str) -> StackName {
    name.parse().unwrap()
}

/// Children of this process that are zombies (exited, never reaped).
pub(crate) fn zombie_children() -> Vec<u32> {
    let me = std::process::id();
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain spaces: parse after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 1 && fields[0] == "Z" && fields[1] == me.to_string() {
            zombies.push(pid);
        }
    }
    zombies
}

/// Whether the process is gone for good: exited and reaped (no /proc entry, not even a zombie).
pub(crate) async fn reaped_within(pid: u64, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether a process with this pid still exists and is not a zombie.
pub(crate) fn alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, r)| !r.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}
