//! `lift secrets` end to end through the real binary: exit codes, the value round
//! trip, and a canary value that appears in no output but `get`'s, in no audit
//! record and in no store file.
#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const CANARY: &str = "canary-4b8e1f-cli-value";

struct Cli {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        // Cargo builds the binary for this package's integration tests.
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_lift"));
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, [7u8; 32]).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        Cli { bin, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(&self.bin)
            .arg("--audit-log")
            .arg(self.path("audit.log"))
            .arg("secrets")
            .arg("--store")
            .arg(self.path("store"))
            .args(args)
            .env("LIFT_SECRETS_KEY_FILE", self.path("key"))
            .env_remove("LIFT_AUDIT_LOG")
            .env_remove("LIFT_AUDIT_KEY_FILE")
            .env("RUST_LOG", "trace")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn values_round_trip_and_bad_input_exits_2() {
    let cli = Cli::new();
    let put = cli.run(&["put", "prod/db"], Some("line one\nline two\n"));
    assert!(put.status.success(), "{}", text(&put));
    let get = cli.run(&["get", "prod/db"], None);
    assert_eq!(
        get.stdout, b"line one\nline two\n",
        "one trailing newline stripped, one added"
    );
    let json = cli.run(&["--json", "get", "prod/db"], None);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["value"], "line one\nline two");
    assert_eq!(doc["stages"][0], "AWSCURRENT");

    for (args, stdin) in [
        (vec!["get", "../x"], None),
        (vec!["put", ""], Some("v")),
        (vec!["put", "ok"], Some("")),
        (vec!["rotate", "prod/db", "--kind", "nonsense"], None),
        (vec!["get", "prod/db", "--stage", "bad label"], None),
    ] {
        let out = cli.run(&args, stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
    let missing = cli.run(&["get", "no/such"], None);
    assert_eq!(missing.status.code(), Some(1));
    let json_error = cli.run(&["--json", "get", "../x"], None);
    let doc: serde_json::Value = serde_json::from_slice(&json_error.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "invalid_input");

    // Without a key and without --plaintext, writing fails with exit 2.
    let keyless = Command::new(&cli.bin)
        .args(["secrets", "--store"])
        .arg(cli.path("other"))
        .args(["put", "x"])
        .env_remove("LIFT_SECRETS_KEY_FILE")
        .env_remove("LIFT_AUDIT_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(keyless.status.code(), Some(2), "{}", text(&keyless));
}

#[test]
fn the_canary_appears_only_in_get_output() {
    let cli = Cli::new();
    let put = cli.run(&["put", "prod/api"], Some(CANARY));
    assert!(put.status.success(), "{}", text(&put));
    let get = cli.run(&["get", "prod/api"], None);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim_end(), CANARY);

    let mut outputs = vec![put];
    for args in [
        vec!["list"],
        vec!["describe", "prod/api"],
        vec!["--json", "describe", "prod/api"],
        vec!["--json", "list"],
        vec!["rotate", "prod/api"],
        vec!["--json", "rotate", "prod/api", "--kind", "token"],
        vec!["history", "prod/api"],
        vec!["--json", "history", "prod/api"],
        vec!["resume", "prod/api"],
        vec!["cancel", "prod/api"],
        vec!["delete", "prod/api"],
        vec!["get", "prod/api"],
        vec!["restore", "prod/api"],
        vec!["--json", "delete", "prod/api", "--force"],
    ] {
        let out = cli.run(&args, None);
        outputs.push(out);
    }
    // A put that reuses a token with a different value fails without echoing either value.
    cli.run(
        &[
            "put",
            "prod/tok",
            "--token",
            "token-0001-0000-0000-000000000000",
        ],
        Some(CANARY),
    );
    let conflict = cli.run(
        &[
            "put",
            "prod/tok",
            "--token",
            "token-0001-0000-0000-000000000000",
        ],
        Some("other-canary-value"),
    );
    assert_eq!(conflict.status.code(), Some(1), "{}", text(&conflict));
    outputs.push(conflict);

    for out in &outputs {
        let all = text(out);
        assert!(!all.contains(CANARY), "canary leaked: {all}");
        assert!(!all.contains("other-canary-value"), "value leaked: {all}");
    }
    let audit = std::fs::read_to_string(cli.path("audit.log")).unwrap();
    assert!(
        audit.contains("rotate.finish_secret"),
        "rotation steps are audited"
    );
    assert!(audit.contains("\"action\":\"put\""));
    assert!(
        audit.contains("\"action\":\"get\""),
        "reads of values are audited"
    );
    assert!(!audit.contains(CANARY));
    for file in all_files(&cli.path("store")) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(CANARY),
            "{} holds the value in clear",
            file.display()
        );
    }
}
