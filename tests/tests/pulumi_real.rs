//! An opt-in test against a real pulumi CLI: `LIFT_TEST_REAL_PULUMI=1`.
//!
//! It uses a file backend in a temporary directory, a passphrase secrets
//! provider and a `runtime: yaml` program with only outputs, so it needs no
//! cloud account and no plugin download.
#![allow(
    clippy::print_stderr,
    clippy::unwrap_used,
    reason = "the skip message names what the test needs; a failure should panic"
)]

use lift::pulumi::{ConfigOptions, ConfigValue, OpOptions, Workspace};
use lift_core::{OutputValue, SecretValue};

const PROGRAM: &str = r#"name: lift-real
runtime: yaml
config:
  lift-real:token:
    type: string
outputs:
  greeting: hello
  token: ${lift-real:token}
"#;

#[tokio::test]
async fn real_pulumi_round_trip() {
    if std::env::var("LIFT_TEST_REAL_PULUMI").as_deref() != Ok("1") {
        eprintln!(
            "skipping real_pulumi_round_trip: set LIFT_TEST_REAL_PULUMI=1 and put pulumi 3.x on PATH (or set LIFT_PULUMI) to run it"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Pulumi.yaml"), PROGRAM).unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let ws = Workspace::builder(dir.path())
        .backend_url(format!("file://{}", dir.path().join("state").display()))
        .pulumi_home(dir.path().join("home"))
        .passphrase(SecretValue::from("lift-test-passphrase"))
        .build()
        .await
        .unwrap();
    let stack = ws.create_stack("dev".parse().unwrap()).await.unwrap();
    stack
        .config_set(
            "token",
            &ConfigValue::Secret(SecretValue::from("real-canary-42")),
            ConfigOptions::default(),
        )
        .await
        .unwrap();
    assert!(
        stack
            .config_get("token", ConfigOptions::default())
            .await
            .unwrap()
            .is_secret()
    );
    let preview = stack.preview(OpOptions::default()).await.unwrap();
    assert!(preview.engine_summary.is_some());
    let up = stack
        .up(OpOptions::default().message("lift real test"))
        .await
        .unwrap();
    assert_eq!(up.version, Some(1));
    assert_eq!(up.outputs["greeting"], OutputValue::Plain("hello".into()));
    let OutputValue::Secret(token) = &up.outputs["token"] else {
        panic!("token should be a secret output")
    };
    assert_eq!(token.expose_str(), Some("real-canary-42"));
    assert!(!up.ledger.entries().is_empty());
    stack.destroy(OpOptions::default()).await.unwrap();
    ws.remove_stack(stack.name(), false).await.unwrap();
}
