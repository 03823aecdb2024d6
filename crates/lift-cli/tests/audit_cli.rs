//! `lift audit` and the global audit options end to end through the real
//! binary: processes sharing one log, anchors kept elsewhere, the public-key
//! verification, key hygiene, and exit codes (0 intact, 1 not, 2 bad input).
#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

struct Cli {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        let cli = Cli {
            bin: PathBuf::from(env!("CARGO_BIN_EXE_lift")),
            dir: tempfile::tempdir().unwrap(),
        };
        // A small intact log for audited commands to verify.
        let out = cli.run(
            &[
                "--audit-log",
                cli.s("small.jsonl"),
                "audit",
                "verify",
                cli.s("small.jsonl"),
                "--allow-unanchored",
            ],
            &[],
        );
        assert!(cli.path("small.jsonl").exists(), "{}", text(&out));
        cli
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A path in the test directory as a `&str` for an argument list.
    fn s(&self, name: &str) -> &'static str {
        Box::leak(self.path(name).display().to_string().into_boxed_str())
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .env_remove("LIFT_AUDIT_LOG")
            .env_remove("LIFT_AUDIT_KEY_FILE")
            .env_remove("LIFT_AUDIT_CHECKPOINT")
            .env_remove("LIFT_AUDIT_SIGNING_KEY_FILE");
        for (name, value) in env {
            command.env(name, value);
        }
        command
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().unwrap()
    }

    fn key(&self, name: &str, mode: u32) -> &'static str {
        let path = self.path(name);
        std::fs::write(&path, [42u8; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        self.s(name)
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn four_processes_share_one_audit_log() {
    let cli = Cli::new();
    let shared = cli.s("shared.jsonl");
    let mut children = Vec::new();
    for _ in 0..4 {
        let args: Vec<String> = [
            "--audit-log",
            shared,
            "audit",
            "verify",
            cli.s("small.jsonl"),
            "--allow-unanchored",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        let bin = cli.bin.clone();
        children.push(std::thread::spawn(move || {
            (0..15)
                .map(|_| {
                    Command::new(&bin)
                        .args(&args)
                        .env_remove("LIFT_AUDIT_LOG")
                        .env_remove("LIFT_AUDIT_KEY_FILE")
                        .env_remove("LIFT_AUDIT_CHECKPOINT")
                        .output()
                        .unwrap()
                })
                .collect::<Vec<_>>()
        }));
    }
    for child in children {
        for out in child.join().unwrap() {
            assert_eq!(code(&out), 0, "{}", text(&out));
        }
    }
    let out = cli.run(&["audit", "verify", shared, "--json"], &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records_checked"], 60);
    assert_eq!(report["checkpoint"]["size"], 60);
}

#[test]
fn truncation_and_deletion_are_unanchored_and_a_typo_is_bad_input() {
    let cli = Cli::new();
    let log = cli.s("audit.jsonl");
    for _ in 0..10 {
        let out = cli.run(
            &[
                "--audit-log",
                log,
                "audit",
                "verify",
                cli.s("small.jsonl"),
                "--allow-unanchored",
            ],
            &[],
        );
        assert_eq!(code(&out), 0, "{}", text(&out));
    }
    let bytes = std::fs::read(log).unwrap();
    let third = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(2)
        .unwrap()
        .0;
    std::fs::write(log, &bytes[..=third]).unwrap();
    std::fs::remove_file(cli.path("audit.jsonl.checkpoint")).unwrap();

    let out = cli.run(&["audit", "verify", log], &[]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("NOT INTACT: unanchored"), "{}", text(&out));
    assert!(stdout.contains("records 1 to 3"), "{}", text(&out));
    let out = cli.run(&["audit", "verify", log, "--allow-unanchored"], &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("warning:"),
        "{}",
        text(&out)
    );

    // A mistyped checkpoint or log path is exit 2, "no such file", not a tamper alarm.
    let out = cli.run(
        &[
            "audit",
            "verify",
            log,
            "--checkpoint",
            cli.s("audit.jsonl.chekpoint"),
        ],
        &[],
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such file"),
        "{}",
        text(&out)
    );
    let out = cli.run(&["audit", "verify", cli.s("audti.jsonl")], &[]);
    assert_eq!(code(&out), 2, "{}", text(&out));
}

#[test]
fn checkpoints_kept_elsewhere_catch_a_rollback() {
    let cli = Cli::new();
    std::fs::create_dir(cli.path("anchors")).unwrap();
    let log = cli.s("audit.jsonl");
    let anchor = cli.s("anchors/audit.checkpoint");
    let audited = |n: usize| {
        for _ in 0..n {
            let out = cli.run(
                &[
                    "--audit-log",
                    log,
                    "audit",
                    "verify",
                    cli.s("small.jsonl"),
                    "--allow-unanchored",
                ],
                &[("LIFT_AUDIT_CHECKPOINT", anchor)],
            );
            assert_eq!(code(&out), 0, "{}", text(&out));
        }
    };
    audited(2);
    let old = std::fs::read(log).unwrap();
    audited(2);
    assert!(!cli.path("audit.jsonl.checkpoint").exists());
    let out = cli.run(
        &["audit", "verify", log],
        &[("LIFT_AUDIT_CHECKPOINT", anchor)],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    std::fs::write(log, old).unwrap();
    let out = cli.run(&["--audit-checkpoint", anchor, "audit", "verify", log], &[]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tail truncated"),
        "{}",
        text(&out)
    );
    // Writing to the damaged log is refused, with a hint that does not go round in circles.
    let out = cli.run(
        &[
            "--audit-log",
            log,
            "--audit-checkpoint",
            anchor,
            "audit",
            "verify",
            log,
        ],
        &[],
    );
    assert_eq!(code(&out), 1, "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("without --audit-log"), "{}", text(&out));
}

#[test]
fn auditors_verify_with_the_public_key_alone_and_keys_must_be_private() {
    let cli = Cli::new();
    let log = cli.s("audit.jsonl");
    let key = cli.key("audit.key", 0o600);
    for _ in 0..3 {
        let out = cli.run(
            &[
                "--audit-log",
                log,
                "--audit-key-file",
                key,
                "audit",
                "verify",
                cli.s("small.jsonl"),
                "--allow-unanchored",
            ],
            &[],
        );
        assert_eq!(code(&out), 0, "{}", text(&out));
    }
    let out = cli.run(
        &[
            "audit",
            "public-key",
            "--signing-key",
            cli.s("audit.jsonl.signing-key"),
        ],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let public = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(public.len(), 64, "{public}");
    let out = cli.run(&["audit", "verify", log, "--public-key", &public], &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("trusted public key"),
        "{}",
        text(&out)
    );
    // The chain key verifies on its own too.
    let out = cli.run(&["audit", "verify", log, "--key-file", key], &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));

    // A key readable by others is refused, naming the fix.
    let loose = cli.key("loose.key", 0o644);
    let out = cli.run(
        &[
            "--audit-log",
            cli.s("other.jsonl"),
            "--audit-key-file",
            loose,
            "audit",
            "verify",
            log,
            "--key-file",
            key,
        ],
        &[],
    );
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chmod 600"),
        "{}",
        text(&out)
    );
    assert!(!cli.path("other.jsonl").exists());
}

#[test]
fn tail_prints_the_last_records() {
    let cli = Cli::new();
    let log = cli.s("audit.jsonl");
    for _ in 0..5 {
        let out = cli.run(
            &[
                "--audit-log",
                log,
                "audit",
                "verify",
                cli.s("small.jsonl"),
                "--allow-unanchored",
            ],
            &[],
        );
        assert_eq!(code(&out), 0, "{}", text(&out));
    }
    let out = cli.run(
        &["audit", "tail", log, "-n", "2", "--no-follow", "--json"],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let seqs: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [4, 5]);
}
