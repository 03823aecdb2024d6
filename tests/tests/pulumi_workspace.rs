//! lift-pulumi's workspace and stack commands against the fake `pulumi` CLI.
#![allow(clippy::unwrap_used, reason = "tests: a failure should panic")]

mod pulumi_common;

use lift::pulumi::{ConfigOptions, ConfigValue, Error};
use lift_core::{Classify, ErrorKind, SecretValue};
use pulumi_common::{Project, fake_pulumi, stack};

#[tokio::test]
async fn stacks_are_created_selected_listed_and_removed_without_global_selection() {
    let project = Project::new();
    let ws = project.workspace().await;
    assert_eq!(ws.cli().version().major, 3);

    let dev = ws.create_stack(stack("dev")).await.unwrap();
    assert_eq!(dev.name().as_str(), "dev");
    let again = ws.create_stack(stack("dev")).await.unwrap_err();
    assert!(matches!(again, Error::StackAlreadyExists { .. }), "{again}");
    assert_eq!(again.kind(), ErrorKind::AlreadyExists);

    let missing = ws.select_stack(stack("prod")).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    ws.select_or_create_stack(stack("prod")).await.unwrap();
    ws.select_or_create_stack(stack("prod")).await.unwrap();
    ws.select_stack(stack("dev")).await.unwrap();

    let names: Vec<String> = ws
        .list_stacks()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.ends_with("dev") || n.ends_with("prod"))
    );

    ws.remove_stack(&stack("prod"), false).await.unwrap();
    assert_eq!(ws.list_stacks().await.unwrap().len(), 1);

    // Every command carried --non-interactive; every stack command an explicit --stack;
    // nothing ever selected a stack globally.
    for call in project.recorded() {
        let argv: Vec<String> = serde_json::from_value(call["argv"].clone()).unwrap();
        if argv.iter().any(|a| a == "version") {
            continue;
        }
        assert!(argv.iter().any(|a| a == "--non-interactive"), "{argv:?}");
        assert!(!argv.iter().any(|a| a == "select"), "{argv:?}");
        if argv.iter().any(|a| a == "init" || a == "rm") {
            assert!(argv.iter().any(|a| a == "--stack"), "{argv:?}");
            assert!(argv.iter().all(|a| a != "init") || argv.iter().any(|a| a == "--no-select"));
        }
    }
    let env: Vec<String> = serde_json::from_value(project.recorded()[0]["env"].clone()).unwrap();
    for var in [
        "PULUMI_SKIP_UPDATE_CHECK",
        "PULUMI_BACKEND_URL",
        "PULUMI_HOME",
    ] {
        assert!(env.iter().any(|e| e == var), "{var} not passed: {env:?}");
    }
}

#[tokio::test]
async fn secret_config_goes_through_stdin_never_argv() {
    let project = Project::new();
    let ws = project.workspace().await;
    let dev = ws.create_stack(stack("dev")).await.unwrap();
    let canary = "canary-Zq8!x-not-on-argv";
    dev.config_set(
        "dbPassword",
        &ConfigValue::Secret(SecretValue::from(canary)),
        ConfigOptions::default(),
    )
    .await
    .unwrap();
    dev.config_set(
        "region",
        &ConfigValue::Plain("eu-west-1".into()),
        ConfigOptions::default(),
    )
    .await
    .unwrap();
    dev.config_set(
        "app:servers[0].port",
        &ConfigValue::Plain("8080".into()),
        ConfigOptions::default().path(true),
    )
    .await
    .unwrap();

    let secret = dev
        .config_get("dbPassword", ConfigOptions::default())
        .await
        .unwrap();
    let ConfigValue::Secret(value) = &secret else {
        panic!("expected a secret")
    };
    assert_eq!(value.expose_str(), Some(canary));
    assert!(!format!("{secret:?}").contains(canary));
    let region = dev
        .config_get("region", ConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(region.as_plain(), Some("eu-west-1"));

    let all = dev
        .config_list(ConfigOptions::default().show_secrets(true))
        .await
        .unwrap();
    assert!(all["demo:dbPassword"].is_secret());
    assert_eq!(all["demo:region"].as_plain(), Some("eu-west-1"));

    dev.config_remove("region", ConfigOptions::default())
        .await
        .unwrap();
    let gone = dev
        .config_get("region", ConfigOptions::default())
        .await
        .unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound, "{gone}");
    assert!(
        gone.to_string()
            .contains("configuration key region not found for stack dev"),
        "{gone}"
    );

    let calls = project.recorded();
    assert!(!calls.is_empty());
    for call in &calls {
        assert!(
            !call["argv"].to_string().contains(canary),
            "secret on argv: {call}"
        );
    }
    let set = calls
        .iter()
        .find(|c| {
            c["argv"].to_string().contains("dbPassword") && c["argv"].to_string().contains("set")
        })
        .unwrap();
    assert_eq!(set["stdinIsTerminal"], false);
    // The state file holds only the fake's secret envelope, not the value.
    let state =
        std::fs::read_to_string(project.path().join("state/.pulumi/stacks/demo/dev.json")).unwrap();
    assert!(!state.contains(canary));
}

#[tokio::test]
async fn tags_whoami_export_and_import() {
    let project = Project::new();
    let ws = project
        .builder()
        .env("FAKE_PULUMI_USER", "alice")
        .build()
        .await
        .unwrap();
    assert_eq!(ws.whoami().await.unwrap().user, "alice");
    let dev = ws.create_stack(stack("dev")).await.unwrap();
    dev.tag_set("team", "payments").await.unwrap();
    assert_eq!(dev.tag_get("team").await.unwrap(), "payments");
    assert_eq!(dev.tag_list().await.unwrap()["team"], "payments");
    dev.tag_remove("team").await.unwrap();
    assert!(!dev.tag_list().await.unwrap().contains_key("team"));
    assert!(dev.tag_set("x", "--force").await.is_err());

    dev.up(Default::default()).await.unwrap();
    let state = dev.export().await.unwrap();
    assert_eq!(state["version"], 3);
    let resources = state["deployment"]["resources"].as_array().unwrap().len();
    assert!(resources >= 3, "{state}");
    let copy = ws.create_stack(stack("copy")).await.unwrap();
    copy.import(&state).await.unwrap();
    let imported = copy.export().await.unwrap();
    assert_eq!(
        imported["deployment"]["resources"]
            .as_array()
            .unwrap()
            .len(),
        resources
    );
}

#[tokio::test]
async fn cli_discovery_errors_are_typed() {
    let project = Project::new();
    // The version check runs before the workspace exists, so wrap the fake in
    // scripts that set its version.
    use std::os::unix::fs::PermissionsExt;
    let script = |name: &str, body: &str| {
        let path = project.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    let old = script(
        "old-pulumi",
        &format!(
            "FAKE_PULUMI_VERSION=v2.25.0 exec {} \"$@\"",
            fake_pulumi().display()
        ),
    );
    let junk = script(
        "junk-pulumi",
        &format!(
            "FAKE_PULUMI_VERSION=garbage exec {} \"$@\"",
            fake_pulumi().display()
        ),
    );
    let too_old = project.builder().pulumi(&old).build().await.unwrap_err();
    assert!(matches!(too_old, Error::TooOld { .. }), "{too_old}");
    assert_eq!(too_old.kind(), ErrorKind::Unavailable);
    let unparseable = project.builder().pulumi(&junk).build().await.unwrap_err();
    assert!(
        matches!(unparseable, Error::UnparseableVersion { .. }),
        "{unparseable}"
    );
    let missing = project
        .builder()
        .pulumi(project.path().join("nope"))
        .build()
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("LIFT_PULUMI"));
}

#[tokio::test]
async fn garbage_output_is_a_typed_error_that_quotes_no_secret() {
    let project = Project::new();
    let ws = project.workspace().await;
    let dev = ws.create_stack(stack("dev")).await.unwrap();
    dev.up(Default::default()).await.unwrap();
    let broken = project
        .builder()
        .env("FAKE_PULUMI_FAIL", "garbage")
        .env("FAKE_PULUMI_FAIL_ON", "stack,config,whoami")
        .build()
        .await
        .unwrap();
    let dev = broken.stack(stack("dev"));
    let err = dev.outputs().await.unwrap_err();
    assert!(matches!(err, Error::MalformedOutput { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::External);
    assert!(!err.to_string().contains("hunter2"));
    assert!(matches!(
        broken.list_stacks().await,
        Err(Error::MalformedOutput { .. })
    ));
    assert!(matches!(
        broken.whoami().await,
        Err(Error::MalformedOutput { .. })
    ));
}
