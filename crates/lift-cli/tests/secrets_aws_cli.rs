//! `lift secrets --aws` against AWS Secrets Manager as emulated by moto (opt-in: `LIFT_TEST_MOTO=1`).
//!
//! The subcommands are the file store's; this checks that they reach AWS and
//! that the value still appears only in `get`'s output.

#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use lift_tests::moto::{MotoServer, enabled};

const CANARY: &str = "canary-aws-cli-7d1e0c";

fn lift(
    server: &MotoServer,
    state: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lift"))
        .args([
            "secrets",
            "--aws",
            "--region",
            "us-east-1",
            "--prefix",
            "cli/",
            "--endpoint-url",
        ])
        .arg(server.endpoint())
        .arg("--store")
        .arg(state)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .env_remove("LIFT_AUDIT_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_secrets_commands_work_against_aws() {
    if !enabled("the_secrets_commands_work_against_aws") {
        return;
    }
    let server = MotoServer::start().unwrap();
    server.reset().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("rotation-state");

    let put = lift(
        &server,
        &state,
        &["put", "db/password"],
        Some(&format!("{CANARY}\n")),
    );
    assert!(put.status.success(), "{}", text(&put));
    assert!(!text(&put).contains(CANARY));

    let get = lift(&server, &state, &["get", "db/password"], None);
    assert!(get.status.success(), "{}", text(&get));
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim_end(), CANARY);

    let rotate = lift(&server, &state, &["rotate", "db/password", "--json"], None);
    assert!(rotate.status.success(), "{}", text(&rotate));
    let report: serde_json::Value = serde_json::from_slice(&rotate.stdout).unwrap();
    assert_eq!(report["outcome"], "succeeded");

    let describe = lift(
        &server,
        &state,
        &["describe", "db/password", "--json"],
        None,
    );
    let description: serde_json::Value = serde_json::from_slice(&describe.stdout).unwrap();
    let versions = description["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    let holds = |label: &str| {
        versions
            .iter()
            .any(|v| v["stages"].as_array().unwrap().iter().any(|s| s == label))
    };
    assert!(holds("AWSCURRENT") && holds("AWSPREVIOUS"));

    let list = lift(&server, &state, &["list", "--json"], None);
    let names: Vec<String> = serde_json::from_slice::<Vec<serde_json::Value>>(&list.stdout)
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["db/password"], "the prefix is stripped");

    for out in [&rotate, &describe, &list] {
        assert!(!text(out).contains(CANARY), "only get prints the value");
    }
    let missing = lift(&server, &state, &["get", "db/absent"], None);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    let bad = lift(&server, &state, &["get", "../etc/passwd"], None);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}
