//! lift against the real Pulumi CLI, the version pinned in `tools/pulumi/go.mod`.
//!
//! `cargo xtask pulumi` builds it (with its YAML language host and the Go
//! Automation API helper) from the Go module proxy; `cargo xtask ci` builds
//! it and runs this suite with `LIFT_TEST_REAL_PULUMI=1` and
//! `LIFT_REAL_PULUMI=<path>`. Without them the tests look for the cached
//! build and otherwise skip, saying so; with `LIFT_TEST_REAL_PULUMI=1` (or
//! `CI=true`) a missing CLI is a failure.
//!
//! Every test uses a DIY file backend in a temporary directory, a passphrase
//! and a private `PULUMI_HOME`, and YAML programs made of the engine's
//! built-in `pulumi` package, so no plugin is downloaded.
//! `LIFT_RECORD_FIXTURES=1` copies the event logs of the scenarios into
//! `tests/fixtures/pulumi/recorded/`.

#![allow(
    clippy::print_stderr,
    clippy::unwrap_used,
    reason = "a skip says why; a failure should panic"
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use lift::pulumi::{
    CancelOptions, CancelOutcome, ConfigOptions, ConfigValue, Ledger, OpOptions, ResourceStatus,
    StackName, Workspace, parse_events,
};
use lift_core::{Classify, ErrorKind, OutputValue, SecretValue};
use lift_tests::scenario::{self, PASSPHRASE};
use real_common::{Project, language_dir, path_with, real_pulumi};
use serde_json::Value;

mod real_common;

fn stack(name: &str) -> StackName {
    name.parse().unwrap()
}

/// Every replayable scenario passes on the real CLI, and lift reads every
/// event log it wrote without an issue and with a truthful ledger.
#[test]
fn the_scenarios_pass_on_the_real_cli() {
    let Some(pulumi) = real_pulumi() else {
        return;
    };
    let tools = language_dir(&pulumi);
    let tools = tools.as_path();
    let record = std::env::var("LIFT_RECORD_FIXTURES").as_deref() == Ok("1");
    let recorded = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pulumi/recorded");
    for (name, scenario) in scenario::load_all().unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let outcomes = scenario::replay(&pulumi, Some(tools), &scenario, dir.path()).unwrap();
        for (i, outcome) in outcomes.iter().enumerate() {
            assert!(
                outcome.mismatches.is_empty(),
                "{name} step {i} ({:?}): {:?}\nstdout: {}\nstderr: {}",
                outcome.args,
                outcome.mismatches,
                outcome.stdout,
                outcome.stderr
            );
            let Some(events) = &outcome.events else {
                continue;
            };
            let parsed = parse_events(events);
            assert!(
                parsed.issues.is_empty(),
                "{name} step {i}: {:?}",
                parsed.issues
            );
            assert_eq!(
                parsed.events.first().map(|e| e.sequence),
                Some(0),
                "the real log starts at sequence 0"
            );
            let mut ledger = Ledger::default();
            for event in &parsed.events {
                ledger.apply(event);
            }
            ledger.close(std::time::Instant::now(), outcome.exit == 0);
            if outcome.exit == 0 {
                assert_eq!(ledger.count(ResourceStatus::Failed), 0, "{name} step {i}");
                assert_eq!(
                    ledger.count(ResourceStatus::Unfinished),
                    0,
                    "{name} step {i}"
                );
            }
            if record {
                std::fs::create_dir_all(&recorded).unwrap();
                std::fs::write(recorded.join(format!("{name}__step{i:02}.jsonl")), events).unwrap();
            }
        }
    }
}

/// Stacks, config, tags, the four operations, outputs, history, export and
/// import through the library, with short and fully qualified names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_drives_the_real_cli_end_to_end() {
    let Some(pulumi) = real_pulumi() else {
        return;
    };
    let project = Project::new(&pulumi, "outputs");
    let ws = project.workspace().await;
    assert_eq!(
        ws.cli().version().to_string(),
        "3.274.1",
        "the pinned version reports itself"
    );

    // Stacks by every form of name pulumi resolves.
    let dev = ws.create_stack(stack("dev")).await.unwrap();
    let again = ws.create_stack(stack("dev")).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::AlreadyExists, "{again}");
    for name in ["dev", "organization/dev", "organization/lift-real/dev"] {
        ws.select_stack(stack(name)).await.unwrap();
    }
    let missing = ws
        .select_stack(stack("organization/lift-real/nope"))
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
    let qa = ws
        .select_or_create_stack(stack("organization/lift-real/qa"))
        .await
        .unwrap();
    ws.select_or_create_stack(stack("qa")).await.unwrap();
    let names: Vec<String> = ws
        .list_stacks()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["dev", "qa"]);

    // Config: plain, secret, path, and a PEM value byte for byte.
    let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
    dev.config_set(
        "token",
        &ConfigValue::Secret(SecretValue::from("canary-lib-secret")),
        ConfigOptions::default(),
    )
    .await
    .unwrap();
    dev.config_set(
        "pem",
        &ConfigValue::Secret(SecretValue::from(pem)),
        ConfigOptions::default(),
    )
    .await
    .unwrap();
    dev.config_set(
        "region",
        &ConfigValue::Plain("eu-west-1\n\n".into()),
        ConfigOptions::default(),
    )
    .await
    .unwrap();
    dev.config_set(
        "servers[0].port",
        &ConfigValue::Plain("8080".into()),
        ConfigOptions::default().path(true),
    )
    .await
    .unwrap();
    let ConfigValue::Secret(back) = dev
        .config_get("pem", ConfigOptions::default())
        .await
        .unwrap()
    else {
        panic!("pem should be secret")
    };
    assert_eq!(
        back.expose(),
        pem.as_bytes(),
        "the PEM round-trips byte for byte"
    );
    assert_eq!(
        dev.config_get("region", ConfigOptions::default())
            .await
            .unwrap()
            .as_plain(),
        Some("eu-west-1\n\n")
    );
    let port = dev
        .config_get("servers[0].port", ConfigOptions::default().path(true))
        .await
        .unwrap();
    assert_eq!(port.as_plain(), Some("8080"));
    let hidden = dev.config_list(ConfigOptions::default()).await.unwrap();
    assert_eq!(hidden["lift-real:token"], ConfigValue::HiddenSecret);
    let shown = dev
        .config_list(ConfigOptions::default().show_secrets(true))
        .await
        .unwrap();
    assert!(
        matches!(&shown["lift-real:token"], ConfigValue::Secret(s) if s.expose() == b"canary-lib-secret")
    );
    let guarded = dev
        .config_set(
            "dbPassword",
            &ConfigValue::Plain("xK9#mQ2$vL7!pR4&zT8".into()),
            ConfigOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(guarded.kind(), ErrorKind::InvalidInput, "{guarded}");
    dev.config_remove("region", ConfigOptions::default())
        .await
        .unwrap();
    let gone = dev
        .config_get("region", ConfigOptions::default())
        .await
        .unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound, "{gone}");

    // Tags.
    dev.tag_set("team", "platform").await.unwrap();
    assert_eq!(dev.tag_get("team").await.unwrap(), "platform");
    assert_eq!(dev.tag_list().await.unwrap()["team"], "platform");
    dev.tag_remove("team").await.unwrap();
    assert_eq!(
        dev.tag_get("team").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Preview, up, refresh, destroy.
    let preview = dev.preview(OpOptions::default()).await.unwrap();
    assert!(preview.engine_summary.is_some());
    let up = dev
        .up(OpOptions::default().message("lift real test"))
        .await
        .unwrap();
    assert_eq!(up.version, None, "DIY backends number no update");
    assert!(up.warnings.is_empty(), "{:?}", up.warnings);
    assert_eq!(up.ledger.count(ResourceStatus::Failed), 0);
    assert!(
        up.ledger
            .entries()
            .iter()
            .all(|e| e.status == ResourceStatus::Succeeded)
    );
    assert!(
        up.ledger
            .resources()
            .any(|e| e.resource_type == "pulumi:pulumi:Stack")
    );
    assert_eq!(
        up.outputs["greeting"],
        OutputValue::Plain("hello <world> & more".into())
    );
    let OutputValue::Secret(token) = &up.outputs["token"] else {
        panic!("token should be a secret output")
    };
    assert_eq!(token.expose_str(), Some("canary-lib-secret"));
    assert!(up.outputs["secretNote"].is_secret());
    assert!(!format!("{up:?}").contains("canary-lib-secret"));
    let history = dev.history(5).await.unwrap();
    assert_eq!(history[0].version, 0, "DIY backends print 0");
    assert_eq!(history[0].message, "lift real test");
    assert_eq!(history[0].result, "succeeded");

    project.use_program("outputs-changed");
    let changed = dev.up(OpOptions::default()).await.unwrap();
    assert_eq!(changed.summary.resource_changes.get("create"), Some(&1));
    let refresh = dev.refresh(OpOptions::default()).await.unwrap();
    assert_eq!(refresh.summary.result, lift::DeployResult::Succeeded);
    assert_eq!(dev.history(10).await.unwrap().len(), 3);
    let refused = dev
        .refresh(
            OpOptions::default()
                .replace("urn:pulumi:dev::lift-real::pulumi:providers:pulumi::extra"),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidInput, "{refused}");

    // Export and import.
    let state = dev.export().await.unwrap();
    assert!(state["deployment"]["resources"].as_array().unwrap().len() >= 3);
    dev.import(&state).await.unwrap();

    let destroyed = dev.destroy(OpOptions::default()).await.unwrap();
    assert!(
        destroyed
            .summary
            .resource_changes
            .get("delete")
            .is_some_and(|n| *n >= 2)
    );
    ws.remove_stack(dev.name(), false).await.unwrap();
    ws.remove_stack(qa.name(), false).await.unwrap();

    // Every state change was audited, with keys but never values.
    let trail = serde_json::to_string(&project.audit.events()).unwrap();
    for action in [
        "stack.init.succeeded",
        "config.set.succeeded",
        "config.rm.succeeded",
        "tag.set.succeeded",
        "tag.rm.succeeded",
        "up.succeeded",
        "refresh.succeeded",
        "destroy.succeeded",
        "stack.export.succeeded",
        "stack.import.succeeded",
        "stack.rm.succeeded",
    ] {
        assert!(trail.contains(&format!("\"{action}\"")), "{action} missing");
    }
    assert!(
        trail.contains("\"config.set.failed\""),
        "the refused plain password is audited"
    );
    assert!(!trail.contains("canary-lib-secret"));
    assert!(!trail.contains("xK9#mQ2"));
    assert!(!trail.contains("MC4CAQAwBQYDK2VwBCIEIA"));
}

/// A wrong passphrase, changes under --expect-no-changes, a program error
/// and a missing stack each get their own kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_classified_from_the_real_cli() {
    let Some(pulumi) = real_pulumi() else {
        return;
    };
    let project = Project::new(&pulumi, "outputs");
    let ws = project.workspace().await;
    let dev = ws.create_stack(stack("dev")).await.unwrap();
    dev.config_set(
        "token",
        &ConfigValue::Secret("t0k3n".into()),
        ConfigOptions::default(),
    )
    .await
    .unwrap();
    dev.up(OpOptions::default()).await.unwrap();

    let wrong = Workspace::builder(project.project())
        .pulumi(&pulumi)
        .backend_url(project.backend())
        .pulumi_home(project.dir.path().join("home"))
        .passphrase(SecretValue::from("not-the-passphrase"))
        .env("PATH", path_with(&project.tools_dir()))
        .build()
        .await
        .unwrap();
    let err = wrong
        .stack(stack("dev"))
        .up(OpOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("passphrase"), "{err}");

    project.use_program("outputs-changed");
    let err = dev
        .preview(OpOptions::default().expect_no_changes(true))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(matches!(
        err.cause(),
        lift::pulumi::Error::ChangesNotExpected { .. }
    ));

    project.use_program("broken");
    let err = dev.up(OpOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::External, "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
    let ledger = err.partial_ledger().unwrap();
    assert_eq!(ledger.count(ResourceStatus::Pending), 0);

    let nope = ws.stack(stack("nope")).outputs().await.unwrap_err();
    assert_eq!(nope.kind(), ErrorKind::NotFound, "{nope}");

    // Refused before anything runs.
    let both = dev
        .up(OpOptions::default().target("urn:a").exclude("urn:b"))
        .await
        .unwrap_err();
    assert_eq!(both.kind(), ErrorKind::InvalidInput);
}

/// Two concurrent `up`s on one stack: exactly one conflict, and the stack
/// is usable afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_ups_give_exactly_one_conflict() {
    let Some(pulumi) = real_pulumi() else {
        return;
    };
    let project = Project::new(&pulumi, "outputs");
    let ws = project.workspace().await;
    let dev = ws.create_stack(stack("dev")).await.unwrap();
    dev.config_set(
        "token",
        &ConfigValue::Secret("t0k3n".into()),
        ConfigOptions::default(),
    )
    .await
    .unwrap();
    let slow = project.workspace_with_path(project.slow_path(6)).await;
    let first = slow.stack(stack("dev"));
    let running = tokio::spawn(async move { first.up(OpOptions::default()).await });
    project.wait_for_lock("dev");
    let second = ws.stack(stack("dev")).up(OpOptions::default()).await;
    let first = running.await.unwrap();
    let results = [first, second];
    let conflicts = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::Conflict))
        .count();
    let successes = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!((conflicts, successes), (1, 1), "{results:?}");
    let after = dev.up(OpOptions::default()).await.unwrap();
    assert_eq!(after.summary.result, lift::DeployResult::Succeeded);
}

/// Cancelling a running `up`: by token (Ctrl-C in a library), and by
/// `Stack::cancel` from the same workspace; on a DIY backend `cancel` with
/// nothing running says so, and the stack stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_up_stops_it_and_releases_the_stack() {
    let Some(pulumi) = real_pulumi() else {
        return;
    };
    let project = Project::new(&pulumi, "outputs");
    let slow = project.workspace_with_path(project.slow_path(5)).await;
    let dev = slow.create_stack(stack("dev")).await.unwrap();
    dev.config_set(
        "token",
        &ConfigValue::Secret("t0k3n".into()),
        ConfigOptions::default(),
    )
    .await
    .unwrap();

    let token = lift::pulumi::CancellationToken::new();
    let running = {
        let dev = dev.clone();
        let token = token.clone();
        tokio::spawn(async move { dev.up(OpOptions::default().cancel_token(token)).await })
    };
    project.wait_for_lock("dev");
    token.cancel();
    let err = running.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    project.wait_until_locked("dev", false);

    let running = {
        let dev = dev.clone();
        tokio::spawn(async move { dev.up(OpOptions::default()).await })
    };
    project.wait_for_lock("dev");
    let outcome = dev.cancel(CancelOptions::default()).await.unwrap();
    assert_eq!(outcome, CancelOutcome::Interrupted { operations: 1 });
    let err = running.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");

    // Nothing runs now: the DIY backend has no lock, and lift says so.
    let fast = project.workspace().await;
    let outcome = fast
        .stack(stack("dev"))
        .cancel(CancelOptions::default())
        .await
        .unwrap();
    assert!(
        matches!(&outcome, CancelOutcome::LockBroken { holders, locks_readable: true } if holders.is_empty()),
        "{outcome:?}"
    );
    assert!(outcome.describe("dev").contains("not locked"));
    let up = fast
        .stack(stack("dev"))
        .up(OpOptions::default())
        .await
        .unwrap();
    assert_eq!(up.summary.result, lift::DeployResult::Succeeded);
}

/// A component that registers no outputs gets no `resOutputsEvent`; on the
/// real engine's stream, recorded through Pulumi's own Go Automation API,
/// lift's ledger still reports it succeeded.
#[test]
fn a_component_without_outputs_is_not_failed_on_a_real_stream() {
    let Some(pulumi) = real_pulumi() else {
        return;
    };
    let helper = pulumi.with_file_name("lift-automation");
    assert!(
        helper.is_file(),
        "{} is missing: run `cargo xtask pulumi`",
        helper.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let events = dir.path().join("component.jsonl");
    let out = Command::new(&helper)
        .arg("record-component")
        .arg(&work)
        .arg(&events)
        .env("PATH", path_with(pulumi.parent().unwrap()))
        .env(
            "PULUMI_BACKEND_URL",
            format!("file://{}", dir.path().join("state").display()),
        )
        .env("PULUMI_HOME", dir.path().join("home"))
        .env("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
        .env("PULUMI_SKIP_UPDATE_CHECK", "true")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&events).unwrap();
    let parsed = parse_events(&bytes);
    assert!(parsed.issues.is_empty(), "{:?}", parsed.issues);
    let mut ledger = Ledger::default();
    for event in &parsed.events {
        ledger.apply(event);
    }
    let group = ledger
        .entries()
        .iter()
        .find(|e| e.resource_type == "lift:test:Group")
        .expect("the component is in the ledger");
    assert_eq!(
        group.status,
        ResourceStatus::Pending,
        "no outputs event came for it"
    );
    ledger.close(std::time::Instant::now(), true);
    assert!(
        ledger
            .entries()
            .iter()
            .all(|e| e.status == ResourceStatus::Succeeded)
    );
    assert!(
        ledger.entries().iter().any(|e| e.internal),
        "the default provider is internal"
    );
    if std::env::var("LIFT_RECORD_FIXTURES").as_deref() == Ok("1") {
        let recorded = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pulumi/recorded");
        std::fs::create_dir_all(&recorded).unwrap();
        std::fs::write(recorded.join("component-without-outputs.jsonl"), &bytes).unwrap();
    }
}

/// `lift deploy` on the real CLI: init, config, `up --json` with the right
/// summary, resources, outputs and history; `cancel` of an update run by
/// another lift process; exit codes.
#[test]
fn the_lift_binary_deploys_with_the_real_cli() {
    let Some(pulumi) = real_pulumi() else {
        return;
    };
    let lift = PathBuf::from(env!("CARGO_BIN_EXE_pulumi")).with_file_name("lift");
    if !lift.is_file() {
        assert!(
            std::env::var_os("LIFT_TEST_REQUIRE_LIFT_BIN").is_none(),
            "{} is missing",
            lift.display()
        );
        eprintln!("skipping: {} is not built", lift.display());
        return;
    }
    let project = Project::new(&pulumi, "outputs");
    let audit_log = project.dir.path().join("audit.jsonl");
    let run = |args: &[&str], stdin: Option<&str>, path: Option<std::ffi::OsString>| -> Output {
        let mut command = Command::new(&lift);
        command
            .arg("--audit-log")
            .arg(&audit_log)
            .arg("deploy")
            .args(args)
            .arg("--cwd")
            .arg(project.project())
            .arg("--pulumi")
            .arg(&pulumi)
            .env(
                "PATH",
                path.unwrap_or_else(|| path_with(&project.tools_dir())),
            )
            .env("PULUMI_BACKEND_URL", project.backend())
            .env("PULUMI_HOME", project.dir.path().join("home"))
            .env("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
            .env_remove("LIFT_AUDIT_KEY_FILE")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    };
    let json = |out: &Output| -> Value {
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };

    // Flags after the subcommand, and a fully qualified name.
    let init = json(&run(
        &["init", "--stack", "organization/lift-real/dev", "--json"],
        None,
        None,
    ));
    assert_eq!(init["action"], "created");
    let init = json(&run(&["init", "--stack", "dev", "--json"], None, None));
    assert_eq!(init["action"], "selected");
    // `ls` needs no stack; pulumi names the current project's stacks short.
    let ls = json(&run(&["ls", "--json"], None, None));
    assert_eq!(ls["stacks"][0]["name"], "dev", "{ls}");
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    json(&run(
        &[
            "config", "set", "token", "--secret", "--stack", "dev", "--json",
        ],
        Some("canary-cli-secret"),
        None,
    ));
    json(&run(
        &[
            "config", "set", "cert", "--secret", "--stack", "dev", "--json",
        ],
        Some(pem),
        None,
    ));
    let cert = json(&run(
        &[
            "config",
            "get",
            "cert",
            "--show-secrets",
            "--stack",
            "dev",
            "--json",
        ],
        None,
        None,
    ));
    assert_eq!(
        cert["config"]["cert"]["value"], pem,
        "the trailing newline survives"
    );

    // Without a terminal, `up` needs --yes, and nothing changes without it.
    let refused = run(&["up", "--stack", "dev"], None, None);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let up = json(&run(
        &["up", "--yes", "--stack", "dev", "--json"],
        None,
        None,
    ));
    assert_eq!(up["summary"]["result"], "succeeded");
    assert_eq!(up["version"], Value::Null, "DIY backends number no update");
    let resources = up["resources"].as_array().unwrap();
    assert!(!resources.is_empty());
    assert!(resources.iter().all(|r| r["status"] == "succeeded"), "{up}");
    assert_eq!(up["outputs"]["greeting"]["value"], "hello <world> & more");
    assert_eq!(up["outputs"]["token"]["value"], "[secret]");
    assert!(!up.to_string().contains("canary-cli-secret"));
    let history = json(&run(&["history", "--stack", "dev", "--json"], None, None));
    assert_eq!(history["updates"][0]["kind"], "update");

    // `lift deploy cancel` from another process interrupts an update that a
    // lift process runs, and says so.
    let mut slow_up = Command::new(&lift);
    slow_up
        .args(["deploy", "up", "--yes", "--json", "--stack", "dev", "--cwd"])
        .arg(project.project())
        .arg("--pulumi")
        .arg(&pulumi)
        .env("PATH", project.slow_path(6))
        .env("PULUMI_BACKEND_URL", project.backend())
        .env("PULUMI_HOME", project.dir.path().join("home"))
        .env("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
        .env_remove("LIFT_AUDIT_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = slow_up.spawn().unwrap();
    project.wait_for_lock("dev");
    let cancel = json(&run(&["cancel", "--stack", "dev", "--json"], None, None));
    assert_eq!(cancel["action"], "signalled", "{cancel}");
    let interrupted = child.wait_with_output().unwrap();
    assert_eq!(
        interrupted.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&interrupted.stderr)
    );
    let failure: Value = serde_json::from_slice(&interrupted.stdout).unwrap();
    assert_eq!(failure["error"]["kind"], "cancelled", "{failure}");

    // The stack is usable again, and cancel with nothing running says so.
    let cancel = json(&run(&["cancel", "--stack", "dev", "--json"], None, None));
    assert_eq!(cancel["action"], "lock_broken");
    assert!(
        cancel["detail"].as_str().unwrap().contains("not locked"),
        "{cancel}"
    );
    json(&run(
        &["up", "--yes", "--stack", "dev", "--json"],
        None,
        None,
    ));

    // Exit codes: bad flags 2, not found 1 with its kind.
    let both = run(
        &[
            "up",
            "--yes",
            "--target",
            "urn:a",
            "--exclude",
            "urn:b",
            "--stack",
            "dev",
        ],
        None,
        None,
    );
    assert_eq!(both.status.code(), Some(2));
    let missing = run(
        &["config", "get", "nope", "--stack", "dev", "--json"],
        None,
        None,
    );
    assert_eq!(missing.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&missing.stdout).unwrap();
    assert_eq!(body["error"]["kind"], "not_found");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("--cwd"),
        "the hint keeps the --cwd given: {body}"
    );

    // The audit trail has every change, and no secret.
    let trail = std::fs::read_to_string(&audit_log).unwrap();
    for action in [
        "stack.init.succeeded",
        "config.set.succeeded",
        "up.succeeded",
        "cancel.succeeded",
    ] {
        assert!(trail.contains(action), "{action} missing from the trail");
    }
    assert!(!trail.contains("canary-cli-secret"));
}
