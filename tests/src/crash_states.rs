//! Crash states, in the manner of ALICE and CrashMonkey: the model shared by
//! the crash-state explorers (`tests/tests/secrets_crash_states.rs`,
//! `tests/tests/audit_crash_states.rs`).
//!
//! A SIGKILL keeps the page cache, so killing a process never shows an fsync
//! ordering bug. Instead, an explorer records every durable operation a piece
//! of work makes under a directory (through `lift_core::fs`'s [`Recorder`]:
//! create, write, truncate, fsync, rename, link, directory fsync, unlink),
//! replays them on a [`Model`] of the file system, and builds every state a
//! crash can leave on disk under POSIX's rules:
//!
//! - any prefix of the operations happened;
//! - data written but not fsynced is lost, kept, or torn: the unsynced writes
//!   to a file reach the disk in order up to some point, the write at that
//!   point possibly cut in half ([`Model::zero_filled_tails`] adds the states
//!   where the file's new size reached the disk but not its data);
//! - a name created, renamed or removed since its directory's last fsync is
//!   persisted or lost, independently of the others.
//!
//! Each state is then written into a fresh directory ([`materialize`]) for the
//! real recovery path to open. Directories themselves are not modelled: an
//! explorer names the ones it takes as durable (created by `mkdir` and fsynced
//! by their parent before the recording). Lock files carry no data; they are
//! not part of a state.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lift_core::fs::{RecordedOp, Recorder, set_observer};

/// One crash state: every file's path and contents.
pub type Files = BTreeMap<PathBuf, Vec<u8>>;

/// Why a trace cannot be modelled, or a state cannot be written out.
#[derive(Debug)]
pub enum Error {
    /// Reading the directory before the recording, or writing a state, failed.
    Io(PathBuf, std::io::Error),
    /// The trace does not make sense to the model (an operation on a file it
    /// does not know, an operation it does not model, too many unsynced names).
    Model(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(path, err) => write!(f, "{}: {err}", path.display()),
            Error::Model(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |err| Error::Io(path.to_owned(), err)
}

/// A change to a file's bytes not yet fsynced.
#[derive(Debug, Clone)]
enum Change {
    Write { offset: usize, data: Vec<u8> },
    Truncate(usize),
}

impl Change {
    fn apply(&self, bytes: &mut Vec<u8>) {
        match self {
            Change::Write { offset, data } => {
                let end = offset + data.len();
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                bytes[*offset..end].copy_from_slice(data);
            }
            Change::Truncate(len) => bytes.resize(*len, 0),
        }
    }

    /// The first half of a write; `None` for a truncation, which is not torn.
    fn torn(&self) -> Option<Change> {
        match self {
            Change::Write { offset, data } => Some(Change::Write {
                offset: *offset,
                data: data[..data.len() / 2].to_vec(),
            }),
            Change::Truncate(_) => None,
        }
    }
}

/// One file's contents: what reached the disk, and the changes since, in order.
#[derive(Debug, Clone)]
struct Inode {
    durable: Vec<u8>,
    unsynced: Vec<Change>,
}

impl Inode {
    fn new(durable: Vec<u8>) -> Inode {
        Inode {
            durable,
            unsynced: Vec::new(),
        }
    }

    /// The contents as the page cache holds them.
    fn volatile(&self) -> Vec<u8> {
        let mut bytes = self.durable.clone();
        for change in &self.unsynced {
            change.apply(&mut bytes);
        }
        bytes
    }

    /// Every contents a crash can leave, the durable one first.
    fn choices(&self, zero_filled: bool) -> Vec<Vec<u8>> {
        let volatile_len = self.volatile().len();
        let mut choices = vec![self.durable.clone()];
        let mut bytes = self.durable.clone();
        for change in &self.unsynced {
            if let Some(torn) = change.torn() {
                let mut cut = bytes.clone();
                torn.apply(&mut cut);
                choices.push(cut);
            }
            change.apply(&mut bytes);
            choices.push(bytes.clone());
        }
        if zero_filled {
            // The size reached the disk, the data after some point did not.
            let prefixes = choices.clone();
            for prefix in prefixes {
                if prefix.len() < volatile_len {
                    let mut filled = prefix;
                    filled.resize(volatile_len, 0);
                    choices.push(filled);
                }
            }
        }
        let mut seen = BTreeSet::new();
        choices.retain(|c| seen.insert(c.clone()));
        choices
    }
}

/// A change of names in a directory, persisted only by that directory's fsync.
#[derive(Debug, Clone)]
enum NameOp {
    Set(PathBuf, usize),
    Remove(PathBuf),
    Rename(PathBuf, PathBuf, usize),
}

impl NameOp {
    fn dir(&self) -> Option<&Path> {
        let path = match self {
            NameOp::Set(path, _) | NameOp::Remove(path) | NameOp::Rename(_, path, _) => path,
        };
        path.parent()
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

/// The most unsynced name changes a state may have at once (2^N subsets each).
const MAX_PENDING_NAMES: usize = 10;

/// The file system as POSIX lets a crash see it.
#[derive(Debug, Clone, Default)]
pub struct Model {
    inodes: Vec<Inode>,
    durable_names: BTreeMap<PathBuf, usize>,
    volatile_names: BTreeMap<PathBuf, usize>,
    pending: Vec<NameOp>,
    zero_filled: bool,
}

impl Model {
    /// The files under `root` before the recording, all taken as durable.
    pub fn snapshot(root: &Path) -> Result<Model, Error> {
        let mut model = Model::default();
        if !root.exists() {
            return Ok(model);
        }
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
                let path = entry.map_err(io(&dir))?.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let bytes = std::fs::read(&path).map_err(io(&path))?;
                    model.inodes.push(Inode::new(bytes));
                    let id = model.inodes.len() - 1;
                    model.durable_names.insert(path.clone(), id);
                    model.volatile_names.insert(path, id);
                }
            }
        }
        Ok(model)
    }

    /// Also builds the states where a file's new size reached the disk but
    /// the data after some point did not (zeros), as some file systems leave
    /// after a crash (off by default).
    #[must_use]
    pub fn zero_filled_tails(mut self, on: bool) -> Model {
        self.zero_filled = on;
        self
    }

    fn inode(&mut self, path: &Path) -> Result<&mut Inode, Error> {
        let id = *self.volatile_names.get(path).ok_or_else(|| {
            Error::Model(format!(
                "{} is written before it was created: create it through lift_core::fs",
                path.display()
            ))
        })?;
        Ok(&mut self.inodes[id])
    }

    /// Applies one recorded operation.
    pub fn apply(&mut self, op: &RecordedOp) -> Result<(), Error> {
        match op {
            RecordedOp::Create { path, .. } => {
                self.inodes.push(Inode::new(Vec::new()));
                let id = self.inodes.len() - 1;
                self.volatile_names.insert(path.clone(), id);
                self.pending.push(NameOp::Set(path.clone(), id));
            }
            RecordedOp::Write { path, offset, data } => {
                let offset = usize::try_from(*offset)
                    .map_err(|_| Error::Model(format!("offset {offset} too large")))?;
                self.inode(path)?.unsynced.push(Change::Write {
                    offset,
                    data: data.clone(),
                });
            }
            RecordedOp::Truncate { path, len } => {
                let len = usize::try_from(*len)
                    .map_err(|_| Error::Model(format!("length {len} too large")))?;
                self.inode(path)?.unsynced.push(Change::Truncate(len));
            }
            RecordedOp::Fsync { path } => {
                let inode = self.inode(path)?;
                inode.durable = inode.volatile();
                inode.unsynced.clear();
            }
            RecordedOp::Rename { from, to } => {
                let id = self.volatile_names.remove(from).ok_or_else(|| {
                    Error::Model(format!(
                        "rename of {}, which does not exist",
                        from.display()
                    ))
                })?;
                self.volatile_names.insert(to.clone(), id);
                self.pending
                    .push(NameOp::Rename(from.clone(), to.clone(), id));
            }
            RecordedOp::Link { from, to } => {
                let id = *self.volatile_names.get(from).ok_or_else(|| {
                    Error::Model(format!("link of {}, which does not exist", from.display()))
                })?;
                self.volatile_names.insert(to.clone(), id);
                self.pending.push(NameOp::Set(to.clone(), id));
            }
            RecordedOp::SyncDir { path } => {
                let (synced, rest): (Vec<NameOp>, Vec<NameOp>) = std::mem::take(&mut self.pending)
                    .into_iter()
                    .partition(|op| op.dir() == Some(path.as_path()));
                for op in &synced {
                    op.apply(&mut self.durable_names);
                }
                self.pending = rest;
            }
            RecordedOp::Unlink { path } => {
                self.volatile_names.remove(path);
                self.pending.push(NameOp::Remove(path.clone()));
            }
            other => {
                return Err(Error::Model(format!(
                    "the crash model does not know {other:?}"
                )));
            }
        }
        Ok(())
    }

    /// Every on-disk state a crash right now can leave.
    pub fn crash_states(&self) -> Result<Vec<Files>, Error> {
        let pending = self.pending.len();
        if pending > MAX_PENDING_NAMES {
            return Err(Error::Model(format!(
                "{pending} unsynced name changes at once: is a directory fsync missing?"
            )));
        }
        let mut states = Vec::new();
        for mask in 0u32..(1 << pending) {
            let mut names = self.durable_names.clone();
            for (i, op) in self.pending.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    op.apply(&mut names);
                }
            }
            // Each file with unsynced data: lost, kept, or torn.
            let mut variants: Vec<Files> = vec![BTreeMap::new()];
            for (path, id) in &names {
                let choices = self.inodes[*id].choices(self.zero_filled);
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
        Ok(states)
    }
}

/// One distinct crash state of a trace.
#[derive(Debug, Clone)]
pub struct CrashState<K> {
    /// What the explorer's key function said of the prefixes it arose after.
    pub key: K,
    /// The files.
    pub files: Files,
    /// The shortest prefix of the operations (how many happened) that can leave it, with this key.
    pub first: usize,
    /// The longest such prefix: what was acknowledged by then must be in it.
    pub last: usize,
}

/// Every distinct crash state of every prefix of `ops`, applied to `before`.
///
/// `key(k)` tells prefixes apart (with `k` operations done) that make
/// different promises: a state is kept once per distinct key, with the first
/// and last prefix that leave it. A key that is the same for every prefix
/// (`|_| ()`) counts each state once, to be checked against the promises of
/// its last prefix (the strongest, as promises only grow).
pub fn explore<K: Ord + Clone>(
    before: &Model,
    ops: &[RecordedOp],
    mut key: impl FnMut(usize) -> K,
) -> Result<Vec<CrashState<K>>, Error> {
    let mut model = before.clone();
    let mut index: BTreeMap<(K, Files), usize> = BTreeMap::new();
    let mut out: Vec<CrashState<K>> = Vec::new();
    for k in 0..=ops.len() {
        if k > 0 {
            model.apply(&ops[k - 1])?;
        }
        let key = key(k);
        for files in model.crash_states()? {
            match index.get(&(key.clone(), files.clone())) {
                Some(&i) => out[i].last = k,
                None => {
                    index.insert((key.clone(), files.clone()), out.len());
                    out.push(CrashState {
                        key: key.clone(),
                        files,
                        first: k,
                        last: k,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Writes a crash state into `into`, mapping paths from `root`: each file
/// with mode 0600, each directory (and the `durable_dirs`, relative to
/// `root`, which exist whatever the crash) with mode 0700.
pub fn materialize(
    files: &Files,
    root: &Path,
    into: &Path,
    durable_dirs: &[&str],
) -> Result<(), Error> {
    let dir = |path: &Path| {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| Error::Io(path.to_owned(), e))
    };
    dir(into)?;
    for durable in durable_dirs {
        dir(&into.join(durable))?;
    }
    for (path, bytes) in files {
        let relative = path.strip_prefix(root).map_err(|_| {
            Error::Model(format!(
                "{} is not under {}",
                path.display(),
                root.display()
            ))
        })?;
        let target = into.join(relative);
        if let Some(parent) = target.parent() {
            dir(parent)?;
        }
        std::fs::write(&target, bytes).map_err(io(&target))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))
            .map_err(io(&target))?;
    }
    Ok(())
}

/// The operations `work` makes under `root`, and the model of the disk before them.
///
/// The observer is process-wide: run one recording at a time (an explorer is
/// its own test binary, with one test).
pub async fn record<F: Future<Output = ()>>(
    root: &Path,
    work: F,
) -> Result<(Model, Vec<RecordedOp>), Error> {
    let before = Model::snapshot(root)?;
    let recorder = Arc::new(Recorder::under(root));
    set_observer(Some(recorder.clone()));
    work.await;
    set_observer(None);
    Ok((before, recorder.take()))
}

/// A fast scratch directory for the materialized states (tmpfs when there is one).
pub fn scratch() -> Result<tempfile::TempDir, Error> {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return Ok(dir);
        }
    }
    tempfile::tempdir().map_err(io(Path::new("the temporary directory")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from("/r").join(s)
    }

    fn write(path: &str, offset: u64, data: &[u8]) -> RecordedOp {
        RecordedOp::Write {
            path: p(path),
            offset,
            data: data.to_vec(),
        }
    }

    #[test]
    fn unsynced_appends_are_lost_kept_or_torn_in_order_and_fsynced_ones_stay() {
        let mut model = Model::default();
        let ops = [
            RecordedOp::Create {
                path: p("log"),
                mode: 0o600,
            },
            RecordedOp::SyncDir {
                path: PathBuf::from("/r"),
            },
            write("log", 0, b"aaaa"),
            RecordedOp::Fsync { path: p("log") },
            write("log", 4, b"bbbb"),
            write("log", 8, b"cc"),
        ];
        for op in &ops {
            model.apply(op).unwrap();
        }
        let logs: BTreeSet<Vec<u8>> = model
            .crash_states()
            .unwrap()
            .into_iter()
            .map(|s| s[&p("log")].clone())
            .collect();
        let expected: BTreeSet<Vec<u8>> = [
            &b"aaaa"[..],
            b"aaaabb",
            b"aaaabbbb",
            b"aaaabbbbc",
            b"aaaabbbbcc",
        ]
        .iter()
        .map(|b| b.to_vec())
        .collect();
        assert_eq!(logs, expected);
        let zeros: BTreeSet<Vec<u8>> = model
            .clone()
            .zero_filled_tails(true)
            .crash_states()
            .unwrap()
            .into_iter()
            .map(|s| s[&p("log")].clone())
            .collect();
        assert!(zeros.contains(&b"aaaa\0\0\0\0\0\0"[..]));
        assert!(zeros.contains(&b"aaaabbbb\0\0"[..]));
        assert_eq!(zeros.len(), 9);
    }

    #[test]
    fn unsynced_names_are_lost_independently_and_a_directory_fsync_keeps_them() {
        let mut model = Model::default();
        for op in [
            RecordedOp::Create {
                path: p("a"),
                mode: 0o600,
            },
            RecordedOp::Fsync { path: p("a") },
            RecordedOp::Create {
                path: p("b"),
                mode: 0o600,
            },
        ] {
            model.apply(&op).unwrap();
        }
        let states = model.crash_states().unwrap();
        assert_eq!(states.len(), 4, "{states:?}");
        model
            .apply(&RecordedOp::SyncDir {
                path: PathBuf::from("/r"),
            })
            .unwrap();
        assert_eq!(model.crash_states().unwrap().len(), 1);
        let err = model.apply(&write("never-created", 0, b"x")).unwrap_err();
        assert!(err.to_string().contains("create it through lift_core::fs"));
    }

    #[test]
    fn explore_keeps_each_state_once_per_key_with_its_prefixes() {
        let ops = [
            RecordedOp::Create {
                path: p("f"),
                mode: 0o600,
            },
            write("f", 0, b"xy"),
            RecordedOp::Fsync { path: p("f") },
            RecordedOp::SyncDir {
                path: PathBuf::from("/r"),
            },
        ];
        let states = explore(&Model::default(), &ops, |_| ()).unwrap();
        // Nothing; "f" empty; "f" torn ("x"); "f" whole.
        assert_eq!(states.len(), 4);
        let empty = states.iter().find(|s| s.files.is_empty()).unwrap();
        assert_eq!((empty.first, empty.last), (0, 3));
        let whole = states
            .iter()
            .find(|s| s.files.get(&p("f")).is_some_and(|b| b == b"xy"))
            .unwrap();
        assert_eq!((whole.first, whole.last), (2, 4));
        let by_end = explore(&Model::default(), &ops, |k| k == ops.len()).unwrap();
        assert_eq!(by_end.len(), 5, "the final state counts once more");
    }
}
