//! The secret store's crash states, in the manner of ALICE and CrashMonkey.
//!
//! This test records every durable operation the file store makes (through
//! `lift_core::fs`'s observer: create, write, fsync, rename, directory fsync,
//! unlink) while it puts a value, while it runs a rotation and while it puts a
//! new secret, then builds the states a crash can leave on disk
//! (`lift_tests::crash_states`: any prefix of the operations; of each file's
//! unsynced writes any subset, each whole or torn in half; unsynced names
//! lost; see that module for what is not explored).
//!
//! Each state is written into a fresh directory, and the store is opened on it
//! with the same key. The invariants: the store opens and reads without an
//! integrity error; exactly one version is AWSCURRENT and its value is the old or
//! the new one, never another; an acknowledged put is never lost; a rotation
//! resumes to completion, and no value is lost on the way (the old value and the
//! pending value, once written, stay readable).
//!
//! The store's directories (created by `mkdir` and fsynced by their parent
//! right away) are taken as durable; lock files carry no data.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a test: a failure is the test failing, and it reports the number of states"
)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lift_core::fs::RecordedOp;
use lift_core::{
    PutOptions, SecretName, SecretValue, SecretsProvider, StageLabel, VersionId, VersionSelector,
};
use lift_secrets::{
    FileSecretsProvider, Protection, RotateOptions, RotationEngine, StoreKey, StoreOnlyRotator,
};
use lift_tests::crash_states::{CrashState, Files, Model, scratch};

/// The store's directories, which exist whatever the crash.
const STORE_DIRS: [&str; 2] = ["secrets", "rotation"];

/// Writes a crash state of the store at `root` into `into`.
fn materialize(files: &Files, root: &Path, into: &Path) {
    lift_tests::crash_states::materialize(files, root, into, &STORE_DIRS).unwrap();
}

/// The operations `work` makes under `root`, and the model of the disk before them.
async fn record<F: std::future::Future<Output = ()>>(
    root: &Path,
    work: F,
) -> (Model, Vec<RecordedOp>) {
    lift_tests::crash_states::record(root, work).await.unwrap()
}

/// How many of the states explored had unsynced writes reach the disk out of order.
static REORDERED: AtomicUsize = AtomicUsize::new(0);

/// Every crash state of every prefix of `ops`, with `acknowledged` set on the states of the whole trace.
fn explore(before: &Model, ops: &[RecordedOp]) -> Vec<(bool, Files)> {
    let exploration = lift_tests::crash_states::explore(before, ops, |k| k == ops.len()).unwrap();
    assert_eq!(
        (exploration.capped, exploration.limited),
        (0, 0),
        "every state is explored"
    );
    exploration
        .states
        .into_iter()
        .map(
            |CrashState {
                 key,
                 files,
                 in_order,
                 ..
             }| {
                REORDERED.fetch_add(usize::from(!in_order), Ordering::Relaxed);
                (key, files)
            },
        )
        .collect()
}

fn holders(description: &lift_core::SecretDescription, label: &str) -> usize {
    description
        .versions
        .iter()
        .filter(|v| v.stages.iter().any(|s| s.as_str() == label))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crash_state_of_a_put_and_a_rotation_keeps_the_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let key = StoreKey::generate();
    let open = |root: &Path| {
        Arc::new(FileSecretsProvider::open(root, Protection::Encrypted(key.clone())).unwrap())
    };
    let store = open(&root);
    let name: SecretName = "prod/db".parse().unwrap();
    let first = store
        .put(
            &name,
            &SecretValue::from("value-one"),
            &PutOptions::default(),
        )
        .await
        .unwrap();

    // A put of a second value.
    let (before, ops) = record(&root, async {
        store
            .put(
                &name,
                &SecretValue::from("value-two"),
                &PutOptions::default(),
            )
            .await
            .unwrap();
    })
    .await;
    assert!(ops.iter().any(|op| matches!(op, RecordedOp::Fsync { .. })));
    let states = explore(&before, &ops);
    let scratch = scratch().unwrap();
    let mut checked = 0usize;
    for (i, (acknowledged, state)) in states.iter().enumerate() {
        let into = scratch.path().join(format!("put-{i}"));
        materialize(state, &root, &into);
        let crashed = open(&into);
        let description = crashed
            .describe(&name)
            .await
            .unwrap_or_else(|e| panic!("put state {i}: {e}"));
        assert_eq!(
            holders(&description, StageLabel::CURRENT),
            1,
            "put state {i}"
        );
        let current = crashed
            .get(&name, &VersionSelector::default())
            .await
            .unwrap_or_else(|e| panic!("put state {i}: {e}"));
        let value = current.value.expose();
        assert!(
            value == b"value-one" || value == b"value-two",
            "put state {i}: another value"
        );
        if *acknowledged {
            assert_eq!(
                value, b"value-two",
                "put state {i}: an acknowledged put was lost"
            );
        }
        std::fs::remove_dir_all(&into).unwrap();
        checked += 1;
    }
    let put_states = checked;

    // The explorer is not blind: without the directory fsyncs, a crash loses the
    // acknowledged put (its rename), and the explorer finds that state.
    let without_dir_syncs: Vec<RecordedOp> = ops
        .iter()
        .filter(|op| !matches!(op, RecordedOp::SyncDir { .. }))
        .cloned()
        .collect();
    let mut lost = 0;
    for (i, (acknowledged, state)) in explore(&before, &without_dir_syncs).iter().enumerate() {
        if !acknowledged {
            continue;
        }
        let into = scratch.path().join(format!("broken-{i}"));
        materialize(state, &root, &into);
        // Lost outright, or read as a rolled-back file: either breaks an invariant.
        let read = open(&into).get(&name, &VersionSelector::default()).await;
        if read.is_err() || read.is_ok_and(|v| v.value.expose() == b"value-one") {
            lost += 1;
        }
        std::fs::remove_dir_all(&into).unwrap();
    }
    assert!(
        lost > 0,
        "the explorer missed the states a missing directory fsync allows"
    );

    // A rotation, with its rotation state authenticated by the same key.
    let before_rotation = store.describe(&name).await.unwrap();
    let old_current = before_rotation
        .version_with(StageLabel::CURRENT)
        .unwrap()
        .version_id
        .clone();
    let engine = RotationEngine::new(store.clone(), Arc::new(store.rotation_store()));
    let mut new_version: Option<VersionId> = None;
    let (before, ops) = record(&root, async {
        let report = engine
            .rotate(&name, &StoreOnlyRotator, &RotateOptions::default())
            .await
            .unwrap();
        new_version = Some(report.new_version);
    })
    .await;
    let new_version = new_version.unwrap();
    let new_value = store
        .get(&name, &VersionSelector::Version(new_version.clone()))
        .await
        .unwrap();
    let states = explore(&before, &ops);
    for (i, (acknowledged, state)) in states.iter().enumerate() {
        let into = scratch.path().join(format!("rotation-{i}"));
        materialize(state, &root, &into);
        let crashed = open(&into);
        let description = crashed
            .describe(&name)
            .await
            .unwrap_or_else(|e| panic!("rotation state {i}: {e}"));
        assert_eq!(
            holders(&description, StageLabel::CURRENT),
            1,
            "rotation state {i}"
        );
        let current = crashed
            .get(&name, &VersionSelector::default())
            .await
            .unwrap_or_else(|e| panic!("rotation state {i}: {e}"));
        assert!(
            current.version_id == old_current || current.version_id == new_version,
            "rotation state {i}: AWSCURRENT on an unknown version"
        );
        let pending_written = description
            .versions
            .iter()
            .any(|v| v.version_id == new_version);
        if pending_written {
            let pending = crashed
                .get(&name, &VersionSelector::Version(new_version.clone()))
                .await
                .unwrap();
            assert!(pending.value.ct_eq(&new_value.value), "rotation state {i}");
        }
        if *acknowledged {
            assert_eq!(current.version_id, new_version, "rotation state {i}");
        }
        // Recover: resume what the crash interrupted, and check nothing was lost.
        let engine = RotationEngine::new(crashed.clone(), Arc::new(crashed.rotation_store()));
        let state = engine
            .state(&name)
            .await
            .unwrap_or_else(|e| panic!("rotation state {i}: {e}"));
        if state.checkpoint.is_some() || description.rotation_in_progress() {
            engine
                .resume(&name, &StoreOnlyRotator)
                .await
                .unwrap_or_else(|e| panic!("rotation state {i}: resume: {e}"));
        }
        let after = crashed.describe(&name).await.unwrap();
        assert_eq!(
            holders(&after, StageLabel::CURRENT),
            1,
            "rotation state {i}"
        );
        assert!(!after.rotation_in_progress(), "rotation state {i}");
        let old = crashed
            .get(&name, &VersionSelector::Version(old_current.clone()))
            .await
            .unwrap();
        assert_eq!(
            old.value.expose(),
            b"value-two",
            "rotation state {i}: old value lost"
        );
        if pending_written {
            let kept = crashed
                .get(&name, &VersionSelector::Version(new_version.clone()))
                .await
                .unwrap();
            assert!(
                kept.value.ct_eq(&new_value.value),
                "rotation state {i}: new value lost"
            );
        }
        std::fs::remove_dir_all(&into).unwrap();
        checked += 1;
    }
    let rotation_states = checked - put_states;
    let rotation_ops = ops.len();

    // The first put of a new secret: a new file in a new directory, and a new manifest entry.
    let fresh: SecretName = "team/new/api-key".parse().unwrap();
    let (before, ops) = record(&root, async {
        store
            .put(
                &fresh,
                &SecretValue::from("brand-new"),
                &PutOptions::default(),
            )
            .await
            .unwrap();
    })
    .await;
    for (i, (acknowledged, state)) in explore(&before, &ops).iter().enumerate() {
        let into = scratch.path().join(format!("create-{i}"));
        materialize(state, &root, &into);
        let crashed = open(&into);
        match crashed.get(&fresh, &VersionSelector::default()).await {
            Ok(v) => assert_eq!(v.value.expose(), b"brand-new", "create state {i}"),
            Err(e) => {
                assert_eq!(
                    e.kind(),
                    lift_core::ErrorKind::NotFound,
                    "create state {i}: {e}"
                );
                assert!(
                    !acknowledged,
                    "create state {i}: an acknowledged put was lost"
                );
            }
        }
        // The other secret is untouched by the crash.
        assert!(
            crashed
                .get(&name, &VersionSelector::default())
                .await
                .is_ok(),
            "create state {i}"
        );
        std::fs::remove_dir_all(&into).unwrap();
        checked += 1;
    }
    let create_states = checked - put_states - rotation_states;
    println!(
        "crash states checked: {checked} ({put_states} of a put, {rotation_states} of a rotation of {rotation_ops} operations, {create_states} of a new secret's first put); {} of the states explored (the negative control's included) with unsynced writes reordered",
        REORDERED.load(Ordering::Relaxed)
    );
    assert!(
        create_states >= 9,
        "only {create_states} crash states of a first put"
    );
    // Two atomic replacements (the file, then the manifest) leave 9 distinct states at least.
    assert!(put_states >= 9, "only {put_states} crash states of a put");
    assert!(
        rotation_states >= 40,
        "only {rotation_states} crash states of a rotation"
    );
    assert!(
        store
            .get(&name, &VersionSelector::Version(first.version_id))
            .await
            .is_ok()
    );
}
