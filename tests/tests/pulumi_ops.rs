//! preview, up, refresh and destroy against the fake `pulumi` CLI: events,
//! ledger, outputs, errors, cancellation and concurrency.
#![allow(clippy::unwrap_used, reason = "tests: a failure should panic")]

mod pulumi_common;

use std::time::Duration;

use futures::StreamExt;
use lift::pulumi::{CancellationToken, Error, EventPayload, OpOptions, ResourceStatus};
use lift_core::{Classify, DeployResult, Deployer, ErrorKind, OutputValue};
use pulumi_common::{Project, alive, reaped_within, stack};

#[tokio::test]
async fn up_streams_events_builds_the_ledger_and_reads_secret_outputs() {
    let project = Project::new();
    let ws = project.workspace().await;
    let dev = ws.create_stack(stack("dev")).await.unwrap();

    let mut options = OpOptions::default().message("first deploy");
    let events = options.subscribe();
    let collector = tokio::spawn(events.collect::<Vec<_>>());
    let result = dev.up(options).await.unwrap();
    let events = collector.await.unwrap();

    assert!(matches!(
        events.first().map(|e| &e.payload),
        Some(EventPayload::Prelude(_))
    ));
    assert!(
        events.last().unwrap().is_cancel(),
        "the stream ends with cancelEvent"
    );
    assert!(result.decode_issues.is_empty());
    assert_eq!(result.summary.result, DeployResult::Succeeded);
    assert_eq!(result.summary.operation, "up");
    assert_eq!(
        result.summary.resource_changes.get("create"),
        Some(&3),
        "{:?}",
        result.summary
    );
    let engine = result.engine_summary.as_ref().unwrap();
    assert_eq!(engine.is_preview, Some(false));

    // The program's three resources, and the aws default provider the engine
    // creates for the bucket and the object (an internal entry).
    let entries: Vec<_> = result.ledger.resources().collect();
    assert_eq!(entries.len(), 3, "{entries:?}");
    let internal: Vec<_> = result
        .ledger
        .entries()
        .iter()
        .filter(|e| e.internal)
        .collect();
    assert_eq!(internal.len(), 1, "{internal:?}");
    assert_eq!(internal[0].resource_type, "pulumi:providers:aws");
    assert!(
        entries
            .iter()
            .all(|e| e.status == ResourceStatus::Succeeded && e.op == "create")
    );
    assert!(
        entries
            .iter()
            .any(|e| e.resource_type == "aws:s3:BucketObject")
    );
    assert!(entries.iter().all(|e| e.duration.is_some()));

    let OutputValue::Secret(password) = &result.outputs["password"] else {
        panic!("password should be secret")
    };
    assert_eq!(password.expose_str(), Some("hunter2"));
    assert!(!result.outputs["bucketName"].is_secret());
    assert_eq!(result.version, None, "DIY backends number no update");
    assert_eq!(result.permalink, None, "a diy backend prints no permalink");
    assert!(!format!("{result:?}").contains("hunter2"));
    let ledger = serde_json::to_value(&result.ledger).unwrap();
    // Serialized, the ledger keeps every entry, the internal one marked.
    let serialized = ledger["entries"].as_array().unwrap();
    assert_eq!(serialized.len(), 4);
    assert_eq!(
        serialized.iter().filter(|e| e["internal"] == true).count(),
        1
    );
    assert!(!ledger.to_string().contains("hunter2"));

    // Audit: started then succeeded, correlated, without secret values.
    let audit = project.audit.events();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "stack.init.started",
            "stack.init.succeeded",
            "up.started",
            "up.succeeded"
        ]
    );
    assert_eq!(audit[2].correlation_id, audit[3].correlation_id);
    assert_ne!(audit[0].correlation_id, audit[2].correlation_id);
    assert_eq!(audit[3].resource.id, "dev");
    assert!(!serde_json::to_string(&audit).unwrap().contains("hunter2"));

    // A second up changes nothing; a preview plans nothing; refresh and destroy work.
    let again = dev.up(OpOptions::default()).await.unwrap();
    assert_eq!(again.summary.resource_changes.get("same"), Some(&3));
    assert_eq!(again.version, None);
    let preview = dev
        .preview(OpOptions::default().expect_no_changes(true))
        .await
        .unwrap();
    assert_eq!(preview.engine_summary.unwrap().is_preview, Some(true));
    assert_eq!(preview.version, None);
    let refresh = dev.refresh(OpOptions::default()).await.unwrap();
    assert_eq!(refresh.summary.operation, "refresh");
    let destroy = dev.destroy(OpOptions::default()).await.unwrap();
    assert_eq!(destroy.summary.resource_changes.get("delete"), Some(&3));
    assert!(destroy.outputs.is_empty());
    assert!(dev.outputs().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_deployer_trait_drives_a_stack() {
    let project = Project::new();
    let ws = project.workspace().await;
    let dev = ws.create_stack(stack("dev")).await.unwrap();
    let deployer: &dyn Deployer = &dev;
    let preview = deployer.preview().await.unwrap();
    assert_eq!(preview.resource_changes.get("create"), Some(&3));
    deployer.up().await.unwrap();
    assert!(deployer.outputs().await.unwrap()["password"].is_secret());
    let destroyed = deployer.destroy().await.unwrap();
    assert_eq!(destroyed.result, DeployResult::Succeeded);
}

#[tokio::test]
async fn conflicts_are_classified_with_the_go_sdk_strings() {
    let project = Project::new();
    project
        .workspace()
        .await
        .create_stack(stack("dev"))
        .await
        .unwrap();
    for (mode, text) in [("conflict", "[409]"), ("locked", "locked")] {
        let ws = project
            .builder()
            .env("FAKE_PULUMI_FAIL", mode)
            .build()
            .await
            .unwrap();
        let err = ws
            .stack(stack("dev"))
            .up(OpOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err.cause(), Error::ConcurrentUpdate { .. }),
            "{mode}: {err}"
        );
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(err.kind().is_transient());
        assert!(err.to_string().contains(text), "{err}");
        let core: lift_core::Error = err.into();
        assert_eq!(core.kind(), ErrorKind::Conflict);
    }
    let actions = project.audit.actions();
    assert!(
        actions.ends_with(&["up.started".to_owned(), "up.failed".to_owned()]),
        "{actions:?}"
    );
}

#[tokio::test]
async fn program_failures_are_classified_and_keep_the_partial_ledger() {
    let project = Project::new();
    project
        .workspace()
        .await
        .create_stack(stack("dev"))
        .await
        .unwrap();
    let cases = [
        ("compile", "compile"),
        ("runtime", "run time"),
        ("engine-bug", "internal error"),
        ("exit:42", "exit code 42"),
    ];
    for (mode, text) in cases {
        let ws = project
            .builder()
            .env("FAKE_PULUMI_FAIL", mode)
            .build()
            .await
            .unwrap();
        let err = ws
            .stack(stack("dev"))
            .up(OpOptions::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(text), "{mode}: {err}");
        assert_eq!(err.kind(), ErrorKind::External, "{mode}");
        assert!(err.partial_ledger().is_some());
    }

    let ws = project
        .builder()
        .env("FAKE_PULUMI_FAIL_RESOURCE", "object")
        .build()
        .await
        .unwrap();
    let err = ws
        .stack(stack("dev"))
        .up(OpOptions::default())
        .await
        .unwrap_err();
    let ledger = err.partial_ledger().unwrap();
    let object = ledger
        .entries()
        .iter()
        .find(|e| e.resource_type == "aws:s3:BucketObject")
        .unwrap();
    assert_eq!(object.status, ResourceStatus::Failed);
    assert!(!object.diagnostics.is_empty(), "{object:?}");
    let bucket = ledger
        .entries()
        .iter()
        .find(|e| e.resource_type == "aws:s3:Bucket")
        .unwrap();
    assert_eq!(bucket.status, ResourceStatus::Succeeded);
}

#[tokio::test]
async fn damaged_event_logs_are_handled() {
    let project = Project::new();
    project
        .workspace()
        .await
        .create_stack(stack("dev"))
        .await
        .unwrap();
    let truncated = project
        .builder()
        .env("FAKE_PULUMI_FAIL", "truncate-event-log")
        .build()
        .await
        .unwrap();
    let result = truncated
        .stack(stack("dev"))
        .up(OpOptions::default())
        .await
        .unwrap();
    assert_eq!(result.decode_issues.len(), 1, "{:?}", result.decode_issues);
    assert!(result.decode_issues[0].to_string().contains("truncated"));
    assert!(result.engine_summary.is_some());

    let garbage = project
        .builder()
        .env("FAKE_PULUMI_FAIL", "garbage-events")
        .build()
        .await
        .unwrap();
    let result = garbage
        .stack(stack("dev"))
        .up(OpOptions::default())
        .await
        .unwrap();
    assert_eq!(result.decode_issues.len(), 1);
    assert_eq!(result.ledger.resources().count(), 3);
}

#[tokio::test]
async fn cancellation_sends_sigint_waits_and_leaves_no_zombie() {
    let project = Project::new();
    project
        .workspace()
        .await
        .create_stack(stack("dev"))
        .await
        .unwrap();
    let ws = project
        .builder()
        .env("FAKE_PULUMI_SLOW", "wait-sigint")
        .build()
        .await
        .unwrap();
    let token = CancellationToken::new();
    let mut options = OpOptions::default().cancel_token(token.clone());
    let mut events = options.subscribe();
    let dev = ws.stack(stack("dev"));
    let op = tokio::spawn(async move { dev.up(options).await });
    // Cancel once the engine is visibly running.
    let first = tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .unwrap();
    assert!(first.is_some());
    token.cancel();
    let err = tokio::time::timeout(Duration::from_secs(20), op)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err.cause(), Error::Cancelled { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    assert!(
        !err.to_string().contains("killed"),
        "SIGINT sufficed: {err}"
    );
    assert!(project.audit.actions().contains(&"up.cancelled".to_owned()));
    let pid = project.recorded().last().unwrap()["pid"].as_u64().unwrap();
    assert!(!alive(pid));
    assert!(
        reaped_within(pid, Duration::from_secs(5)).await,
        "pulumi {pid} left a zombie"
    );
    // The fake released its lock on SIGINT: the next update runs.
    project
        .workspace()
        .await
        .stack(stack("dev"))
        .up(OpOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_process_that_ignores_sigint_is_killed_after_the_grace_period() {
    let project = Project::new();
    project
        .workspace()
        .await
        .create_stack(stack("dev"))
        .await
        .unwrap();
    let ws = project
        .builder()
        .env("FAKE_PULUMI_SLOW", "ignore-sigint")
        .grace_period(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = ws
        .stack(stack("dev"))
        .up(OpOptions::default().timeout(Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert!(matches!(err.cause(), Error::Timeout { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(
        err.to_string().contains("killed after the grace period"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let pid = project.recorded().last().unwrap()["pid"].as_u64().unwrap();
    assert!(!alive(pid));
    assert!(
        reaped_within(pid, Duration::from_secs(5)).await,
        "pulumi {pid} left a zombie"
    );
    // SIGKILL left the diy lock behind, as with the real CLI; `cancel` clears it.
    let plain = project.workspace().await;
    let locked = plain
        .stack(stack("dev"))
        .up(OpOptions::default())
        .await
        .unwrap_err();
    assert_eq!(locked.kind(), ErrorKind::Conflict);
    plain
        .stack(stack("dev"))
        .cancel(lift::pulumi::CancelOptions::default())
        .await
        .unwrap();
    plain
        .stack(stack("dev"))
        .up(OpOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn dropping_the_future_interrupts_pulumi() {
    let project = Project::new();
    project
        .workspace()
        .await
        .create_stack(stack("dev"))
        .await
        .unwrap();
    let ws = project
        .builder()
        .env("FAKE_PULUMI_SLOW", "wait-sigint")
        .build()
        .await
        .unwrap();
    let mut options = OpOptions::default();
    let mut events = options.subscribe();
    let dev = ws.stack(stack("dev"));
    let op = tokio::spawn(async move { dev.up(options).await });
    tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .unwrap();
    op.abort();
    assert!(op.await.unwrap_err().is_cancelled());
    let pid = project.recorded().last().unwrap()["pid"].as_u64().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while alive(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !alive(pid),
        "pulumi still running after the future was dropped"
    );
    assert!(
        reaped_within(pid, Duration::from_secs(5)).await,
        "pulumi {pid} left a zombie"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stacks_update_concurrently_from_one_process() {
    let project = Project::new();
    let ws = project
        .builder()
        .env("FAKE_PULUMI_EVENT_DELAY_MS", "20")
        .build()
        .await
        .unwrap();
    let a = ws.create_stack(stack("alpha")).await.unwrap();
    let b = ws.create_stack(stack("beta")).await.unwrap();
    let started = std::time::Instant::now();
    let (ra, rb) = tokio::join!(a.up(OpOptions::default()), b.up(OpOptions::default()));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let both = started.elapsed();
    assert_eq!(ra.stack, "alpha");
    assert_eq!(rb.stack, "beta");
    assert_eq!(ra.summary.result, lift::DeployResult::Succeeded);
    assert_eq!(rb.summary.result, lift::DeployResult::Succeeded);
    assert_eq!(ra.ledger.resources().count(), 3);
    assert!(ra.ledger.entries()[0].urn.contains("alpha"));
    assert!(rb.ledger.entries()[0].urn.contains("beta"));
    // They overlapped: each took most of the time of both together.
    let single = a.up(OpOptions::default()).await.unwrap().summary.duration;
    assert!(both < single * 2, "both {both:?} vs one {single:?}");
}
