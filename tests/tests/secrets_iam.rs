//! A rotation on AWS Secrets Manager whose caller lacks one IAM action, against moto
//! with IAM enforcement on (opt-in: `LIFT_TEST_MOTO=1` and the `aws` feature).
//!
//! moto enforces IAM policies for IAM users' access keys once its
//! `INITIAL_NO_AUTH_ACTION_COUNT` is reached; the harness sets it to 0 after the
//! set-up calls. moto does not implement `iam:SimulatePrincipalPolicy`, so the
//! provider's pre-check is skipped there (it says so in a debug log) and these tests
//! show what a refusal in the middle of a rotation leaves: the secret as it was,
//! with the refused action named in the error.

#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use lift::secrets::{
    AwsSecretsManagerProvider, FileRotationStore, RotateOptions, RotationEngine, RotationStep,
    StoreOnlyRotator,
};
use lift::{
    Classify, ErrorKind, PutOptions, SecretName, SecretValue, SecretsProvider, StageLabel,
    VersionId, VersionSelector,
};
use lift_tests::moto::{MotoServer, enabled};

const OLD_VALUE: &str = "old-value-0123456789abcdef";

/// A policy that allows what a rotation needs, less `missing`, plus the calls of the pre-check.
fn policy_without(missing: &str) -> String {
    let actions: Vec<String> = lift::secrets::ROTATION_ACTIONS
        .iter()
        .filter(|action| **action != missing)
        .chain(["sts:GetCallerIdentity", "iam:SimulatePrincipalPolicy"].iter())
        .map(|action| format!("\"{action}\""))
        .collect();
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"*"}}]}}"#,
        actions.join(",")
    )
}

async fn provider(
    server: &MotoServer,
    key_id: &str,
    secret: &str,
) -> Arc<AwsSecretsManagerProvider> {
    Arc::new(
        AwsSecretsManagerProvider::builder()
            .region("us-east-1")
            .endpoint_url(server.endpoint())
            .static_credentials(key_id, secret)
            .build()
            .await,
    )
}

/// The secret's versions and labels, as (version id, sorted labels).
async fn stages(
    provider: &dyn SecretsProvider,
    name: &SecretName,
) -> Vec<(VersionId, Vec<String>)> {
    let mut versions: Vec<_> = provider
        .describe(name)
        .await
        .unwrap()
        .versions
        .into_iter()
        .filter(|v| !v.stages.is_empty())
        .map(|v| {
            let mut labels: Vec<String> = v.stages.iter().map(|s| s.as_str().to_owned()).collect();
            labels.sort();
            (v.version_id, labels)
        })
        .collect();
    versions.sort();
    versions
}

struct Setup {
    server: MotoServer,
    admin: Arc<AwsSecretsManagerProvider>,
    restricted: Arc<AwsSecretsManagerProvider>,
    name: SecretName,
    before: Vec<(VersionId, Vec<String>)>,
    current: VersionId,
}

/// A secret with one AWSCURRENT version, and a user whose policy lacks `missing`; IAM enforced from then on.
async fn setup(missing: &str) -> Setup {
    let server = MotoServer::start().unwrap();
    server.reset().unwrap();
    server.enforce_iam(None).unwrap();
    let admin = provider(&server, "test", "test").await;
    let name: SecretName = "db/password".parse().unwrap();
    let put = admin
        .put(&name, &SecretValue::from(OLD_VALUE), &PutOptions::default())
        .await
        .unwrap();
    let before = stages(admin.as_ref(), &name).await;
    let (key_id, secret) = server
        .create_iam_user("rotator", &policy_without(missing))
        .unwrap();
    server.enforce_iam(Some(0)).unwrap();
    let restricted = provider(&server, &key_id, &secret).await;
    Setup {
        server,
        admin,
        restricted,
        name,
        before,
        current: put.version_id,
    }
}

async fn assert_current_unchanged(s: &Setup) {
    let current = s
        .restricted
        .get(&s.name, &VersionSelector::default())
        .await
        .unwrap();
    assert_eq!(
        current.version_id, s.current,
        "AWSCURRENT stays where it was"
    );
    assert_eq!(current.value.expose_str(), Some(OLD_VALUE));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_finish_leaves_awscurrent_and_the_rotation_resumable() {
    if !enabled("a_refused_finish_leaves_awscurrent_and_the_rotation_resumable") {
        return;
    }
    let s = setup("secretsmanager:UpdateSecretVersionStage").await;
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(FileRotationStore::new(dir.path().join("state")));
    let engine = RotationEngine::new(s.restricted.clone(), state.clone())
        .with_preflight(s.restricted.clone());

    let err = engine
        .rotate(&s.name, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(
        err.to_string()
            .contains("IAM action secretsmanager:UpdateSecretVersionStage"),
        "the error names the refused action: {err}"
    );
    assert!(!err.to_string().contains(OLD_VALUE));
    assert_current_unchanged(&s).await;

    // AWSPENDING cannot be taken off without the refused action: the rotation is kept
    // resumable, as documented, and finishes once the action is granted.
    let after = stages(s.restricted.as_ref(), &s.name).await;
    let old_stages: Vec<_> = after.iter().filter(|(v, _)| *v == s.current).collect();
    assert_eq!(
        old_stages,
        s.before.iter().collect::<Vec<_>>(),
        "the old version's labels are unchanged"
    );
    let checkpoint = engine.state(&s.name).await.unwrap().checkpoint.unwrap();
    assert_eq!(checkpoint.step_reached, Some(RotationStep::TestSecret));
    let pending = after
        .iter()
        .find(|(_, labels)| labels.iter().any(|l| l == StageLabel::PENDING))
        .unwrap();
    assert_eq!(pending.0, checkpoint.token);
    let refused_again = engine
        .rotate(&s.name, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap_err();
    assert!(
        refused_again.to_string().contains("lift secrets resume"),
        "{refused_again}"
    );

    s.server.enforce_iam(None).unwrap();
    let granted = RotationEngine::new(s.admin.clone(), state);
    let report = granted.resume(&s.name, &StoreOnlyRotator).await.unwrap();
    assert_eq!(report.new_version, checkpoint.token);
    let current = s
        .admin
        .get(&s.name, &VersionSelector::default())
        .await
        .unwrap();
    assert_eq!(current.version_id, checkpoint.token);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_create_leaves_the_secret_as_it_was() {
    if !enabled("a_refused_create_leaves_the_secret_as_it_was") {
        return;
    }
    let s = setup("secretsmanager:PutSecretValue").await;
    let dir = tempfile::tempdir().unwrap();
    let engine = RotationEngine::new(
        s.restricted.clone(),
        Arc::new(FileRotationStore::new(dir.path().join("state"))),
    )
    .with_preflight(s.restricted.clone());

    let err = engine
        .rotate(&s.name, &StoreOnlyRotator, &RotateOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(
        err.to_string()
            .contains("IAM action secretsmanager:PutSecretValue"),
        "the error names the refused action: {err}"
    );
    assert_current_unchanged(&s).await;
    assert_eq!(
        stages(s.restricted.as_ref(), &s.name).await,
        s.before,
        "no AWSPENDING, no label moved"
    );
    let state = engine.state(&s.name).await.unwrap();
    assert!(
        state.checkpoint.is_none(),
        "nothing to resume: the rotation is forgotten"
    );
    assert_eq!(state.history.len(), 1, "the refusal is in the history");
}
