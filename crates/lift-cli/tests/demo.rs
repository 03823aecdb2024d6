//! `lift demo` is the README's first command: it must work on a fresh machine with no setup.

#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `lift demo ARGS --dir ROOT` with no pulumi reachable, whatever the machine has,
/// so that the deploy step must say it was skipped.
fn run_demo(args: &[&str], root: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lift"))
        .arg("demo")
        .args(args)
        .arg("--dir")
        .arg(root)
        .env("PATH", "/usr/bin:/bin")
        .env_remove("LIFT_PULUMI")
        .env_remove("LIFT_AUDIT_LOG")
        .output()
        .unwrap()
}

#[test]
fn demo_runs_every_step_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    let output = run_demo(&["--json"], &root);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed: {stderr}");

    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], true);
    let steps = report["steps"].as_array().unwrap();
    let status = |prefix: &str| {
        steps
            .iter()
            .find(|s| s["name"].as_str().unwrap().starts_with(prefix))
            .map(|s| s["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status("rotate it").as_deref(), Some("ok"));
    assert_eq!(status("run the health manager").as_deref(), Some("ok"));
    assert_eq!(status("close and verify").as_deref(), Some("ok"));
    assert_eq!(status("check that no file").as_deref(), Some("ok"));
    assert_eq!(status("deploy a stack").as_deref(), Some("skipped"));
    assert_eq!(status("write lift.toml").as_deref(), Some("ok"));
    let environments = steps
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with("write lift.toml"))
        .unwrap();
    let detail = environments["detail"].as_str().unwrap();
    assert!(detail.contains("refuse_plaintext_store"), "{detail}");
    assert!(detail.contains("lift.toml:"), "names the line: {detail}");

    // The binary honours the lift.toml the demo wrote: prod refuses the same
    // command, exit 2, and writes nothing.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_lift"))
        .arg("--config")
        .arg(root.join("lift.toml"))
        .args(["--env", "prod", "secrets", "--plaintext", "put", "x"])
        .env_remove("LIFT_SECRETS_STORE")
        .env_remove("LIFT_AUDIT_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{message}");
    assert!(message.contains("refuse_plaintext_store"), "{message}");
    assert!(!root.join("prod").exists(), "{message}");
    assert!(
        stderr.contains("where everything is"),
        "human text goes to stderr under --json"
    );

    // The files the demo promises are there, with private permissions.
    use std::os::unix::fs::PermissionsExt as _;
    for path in [
        "keys/secrets.key",
        "keys/audit.key",
        "keys",
        "audit",
        "secrets",
    ] {
        let meta = std::fs::metadata(root.join(path)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o077, 0, "{path} is private");
    }
    assert!(root.join("audit/audit.jsonl.checkpoint").is_file());
}

#[test]
fn demo_removes_its_directory_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    let status = run_demo(&["--remove"], &root);
    assert!(status.status.success());
    assert!(!root.exists());
}

#[test]
fn demo_refuses_a_directory_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("notes.txt");
    std::fs::write(&mine, "my own file").unwrap();
    for args in [&[][..], &["--remove"][..]] {
        let output = run_demo(args, dir.path());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("is not empty"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Nothing was written or removed.
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "my own file");
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1);
}

#[test]
fn demo_remove_keeps_an_empty_directory_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("given");
    std::fs::create_dir(&root).unwrap();
    let output = run_demo(&["--remove"], &root);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(root.is_dir(), "the directory was the user's: it stays");
    let left: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "the demo's files are gone: {left:?}");
}

#[test]
fn demo_refuses_a_file_as_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let output = run_demo(&[], &file);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}
