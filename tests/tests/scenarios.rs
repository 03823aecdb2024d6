//! Cross-crate scenarios: the crates working together the way a service uses them.
//!
//! - A deploy against the fake `pulumi` writes audit events to the hash-chained
//!   file sink; the trail verifies, and a forged record is named.
//! - A rotation fails at testSecret (an injected fault) and is resumed; the
//!   trail shows both, and no secret value lands in any file but the store's.
//! - The health manager aggregates the components' own checks with its
//!   resource checks, and names the component that breaks.

// Scenario helpers are plain functions, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lift::audit::{
    AuditHealthCheck, AuditKey, FileAuditSink, Finding, SinkOptions, VerifyOptions, verify,
};
use lift::monitor::{Group, HealthManager, Monitor, MonitorOptions, StandardChecks};
use lift::pulumi::{CliHealthCheck, OpOptions, Workspace};
use lift::secrets::{
    AuditedProvider, FaultPlan, FaultTrigger, FileRotationStore, FileSecretsProvider, Protection,
    RotateOptions, RotationEngine, RotationStep, StoreHealthCheck, StoreKey, StoreOnlyRotator,
};
use lift::{
    AuditSink, HealthStatus, PutOptions, SecretName, SecretValue, SecretsProvider, VersionSelector,
};

const PROGRAM: &str = "name: scenario\nruntime: yaml\nresources:\n  bucket:\n    type: aws:s3:Bucket\noutputs:\n  bucketName: ${bucket.id}\n";

fn audit_key() -> AuditKey {
    AuditKey::from_bytes(&[0x5a; 32]).unwrap()
}

async fn open_sink(log: &Path) -> Arc<FileAuditSink> {
    Arc::new(
        FileAuditSink::open(SinkOptions::new(log).key(Some(audit_key())))
            .await
            .unwrap(),
    )
}

fn records(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn actions(log: &Path) -> Vec<String> {
    records(log)
        .iter()
        .map(|r| r["event"]["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn fake_pulumi() -> &'static str {
    env!("CARGO_BIN_EXE_pulumi")
}

async fn workspace(dir: &Path, audit: Arc<dyn AuditSink>) -> Workspace {
    std::fs::write(dir.join("Pulumi.yaml"), PROGRAM).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    Workspace::builder(dir)
        .pulumi(fake_pulumi())
        .backend_url(format!("file://{}", dir.join("state").display()))
        .pulumi_home(dir.join("home"))
        .audit_sink(audit)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_is_audited_in_a_verifiable_trail_and_forgery_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let sink = open_sink(&log).await;
    let workspace = workspace(dir.path(), sink.clone()).await;
    let stack = workspace
        .select_or_create_stack("dev".parse().unwrap())
        .await
        .unwrap();
    let result = stack
        .up(OpOptions::default().message("scenario"))
        .await
        .unwrap();
    // The program's resources, whatever internal steps (the default provider) the engine adds.
    assert_eq!(
        result.ledger.resources().count(),
        2,
        "the stack and the bucket"
    );
    sink.close().await.unwrap();

    let seen = actions(&log);
    assert!(seen.contains(&"up.started".to_owned()), "{seen:?}");
    assert!(seen.contains(&"up.succeeded".to_owned()), "{seen:?}");
    let report = verify(std::slice::from_ref(&log), Some(&audit_key()), None).unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!(report.records_checked, seen.len() as u64);

    // Someone with write access but no key rewrites who ran the deploy.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let target = lines
        .iter()
        .position(|l| l.contains("up.succeeded"))
        .unwrap();
    let mut forged: serde_json::Value = serde_json::from_str(&lines[target]).unwrap();
    forged["event"]["actor"]["id"] = "mallory".into();
    lines[target] = serde_json::to_string(&forged).unwrap();
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();

    let report = verify(std::slice::from_ref(&log), Some(&audit_key()), None).unwrap();
    assert!(!report.intact);
    let failure = report.failure.unwrap();
    assert_eq!(failure.finding, Finding::RecordModified, "{failure:?}");
    assert_eq!(
        failure.seq,
        forged["seq"].as_u64().unwrap(),
        "the verifier names the forged record"
    );
}

/// Every file under `root` that contains `needle`, except those under `allowed`.
fn files_containing(root: &Path, needle: &[u8], allowed: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.starts_with(allowed) {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path);
                }
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_rotation_and_its_resume_are_audited_without_values() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let log = dir.path().join("audit/audit.jsonl");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let sink = open_sink(&log).await;
    let audit: Arc<dyn AuditSink> = sink.clone();
    let store =
        FileSecretsProvider::open(&root, Protection::Encrypted(StoreKey::generate())).unwrap();
    let provider = Arc::new(AuditedProvider::new(store.clone(), audit.clone()));
    let name: SecretName = "prod/api/token".parse().unwrap();
    let canary = "tok_CANARY0123456789abcdefghijklmn";
    provider
        .put(&name, &SecretValue::from(canary), &PutOptions::default())
        .await
        .unwrap();

    let engine = RotationEngine::new(provider.clone(), Arc::new(FileRotationStore::new(&root)))
        .with_audit(audit.clone());
    engine.faults().inject(FaultPlan::new(
        RotationStep::TestSecret,
        FaultTrigger::Times(1),
        "injected: target rejected the login",
    ));
    let failed = engine
        .rotate(&name, &StoreOnlyRotator, &RotateOptions::default())
        .await;
    assert!(failed.is_err());
    let still = provider
        .get(&name, &VersionSelector::default())
        .await
        .unwrap();
    assert_eq!(
        still.value.expose_str(),
        Some(canary),
        "AWSCURRENT untouched by the failed rotation"
    );

    let report = engine.resume(&name, &StoreOnlyRotator).await.unwrap();
    let current = provider
        .get(&name, &VersionSelector::default())
        .await
        .unwrap();
    assert_eq!(current.version_id, report.new_version);
    let new_value = current.value.expose().to_vec();
    assert_ne!(new_value, canary.as_bytes());
    sink.close().await.unwrap();

    // The trail tells the story in order: a failure at testSecret, then the recovery.
    let seen = actions(&log);
    let failed_at = seen
        .iter()
        .position(|a| a == "rotate.failed")
        .expect("the failure is audited");
    let resumed_at = seen
        .iter()
        .position(|a| a == "rotate.resumed")
        .expect("the resume is audited");
    let completed_at = seen
        .iter()
        .rposition(|a| a == "rotate.completed")
        .expect("the completion is audited");
    assert!(
        failed_at < resumed_at && resumed_at < completed_at,
        "{seen:?}"
    );
    let failure = &records(&log)[failed_at]["event"];
    assert_eq!(failure["outcome"]["status"], "failure");
    assert!(
        failure["outcome"]["detail"]
            .as_str()
            .unwrap()
            .contains("injected")
    );
    assert!(
        verify(std::slice::from_ref(&log), Some(&audit_key()), None)
            .unwrap()
            .intact
    );

    // No value, old or new, in any file but the secret's own (encrypted) file.
    let secret_files = store.secret_path(&name).parent().unwrap().to_path_buf();
    for value in [canary.as_bytes(), new_value.as_slice()] {
        let leaks = files_containing(dir.path(), value, &secret_files);
        assert!(leaks.is_empty(), "a secret value leaked into {leaks:?}");
    }
    let history = serde_json::to_string(&engine.history(&name).await.unwrap()).unwrap();
    assert!(!history.contains(canary));
}

async fn status_of(manager: &HealthManager, check: &str) -> (HealthStatus, HealthStatus) {
    let report = manager.check_fresh(Group::All).await;
    let one = report
        .checks
        .iter()
        .find(|c| c.name == check)
        .unwrap_or_else(|| panic!("no check named {check} in {:?}", report.checks))
        .outcome
        .status;
    (report.status, one)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_health_manager_names_the_broken_component() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let log = dir.path().join("audit.jsonl");
    let store =
        FileSecretsProvider::open(&root, Protection::Encrypted(StoreKey::generate())).unwrap();
    let name: SecretName = "svc/db".parse().unwrap();
    store
        .put(
            &name,
            &SecretValue::from("p4ssw0rd-for-health"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    // A live log: three records covered by a checkpoint, then three more since,
    // written by a sink that stays open, as a running service's does.
    let sink = open_sink(&log).await;
    for i in 0..3 {
        sink.record(lift::AuditEvent::new(
            "test",
            format!("event.{i}"),
            lift::Resource::new("t", "x"),
        ))
        .await
        .unwrap();
    }
    sink.close().await.unwrap();
    let live = open_sink(&log).await;
    for i in 3..6 {
        live.record(lift::AuditEvent::new(
            "test",
            format!("event.{i}"),
            lift::Resource::new("t", "x"),
        ))
        .await
        .unwrap();
    }
    live.sync().await.unwrap();

    let monitor = Monitor::start(MonitorOptions::default()).unwrap();
    let manager = HealthManager::builder().build();
    StandardChecks::default()
        .register(&manager, &monitor)
        .unwrap();
    manager
        .register(StoreHealthCheck::new(store.clone()))
        .unwrap();
    let verify_options = VerifyOptions {
        key: Some(audit_key()),
        ..VerifyOptions::default()
    };
    manager
        .register(AuditHealthCheck::new(&log, verify_options))
        .unwrap();
    let cli_path = dir.path().join("bin/pulumi");
    std::fs::create_dir_all(cli_path.parent().unwrap()).unwrap();
    std::fs::copy(fake_pulumi(), &cli_path).unwrap();
    manager
        .register(CliHealthCheck::with_path(&cli_path))
        .unwrap();

    for component in [
        "secrets:store",
        "audit_log",
        "pulumi:cli",
        "resources",
        "memory",
    ] {
        assert_eq!(
            status_of(&manager, component).await.1,
            HealthStatus::Healthy,
            "{component} starts healthy"
        );
    }

    // A missing CLI.
    std::fs::remove_file(&cli_path).unwrap();
    let (overall, cli) = status_of(&manager, "pulumi:cli").await;
    assert_eq!(cli, HealthStatus::Unhealthy);
    assert_eq!(overall, HealthStatus::Unhealthy);
    assert_eq!(
        status_of(&manager, "secrets:store").await.1,
        HealthStatus::Healthy,
        "other components unaffected"
    );
    manager.unregister("pulumi:cli");

    // A tampered audit log: a record written since the last checkpoint is edited.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("event.4"));
    std::fs::write(&log, text.replacen("event.4", "event.9", 1)).unwrap();
    let (overall, audit) = status_of(&manager, "audit_log").await;
    assert!(audit >= HealthStatus::Degraded, "{audit:?}");
    assert!(overall >= HealthStatus::Degraded);
    manager.unregister("audit_log");

    // An unreadable store: one secret's file damaged on disk.
    let path = store.secret_path(&name);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let (overall, secrets) = status_of(&manager, "secrets:store").await;
    assert!(secrets >= HealthStatus::Degraded, "{secrets:?}");
    assert!(overall >= HealthStatus::Degraded);
    live.close().await.unwrap();
}
