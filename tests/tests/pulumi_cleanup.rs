//! Operations leave no temporary file behind, whether they succeed, fail or
//! are cancelled. This file holds a single test so that nothing else creates
//! lift-pulumi temporary directories while it counts them.
#![allow(clippy::unwrap_used, reason = "tests: a failure should panic")]

mod pulumi_common;

use std::time::Duration;

use lift::pulumi::{CancellationToken, ConfigOptions, OpOptions};
use pulumi_common::{Project, stack};

fn lift_temp_dirs() -> Vec<String> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("lift-pulumi-"))
        .collect()
}

#[tokio::test]
async fn no_temporary_file_is_left_behind() {
    let before = lift_temp_dirs();
    let project = Project::new();
    let ws = project.workspace().await;
    let dev = ws.create_stack(stack("dev")).await.unwrap();
    dev.up(OpOptions::default()).await.unwrap();
    let state = dev.export().await.unwrap();
    dev.import(&state).await.unwrap();
    dev.config_set(
        "k",
        &lift::pulumi::ConfigValue::Plain("v".into()),
        ConfigOptions::default(),
    )
    .await
    .unwrap();

    let failing = project
        .builder()
        .env("FAKE_PULUMI_FAIL", "exit:3")
        .build()
        .await
        .unwrap();
    assert!(
        failing
            .stack(stack("dev"))
            .up(OpOptions::default())
            .await
            .is_err()
    );

    let slow = project
        .builder()
        .env("FAKE_PULUMI_SLOW", "wait-sigint")
        .build()
        .await
        .unwrap();
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    assert!(
        slow.stack(stack("dev"))
            .up(OpOptions::default().cancel_token(token))
            .await
            .is_err()
    );
    assert_eq!(lift_temp_dirs(), before);
    // This binary runs one test, so any zombie child would be one of lift's.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(pulumi_common::zombie_children().is_empty());
}
