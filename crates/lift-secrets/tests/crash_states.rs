//! Crash states explored, in the manner of ALICE and CrashMonkey.
//!
//! A SIGKILL keeps the page cache, so killing a process never shows an fsync
//! ordering bug. This test records every durable operation the file store makes
//! (through `lift_core::fs`'s observer: create, write, fsync, rename, directory
//! fsync, unlink) while it puts a value and while it runs a rotation, then builds
//! every state a crash can leave on disk under POSIX's rules:
//!
//! - any prefix of the operations happened;
//! - data written but not fsynced is lost, kept, or torn (half of it kept);
//! - a name created, renamed or removed since its directory's last fsync is
//!   persisted or lost, independently of the others.
//!
//! Each state is written into a fresh directory, and the store is opened on it
//! with the same key. The invariants: the store opens and reads without an
//! integrity error; exactly one version is AWSCURRENT and its value is the old or
//! the new one, never another; an acknowledged put is never lost; a rotation
//! resumes to completion, and no value is lost on the way (the old value and the
//! pending value, once written, stay readable).
//!
//! The directories themselves (created by `mkdir` and fsynced by their parent
//! right away) are taken as durable; lock files carry no data.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a test: a failure is the test failing, and it reports the number of states"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lift_core::fs::{RecordedOp, Recorder, set_observer};
use lift_core::{
    PutOptions, SecretName, SecretValue, SecretsProvider, StageLabel, VersionId, VersionSelector,
};
use lift_secrets::{
    FileSecretsProvider, Protection, RotateOptions, RotationEngine, StoreKey, StoreOnlyRotator,
};

/// One file's contents: what reached the disk, and what the page cache holds.
#[derive(Debug, Clone)]
struct Inode {
    durable: Vec<u8>,
    volatile: Vec<u8>,
}

/// A change of names in a directory, persisted only by that directory's fsync.
#[derive(Debug, Clone)]
enum NameOp {
    Set(PathBuf, usize),
    Remove(PathBuf),
    Rename(PathBuf, PathBuf, usize),
}

impl NameOp {
    fn dir(&self) -> &Path {
        let path = match self {
            NameOp::Set(path, _) | NameOp::Remove(path) | NameOp::Rename(_, path, _) => path,
        };
        path.parent().unwrap()
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, usize>) {
        match self {
            NameOp::Set(path, id) => {
                names.insert(path.clone(), *id);
            }
            NameOp::Remove(path) => {
                names.remove(path);
            }
            NameOp::Rename(from, to, id) => {
                names.remove(from);
                names.insert(to.clone(), *id);
            }
        }
    }
}

/// The file system as POSIX lets a crash see it.
#[derive(Debug, Clone, Default)]
struct Model {
    inodes: Vec<Inode>,
    durable_names: BTreeMap<PathBuf, usize>,
    volatile_names: BTreeMap<PathBuf, usize>,
    pending: Vec<NameOp>,
}

impl Model {
    /// The state on disk before the recording: every file durable.
    fn snapshot(root: &Path) -> Model {
        let mut model = Model::default();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let bytes = std::fs::read(&path).unwrap();
                    model.inodes.push(Inode {
                        durable: bytes.clone(),
                        volatile: bytes,
                    });
                    let id = model.inodes.len() - 1;
                    model.durable_names.insert(path.clone(), id);
                    model.volatile_names.insert(path, id);
                }
            }
        }
        model
    }

    fn inode(&mut self, path: &Path) -> &mut Inode {
        let id = *self
            .volatile_names
            .get(path)
            .unwrap_or_else(|| panic!("{} is not open", path.display()));
        &mut self.inodes[id]
    }

    fn apply(&mut self, op: &RecordedOp) {
        match op {
            RecordedOp::Create { path, .. } => {
                self.inodes.push(Inode {
                    durable: Vec::new(),
                    volatile: Vec::new(),
                });
                let id = self.inodes.len() - 1;
                self.volatile_names.insert(path.clone(), id);
                self.pending.push(NameOp::Set(path.clone(), id));
            }
            RecordedOp::Write { path, offset, data } => {
                let inode = self.inode(path);
                let start = usize::try_from(*offset).unwrap();
                if inode.volatile.len() < start + data.len() {
                    inode.volatile.resize(start + data.len(), 0);
                }
                inode.volatile[start..start + data.len()].copy_from_slice(data);
            }
            RecordedOp::Truncate { path, len } => {
                let len = usize::try_from(*len).unwrap();
                self.inode(path).volatile.resize(len, 0);
            }
            RecordedOp::Fsync { path } => {
                let inode = self.inode(path);
                inode.durable = inode.volatile.clone();
            }
            RecordedOp::Rename { from, to } => {
                let id = self.volatile_names.remove(from).unwrap();
                self.volatile_names.insert(to.clone(), id);
                self.pending
                    .push(NameOp::Rename(from.clone(), to.clone(), id));
            }
            RecordedOp::Link { from, to } => {
                let id = self.volatile_names[from];
                self.volatile_names.insert(to.clone(), id);
                self.pending.push(NameOp::Set(to.clone(), id));
            }
            RecordedOp::SyncDir { path } => {
                let (synced, rest): (Vec<NameOp>, Vec<NameOp>) = std::mem::take(&mut self.pending)
                    .into_iter()
                    .partition(|op| op.dir() == path.as_path());
                for op in &synced {
                    op.apply(&mut self.durable_names);
                }
                self.pending = rest;
            }
            RecordedOp::Unlink { path } => {
                self.volatile_names.remove(path);
                self.pending.push(NameOp::Remove(path.clone()));
            }
            other => panic!("the crash model does not know {other:?}"),
        }
    }

    /// Every on-disk state a crash right now can leave: file path to contents.
    fn crash_states(&self) -> Vec<BTreeMap<PathBuf, Vec<u8>>> {
        let mut states = Vec::new();
        let pending = self.pending.len();
        assert!(pending <= 8, "{pending} unsynced name changes at once");
        for mask in 0u32..(1 << pending) {
            let mut names = self.durable_names.clone();
            for (i, op) in self.pending.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    op.apply(&mut names);
                }
            }
            // Each file with unsynced data: lost, kept, or torn.
            let mut variants: Vec<BTreeMap<PathBuf, Vec<u8>>> = vec![BTreeMap::new()];
            for (path, id) in &names {
                let inode = &self.inodes[*id];
                let mut choices = vec![inode.durable.clone()];
                if inode.volatile != inode.durable {
                    choices.push(inode.volatile.clone());
                    choices.push(inode.volatile[..inode.volatile.len() / 2].to_vec());
                }
                variants = variants
                    .into_iter()
                    .flat_map(|state| {
                        choices.iter().map(move |bytes| {
                            let mut next = state.clone();
                            next.insert(path.clone(), bytes.clone());
                            next
                        })
                    })
                    .collect();
            }
            states.extend(variants);
        }
        states
    }
}

/// Writes a crash state into `into`, mapping paths from `root`.
fn materialize(state: &BTreeMap<PathBuf, Vec<u8>>, root: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    std::fs::set_permissions(into, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The store's directories exist whatever the crash (see the module's comment).
    for dir in ["secrets", "rotation"] {
        let path = into.join(dir);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    for (path, bytes) in state {
        let target = into.join(path.strip_prefix(root).unwrap());
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(target.parent().unwrap())
            .unwrap();
        std::fs::write(&target, bytes).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// The operations `work` makes under `root`, and the model of the disk before them.
async fn record<F: std::future::Future<Output = ()>>(
    root: &Path,
    work: F,
) -> (Model, Vec<RecordedOp>) {
    let before = Model::snapshot(root);
    let recorder = Arc::new(Recorder::under(root));
    set_observer(Some(recorder.clone()));
    work.await;
    set_observer(None);
    (before, recorder.take())
}

/// Every crash state of every prefix of `ops`, with `acknowledged` set on the states of the whole trace.
fn explore(before: &Model, ops: &[RecordedOp]) -> Vec<(bool, BTreeMap<PathBuf, Vec<u8>>)> {
    let mut model = before.clone();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for k in 0..=ops.len() {
        if k > 0 {
            model.apply(&ops[k - 1]);
        }
        for state in model.crash_states() {
            let acknowledged = k == ops.len();
            if seen.insert((acknowledged, state.clone())) {
                out.push((acknowledged, state));
            }
        }
    }
    out
}

/// A fast scratch directory for the materialized states (tmpfs when there is one).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
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
    let scratch = scratch();
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
        "crash states checked: {checked} ({put_states} of a put, {rotation_states} of a rotation of {rotation_ops} operations, {create_states} of a new secret's first put)"
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
