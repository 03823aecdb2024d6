//! Issue 15, item 23, through the binary: commands on a name that does not exist (a
//! typo) leave no file behind in the store, no `.lock` and no rotation state.

#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn lift(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lift"))
        .arg("secrets")
        .arg("--store")
        .arg(dir.join("store"))
        .args(args)
        .current_dir(dir)
        .env("LIFT_SECRETS_KEY_FILE", dir.join("key"))
        .env_remove("LIFT_ENV")
        .env_remove("LIFT_CONFIG")
        .env_remove("LIFT_AUDIT_LOG")
        .env_remove("LIFT_AUDIT_KEY_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// Every path below `root`, sorted.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            paths.push(path);
        }
    }
    paths.sort();
    paths
}

#[test]
fn commands_on_a_typo_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, [5u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let put = lift(dir.path(), &["put", "prod/db/password"], Some("v"));
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let before = tree(&dir.path().join("store"));

    for args in [
        &["get", "prod/db/pasword"][..],
        &["describe", "prod/db/pasword"],
        &["history", "prod/db/pasword"],
        &["rotate", "prod/db/pasword"],
        &["resume", "prod/db/pasword"],
        &["cancel", "prod/db/pasword"],
        &["restore", "prod/db/pasword"],
        &["delete", "prod/db/pasword", "--force"],
    ] {
        let out = lift(dir.path(), args, None);
        assert_eq!(
            tree(&dir.path().join("store")),
            before,
            "`lift secrets {}` left a file behind ({})",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn reads_on_a_mistyped_store_create_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, [5u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    for args in [
        &["list"][..],
        &["get", "db"],
        &["describe", "db"],
        &["history", "db"],
    ] {
        let out = lift(dir.path(), args, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", args.join(" "));
        assert!(stderr.contains("no secret store at"), "{stderr}");
        assert!(
            !dir.path().join("store").exists(),
            "`lift secrets {}` created the store",
            args.join(" ")
        );
    }
}
