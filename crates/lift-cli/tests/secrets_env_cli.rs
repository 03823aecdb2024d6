//! A secret store records the environment it was created for (`--env`, `LIFT_ENV`),
//! and `lift secrets` refuses to open it for another one. The environments are
//! those of a `lift.toml` in the working directory.

#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const VALUE: &str = "env-bound-value-29c1";

fn lift(dir: &Path, env: Option<&str>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lift"));
    if let Some(env) = env {
        command.args(["--env", env]);
    }
    let mut child = command
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

/// A directory with a key file and a `lift.toml` that defines `dev` and `prod` (both
/// development-class, so that no policy but the store's binding is in play).
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, [9u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        dir.path().join("lift.toml"),
        "[environments.dev]\n\n[environments.prod]\n",
    )
    .unwrap();
    dir
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_store_opened_under_another_environment_is_refused() {
    let dir = project();

    let put = lift(dir.path(), Some("dev"), &["put", "db"], Some(VALUE));
    assert!(put.status.success(), "{}", text(&put));

    let refused = lift(dir.path(), Some("prod"), &["get", "db"], None);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("environment dev") && stderr.contains("environment prod"),
        "the message names both environments: {stderr}"
    );
    assert!(!text(&refused).contains(VALUE));
    let refused_write = lift(dir.path(), Some("prod"), &["put", "db"], Some("other"));
    assert_eq!(
        refused_write.status.code(),
        Some(2),
        "{}",
        text(&refused_write)
    );

    let same = lift(dir.path(), Some("dev"), &["get", "db"], None);
    assert!(same.status.success(), "{}", text(&same));
    assert_eq!(String::from_utf8_lossy(&same.stdout).trim_end(), VALUE);
    // Without an environment the store opens as it always did.
    let none = lift(dir.path(), None, &["get", "db"], None);
    assert!(none.status.success(), "{}", text(&none));
    assert_eq!(String::from_utf8_lossy(&none.stdout).trim_end(), VALUE);
}

#[test]
fn a_store_from_before_environments_records_the_first_one() {
    let dir = project();

    let put = lift(dir.path(), None, &["put", "db"], Some(VALUE));
    assert!(put.status.success(), "{}", text(&put));
    let first = lift(dir.path(), Some("prod"), &["list"], None);
    assert!(first.status.success(), "{}", text(&first));
    let other = lift(dir.path(), Some("dev"), &["list"], None);
    assert_eq!(other.status.code(), Some(2), "{}", text(&other));
    assert!(String::from_utf8_lossy(&other.stderr).contains("environment prod"));
}
