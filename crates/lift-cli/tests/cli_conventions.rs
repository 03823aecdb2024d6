//! The conventions of docs/cli.md, through the real binary: the exit-code
//! table, one style for machine output, shell completions and man pages,
//! and quiet ends on closed pipes.

#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The conflict code of docs/cli.md's table.
const EXIT_CONFLICT: i32 = 75;

fn lift() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lift"));
    for var in [
        "LIFT_AUDIT_LOG",
        "LIFT_AUDIT_KEY_FILE",
        "LIFT_AUDIT_CHECKPOINT",
        "LIFT_AUDIT_SIGNING_KEY_FILE",
        "LIFT_SECRETS_STORE",
        "LIFT_SECRETS_KEY_FILE",
        "LIFT_CONFIG",
        "LIFT_ENV",
        "NO_COLOR",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command.stdin(Stdio::null());
    command
}

fn run(args: &[&str]) -> Output {
    lift().args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn no_panic(out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{}", text(out));
}

fn write_key(path: &Path, mode: u32) {
    std::fs::write(path, [7u8; 32]).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A plaintext store with one secret, `app/token`.
fn store_with_secret(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    let out = lift()
        .args(["secrets", "--plaintext", "--store"])
        .arg(&store)
        .args(["put", "app/token"])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(b"first-value")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    store
}

// ---------------------------------------------------------------------------
// Exit codes
// ---------------------------------------------------------------------------

#[test]
fn a_missing_key_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let out = lift()
        .arg("--audit-log")
        .arg(&log)
        .arg("--audit-key-file")
        .arg(dir.path().join("no-such.key"))
        .args(["audit", "verify"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    no_panic(&out);
}

#[test]
fn a_key_file_others_can_read_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit.key");
    write_key(&key, 0o644);
    let log = dir.path().join("audit.jsonl");
    let out = lift()
        .arg("--audit-log")
        .arg(&log)
        .arg("--audit-key-file")
        .arg(&key)
        .args(["audit", "verify"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("chmod 600"), "{}", text(&out));

    // The same key made private is accepted: the refusal was about the mode.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = lift()
        .arg("--audit-log")
        .arg(&log)
        .arg("--audit-key-file")
        .arg(&key)
        .args(["audit", "verify", "--allow-unanchored"])
        .arg(&log)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_secrets_key_file_that_is_missing_or_public_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("public.key");
    write_key(&public, 0o644);
    for key in [dir.path().join("missing.key"), public] {
        let out = lift()
            .args(["secrets", "--store"])
            .arg(dir.path().join("store"))
            .arg("--key-file")
            .arg(&key)
            .args(["list"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{key:?}: {}", text(&out));
    }
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(run(&["--no-such-flag"]).status.code(), Some(2));
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("completions"));
}

#[test]
fn a_secret_that_does_not_exist_is_a_failed_operation() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_secret(dir.path());
    let out = lift()
        .args(["secrets", "--plaintext", "--store"])
        .arg(&store)
        .args(["get", "app/absent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn a_rotation_held_by_another_process_is_a_conflict_worth_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_secret(dir.path());
    let rotate = || {
        lift()
            .args(["--json", "secrets", "--plaintext", "--store"])
            .arg(&store)
            .args(["rotate", "app/token"])
            .output()
            .unwrap()
    };
    // Another process holds the secret's rotation lock (an exclusive flock).
    let lock_path = store.join("rotation/app/token.rlock");
    {
        use std::os::unix::fs::DirBuilderExt as _;
        // The store refuses directories that others may read.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(lock_path.parent().unwrap())
            .unwrap();
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    lock.try_lock().unwrap();
    let out = rotate();
    assert_eq!(out.status.code(), Some(EXIT_CONFLICT), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "conflict");

    // Retrying once the other process is done succeeds: the code said so.
    drop(lock);
    let out = rotate();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

// ---------------------------------------------------------------------------
// Machine output: snake_case keys, RFC 3339 UTC timestamps with `Z`
// ---------------------------------------------------------------------------

/// Every key in `value`, recursively, with the path that leads to it.
fn keys(value: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                out.push(format!("{path}.{key}"));
                keys(child, &format!("{path}.{key}"), out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                keys(item, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

/// Every string in `value` that looks like a timestamp (starts with a date).
fn timestamps(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => {
            let bytes = s.as_bytes();
            let dated = bytes.len() >= 11
                && bytes[..4].iter().all(u8::is_ascii_digit)
                && bytes[4] == b'-'
                && bytes[7] == b'-'
                && bytes[10] == b'T';
            if dated {
                out.push(s.clone());
            }
        }
        serde_json::Value::Object(map) => map.values().for_each(|v| timestamps(v, out)),
        serde_json::Value::Array(items) => items.iter().for_each(|v| timestamps(v, out)),
        _ => {}
    }
}

fn is_rfc3339_utc(s: &str) -> bool {
    // YYYY-MM-DDTHH:MM:SS[.fraction]Z
    let b = s.as_bytes();
    b.len() >= 20
        && b[13] == b':'
        && b[16] == b':'
        && s.ends_with('Z')
        && (b.len() == 20 || (b[19] == b'.' && b[20..b.len() - 1].iter().all(u8::is_ascii_digit)))
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{}",
        text(out)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| panic!("{err}: {}", text(out)))
}

#[test]
fn documents_use_snake_case_keys_and_utc_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_secret(dir.path());
    let log = dir.path().join("audit.jsonl");
    let secrets = |args: &[&str]| {
        lift()
            .arg("--json")
            .arg("--audit-log")
            .arg(&log)
            .args(["secrets", "--plaintext", "--store"])
            .arg(&store)
            .args(args)
            .output()
            .unwrap()
    };
    let mut documents = vec![
        ("secrets list", json_of(&secrets(&["list"]))),
        (
            "secrets describe",
            json_of(&secrets(&["describe", "app/token"])),
        ),
        (
            "secrets rotate",
            json_of(&secrets(&["rotate", "app/token"])),
        ),
        (
            "secrets history",
            json_of(&secrets(&["history", "app/token"])),
        ),
        ("secrets get", json_of(&secrets(&["get", "app/token"]))),
    ];
    let audit = |args: &[&str]| {
        lift()
            .arg("--json")
            .args(["audit"])
            .args(args)
            .arg(&log)
            .output()
            .unwrap()
    };
    documents.push(("audit query", json_of(&audit(&["query"]))));
    documents.push((
        "audit verify",
        json_of(&audit(&["verify", "--allow-unanchored"])),
    ));
    documents.push(("health", json_of(&run(&["--json", "health"]))));
    // An error document too.
    let error = run(&["--json", "audit", "verify", "/nonexistent/audit.jsonl"]);
    documents.push((
        "error",
        serde_json::from_slice(&error.stdout).unwrap_or_default(),
    ));

    let mut seen_timestamps = 0;
    for (name, document) in &documents {
        assert!(!document.is_null(), "{name} printed no document");
        let mut all = Vec::new();
        keys(document, "", &mut all);
        // Keys are snake_case; `labels` and `metadata` maps hold user-chosen keys.
        let bad: Vec<&String> = all
            .iter()
            .filter(|path| !path.contains(".labels.") && !path.contains(".metadata."))
            .filter(|path| {
                let key = path.rsplit('.').next().unwrap_or_default();
                key.chars().any(|c| c.is_ascii_uppercase()) || key.contains('-')
            })
            .collect();
        assert!(bad.is_empty(), "{name}: keys not in snake_case: {bad:?}");
        let mut times = Vec::new();
        timestamps(document, &mut times);
        for time in &times {
            assert!(
                is_rfc3339_utc(time),
                "{name}: timestamp {time} is not RFC 3339 UTC with Z"
            );
        }
        seen_timestamps += times.len();
    }
    assert!(
        seen_timestamps >= 5,
        "the documents carry timestamps to check"
    );
}

#[test]
fn the_timestamp_check_rejects_offsets_and_spaces() {
    assert!(is_rfc3339_utc("2026-12-01T10:39:01Z"));
    assert!(is_rfc3339_utc("2026-12-01T10:39:01.123456Z"));
    assert!(!is_rfc3339_utc("2026-12-01T10:39:01+00:00"));
    assert!(!is_rfc3339_utc("2026-12-01T10:39:01.5+01:00"));
}

// ---------------------------------------------------------------------------
// Completions and man pages
// ---------------------------------------------------------------------------

#[test]
fn completions_for_every_shell_cover_every_command() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef lift"),
        ("fish", "complete -c lift"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell} script lacks {marker}");
        for command in ["deploy", "secrets", "audit", "health", "demo", "man"] {
            assert!(script.contains(command), "{shell}: no {command}");
        }
    }
}

#[test]
fn bash_accepts_the_completion_script() {
    let Ok(status) = Command::new("bash").arg("--version").output() else {
        eprintln!("skipped: no bash on PATH");
        return;
    };
    assert!(status.status.success());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("lift.bash");
    std::fs::write(&script, run(&["completions", "bash"]).stdout).unwrap();
    // Sourcing defines the function and registers it for `lift`.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p lift && declare -F _lift",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("_lift"));
}

#[test]
fn man_prints_a_roff_page_and_docs_man_holds_every_page() {
    let out = run(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let page = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(page.contains(".TH lift 1"), "{page}");
    assert!(page.contains(".SH SYNOPSIS"));
    // `cargo xtask codegen` writes every command's page into docs/man (and
    // `codegen --check` fails when one is stale).
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/man");
    for name in [
        "lift.1",
        "lift-deploy-up.1",
        "lift-secrets-rotate.1",
        "lift-completions.1",
    ] {
        let checked_in = std::fs::read_to_string(man.join(name)).unwrap();
        let generated = checked_in.starts_with(".\\\" generated by `cargo xtask codegen`");
        assert!(generated, "{name}");
        assert!(checked_in.contains(".SH SYNOPSIS"), "{name}");
    }
}

// ---------------------------------------------------------------------------
// Closed pipes
// ---------------------------------------------------------------------------

/// Runs `lift args`, reads `keep` bytes of stdout, closes the pipe, and
/// returns how the command ended.
fn into_closed_pipe(command: &mut Command, keep: usize) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut head = vec![0u8; keep];
    let _ = stdout.read_exact(&mut head);
    drop(stdout);
    child.wait_with_output().unwrap()
}

fn quiet(out: &Output) {
    no_panic(out);
    assert!(
        out.status.code() == Some(0),
        "a closed pipe ends the command quietly with 0: {}",
        text(out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Broken pipe"),
        "{}",
        text(out)
    );
}

#[test]
fn a_large_audit_query_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    // Many records, through the binary: each `put` appends its audit events.
    let store = dir.path().join("store");
    let mut script = String::from("set -e\n");
    for i in 0..40 {
        script.push_str(&format!(
            "printf v{i} | \"$LIFT\" --audit-log \"$LOG\" secrets --plaintext --store \"$STORE\" put app/s{i} >/dev/null\n"
        ));
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("LIFT", env!("CARGO_BIN_EXE_lift"))
        .env("LOG", &log)
        .env("STORE", &store)
        .env_remove("LIFT_AUDIT_KEY_FILE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // Make the output far larger than a pipe's buffer: query the same log many times over.
    let mut query = lift();
    query.args(["audit", "query"]);
    for _ in 0..200 {
        query.arg(&log);
    }
    let full = query.output().unwrap();
    assert!(
        full.stdout.len() > 256 * 1024,
        "the output must outgrow the pipe buffer, got {} bytes: {}",
        full.stdout.len(),
        text(&full)
    );
    let mut query = lift();
    query.args(["audit", "query"]);
    for _ in 0..200 {
        query.arg(&log);
    }
    quiet(&into_closed_pipe(&mut query, 100));
}

#[test]
fn every_command_of_mine_ends_quietly_on_a_closed_pipe() {
    for args in [
        &["completions", "bash"][..],
        &["completions", "zsh"][..],
        &["man"][..],
        &["--help"][..],
        &["demo", "--remove"][..],
    ] {
        let mut command = lift();
        command.args(args);
        let out = into_closed_pipe(&mut command, 0);
        quiet(&out);
    }
}
