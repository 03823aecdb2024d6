//! `lift secrets --aws rotate` by a user whose IAM policy lacks one action of the
//! rotation, against moto with IAM enforcement on (opt-in: `LIFT_TEST_MOTO=1`).
//!
//! Credentials, endpoint and region reach the binary the way an operator gives them:
//! through `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL` and `AWS_REGION`.

#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use lift_tests::moto::{MotoServer, enabled};

const OLD_VALUE: &str = "old-value-iam-cli-4b1f";

fn lift(
    server: &MotoServer,
    (key_id, secret): (&str, &str),
    state: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lift"))
        .args(["secrets", "--aws", "--store"])
        .arg(state)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
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
fn a_rotation_refused_by_iam_names_the_action_and_changes_nothing() {
    if !enabled("a_rotation_refused_by_iam_names_the_action_and_changes_nothing") {
        return;
    }
    let server = MotoServer::start().unwrap();
    server.reset().unwrap();
    server.enforce_iam(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("rotation-state");
    let admin = ("test", "test");

    let put = lift(
        &server,
        admin,
        &state,
        &["put", "db/password"],
        Some(&format!("{OLD_VALUE}\n")),
    );
    assert!(put.status.success(), "{}", text(&put));
    let describe = |creds| {
        let out = lift(
            &server,
            creds,
            &state,
            &["describe", "db/password", "--json"],
            None,
        );
        assert!(out.status.success(), "{}", text(&out));
        // Each version's id and stages. Not its `created_at`: moto's
        // ListSecretVersionIds reports the time of the call as every
        // version's CreatedDate (real AWS reports when it was created), so
        // two describes a second apart differ there whatever lift did.
        let versions =
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["versions"].clone();
        versions
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["version_id"].clone(), v["stages"].clone()))
            .collect::<Vec<_>>()
    };
    let before = describe(admin);

    // Everything a rotation needs but PutSecretValue: createSecret is refused.
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:DescribeSecret","secretsmanager:ListSecretVersionIds","secretsmanager:GetSecretValue","secretsmanager:UpdateSecretVersionStage"],"Resource":"*"}]}"#;
    let (key_id, secret) = server.create_iam_user("rotator", policy).unwrap();
    server.enforce_iam(Some(0)).unwrap();
    let rotator = (key_id.as_str(), secret.as_str());

    let rotate = lift(&server, rotator, &state, &["rotate", "db/password"], None);
    assert_eq!(rotate.status.code(), Some(1), "{}", text(&rotate));
    let stderr = String::from_utf8_lossy(&rotate.stderr);
    assert!(
        stderr.contains("IAM action secretsmanager:PutSecretValue"),
        "the error names the refused action: {stderr}"
    );
    assert!(!text(&rotate).contains(OLD_VALUE));

    assert_eq!(
        describe(rotator),
        before,
        "versions and labels are unchanged"
    );
    let get = lift(&server, rotator, &state, &["get", "db/password"], None);
    assert!(get.status.success(), "{}", text(&get));
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim_end(), OLD_VALUE);

    // Nothing is left to resume: once the action is granted, a new rotation runs.
    server.enforce_iam(None).unwrap();
    let again = lift(&server, admin, &state, &["rotate", "db/password"], None);
    assert!(again.status.success(), "{}", text(&again));
}
