//! The file store against someone who can write its directory but has no key, and
//! the rotation engine against the ways it used to say or do the wrong thing.
//! Each test names the scenario of issue 15 it reproduces.
#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lift_core::{
    AuditEvent, AuditSink, Classify, DeleteMode, ErrorKind, MemoryAuditSink, PutOptions,
    SecretName, SecretValue, SecretsProvider, StageLabel, VersionId, VersionSelector,
};
use lift_secrets::{
    AuditedProvider, FaultPlan, FaultTrigger, FileRotationStore, FileSecretsProvider,
    MemoryRotationStore, MemorySecretsProvider, PasswordPolicy, Protection, RotateOptions,
    RotationCheckpoint, RotationEngine, RotationStep, RotationStore, Rotator, StepContext,
    StoreKey, StoreOnlyRotator, ValueKind,
};

fn name(text: &str) -> SecretName {
    text.parse().unwrap()
}

fn store(dir: &Path) -> (PathBuf, StoreKey, Arc<FileSecretsProvider>) {
    let root = dir.join("store");
    let key = StoreKey::generate();
    let store = FileSecretsProvider::open(&root, Protection::Encrypted(key.clone())).unwrap();
    (root, key, Arc::new(store))
}

async fn put(p: &dyn SecretsProvider, secret: &SecretName, value: &str) -> VersionId {
    p.put(secret, &SecretValue::from(value), &PutOptions::default())
        .await
        .unwrap()
        .version_id
}

async fn current(p: &dyn SecretsProvider, secret: &SecretName) -> (VersionId, Vec<u8>) {
    let v = p.get(secret, &VersionSelector::default()).await.unwrap();
    (v.version_id, v.value.expose().to_vec())
}

/// Every file and directory below `dir`, relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

// 1. Copying an older `.secret` file back over the current one is detected.
#[tokio::test]
async fn a_rolled_back_secret_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, store) = store(dir.path());
    let secret = name("prod/api");
    put(store.as_ref(), &secret, "compromised-value").await;
    let file = store.secret_path(&secret);
    let old_copy = std::fs::read(&file).unwrap();
    put(store.as_ref(), &secret, "rotated-value").await;
    std::fs::write(&file, &old_copy).unwrap();
    for err in [
        store
            .get(&secret, &VersionSelector::default())
            .await
            .unwrap_err(),
        store
            .put(&secret, &SecretValue::from("x"), &PutOptions::default())
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
        assert!(err.message().contains("rolled back"), "{err}");
        assert!(!err.message().contains("compromised-value"));
    }
    // The way out the message names: move the file away, then put a fresh value.
    std::fs::remove_file(&file).unwrap();
    put(store.as_ref(), &secret, "fresh-value").await;
    assert_eq!(current(store.as_ref(), &secret).await.1, b"fresh-value");

    // A force-deleted secret cannot be brought back by putting an old copy in place.
    let last_copy = std::fs::read(&file).unwrap();
    store.delete(&secret, DeleteMode::Force).await.unwrap();
    std::fs::write(&file, &last_copy).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = store
        .get(&secret, &VersionSelector::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
}

// 2. A forged checkpoint (token = an old version id) cannot move AWSCURRENT back.
#[tokio::test]
async fn a_forged_checkpoint_cannot_bring_an_old_value_back() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _, store) = store(dir.path());
    let secret = name("prod/db");
    let old = put(store.as_ref(), &secret, "old-compromised").await;
    let now = put(store.as_ref(), &secret, "current-good").await;

    // With the store key, the state file cannot be forged at all.
    let keyed = store.rotation_store();
    keyed
        .save(&secret, &lift_secrets::RotationState::default())
        .await
        .unwrap();
    let path = root.join("rotation/prod/db.rotation");
    let text = std::fs::read_to_string(&path).unwrap();
    let body = text.split_once('\n').unwrap().1;
    std::fs::write(
        &path,
        format!("lift-rotation/1 sha256 {}\n{body}", sha256_hex(body)),
    )
    .unwrap();
    let err = keyed.load(&secret).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    std::fs::remove_file(&path).unwrap();

    // Without a key (FileRotationStore::new), the engine still refuses a checkpoint
    // whose version is not AWSPENDING.
    let unkeyed = Arc::new(FileRotationStore::new(&root));
    let forged = lift_secrets::RotationState {
        checkpoint: Some(forged_checkpoint(old.clone(), now.clone())),
        ..Default::default()
    };
    unkeyed.save(&secret, &forged).await.unwrap();
    let engine = RotationEngine::new(store.clone(), unkeyed);
    let err = engine.resume(&secret, &StoreOnlyRotator).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert!(
        err.to_string().contains("lift secrets cancel prod/db"),
        "{err}"
    );
    assert_eq!(current(store.as_ref(), &secret).await.0, now);
    // The way out the message names.
    engine.cancel(&secret).await.unwrap();
    assert_eq!(current(store.as_ref(), &secret).await.0, now);
    assert!(engine.state(&secret).await.unwrap().checkpoint.is_none());
}

fn forged_checkpoint(token: VersionId, old_version: VersionId) -> RotationCheckpoint {
    serde_json::from_value(serde_json::json!({
        "rotation_id": "forged",
        "token": token,
        "old_version": old_version,
        "step_reached": "test_secret",
        "started_at": "2020-01-01T00:00:00Z",
        "kind": null,
    }))
    .unwrap()
}

/// SHA-256, which anyone can compute, for forging version 1 state files.
fn sha256_hex(body: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body.as_bytes()))
}

// 4. A secret named like a temporary file survives the clean-up of another's temporaries.
#[tokio::test]
async fn temporary_file_clean_up_never_removes_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, store) = store(dir.path());
    let tricky = name(".x.secret.tmp.1");
    put(store.as_ref(), &tricky, "tricky").await;
    let plain = name("x");
    put(store.as_ref(), &plain, "plain").await;
    put(store.as_ref(), &plain, "plain-2").await;
    assert_eq!(current(store.as_ref(), &tricky).await.1, b"tricky");
    assert_eq!(current(store.as_ref(), &plain).await.1, b"plain-2");
}

// 5. Names whose files would collide are refused up front, with a message saying why.
#[tokio::test]
async fn colliding_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, store) = store(dir.path());
    for (first, second) in [
        ("a.lock/b", "a"),
        ("c.secret/d", "c"),
        ("e.rotation/f", "e"),
    ] {
        let err = store
            .put(
                &name(first),
                &SecretValue::from("v"),
                &PutOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{first}: {err}");
        assert!(err.message().contains("collide"), "{err}");
        put(store.as_ref(), &name(second), "v").await;
        assert_eq!(current(store.as_ref(), &name(second)).await.1, b"v");
    }
    // The rotation state files (kept beside AWS too) refuse the same names.
    let rotation = store.rotation_store();
    let err = rotation.load(&name("a.rotation/b")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    put(store.as_ref(), &name("prod/db"), "v").await;
    for clash in ["Prod/db", "prod/DB", "PROD/DB"] {
        let err = store
            .put(
                &name(clash),
                &SecretValue::from("v"),
                &PutOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{clash}: {err}");
        assert!(err.message().contains("letter case"), "{err}");
    }
}

// 22. A directory opened up anywhere inside the store is refused, however deep.
#[tokio::test]
async fn an_open_subdirectory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _, store) = store(dir.path());
    let secret = name("prod/db/password");
    put(store.as_ref(), &secret, "v").await;
    let middle = root.join("secrets/prod");
    std::fs::set_permissions(&middle, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = store
        .get(&secret, &VersionSelector::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.message().contains("chmod 700"), "{err}");
    let err = store
        .put(&secret, &SecretValue::from("w"), &PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
}

// 23. Reads and refused changes of names that do not exist leave no file behind.
#[tokio::test]
async fn typos_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _, store) = store(dir.path());
    let engine = RotationEngine::new(store.clone(), Arc::new(store.rotation_store()));
    let before = tree(&root);
    let typo = name("prod/tpyo/key");
    assert!(store.get(&typo, &VersionSelector::default()).await.is_err());
    assert!(store.describe(&typo).await.is_err());
    assert!(store.delete(&typo, DeleteMode::Force).await.is_err());
    assert!(store.restore(&typo).await.is_err());
    assert!(
        engine
            .rotate(&typo, &StoreOnlyRotator, &RotateOptions::default())
            .await
            .is_err()
    );
    assert!(engine.resume(&typo, &StoreOnlyRotator).await.is_err());
    assert!(engine.cancel(&typo).await.is_err());
    assert!(engine.history(&typo).await.unwrap().is_empty());
    assert_eq!(tree(&root), before);

    // A secret deleted for good leaves no file but its tombstone in the manifest.
    let gone = name("prod/gone");
    put(store.as_ref(), &gone, "v").await;
    engine
        .rotate(&gone, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap();
    engine.delete(&gone, DeleteMode::Force).await.unwrap();
    let left: Vec<String> = tree(&root)
        .into_iter()
        .filter(|p| p.contains("gone"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    put(store.as_ref(), &gone, "again").await;
    assert_eq!(current(store.as_ref(), &gone).await.1, b"again");
}

// 17. Idempotency tokens are 32 to 64 characters, as in AWS.
#[tokio::test]
async fn short_idempotency_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, store) = store(dir.path());
    let err = store
        .put(
            &name("t"),
            &SecretValue::from("v"),
            &PutOptions::default().token(VersionId::new("abc").unwrap()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("32 to 64"), "{err}");
}

fn memory_engine() -> (Arc<MemorySecretsProvider>, RotationEngine, MemoryAuditSink) {
    let provider = Arc::new(MemorySecretsProvider::default());
    let audit = MemoryAuditSink::new();
    let engine = RotationEngine::new(provider.clone(), Arc::new(MemoryRotationStore::default()))
        .with_audit(Arc::new(audit.clone()));
    (provider, engine, audit)
}

// 8. A rotation never overrides a put made after it began: it stops and says why.
#[tokio::test]
async fn resume_does_not_override_a_later_put() {
    let clock = lift_core::ManualClock::at_epoch();
    let provider = Arc::new(MemorySecretsProvider::default().with_clock(Arc::new(clock.clone())));
    let engine = RotationEngine::new(provider.clone(), Arc::new(MemoryRotationStore::default()))
        .with_clock(Arc::new(clock.clone()));
    let secret = name("prod/db");
    put(provider.as_ref(), &secret, "before").await;
    engine.faults().inject(FaultPlan::new(
        RotationStep::TestSecret,
        FaultTrigger::Times(1),
        "outage",
    ));
    assert!(
        engine
            .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
            .await
            .is_err()
    );
    let emergency = put(provider.as_ref(), &secret, "emergency").await;
    let err = engine.resume(&secret, &StoreOnlyRotator).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("lift secrets cancel"), "{err}");
    assert_eq!(
        current(provider.as_ref(), &secret).await,
        (emergency.clone(), b"emergency".to_vec())
    );
    // rotate_due, which resumes automatically, stops the same way.
    engine
        .set_schedule(
            &secret,
            Some(lift_secrets::RotationSchedule { every_days: 1 }),
        )
        .await
        .unwrap();
    clock.advance(chrono::Duration::days(2));
    let due = engine.rotate_due(&StoreOnlyRotator).await.unwrap();
    assert_eq!(due.len(), 1);
    for (_, result) in due {
        assert_eq!(result.unwrap_err().kind(), ErrorKind::FailedPrecondition);
    }
    assert_eq!(current(provider.as_ref(), &secret).await.0, emergency);
    // Cancel is the way out, and the next rotation works.
    engine.cancel(&secret).await.unwrap();
    engine
        .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap();
}

// 10. A rotation refused for bad input changes nothing.
#[tokio::test]
async fn a_refused_kind_leaves_no_rotation_behind() {
    let (provider, engine, audit) = memory_engine();
    let secret = name("api/key");
    put(provider.as_ref(), &secret, "v").await;
    let bad = ValueKind::Password(PasswordPolicy {
        length: 0,
        ..PasswordPolicy::default()
    });
    let err = engine
        .rotate(
            &secret,
            &StoreOnlyRotator,
            &RotateOptions::default().kind(bad),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(engine.state(&secret).await.unwrap().checkpoint.is_none());
    assert!(audit.events().is_empty(), "nothing started");
    engine
        .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap();
}

// 11. A successful rotation writes no failure record.
#[tokio::test]
async fn a_successful_rotation_audits_no_failure() {
    let memory = MemorySecretsProvider::default();
    let audit = MemoryAuditSink::new();
    let provider =
        Arc::new(AuditedProvider::new(memory, Arc::new(audit.clone())).audit_reads(true));
    let engine = RotationEngine::new(provider.clone(), Arc::new(MemoryRotationStore::default()))
        .with_audit(Arc::new(audit.clone()));
    let secret = name("api/key");
    put(provider.as_ref(), &secret, "v").await;
    for _ in 0..2 {
        engine
            .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
            .await
            .unwrap();
    }
    let failures: Vec<String> = audit
        .events()
        .iter()
        .filter(|e| !e.outcome.is_success())
        .map(|e| e.action.clone())
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
}

// 12. A force-deleted secret's rotation state is not inherited by a new secret of the same name.
#[tokio::test]
async fn a_new_secret_does_not_inherit_a_deleted_ones_rotation_state() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, store) = store(dir.path());
    let engine = RotationEngine::new(store.clone(), Arc::new(store.rotation_store()));
    let secret = name("svc/token");
    put(store.as_ref(), &secret, "v").await;
    engine.faults().inject(FaultPlan::new(
        RotationStep::SetSecret,
        FaultTrigger::Times(1),
        "outage",
    ));
    assert!(
        engine
            .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
            .await
            .is_err()
    );
    engine.delete(&secret, DeleteMode::Force).await.unwrap();
    put(store.as_ref(), &secret, "new").await;
    let state = engine.state(&secret).await.unwrap();
    assert!(state.checkpoint.is_none() && state.history.is_empty());
    engine
        .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap();

    // Deleted behind the engine's back (through the provider), the state is still not inherited.
    engine.faults().inject(FaultPlan::new(
        RotationStep::SetSecret,
        FaultTrigger::Times(1),
        "outage",
    ));
    assert!(
        engine
            .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
            .await
            .is_err()
    );
    store.delete(&secret, DeleteMode::Force).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    put(store.as_ref(), &secret, "newer").await;
    assert!(engine.state(&secret).await.unwrap().checkpoint.is_none());
    engine
        .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap();
}

// 6. A JSON key/value secret keeps every field but the password, on any provider.
#[tokio::test]
async fn json_secrets_keep_their_fields() {
    let (provider, engine, _) = memory_engine();
    let secret = name("prod/db");
    put(
        provider.as_ref(),
        &secret,
        r#"{"engine":"postgres","host":"db.internal","password":"old","port":5432,"username":"app"}"#,
    )
    .await;
    engine
        .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap();
    let (_, new) = current(provider.as_ref(), &secret).await;
    let doc: serde_json::Value = serde_json::from_slice(&new).unwrap();
    assert_eq!(doc["username"], "app");
    assert_eq!(doc["host"], "db.internal");
    assert_eq!(doc["port"], 5432);
    assert_eq!(doc["engine"], "postgres");
    let password = doc["password"].as_str().unwrap();
    assert_ne!(password, "old");
    assert_eq!(password.chars().count(), 32);
}

// 7. Nothing of the old value is carried into the new one: no guessed prefix or shape.
#[tokio::test]
async fn no_prefix_or_shape_is_guessed_from_the_old_value() {
    let (provider, engine, _) = memory_engine();
    for i in 0..40 {
        let secret = name(&format!("tok/{i}"));
        // Leading letters and '_' in a random base64url token look like a prefix.
        let old = format!("Ab_{}", "Zq9-xY_w".repeat(4));
        put(provider.as_ref(), &secret, &old).await;
        for _ in 0..3 {
            engine
                .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
                .await
                .unwrap();
            let (_, new) = current(provider.as_ref(), &secret).await;
            let new = String::from_utf8(new).unwrap();
            assert!(!new.starts_with("Ab_"), "{new} kept part of {old}");
            assert_eq!(new.chars().count(), 32);
            assert!(!new.contains(['"', '\'', '\\', '/', '@']), "{new}");
        }
    }
    // A declared prefix is kept, and remembered for later rotations.
    let secret = name("stripe");
    put(provider.as_ref(), &secret, "sk_live_old").await;
    let kind: ValueKind = "token:24:sk_live_".parse().unwrap();
    engine
        .rotate(
            &secret,
            &StoreOnlyRotator,
            &RotateOptions::default().kind(kind),
        )
        .await
        .unwrap();
    engine
        .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap();
    let (_, new) = current(provider.as_ref(), &secret).await;
    assert!(new.starts_with(b"sk_live_"));
    assert_eq!(new.len(), 8 + 32);
}

/// The AWSPREVIOUS version and value a rotator was shown.
type Seen = Option<(VersionId, Vec<u8>)>;

/// A rotator that remembers what it was shown.
#[derive(Default)]
struct Recording {
    previous: Mutex<Vec<Seen>>,
}

#[async_trait::async_trait]
impl Rotator for Recording {
    fn name(&self) -> &str {
        "recording"
    }
    async fn set_secret(
        &self,
        step: &StepContext,
        _pending: &SecretValue,
        _current: Option<&SecretValue>,
    ) -> lift_core::Result<()> {
        let seen = step
            .previous_version
            .clone()
            .zip(step.previous().map(|v| v.expose().to_vec()));
        self.previous.lock().unwrap().push(seen);
        Ok(())
    }
    async fn test_secret(&self, _: &StepContext, _: &SecretValue) -> lift_core::Result<()> {
        Ok(())
    }
}

// 21. The rotator sees AWSPREVIOUS, as AWS's template falls back to it.
#[tokio::test]
async fn rotators_see_awsprevious() {
    let (provider, engine, _) = memory_engine();
    let secret = name("db");
    put(provider.as_ref(), &secret, "first").await;
    put(provider.as_ref(), &secret, "second").await;
    let first_id = provider
        .describe(&secret)
        .await
        .unwrap()
        .version_with(StageLabel::PREVIOUS)
        .unwrap()
        .version_id
        .clone();
    let rotator = Recording::default();
    engine
        .rotate(&secret, &rotator, &RotateOptions::default())
        .await
        .unwrap();
    let seen = rotator.previous.lock().unwrap().clone();
    assert_eq!(seen, vec![Some((first_id, b"first".to_vec()))]);
}

/// A sink that refuses every event, like an audit log on a full disk.
#[derive(Debug)]
struct FullDisk;

#[async_trait::async_trait]
impl AuditSink for FullDisk {
    async fn record(&self, _event: AuditEvent) -> lift_core::Result<()> {
        Err(lift_core::Error::new(
            ErrorKind::Io,
            "no space left on device",
        ))
    }
}

// 13. With an audit log that cannot be written, no change is made.
#[tokio::test]
async fn an_unwritable_audit_log_stops_changes_before_they_happen() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, store) = store(dir.path());
    let secret = name("prod/api");
    let first = put(store.as_ref(), &secret, "v1").await;
    let audited: Arc<dyn SecretsProvider> =
        Arc::new(AuditedProvider::new(store.clone(), Arc::new(FullDisk)));
    assert!(
        audited
            .put(&secret, &SecretValue::from("v2"), &PutOptions::default())
            .await
            .is_err()
    );
    assert_eq!(current(store.as_ref(), &secret).await.0, first);
    let engine = RotationEngine::new(audited, Arc::new(store.rotation_store()))
        .with_audit(Arc::new(FullDisk));
    let err = engine
        .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(
        engine.state(&secret).await.unwrap().checkpoint.is_none(),
        "no stuck rotation"
    );
    let d = store.describe(&secret).await.unwrap();
    assert_eq!(d.versions.len(), 1);
    assert!(!d.rotation_in_progress());
}

/// AWS's own rotation, switched on for every secret.
struct RotationLambda;

#[async_trait::async_trait]
impl lift_secrets::NativeRotation for RotationLambda {
    async fn other_rotator(&self, _name: &SecretName) -> lift_core::Result<Option<String>> {
        Ok(Some(
            "AWS Secrets Manager's own rotation (Lambda arn:aws:lambda:x)".into(),
        ))
    }
}

// 19. A secret that AWS rotates itself is not rotated by lift too, unless forced.
#[tokio::test]
async fn a_natively_rotated_secret_is_refused_unless_forced() {
    let (provider, _, _) = memory_engine();
    let engine = RotationEngine::new(provider.clone(), Arc::new(MemoryRotationStore::default()))
        .with_native_rotation(Arc::new(RotationLambda));
    let secret = name("rds/master");
    let before = put(provider.as_ref(), &secret, "v").await;
    let err = engine
        .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("cancel-rotate-secret"), "{err}");
    assert_eq!(current(provider.as_ref(), &secret).await.0, before);
    engine
        .rotate(
            &secret,
            &StoreOnlyRotator,
            &RotateOptions::default().force(true),
        )
        .await
        .unwrap();
}
