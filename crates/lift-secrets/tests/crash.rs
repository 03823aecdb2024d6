//! Crash safety: a child process rotating a secret in a file store is SIGKILLed at
//! each point of the four steps. After a restart there is exactly one AWSCURRENT,
//! every value written can still be read, and `resume` completes the rotation.
//!
//! The child is this same test binary, re-run with `LIFT_SECRETS_CRASH_AT` set:
//! it rotates, and at the named point prints `PAUSED` and waits to be killed.
#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]
#![allow(
    clippy::print_stdout,
    reason = "the child reports its pause point on stdout"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use lift_core::{
    DeleteMode, PutOptions, PutOutcome, SecretDescription, SecretName, SecretSummary, SecretValue,
    SecretVersion, SecretsProvider, StageLabel, StageMove, VersionSelector,
};
use lift_secrets::{
    FileRotationStore, FileSecretsProvider, Protection, RotateOptions, RotationEngine,
    RotationStep, Rotator, StepContext, StoreKey, StoreOnlyRotator,
};

const CRASH_AT: &str = "LIFT_SECRETS_CRASH_AT";
const CRASH_ROOT: &str = "LIFT_SECRETS_CRASH_ROOT";

/// Where the child stops. Each point sits between two durable writes.
const POINTS: [&str; 7] = [
    "after_create_put",         // AWSPENDING written, checkpoint still says "started"
    "in_set",                   // inside setSecret
    "in_test",                  // inside testSecret
    "before_finish_move",       // testSecret recorded, AWSCURRENT not yet moved
    "after_finish_move",        // AWSCURRENT moved, AWSPENDING still on the new version
    "after_pending_removed",    // labels final, history not yet written
    "after_started_checkpoint", // checkpoint written, nothing created (paused in createSecret's lookup)
];

fn pause(point: &str) -> ! {
    println!("PAUSED {point}");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// A provider that stops the process at the configured point.
struct Pausing {
    inner: FileSecretsProvider,
    point: String,
}

#[async_trait::async_trait]
impl SecretsProvider for Pausing {
    async fn get(
        &self,
        name: &SecretName,
        selector: &VersionSelector,
    ) -> lift_core::Result<SecretVersion> {
        if self.point == "after_started_checkpoint"
            && matches!(selector, VersionSelector::Version(_))
        {
            pause(&self.point);
        }
        self.inner.get(name, selector).await
    }
    async fn put(
        &self,
        name: &SecretName,
        value: &SecretValue,
        options: &PutOptions,
    ) -> lift_core::Result<PutOutcome> {
        let outcome = self.inner.put(name, value, options).await?;
        if self.point == "after_create_put" {
            pause(&self.point);
        }
        Ok(outcome)
    }
    async fn list(&self) -> lift_core::Result<Vec<SecretSummary>> {
        self.inner.list().await
    }
    async fn describe(&self, name: &SecretName) -> lift_core::Result<SecretDescription> {
        self.inner.describe(name).await
    }
    async fn delete(
        &self,
        name: &SecretName,
        mode: DeleteMode,
    ) -> lift_core::Result<SecretDescription> {
        self.inner.delete(name, mode).await
    }
    async fn move_stage(&self, name: &SecretName, stage_move: &StageMove) -> lift_core::Result<()> {
        let current = stage_move.stage.is_current();
        if current && self.point == "before_finish_move" {
            pause(&self.point);
        }
        self.inner.move_stage(name, stage_move).await?;
        if current && self.point == "after_finish_move" {
            pause(&self.point);
        }
        if stage_move.stage.as_str() == StageLabel::PENDING && self.point == "after_pending_removed"
        {
            pause(&self.point);
        }
        Ok(())
    }
}

struct PausingRotator(String);

#[async_trait::async_trait]
impl Rotator for PausingRotator {
    fn name(&self) -> &str {
        "pausing"
    }
    async fn set_secret(
        &self,
        _: &StepContext,
        _: &SecretValue,
        _: Option<&SecretValue>,
    ) -> lift_core::Result<()> {
        if self.0 == "in_set" {
            pause(&self.0);
        }
        Ok(())
    }
    async fn test_secret(&self, _: &StepContext, _: &SecretValue) -> lift_core::Result<()> {
        if self.0 == "in_test" {
            pause(&self.0);
        }
        Ok(())
    }
}

fn key_path(root: &Path) -> PathBuf {
    root.parent().unwrap().join("key")
}

fn open(root: &Path) -> FileSecretsProvider {
    let key = StoreKey::from_file(&key_path(root)).unwrap();
    FileSecretsProvider::open(root, Protection::Encrypted(key)).unwrap()
}

async fn child(point: String, root: PathBuf) {
    let provider = Arc::new(Pausing {
        inner: open(&root),
        point: point.clone(),
    });
    let engine = RotationEngine::new(provider, Arc::new(FileRotationStore::new(&root)));
    let name: SecretName = "prod/db".parse().unwrap();
    let result = engine
        .rotate(&name, &PausingRotator(point), &RotateOptions::default())
        .await;
    // Reaching here means the pause point was never hit: tell the parent.
    println!("FINISHED {}", result.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_survives_sigkill_at_every_step() {
    if let (Ok(point), Ok(root)) = (std::env::var(CRASH_AT), std::env::var(CRASH_ROOT)) {
        child(point, PathBuf::from(root)).await;
        return;
    }
    let name: SecretName = "prod/db".parse().unwrap();
    for point in POINTS {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        StoreKey::create_file(&key_path(&root)).unwrap();
        let store = open(&root);
        let original = store
            .put(
                &name,
                &SecretValue::from("Original-passw0rd!"),
                &PutOptions::default(),
            )
            .await
            .unwrap();

        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "rotation_survives_sigkill_at_every_step",
                "--exact",
                "--nocapture",
            ])
            .env(CRASH_AT, point)
            .env(CRASH_ROOT, &root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut paused = false;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.starts_with("PAUSED") {
                paused = true;
                break;
            }
            assert!(
                !line.starts_with("FINISHED"),
                "{point}: the child never reached its pause point"
            );
        }
        assert!(paused, "{point}: the child exited without pausing");
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "{point}: the child was killed");

        // After the restart: one AWSCURRENT, every version readable.
        let store = Arc::new(open(&root));
        let described = store.describe(&name).await.unwrap();
        let currents = described
            .versions
            .iter()
            .filter(|v| v.stages.contains(&StageLabel::current()))
            .count();
        assert_eq!(currents, 1, "{point}");
        for v in &described.versions {
            store
                .get(&name, &VersionSelector::Version(v.version_id.clone()))
                .await
                .unwrap();
        }
        let old = store
            .get(
                &name,
                &VersionSelector::Version(original.version_id.clone()),
            )
            .await
            .unwrap();
        assert_eq!(old.value.expose(), b"Original-passw0rd!", "{point}");

        // A new rotation is refused while this one is unfinished; resume completes it.
        let engine = RotationEngine::new(store.clone(), Arc::new(FileRotationStore::new(&root)));
        let refused = engine
            .rotate(&name, &StoreOnlyRotator, &RotateOptions::default())
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("lift secrets resume prod/db"),
            "{point}: {refused}"
        );
        let checkpoint = engine.state(&name).await.unwrap().checkpoint.unwrap();
        let report = engine.resume(&name, &StoreOnlyRotator).await.unwrap();
        assert_eq!(
            report.new_version, checkpoint.token,
            "{point}: resume keeps the token"
        );
        let after = store.describe(&name).await.unwrap();
        assert_eq!(
            after.version_with("AWSCURRENT").unwrap().version_id,
            checkpoint.token,
            "{point}"
        );
        assert_eq!(
            after.version_with("AWSPREVIOUS").unwrap().version_id,
            original.version_id,
            "{point}"
        );
        assert!(after.version_with("AWSPENDING").is_none(), "{point}");
        assert_eq!(
            after.versions.len(),
            2,
            "{point}: no duplicate pending version"
        );
        let history = engine.history(&name).await.unwrap();
        assert_eq!(
            history.last().unwrap().step_reached,
            Some(RotationStep::FinishSecret),
            "{point}"
        );
        let new = store.get(&name, &VersionSelector::default()).await.unwrap();
        // No kind was declared, so the new value is a default password, whatever the old one looked like.
        assert_eq!(new.value.len(), 32, "{point}");
    }
}
