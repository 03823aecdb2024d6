//! Concurrency: two processes with 16 tasks each (32 tasks) put and rotate the same
//! secret in one file store. No update is lost and the version graph stays consistent.
//!
//! The workers are this same test binary, re-run with `LIFT_SECRETS_WORKER` set; each
//! writes what it did (version ids and the values it put) to a results file.
#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]
#![allow(clippy::print_stdout, reason = "workers report on stdout")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use lift_core::{
    ErrorKind, PutOptions, SecretName, SecretValue, SecretsProvider, StageLabel, VersionSelector,
};
use lift_secrets::{
    FileRotationStore, FileSecretsProvider, Protection, RotateOptions, RotationEngine, StoreKey,
    StoreLimits, StoreOnlyRotator,
};

const WORKER: &str = "LIFT_SECRETS_WORKER";
const TASKS_PER_PROCESS: usize = 16;
const OPS_PER_TASK: usize = 4;

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Results {
    /// (version id, value) of every successful put.
    puts: Vec<(String, String)>,
    /// New version ids of successful rotations.
    rotations: Vec<String>,
    /// Rotations refused because another was in progress, or stopped by a put.
    refused: usize,
    /// Pending versions written by rotations then stopped because a put moved AWSCURRENT.
    stopped: Vec<String>,
    /// Rotation attempts made after a task's operations (each counted in
    /// `rotations` or `refused` too): see [`work`].
    extra_rotations: usize,
}

/// One rotation attempt, recorded in `results` as a rotation or a refusal.
async fn attempt_rotation(engine: &RotationEngine, name: &SecretName, results: &mut Results) {
    match engine
        .rotate(name, &StoreOnlyRotator, &RotateOptions::default())
        .await
    {
        Ok(report) => results.rotations.push(report.new_version.to_string()),
        Err(e) if lift_core::Classify::kind(&e) == ErrorKind::FailedPrecondition => {
            // A put moved AWSCURRENT during the rotation: it stopped rather
            // than override the put. Cancel it, as its message says.
            let record = loop {
                match engine.cancel(name).await {
                    Ok(record) => break record,
                    Err(e) => {
                        assert_eq!(lift_core::Classify::kind(&e), ErrorKind::Conflict, "{e}");
                        tokio::task::yield_now().await;
                    }
                }
            };
            // Stopped before createSecret wrote it, the version does not exist.
            if record.step_reached.is_some() {
                results
                    .stopped
                    .extend(record.new_version.map(|v| v.to_string()));
            }
            results.refused += 1;
        }
        Err(e) => {
            assert_eq!(lift_core::Classify::kind(&e), ErrorKind::Conflict, "{e}");
            results.refused += 1;
        }
    }
}

fn open(root: &Path) -> FileSecretsProvider {
    let key = StoreKey::from_file(&root.parent().unwrap().join("key")).unwrap();
    FileSecretsProvider::open(root, Protection::Encrypted(key))
        .unwrap()
        .with_limits(StoreLimits {
            max_unlabelled_versions: 100_000,
            ..StoreLimits::default()
        })
}

async fn work(root: PathBuf, tag: String) -> Results {
    let store = Arc::new(open(&root));
    let engine = Arc::new(RotationEngine::new(
        store.clone(),
        Arc::new(FileRotationStore::new(&root)),
    ));
    let name: SecretName = "shared".parse().unwrap();
    let mut tasks = Vec::new();
    for task in 0..TASKS_PER_PROCESS {
        let (store, engine, name, tag) = (store.clone(), engine.clone(), name.clone(), tag.clone());
        tasks.push(tokio::spawn(async move {
            let mut results = Results::default();
            for op in 0..OPS_PER_TASK {
                if (task + op) % 3 == 0 {
                    attempt_rotation(&engine, &name, &mut results).await;
                } else {
                    let value = format!("{tag}-{task}-{op}");
                    let outcome = store
                        .put(
                            &name,
                            &SecretValue::from(value.as_str()),
                            &PutOptions::default(),
                        )
                        .await
                        .unwrap();
                    results.puts.push((outcome.version_id.to_string(), value));
                }
            }
            // On a loaded machine every rotation above can meet a put (and
            // stop before it writes) or another rotation's lock. So that each
            // run exercises a rotation writing its version, the first task
            // tries again, while the other tasks may still be putting, until
            // one does (at most 50 times).
            if task == 0 {
                while results.rotations.is_empty()
                    && results.stopped.is_empty()
                    && results.extra_rotations < 50
                {
                    attempt_rotation(&engine, &name, &mut results).await;
                    results.extra_rotations += 1;
                    tokio::task::yield_now().await;
                }
            }
            results
        }));
    }
    let mut all = Results::default();
    for task in tasks {
        let r = task.await.unwrap();
        all.puts.extend(r.puts);
        all.rotations.extend(r.rotations);
        all.refused += r.refused;
        all.stopped.extend(r.stopped);
        all.extra_rotations += r.extra_rotations;
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_and_32_tasks_lose_no_update() {
    if let Ok(spec) = std::env::var(WORKER) {
        let (root, out) = spec.split_once('|').unwrap();
        let results = work(
            PathBuf::from(root),
            out.rsplit('/').next().unwrap().to_owned(),
        )
        .await;
        std::fs::write(out, serde_json::to_vec(&results).unwrap()).unwrap();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    StoreKey::create_file(&dir.path().join("key")).unwrap();
    let store = open(&root);
    let name: SecretName = "shared".parse().unwrap();
    let first = store
        .put(
            &name,
            &SecretValue::from("0123456789abcdef0123456789abcdef"),
            &PutOptions::default(),
        )
        .await
        .unwrap();

    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|tag| {
            let out = dir.path().join(format!("results-{tag}"));
            let child = Command::new(std::env::current_exe().unwrap())
                .args(["two_processes_and_32_tasks_lose_no_update", "--exact"])
                .env(WORKER, format!("{}|{}", root.display(), out.display()))
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    let mut results = Vec::new();
    for (mut child, out) in children {
        assert!(child.wait().unwrap().success(), "a worker process failed");
        results.push(serde_json::from_slice::<Results>(&std::fs::read(out).unwrap()).unwrap());
    }

    let description = store.describe(&name).await.unwrap();
    let ids: BTreeSet<String> = description
        .versions
        .iter()
        .map(|v| v.version_id.to_string())
        .collect();
    assert_eq!(
        ids.len(),
        description.versions.len(),
        "version ids are unique"
    );
    let puts: usize = results.iter().map(|r| r.puts.len()).sum();
    let rotations: usize = results.iter().map(|r| r.rotations.len()).sum();
    assert_eq!(
        puts,
        2 * TASKS_PER_PROCESS * OPS_PER_TASK
            - results
                .iter()
                .map(|r| r.rotations.len() + r.refused - r.extra_rotations)
                .sum::<usize>()
    );
    let started: usize = rotations + results.iter().map(|r| r.stopped.len()).sum::<usize>();
    assert!(started >= 1, "at least one rotation wrote its version");
    // Every put and every rotation left its version, with the value that was written.
    for r in &results {
        for (id, value) in &r.puts {
            let v = store
                .get(&name, &VersionSelector::Version(id.parse().unwrap()))
                .await
                .unwrap();
            assert_eq!(
                v.value.expose(),
                value.as_bytes(),
                "version {id} lost its value"
            );
        }
        for id in &r.rotations {
            assert!(ids.contains(id), "rotation version {id} lost");
        }
    }
    assert!(ids.contains(first.version_id.as_str()));
    let stopped: usize = results.iter().map(|r| r.stopped.len()).sum();
    for id in results.iter().flat_map(|r| &r.stopped) {
        assert!(
            ids.contains(id),
            "a stopped rotation's version {id} was kept"
        );
    }
    assert_eq!(description.versions.len(), 1 + puts + rotations + stopped);
    // Exactly one AWSCURRENT, one AWSPREVIOUS elsewhere, and no rotation left half-done.
    let holders = |label: &str| {
        description
            .versions
            .iter()
            .filter(|v| v.stages.iter().any(|s| s.as_str() == label))
            .count()
    };
    assert_eq!(holders(StageLabel::CURRENT), 1);
    assert_eq!(holders(StageLabel::PREVIOUS), 1);
    assert_ne!(
        description.version_with("AWSCURRENT").unwrap().version_id,
        description.version_with("AWSPREVIOUS").unwrap().version_id
    );
    assert!(!description.rotation_in_progress());
    println!(
        "{puts} puts, {rotations} rotations, {} refused",
        results.iter().map(|r| r.refused).sum::<usize>()
    );
}
