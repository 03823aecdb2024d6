//! The rotation engine against the memory provider: steps, failures, resume, policy, schedules, audit.
#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use lift_core::{
    Classify, Clock, ErrorKind, ManualClock, MemoryAuditSink, PutOptions, SecretName, SecretValue,
    SecretsProvider, StageLabel, VersionSelector,
};
use lift_secrets::{
    FaultPlan, FaultTrigger, MemoryRotationStore, MemorySecretsProvider, OnFailure, RotateOptions,
    RotationEngine, RotationOutcome, RotationPolicy, RotationSchedule, RotationStep, Rotator,
    StepContext, StoreOnlyRotator, ValueKind,
};

/// A target system that remembers the password it accepts, and can be told to reject.
#[derive(Default)]
struct FakeDatabase {
    accepted: Mutex<Option<Vec<u8>>>,
    set_calls: AtomicU32,
    fail_set: AtomicU32,
}

#[async_trait::async_trait]
impl Rotator for FakeDatabase {
    fn name(&self) -> &str {
        "fake-db"
    }
    async fn set_secret(
        &self,
        step: &StepContext,
        pending: &SecretValue,
        _current: Option<&SecretValue>,
    ) -> lift_core::Result<()> {
        self.set_calls.fetch_add(1, Ordering::SeqCst);
        if self.fail_set.load(Ordering::SeqCst) > 0 {
            self.fail_set.fetch_sub(1, Ordering::SeqCst);
            return Err(lift_core::Error::new(
                ErrorKind::Unavailable,
                format!("database refused {}", step.pending_version),
            ));
        }
        *self.accepted.lock().unwrap() = Some(pending.expose().to_vec());
        Ok(())
    }
    async fn test_secret(
        &self,
        _step: &StepContext,
        pending: &SecretValue,
    ) -> lift_core::Result<()> {
        match &*self.accepted.lock().unwrap() {
            Some(v) if v == pending.expose() => Ok(()),
            _ => Err(lift_core::Error::new(
                ErrorKind::External,
                "login with the pending password failed",
            )),
        }
    }
}

struct Fixture {
    provider: Arc<MemorySecretsProvider>,
    engine: RotationEngine,
    audit: MemoryAuditSink,
    clock: ManualClock,
    name: SecretName,
}

async fn fixture(policy: RotationPolicy) -> Fixture {
    let clock = ManualClock::at_epoch();
    let provider = Arc::new(MemorySecretsProvider::default().with_clock(Arc::new(clock.clone())));
    let audit = MemoryAuditSink::new();
    let engine = RotationEngine::new(provider.clone(), Arc::new(MemoryRotationStore::default()))
        .with_audit(Arc::new(audit.clone()))
        .with_clock(Arc::new(clock.clone()))
        .with_policy(policy);
    let name: SecretName = "prod/db/password".parse().unwrap();
    provider
        .put(
            &name,
            &SecretValue::from("Initial-Passw0rd!canary"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    Fixture {
        provider,
        engine,
        audit,
        clock,
        name,
    }
}

async fn current(f: &Fixture) -> lift_core::SecretVersion {
    f.provider
        .get(&f.name, &VersionSelector::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_rotation_runs_the_four_steps_and_moves_the_labels() {
    let f = fixture(RotationPolicy::default()).await;
    let db = FakeDatabase::default();
    let old = current(&f).await;
    let report = f
        .engine
        .rotate(&f.name, &db, &RotateOptions::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, RotationOutcome::Succeeded);
    assert_eq!(report.old_version.as_ref(), Some(&old.version_id));
    let new = current(&f).await;
    assert_eq!(new.version_id, report.new_version);
    assert_eq!(
        db.accepted.lock().unwrap().as_deref(),
        Some(new.value.expose())
    );
    let d = f.provider.describe(&f.name).await.unwrap();
    assert_eq!(
        d.version_with("AWSPREVIOUS").unwrap().version_id,
        old.version_id
    );
    assert!(
        d.version_with("AWSPENDING").is_none(),
        "finishSecret drops AWSPENDING"
    );
    assert!(!d.rotation_in_progress());
    // No kind declared: a default password, nothing taken from the old value's shape.
    let text = new.value.expose_str().unwrap();
    assert_eq!(text.len(), 32);
    assert!(text.chars().any(|c| c.is_ascii_punctuation()));
    assert_eq!(
        f.audit.actions(),
        [
            "rotate.started",
            "rotate.create_secret",
            "rotate.set_secret",
            "rotate.test_secret",
            "rotate.finish_secret",
            "rotate.completed"
        ]
    );
    assert!(
        f.audit
            .events()
            .iter()
            .all(|e| e.correlation_id.as_deref() == Some(report.rotation_id.as_str()))
    );
    let history = f.engine.history(&f.name).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].step_reached, Some(RotationStep::FinishSecret));
}

#[tokio::test]
async fn a_failed_set_keeps_current_and_resume_finishes() {
    let f = fixture(RotationPolicy::default()).await;
    let db = FakeDatabase::default();
    db.fail_set.store(1, Ordering::SeqCst);
    let old = current(&f).await;
    let err = f
        .engine
        .rotate(&f.name, &db, &RotateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("setSecret"), "{err}");
    assert_eq!(
        current(&f).await.version_id,
        old.version_id,
        "AWSCURRENT untouched"
    );
    let d = f.provider.describe(&f.name).await.unwrap();
    assert!(d.rotation_in_progress(), "AWSPENDING stays for resume");

    // A new rotation is refused, and the message says how to go on.
    let refused = f
        .engine
        .rotate(&f.name, &db, &RotateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict);
    assert!(
        refused
            .to_string()
            .contains("lift secrets resume prod/db/password"),
        "{refused}"
    );
    assert!(
        refused
            .to_string()
            .contains("lift secrets cancel prod/db/password")
    );

    let pending = d.version_with("AWSPENDING").unwrap().version_id.clone();
    let report = f.engine.resume(&f.name, &db).await.unwrap();
    assert!(report.resumed);
    assert_eq!(
        report.new_version, pending,
        "resume reuses the pending value"
    );
    assert_eq!(current(&f).await.version_id, pending);
    assert_eq!(db.set_calls.load(Ordering::SeqCst), 2);
    let history = f.engine.history(&f.name).await.unwrap();
    assert_eq!(
        history.iter().map(|r| r.outcome).collect::<Vec<_>>(),
        [RotationOutcome::Failed, RotationOutcome::Succeeded]
    );
    assert_eq!(history[0].failed_step, Some(RotationStep::SetSecret));
    assert!(history[0].resumable && !history[0].injected);
    assert!(f.audit.actions().contains(&"rotate.failed".to_owned()));
    assert!(f.audit.actions().contains(&"rotate.resumed".to_owned()));
}

#[tokio::test]
async fn the_clean_up_policy_removes_pending_after_a_failed_test() {
    let f = fixture(RotationPolicy {
        on_failure: OnFailure::CleanUp,
        ..RotationPolicy::default()
    })
    .await;
    f.engine.faults().inject(FaultPlan::new(
        RotationStep::TestSecret,
        FaultTrigger::Times(1),
        "simulated login failure",
    ));
    let old = current(&f).await;
    let err = f
        .engine
        .rotate(&f.name, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("simulated login failure"));
    assert_eq!(current(&f).await.version_id, old.version_id);
    let d = f.provider.describe(&f.name).await.unwrap();
    assert!(!d.rotation_in_progress());
    let history = f.engine.history(&f.name).await.unwrap();
    assert!(history[0].injected && !history[0].resumable);
    assert_eq!(history[0].step_reached, Some(RotationStep::SetSecret));
    assert_eq!(history[0].error.as_deref(), Some(err.to_string().as_str()));
    // Nothing to resume; a fresh rotation works.
    assert_eq!(
        f.engine
            .resume(&f.name, &StoreOnlyRotator)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    f.engine
        .rotate(&f.name, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn every_step_survives_an_injected_failure_and_resumes() {
    for step in RotationStep::ALL {
        let f = fixture(RotationPolicy::default()).await;
        f.engine
            .faults()
            .inject(FaultPlan::new(step, FaultTrigger::Times(1), "injected"));
        let old = current(&f).await;
        assert!(
            f.engine
                .rotate(&f.name, &StoreOnlyRotator, &RotateOptions::default())
                .await
                .is_err()
        );
        assert_eq!(current(&f).await.version_id, old.version_id, "{step}");
        let report = f.engine.resume(&f.name, &StoreOnlyRotator).await.unwrap();
        assert_eq!(current(&f).await.version_id, report.new_version, "{step}");
        let d = f.provider.describe(&f.name).await.unwrap();
        assert_eq!(
            d.versions
                .iter()
                .filter(|v| v.stages.contains(&StageLabel::current()))
                .count(),
            1
        );
        assert_eq!(
            d.version_with("AWSPREVIOUS").unwrap().version_id,
            old.version_id,
            "{step}"
        );
    }
}

#[tokio::test]
async fn cancel_removes_pending_and_records_it() {
    let f = fixture(RotationPolicy::default()).await;
    f.engine.faults().inject(FaultPlan::new(
        RotationStep::SetSecret,
        FaultTrigger::Always,
        "down",
    ));
    assert!(
        f.engine
            .rotate(&f.name, &StoreOnlyRotator, &RotateOptions::default())
            .await
            .is_err()
    );
    let record = f.engine.cancel(&f.name).await.unwrap();
    assert_eq!(record.outcome, RotationOutcome::Cancelled);
    assert!(
        !f.provider
            .describe(&f.name)
            .await
            .unwrap()
            .rotation_in_progress()
    );
    assert!(f.engine.state(&f.name).await.unwrap().checkpoint.is_none());
}

#[tokio::test]
async fn schedules_use_the_clock_and_rotate_due_rotates_what_is_due() {
    let f = fixture(RotationPolicy::default()).await;
    assert_eq!(f.engine.next_rotation(&f.name).await.unwrap(), None);
    f.engine
        .set_schedule(&f.name, Some(RotationSchedule { every_days: 30 }))
        .await
        .unwrap();
    let created = f.provider.describe(&f.name).await.unwrap().created_at;
    assert_eq!(
        f.engine.next_rotation(&f.name).await.unwrap(),
        Some(created + chrono::Duration::days(30))
    );
    assert!(
        f.engine
            .rotate_due(&StoreOnlyRotator)
            .await
            .unwrap()
            .is_empty()
    );
    f.clock.advance(chrono::Duration::days(30));
    let done = f.engine.rotate_due(&StoreOnlyRotator).await.unwrap();
    assert_eq!(done.len(), 1);
    assert!(done[0].1.is_ok());
    assert_eq!(
        f.engine.next_rotation(&f.name).await.unwrap(),
        Some(f.clock.now() + chrono::Duration::days(30))
    );
    assert!(
        f.engine
            .rotate_due(&StoreOnlyRotator)
            .await
            .unwrap()
            .is_empty()
    );

    // Disabled per secret, then per provider.
    f.clock.advance(chrono::Duration::days(31));
    f.engine.set_secret_enabled(&f.name, false).await.unwrap();
    assert!(
        f.engine
            .rotate_due(&StoreOnlyRotator)
            .await
            .unwrap()
            .is_empty()
    );
    let err = f
        .engine
        .rotate(&f.name, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("disabled for this secret"),
        "{err}"
    );
    f.engine.set_secret_enabled(&f.name, true).await.unwrap();
    f.engine.set_enabled(false);
    let err = f
        .engine
        .rotate(&f.name, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("disabled for this provider"),
        "{err}"
    );
    f.engine.set_enabled(true);
    assert_eq!(
        f.engine.rotate_due(&StoreOnlyRotator).await.unwrap().len(),
        1
    );
    assert!(
        f.engine
            .set_schedule(&f.name, Some(RotationSchedule { every_days: 0 }))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn history_is_bounded_and_holds_no_values() {
    let f = fixture(RotationPolicy {
        history_limit: 3,
        ..RotationPolicy::default()
    })
    .await;
    let mut values = vec!["Initial-Passw0rd!canary".to_owned()];
    for _ in 0..5 {
        f.engine
            .rotate(
                &f.name,
                &StoreOnlyRotator,
                &RotateOptions::default().kind(ValueKind::token(Some("tok_"))),
            )
            .await
            .unwrap();
        values.push(current(&f).await.value.expose_str().unwrap().to_owned());
    }
    let history = f.engine.history(&f.name).await.unwrap();
    assert_eq!(history.len(), 3);
    let json = serde_json::to_string(&f.engine.state(&f.name).await.unwrap()).unwrap();
    let audit = serde_json::to_string(&f.audit.events()).unwrap();
    for value in &values {
        assert!(value.starts_with("tok_") || value.contains("canary"));
        let body = value.trim_start_matches("tok_");
        assert!(!json.contains(body), "history leaks a value");
        assert!(!audit.contains(body), "audit leaks a value");
        // No prefix of a value either (8 characters is already a meaningful leak).
        assert!(!json.contains(&body[..8]));
    }
}

#[tokio::test]
async fn probabilistic_faults_fail_some_rotations() {
    let f = fixture(RotationPolicy {
        on_failure: OnFailure::CleanUp,
        history_limit: 100,
    })
    .await;
    f.engine.faults().inject(FaultPlan::new(
        RotationStep::SetSecret,
        FaultTrigger::Probability(0.5),
        "coin",
    ));
    let mut failures = 0;
    for _ in 0..60 {
        if f.engine
            .rotate(&f.name, &StoreOnlyRotator, &RotateOptions::default())
            .await
            .is_err()
        {
            failures += 1;
        }
    }
    assert!((10..=50).contains(&failures), "{failures} of 60 at p=0.5");
    let injected = f
        .engine
        .history(&f.name)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.injected)
        .count();
    assert_eq!(injected, failures);
}
