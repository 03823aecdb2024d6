//! One provider-contract suite, run against every `SecretsProvider`: the memory
//! store, the encrypted file store and, with `LIFT_TEST_MOTO=1` and the `aws`
//! feature, AWS Secrets Manager as emulated by moto.
//!
//! A workflow tested against the file store should behave the same against
//! AWS; this suite is where that promise is checked. Where moto is known to
//! differ from AWS, the test says so and the AWS behaviour is asserted on the
//! stores lift implements:
//! - moto never prunes unlabelled versions (AWS keeps about 100);
//! - moto's `RotateSecret` "rotation in progress" check is inverted. lift's
//!   engine never calls `RotateSecret`: it decides from `DescribeSecret`'s labels
//!   (AWSPENDING on a version that is not AWSCURRENT), which moto reports correctly.

// The contract's steps are shared helpers rather than `#[test]` functions, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use lift::secrets::{
    CachingProvider, FaultPlan, FaultTrigger, FileSecretsProvider, MemoryRotationStore,
    MemorySecretsProvider, Protection, RotateOptions, RotationEngine, RotationOutcome,
    RotationStep, StoreKey, StoreLimits, StoreOnlyRotator,
};
use lift::{
    Clock, DeleteMode, ErrorKind, ManualClock, PutOptions, SecretName, SecretValue,
    SecretsProvider, StageLabel, StageMove, VersionId, VersionSelector,
};

/// A provider under test.
struct Subject {
    label: &'static str,
    provider: Arc<dyn SecretsProvider>,
    _dir: Option<tempfile::TempDir>,
}

fn memory() -> Subject {
    Subject {
        label: "memory",
        provider: Arc::new(MemorySecretsProvider::default()),
        _dir: None,
    }
}

fn file() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let provider = FileSecretsProvider::open(
        dir.path().join("store"),
        Protection::Encrypted(StoreKey::generate()),
    )
    .unwrap();
    Subject {
        label: "file",
        provider: Arc::new(provider),
        _dir: Some(dir),
    }
}

fn name(text: &str) -> SecretName {
    text.parse().unwrap()
}

/// AWS wants idempotency tokens of 32 to 64 characters.
fn token(n: u32) -> VersionId {
    VersionId::new(format!("00000000-0000-4000-8000-{n:012}")).unwrap()
}

async fn current(provider: &dyn SecretsProvider, secret: &SecretName) -> (VersionId, String) {
    let version = provider
        .get(secret, &VersionSelector::default())
        .await
        .unwrap();
    (
        version.version_id,
        version.value.expose_str().unwrap().to_owned(),
    )
}

async fn holder(
    provider: &dyn SecretsProvider,
    secret: &SecretName,
    label: &str,
) -> Option<VersionId> {
    let description = provider.describe(secret).await.unwrap();
    description
        .version_with(label)
        .map(|v| v.version_id.clone())
}

async fn puts_create_versions_and_move_previous(s: &Subject) {
    let p = s.provider.as_ref();
    let secret = name("contract/versions");
    let missing = p
        .get(&secret, &VersionSelector::default())
        .await
        .unwrap_err();
    assert_eq!(
        missing.kind(),
        ErrorKind::NotFound,
        "{}: {missing}",
        s.label
    );

    let first = p
        .put(
            &secret,
            &SecretValue::from("value-one"),
            &PutOptions::default().token(token(1)),
        )
        .await
        .unwrap();
    assert!(first.created, "{}", s.label);
    assert_eq!(first.version_id, token(1));
    assert_eq!(
        first.stages,
        vec![StageLabel::current()],
        "{}: a put without stages becomes AWSCURRENT",
        s.label
    );

    p.put(
        &secret,
        &SecretValue::from("value-two"),
        &PutOptions::default().token(token(2)),
    )
    .await
    .unwrap();
    assert_eq!(
        current(p, &secret).await,
        (token(2), "value-two".to_owned()),
        "{}",
        s.label
    );
    assert_eq!(
        holder(p, &secret, "AWSPREVIOUS").await,
        Some(token(1)),
        "{}",
        s.label
    );
    let previous = p
        .get(&secret, &VersionSelector::Stage(StageLabel::previous()))
        .await
        .unwrap();
    assert_eq!(
        previous.value.expose_str(),
        Some("value-one"),
        "{}",
        s.label
    );
    let by_id = p
        .get(&secret, &VersionSelector::Version(token(1)))
        .await
        .unwrap();
    assert_eq!(by_id.value.expose_str(), Some("value-one"), "{}", s.label);
    assert_eq!(
        p.describe(&secret).await.unwrap().versions.len(),
        2,
        "{}",
        s.label
    );
}

async fn tokens_are_idempotent(s: &Subject) {
    let p = s.provider.as_ref();
    let secret = name("contract/tokens");
    p.put(
        &secret,
        &SecretValue::from("same"),
        &PutOptions::default().token(token(7)),
    )
    .await
    .unwrap();
    let replay = p
        .put(
            &secret,
            &SecretValue::from("same"),
            &PutOptions::default().token(token(7)),
        )
        .await
        .unwrap();
    assert!(
        !replay.created,
        "{}: the same token and value is a no-op",
        s.label
    );
    assert_eq!(
        p.describe(&secret).await.unwrap().versions.len(),
        1,
        "{}",
        s.label
    );

    let clash = p
        .put(
            &secret,
            &SecretValue::from("different-canary"),
            &PutOptions::default().token(token(7)),
        )
        .await
        .unwrap_err();
    assert_eq!(clash.kind(), ErrorKind::Conflict, "{}: {clash}", s.label);
    assert!(
        !clash.to_string().contains("different-canary"),
        "{}: errors never carry values",
        s.label
    );
    assert_eq!(current(p, &secret).await.1, "same", "{}", s.label);
}

async fn labels_move_like_aws(s: &Subject) {
    let p = s.provider.as_ref();
    let secret = name("contract/stages");
    p.put(
        &secret,
        &SecretValue::from("old"),
        &PutOptions::default().token(token(1)),
    )
    .await
    .unwrap();
    let pending = p
        .put(
            &secret,
            &SecretValue::from("new"),
            &PutOptions::default()
                .token(token(2))
                .stages(vec![StageLabel::pending()]),
        )
        .await
        .unwrap();
    assert_eq!(pending.stages, vec![StageLabel::pending()], "{}", s.label);
    assert_eq!(
        current(p, &secret).await.1,
        "old",
        "{}: a staged put leaves AWSCURRENT alone",
        s.label
    );
    assert!(
        p.describe(&secret).await.unwrap().rotation_in_progress(),
        "{}",
        s.label
    );

    // A compare-and-set with the wrong holder fails and changes nothing.
    let wrong = StageMove {
        stage: StageLabel::current(),
        to: Some(token(2)),
        from: Some(token(2)),
    };
    let err = p.move_stage(&secret, &wrong).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{}: {err}", s.label);
    assert_eq!(
        holder(p, &secret, "AWSCURRENT").await,
        Some(token(1)),
        "{}",
        s.label
    );

    let finish = StageMove {
        stage: StageLabel::current(),
        to: Some(token(2)),
        from: Some(token(1)),
    };
    p.move_stage(&secret, &finish).await.unwrap();
    assert_eq!(
        current(p, &secret).await,
        (token(2), "new".to_owned()),
        "{}",
        s.label
    );
    assert_eq!(
        holder(p, &secret, "AWSPREVIOUS").await,
        Some(token(1)),
        "{}: AWSPREVIOUS follows",
        s.label
    );

    let custom = StageLabel::new("blue").unwrap();
    p.move_stage(
        &secret,
        &StageMove {
            stage: custom.clone(),
            to: Some(token(1)),
            from: None,
        },
    )
    .await
    .unwrap();
    p.move_stage(
        &secret,
        &StageMove {
            stage: custom.clone(),
            to: Some(token(2)),
            from: Some(token(1)),
        },
    )
    .await
    .unwrap();
    let description = p.describe(&secret).await.unwrap();
    let carriers = description
        .versions
        .iter()
        .filter(|v| v.stages.contains(&custom))
        .count();
    assert_eq!(
        carriers, 1,
        "{}: a label sits on at most one version",
        s.label
    );
}

async fn deletes_are_soft_then_forced(s: &Subject) {
    let p = s.provider.as_ref();
    let secret = name("contract/delete");
    p.put(&secret, &SecretValue::from("v"), &PutOptions::default())
        .await
        .unwrap();
    let deleted = p
        .delete(
            &secret,
            DeleteMode::Recoverable {
                recovery_window_days: 7,
            },
        )
        .await
        .unwrap();
    assert!(deleted.deletion_date.is_some(), "{}", s.label);
    let listed = p.list().await.unwrap();
    let entry = listed
        .iter()
        .find(|e| e.name == secret)
        .expect("soft-deleted secrets stay listed");
    assert!(entry.deletion_date.is_some(), "{}", s.label);
    let read = p
        .get(&secret, &VersionSelector::default())
        .await
        .unwrap_err();
    assert_ne!(read.kind(), ErrorKind::Io, "{}: {read}", s.label);

    p.restore(&secret).await.unwrap();
    assert_eq!(current(p, &secret).await.1, "v", "{}", s.label);

    p.delete(&secret, DeleteMode::Force).await.unwrap();
    let gone = p.describe(&secret).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound, "{}: {gone}", s.label);
}

async fn rotation_runs_and_resumes_after_injected_failure(s: &Subject) {
    let provider = s.provider.clone();
    let secret = name("contract/rotation");
    provider
        .put(
            &secret,
            &SecretValue::from("0123456789abcdef0123456789abcdef"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let (old_version, _) = current(provider.as_ref(), &secret).await;
    let engine = RotationEngine::new(provider.clone(), Arc::new(MemoryRotationStore::default()));

    // The kind is declared, never guessed from the old value, and remembered.
    let report = engine
        .rotate(
            &secret,
            &StoreOnlyRotator,
            &RotateOptions::default().kind("hex:16".parse().unwrap()),
        )
        .await
        .unwrap();
    let (new_version, new_value) = current(provider.as_ref(), &secret).await;
    assert_eq!(report.new_version, new_version, "{}", s.label);
    assert_ne!(new_version, old_version, "{}", s.label);
    assert_eq!(new_value.len(), 32, "{}: the declared kind", s.label);
    assert!(
        new_value.chars().all(|c| c.is_ascii_hexdigit()),
        "{}",
        s.label
    );
    assert_eq!(
        holder(provider.as_ref(), &secret, "AWSPREVIOUS").await,
        Some(old_version),
        "{}",
        s.label
    );

    engine.faults().inject(FaultPlan::new(
        RotationStep::TestSecret,
        FaultTrigger::Times(1),
        "injected test failure",
    ));
    let failed = engine
        .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap_err();
    assert!(
        failed.to_string().contains("injected test failure"),
        "{}: {failed}",
        s.label
    );
    assert_eq!(
        current(provider.as_ref(), &secret).await.0,
        new_version,
        "{}: AWSCURRENT untouched",
        s.label
    );
    assert!(
        provider
            .describe(&secret)
            .await
            .unwrap()
            .rotation_in_progress(),
        "{}",
        s.label
    );

    let refused = engine
        .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        lift::Error::from(refused).kind(),
        ErrorKind::Conflict,
        "{}",
        s.label
    );

    let resumed = engine.resume(&secret, &StoreOnlyRotator).await.unwrap();
    assert!(resumed.resumed, "{}", s.label);
    assert_eq!(
        current(provider.as_ref(), &secret).await.0,
        resumed.new_version,
        "{}",
        s.label
    );
    assert!(
        !provider
            .describe(&secret)
            .await
            .unwrap()
            .rotation_in_progress(),
        "{}",
        s.label
    );
    let history = engine.history(&secret).await.unwrap();
    let injected = history
        .iter()
        .filter(|r| r.injected && r.outcome == RotationOutcome::Failed)
        .count();
    let succeeded = history
        .iter()
        .filter(|r| r.outcome == RotationOutcome::Succeeded)
        .count();
    assert_eq!(injected, 1, "{}: {history:?}", s.label);
    assert_eq!(succeeded, 2, "{}: {history:?}", s.label);
}

async fn cache_refreshes_after_ttl(s: &Subject) {
    let secret = name("contract/cache");
    s.provider
        .put(&secret, &SecretValue::from("first"), &PutOptions::default())
        .await
        .unwrap();
    let clock = ManualClock::at_epoch();
    let cache = CachingProvider::new(s.provider.clone(), chrono::Duration::seconds(60))
        .with_clock(Arc::new(clock.clone()) as Arc<dyn Clock>);
    assert_eq!(current(&cache, &secret).await.1, "first");
    assert_eq!(current(&cache, &secret).await.1, "first");
    s.provider
        .put(
            &secret,
            &SecretValue::from("second"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        current(&cache, &secret).await.1,
        "first",
        "{}: within the TTL the cache serves",
        s.label
    );
    clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        current(&cache, &secret).await.1,
        "second",
        "{}: after the TTL it revalidates",
        s.label
    );
    let metrics = cache.metrics();
    assert!(metrics.hits >= 2, "{}: {metrics:?}", s.label);
    assert!(metrics.misses >= 1, "{}: {metrics:?}", s.label);
}

/// A soft-deleted secret is the same kind of error on every provider, not a transient
/// one, so a serve-stale cache never keeps serving a deleted (revoked) value.
async fn deleted_secrets_are_never_served(s: &Subject) {
    let secret = name("contract/revoked");
    s.provider
        .put(
            &secret,
            &SecretValue::from("revoked"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let clock = ManualClock::at_epoch();
    let cache = CachingProvider::new(s.provider.clone(), chrono::Duration::seconds(60))
        .with_clock(Arc::new(clock.clone()) as Arc<dyn Clock>)
        .serve_stale(true);
    assert_eq!(current(&cache, &secret).await.1, "revoked");
    s.provider
        .delete(
            &secret,
            DeleteMode::Recoverable {
                recovery_window_days: 7,
            },
        )
        .await
        .unwrap();
    let direct = s
        .provider
        .get(&secret, &VersionSelector::default())
        .await
        .unwrap_err();
    assert_eq!(
        direct.kind(),
        ErrorKind::FailedPrecondition,
        "{}: {direct}",
        s.label
    );
    clock.advance(chrono::Duration::seconds(61));
    let cached = cache
        .get(&secret, &VersionSelector::default())
        .await
        .unwrap_err();
    assert_eq!(
        cached.kind(),
        ErrorKind::FailedPrecondition,
        "{}: {cached}",
        s.label
    );
    assert_eq!(cache.metrics().stale_served, 0, "{}", s.label);
}

/// A JSON key/value secret keeps every field but the password through a rotation.
async fn json_secrets_keep_their_fields(s: &Subject) {
    let secret = name("contract/json");
    s.provider
        .put(
            &secret,
            &SecretValue::from(
                r#"{"engine":"postgres","host":"db.internal","password":"old","port":5432,"username":"app"}"#,
            ),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let engine = RotationEngine::new(s.provider.clone(), Arc::new(MemoryRotationStore::default()));
    engine
        .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap();
    let (_, text) = current(s.provider.as_ref(), &secret).await;
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["username"], "app", "{}", s.label);
    assert_eq!(doc["host"], "db.internal", "{}", s.label);
    assert_eq!(doc["port"], 5432, "{}", s.label);
    assert_ne!(doc["password"], "old", "{}", s.label);
    assert_eq!(
        doc["password"].as_str().unwrap().chars().count(),
        32,
        "{}",
        s.label
    );
}

/// A rotation interrupted before a put does not override that put when resumed.
async fn resume_never_overrides_a_later_put(s: &Subject) {
    let secret = name("contract/later-put");
    s.provider
        .put(
            &secret,
            &SecretValue::from("before"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let engine = RotationEngine::new(s.provider.clone(), Arc::new(MemoryRotationStore::default()));
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
    s.provider
        .put(
            &secret,
            &SecretValue::from("emergency"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    let stopped = engine.resume(&secret, &StoreOnlyRotator).await.unwrap_err();
    assert_eq!(
        lift::Error::from(stopped).kind(),
        ErrorKind::FailedPrecondition,
        "{}",
        s.label
    );
    assert_eq!(
        current(s.provider.as_ref(), &secret).await.1,
        "emergency",
        "{}",
        s.label
    );
    engine.cancel(&secret).await.unwrap();
    assert!(
        !s.provider
            .describe(&secret)
            .await
            .unwrap()
            .rotation_in_progress(),
        "{}",
        s.label
    );
}

/// Idempotency tokens are 32 to 64 characters, as AWS's `ClientRequestToken`.
async fn short_tokens_are_refused(s: &Subject) {
    let err = s
        .provider
        .put(
            &name("contract/short-token"),
            &SecretValue::from("v"),
            &PutOptions::default().token(VersionId::new("abc").unwrap()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}: {err}", s.label);
}

async fn run_contract(make: impl Fn() -> Subject) {
    puts_create_versions_and_move_previous(&make()).await;
    tokens_are_idempotent(&make()).await;
    labels_move_like_aws(&make()).await;
    deletes_are_soft_then_forced(&make()).await;
    rotation_runs_and_resumes_after_injected_failure(&make()).await;
    cache_refreshes_after_ttl(&make()).await;
    deleted_secrets_are_never_served(&make()).await;
    json_secrets_keep_their_fields(&make()).await;
    resume_never_overrides_a_later_put(&make()).await;
    short_tokens_are_refused(&make()).await;
}

#[tokio::test]
async fn memory_store_honours_the_contract() {
    run_contract(memory).await;
}

#[tokio::test]
async fn file_store_honours_the_contract() {
    run_contract(file).await;
}

/// AWS prunes unlabelled versions beyond its limit; moto does not, so this is asserted on lift's stores only.
#[tokio::test]
async fn lift_stores_prune_unlabelled_versions_like_aws() {
    let limits = StoreLimits {
        max_unlabelled_versions: 2,
        ..StoreLimits::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<Arc<dyn SecretsProvider>> = vec![
        Arc::new(MemorySecretsProvider::default().with_limits(limits)),
        Arc::new(
            FileSecretsProvider::open(
                dir.path().join("store"),
                Protection::Encrypted(StoreKey::generate()),
            )
            .unwrap()
            .with_limits(limits),
        ),
    ];
    for store in stores {
        let secret = name("contract/prune");
        for i in 0..6 {
            store
                .put(
                    &secret,
                    &SecretValue::from(format!("v{i}")),
                    &PutOptions::default(),
                )
                .await
                .unwrap();
        }
        let description = store.describe(&secret).await.unwrap();
        let unlabelled = description
            .versions
            .iter()
            .filter(|v| v.stages.is_empty())
            .count();
        assert_eq!(unlabelled, 2);
        assert_eq!(
            description.versions.len(),
            4,
            "AWSCURRENT, AWSPREVIOUS and two unlabelled"
        );
    }
}

#[cfg(feature = "aws")]
mod aws {
    use super::*;
    use lift::secrets::AwsSecretsManagerProvider;
    use lift_tests::moto::{MotoServer, enabled};

    async fn subject(server: &MotoServer, prefix: &str) -> Subject {
        server.reset().unwrap();
        let provider = AwsSecretsManagerProvider::builder()
            .region("us-east-1")
            .endpoint_url(server.endpoint())
            .static_credentials("test", "test")
            .prefix(prefix)
            .build()
            .await;
        Subject {
            label: "aws (moto)",
            provider: Arc::new(provider),
            _dir: None,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn aws_provider_honours_the_contract_on_moto() {
        if !enabled("aws_provider_honours_the_contract_on_moto") {
            return;
        }
        let server = MotoServer::start().unwrap();
        puts_create_versions_and_move_previous(&subject(&server, "").await).await;
        tokens_are_idempotent(&subject(&server, "").await).await;
        labels_move_like_aws(&subject(&server, "").await).await;
        deletes_are_soft_then_forced(&subject(&server, "").await).await;
        rotation_runs_and_resumes_after_injected_failure(&subject(&server, "").await).await;
        cache_refreshes_after_ttl(&subject(&server, "").await).await;
        deleted_secrets_are_never_served(&subject(&server, "").await).await;
        json_secrets_keep_their_fields(&subject(&server, "").await).await;
        resume_never_overrides_a_later_put(&subject(&server, "").await).await;
        short_tokens_are_refused(&subject(&server, "").await).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn aws_prefix_scopes_names_and_listing() {
        if !enabled("aws_prefix_scopes_names_and_listing") {
            return;
        }
        let server = MotoServer::start().unwrap();
        let scoped = subject(&server, "myapp/").await;
        let other = AwsSecretsManagerProvider::builder()
            .region("us-east-1")
            .endpoint_url(server.endpoint())
            .static_credentials("test", "test")
            .build()
            .await;
        let secret = name("db/password");
        scoped
            .provider
            .put(&secret, &SecretValue::from("p"), &PutOptions::default())
            .await
            .unwrap();
        other
            .put(
                &name("unrelated"),
                &SecretValue::from("u"),
                &PutOptions::default(),
            )
            .await
            .unwrap();
        let listed: Vec<String> = scoped
            .provider
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name.to_string())
            .collect();
        assert_eq!(listed, vec!["db/password".to_owned()]);
        let full = other
            .get(&name("myapp/db/password"), &VersionSelector::default())
            .await
            .unwrap();
        assert_eq!(full.value.expose_str(), Some("p"));
    }
}
