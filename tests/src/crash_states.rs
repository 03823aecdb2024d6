//! Crash states, in the manner of ALICE and CrashMonkey: the model shared by
//! the crash-state explorers (`tests/tests/secrets_crash_states.rs`,
//! `tests/tests/audit_crash_states.rs`).
//!
//! A SIGKILL keeps the page cache, so killing a process never shows an fsync
//! ordering bug. Instead, an explorer records every durable operation a piece
//! of work makes under a directory (through `lift_core::fs`'s [`Recorder`], or
//! a [`Journal`] that also keeps the explorer's own marks in the same order:
//! create, write, truncate, fsync, rename, link, directory fsync, unlink),
//! replays them on a [`Model`] of the file system, and builds the states a
//! crash can leave on disk under these rules:
//!
//! - any prefix of the operations happened;
//! - of the changes to a file's data (writes, truncations) made since its last
//!   fsync, any subset reached the disk, each write in the subset whole or cut
//!   to its first half; a later write that reached the disk without an earlier
//!   one leaves the earlier one's bytes as they were, or zeros past the old
//!   end (a hole). [`Model::zero_filled_tails`] adds the states where the
//!   file's final size reached the disk but the data after some point did not
//!   (zeros);
//! - a name created, renamed or removed since its directory's last fsync is
//!   persisted or lost, independently of the others;
//! - an fsync makes durable the file it was made on (by its [`FileId`],
//!   whatever its name is by then), and every change recorded to that file
//!   before it.
//!
//! What is not explored: a write torn anywhere but in its middle (its first
//! half reached the disk, not the second), or torn so that its second half
//! reached the disk and not its first; garbage rather than zeros in a hole;
//! data of one file reaching another; directories themselves (an explorer
//! names the ones it takes as durable: created by `mkdir` and fsynced by
//! their parent before the recording); a change recorded while an fsync of
//! the same file was running, which the model takes as covered by it (the
//! observer reports an fsync when it returns). When a file has more than
//! [`MAX_REORDERED_CHANGES`] unsynced changes at once, only the states where
//! they reached the disk in order, or in order with one of them missing, are
//! built for it ([`Exploration::limited`] counts the prefixes where this
//! happened). When a trace has more distinct states than the model's
//! [`Model::max_states`], every state reachable in order is kept and the
//! others are sampled evenly ([`Exploration::capped`] counts those left out).
//!
//! Each state is then written into a fresh directory ([`materialize`]) for the
//! real recovery path to open. Lock files carry no data; they are not part of
//! a state.

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use lift_core::fs::{FileId, Observer, Op, RecordedOp, Recorder, set_observer};

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

/// What became of one unsynced change in a crash state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Lost,
    Torn,
    Kept,
}

/// The most unsynced changes of one file whose every subset is explored
/// (3^N states for N writes: each lost, torn or kept). A file with more gets
/// only the states where they reached the disk in order, or in order with one
/// of them missing.
pub const MAX_REORDERED_CHANGES: usize = 8;

/// The distinct contents a crash can leave in one file, each with whether its
/// unsynced changes reached the disk in order (a prefix of them, the last one
/// perhaps torn), and whether the file had too many to explore every subset.
struct Choices {
    contents: BTreeMap<Vec<u8>, bool>,
    limited: bool,
}

impl Choices {
    fn add(&mut self, bytes: Vec<u8>, in_order: bool) {
        *self.contents.entry(bytes).or_insert(false) |= in_order;
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

    /// The contents left when each unsynced change met its fate.
    fn outcome(&self, fates: &[Fate]) -> Vec<u8> {
        let mut bytes = self.durable.clone();
        for (change, fate) in self.unsynced.iter().zip(fates) {
            match fate {
                Fate::Lost => {}
                Fate::Kept => change.apply(&mut bytes),
                Fate::Torn => {
                    if let Some(torn) = change.torn() {
                        torn.apply(&mut bytes);
                    }
                }
            }
        }
        bytes
    }

    /// Every contents a crash can leave.
    fn choices(&self, zero_filled: bool) -> Choices {
        let n = self.unsynced.len();
        let mut choices = Choices {
            contents: BTreeMap::new(),
            limited: n > MAX_REORDERED_CHANGES,
        };
        let fates_of = |change: &Change| match change {
            Change::Write { .. } => &[Fate::Lost, Fate::Torn, Fate::Kept][..],
            Change::Truncate(_) => &[Fate::Lost, Fate::Kept][..],
        };
        if choices.limited {
            // In order: the first `kept` changes, then one lost or torn, the rest lost;
            // and the same with one earlier change lost.
            for kept in 0..=n {
                for last in [Fate::Lost, Fate::Torn] {
                    let mut fates = vec![Fate::Lost; n];
                    fates[..kept].fill(Fate::Kept);
                    if kept < n {
                        fates[kept] = last;
                    }
                    choices.add(self.outcome(&fates), true);
                    for hole in 0..kept {
                        let mut holed = fates.clone();
                        holed[hole] = Fate::Lost;
                        choices.add(self.outcome(&holed), false);
                    }
                }
            }
        } else {
            // Every fate of every change: odometer over the changes' fates.
            let mut digits = vec![0usize; n];
            loop {
                let fates: Vec<Fate> = digits
                    .iter()
                    .zip(&self.unsynced)
                    .map(|(&d, change)| fates_of(change)[d])
                    .collect();
                // In order: kept ones, then at most one torn or lost, then lost ones.
                let ended = fates.iter().position(|&f| f != Fate::Kept).unwrap_or(n);
                let in_order = fates.iter().skip(ended + 1).all(|&f| f == Fate::Lost);
                choices.add(self.outcome(&fates), in_order);
                // The next combination; after the last, every digit wraps to 0.
                let mut i = 0;
                while i < n {
                    digits[i] += 1;
                    if digits[i] < fates_of(&self.unsynced[i]).len() {
                        break;
                    }
                    digits[i] = 0;
                    i += 1;
                }
                if i == n {
                    break;
                }
            }
        }
        if zero_filled {
            // The size reached the disk, the data after some point did not.
            let volatile_len = self.volatile().len();
            let short: Vec<(Vec<u8>, bool)> = choices
                .contents
                .iter()
                .filter(|(bytes, _)| bytes.len() < volatile_len)
                .map(|(bytes, in_order)| (bytes.clone(), *in_order))
                .collect();
            for (mut bytes, in_order) in short {
                bytes.resize(volatile_len, 0);
                choices.add(bytes, in_order);
            }
        }
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

/// The most distinct states [`explore`] keeps of one trace unless told otherwise ([`Model::max_states`]).
pub const DEFAULT_MAX_STATES: usize = 5_000;

/// The states a crash right now can leave.
#[derive(Debug, Default)]
pub struct States {
    /// Each state, and whether every file's unsynced changes in it reached the disk in order.
    pub files: Vec<(Files, bool)>,
    /// Whether a file had more than [`MAX_REORDERED_CHANGES`] unsynced changes,
    /// so that not every subset of them was built.
    pub limited: bool,
}

/// The file system as a crash lets it be seen (see the module's rules).
#[derive(Debug, Clone)]
pub struct Model {
    inodes: Vec<Inode>,
    /// The model's inode of each file the trace named by its [`FileId`].
    ids: BTreeMap<FileId, usize>,
    durable_names: BTreeMap<PathBuf, usize>,
    volatile_names: BTreeMap<PathBuf, usize>,
    pending: Vec<NameOp>,
    zero_filled: bool,
    max_states: usize,
}

impl Default for Model {
    fn default() -> Model {
        Model {
            inodes: Vec::new(),
            ids: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            volatile_names: BTreeMap::new(),
            pending: Vec::new(),
            zero_filled: false,
            max_states: DEFAULT_MAX_STATES,
        }
    }
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
                    model
                        .ids
                        .insert(FileId::of_path(&path).map_err(io(&path))?, id);
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

    /// The most distinct states [`explore`] keeps of one trace (by default
    /// [`DEFAULT_MAX_STATES`]): beyond it, the states reachable in order are
    /// all kept and the others sampled evenly.
    #[must_use]
    pub fn max_states(mut self, max: usize) -> Model {
        self.max_states = max;
        self
    }

    /// The model's inode an operation on an open file touched: by its
    /// [`FileId`] when the trace gave one the model knows (the file may have
    /// been renamed or removed since), else by its name.
    fn inode(&mut self, path: &Path, file: Option<FileId>) -> Result<&mut Inode, Error> {
        let known = file.and_then(|file| self.ids.get(&file)).copied();
        let id = match known {
            Some(id) => id,
            None => {
                let id = *self.volatile_names.get(path).ok_or_else(|| {
                    Error::Model(format!(
                        "{} is written or fsynced but the model knows no such file: create it through lift_core::fs",
                        path.display()
                    ))
                })?;
                if let Some(file) = file {
                    self.ids.insert(file, id);
                }
                id
            }
        };
        Ok(&mut self.inodes[id])
    }

    /// Applies one recorded operation.
    pub fn apply(&mut self, op: &RecordedOp) -> Result<(), Error> {
        match op {
            RecordedOp::Create { path, file, .. } => {
                self.inodes.push(Inode::new(Vec::new()));
                let id = self.inodes.len() - 1;
                if let Some(file) = file {
                    // A number the file system reused: the file it named is gone.
                    self.ids.insert(*file, id);
                }
                self.volatile_names.insert(path.clone(), id);
                self.pending.push(NameOp::Set(path.clone(), id));
            }
            RecordedOp::Write {
                path,
                offset,
                data,
                file,
            } => {
                let offset = usize::try_from(*offset)
                    .map_err(|_| Error::Model(format!("offset {offset} too large")))?;
                self.inode(path, *file)?.unsynced.push(Change::Write {
                    offset,
                    data: data.clone(),
                });
            }
            RecordedOp::Truncate { path, len, file } => {
                let len = usize::try_from(*len)
                    .map_err(|_| Error::Model(format!("length {len} too large")))?;
                self.inode(path, *file)?
                    .unsynced
                    .push(Change::Truncate(len));
            }
            RecordedOp::Fsync { path, file } => {
                let inode = self.inode(path, *file)?;
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
    pub fn crash_states(&self) -> Result<States, Error> {
        let pending = self.pending.len();
        if pending > MAX_PENDING_NAMES {
            return Err(Error::Model(format!(
                "{pending} unsynced name changes at once: is a directory fsync missing?"
            )));
        }
        let mut states = States::default();
        let mut choices: BTreeMap<usize, Choices> = BTreeMap::new();
        for mask in 0u32..(1 << pending) {
            let mut names = self.durable_names.clone();
            for (i, op) in self.pending.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    op.apply(&mut names);
                }
            }
            // Each file: every contents its unsynced changes can leave.
            let mut variants: Vec<(Files, bool)> = vec![(BTreeMap::new(), true)];
            for (path, id) in &names {
                let file = choices
                    .entry(*id)
                    .or_insert_with(|| self.inodes[*id].choices(self.zero_filled));
                states.limited |= file.limited;
                variants = variants
                    .into_iter()
                    .flat_map(|(state, in_order)| {
                        file.contents.iter().map(move |(bytes, file_in_order)| {
                            let mut next = state.clone();
                            next.insert(path.clone(), bytes.clone());
                            (next, in_order && *file_in_order)
                        })
                    })
                    .collect();
            }
            states.files.extend(variants);
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
    /// Whether some prefix leaves it with every file's unsynced changes on
    /// disk in order (a state the in-order model, without reordering, built too).
    pub in_order: bool,
}

/// The crash states of a trace, and what the limits left out.
#[derive(Debug, Clone)]
pub struct Exploration<K> {
    /// The states to check.
    pub states: Vec<CrashState<K>>,
    /// How many distinct states were found (kept or not).
    pub distinct: usize,
    /// How many distinct states, none of them reachable in order, were left
    /// out to keep the trace within [`Model::max_states`].
    pub capped: usize,
    /// How many prefixes had a file with more than [`MAX_REORDERED_CHANGES`]
    /// unsynced changes, whose subsets were not all built.
    pub limited: usize,
}

/// Every distinct crash state of every prefix of `ops`, applied to `before`
/// (within `before`'s [`Model::max_states`]).
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
) -> Result<Exploration<K>, Error> {
    let mut model = before.clone();
    let mut index: BTreeMap<(K, Files), usize> = BTreeMap::new();
    let mut all: Vec<CrashState<K>> = Vec::new();
    let mut limited = 0;
    for k in 0..=ops.len() {
        if k > 0 {
            model.apply(&ops[k - 1])?;
        }
        let key = key(k);
        let states = model.crash_states()?;
        limited += usize::from(states.limited);
        for (files, in_order) in states.files {
            match index.get(&(key.clone(), files.clone())) {
                Some(&i) => {
                    all[i].last = k;
                    all[i].in_order |= in_order;
                }
                None => {
                    index.insert((key.clone(), files.clone()), all.len());
                    all.push(CrashState {
                        key: key.clone(),
                        files,
                        first: k,
                        last: k,
                        in_order,
                    });
                }
            }
        }
    }
    let distinct = all.len();
    let max = before.max_states;
    let states = if distinct <= max {
        all
    } else {
        // Keep every state reachable in order, and an even sample of the others.
        let in_order = all.iter().filter(|s| s.in_order).count();
        let reordered = distinct - in_order;
        let room = max.saturating_sub(in_order);
        let mut seen = 0usize;
        all.into_iter()
            .filter(|s| {
                if s.in_order {
                    return true;
                }
                // The i-th reordered state is kept when it starts a new stride.
                let i = seen;
                seen += 1;
                room > 0 && (i * room) / reordered != ((i + 1) * room) / reordered
            })
            .collect()
    };
    let capped = distinct - states.len();
    Ok(Exploration {
        states,
        distinct,
        capped,
        limited,
    })
}

/// One entry of a [`Journal`]: a durable operation, or a mark the explorer made between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<M> {
    /// An operation under the journal's directory.
    Op(RecordedOp),
    /// A mark ([`Journal::mark`]).
    Mark(M),
}

/// An [`Observer`] that keeps the operations on paths under one directory and
/// the explorer's own marks (such as "this caller was answered now", made from
/// whatever thread answered) in one order, under one lock.
#[derive(Debug)]
pub struct Journal<M> {
    root: PathBuf,
    events: Mutex<Vec<Event<M>>>,
}

impl<M> Journal<M> {
    /// Records operations whose paths lie under `root` (compared as given).
    pub fn under(root: impl Into<PathBuf>) -> Journal<M> {
        Journal {
            root: root.into(),
            events: Mutex::new(Vec::new()),
        }
    }

    /// Puts `mark` after every operation recorded so far.
    pub fn mark(&self, mark: M) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Event::Mark(mark));
    }

    /// The events so far, leaving the journal empty.
    pub fn take(&self) -> Vec<Event<M>> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<M: Send> Observer for Journal<M> {
    fn observe(&self, op: &Op<'_>) {
        let recorded = RecordedOp::from(op);
        if recorded.paths().iter().any(|p| p.starts_with(&self.root)) {
            self.events
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Event::Op(recorded));
        }
    }
}

/// The operations of a stream of events, and each mark with how many
/// operations came before it (a crash after the mark leaves a state of a
/// prefix at least that long).
pub fn split<M>(events: impl IntoIterator<Item = Event<M>>) -> (Vec<RecordedOp>, Vec<(usize, M)>) {
    let mut ops = Vec::new();
    let mut marks = Vec::new();
    for event in events {
        match event {
            Event::Op(op) => ops.push(op),
            Event::Mark(mark) => marks.push((ops.len(), mark)),
        }
    }
    (ops, marks)
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
    use std::collections::BTreeSet;

    fn p(s: &str) -> PathBuf {
        PathBuf::from("/r").join(s)
    }

    fn id(ino: u64) -> Option<FileId> {
        Some(FileId { dev: 1, ino })
    }

    fn create(path: &str, ino: u64) -> RecordedOp {
        RecordedOp::Create {
            path: p(path),
            mode: 0o600,
            file: id(ino),
        }
    }

    fn write(path: &str, ino: u64, offset: u64, data: &[u8]) -> RecordedOp {
        RecordedOp::Write {
            path: p(path),
            offset,
            data: data.to_vec(),
            file: id(ino),
        }
    }

    fn fsync(path: &str, ino: u64) -> RecordedOp {
        RecordedOp::Fsync {
            path: p(path),
            file: id(ino),
        }
    }

    fn sync_root() -> RecordedOp {
        RecordedOp::SyncDir {
            path: PathBuf::from("/r"),
        }
    }

    fn model_after(ops: &[RecordedOp]) -> Model {
        let mut model = Model::default();
        for op in ops {
            model.apply(op).unwrap();
        }
        model
    }

    fn set(items: &[&[u8]]) -> BTreeSet<Vec<u8>> {
        items.iter().map(|b| b.to_vec()).collect()
    }

    /// The contents of `path` in every state, with whether it was reached in order.
    fn contents(states: &States, path: &str) -> BTreeMap<Vec<u8>, bool> {
        let mut out = BTreeMap::new();
        for (files, in_order) in &states.files {
            *out.entry(files[&p(path)].clone()).or_insert(false) |= *in_order;
        }
        out
    }

    #[test]
    fn any_subset_of_unsynced_writes_reaches_the_disk_whole_or_torn_and_fsynced_ones_stay() {
        let model = model_after(&[
            create("log", 1),
            sync_root(),
            write("log", 1, 0, b"aaaa"),
            fsync("log", 1),
            write("log", 1, 4, b"bbbb"),
            write("log", 1, 8, b"cc"),
        ]);
        let logs = contents(&model.crash_states().unwrap(), "log");
        let all: BTreeSet<Vec<u8>> = logs.keys().cloned().collect();
        assert_eq!(
            all,
            set(&[
                b"aaaa",
                b"aaaabb",
                b"aaaabbbb",
                b"aaaabbbbc",
                b"aaaabbbbcc",
                // The second write without (all of) the first: a hole of zeros.
                b"aaaa\0\0\0\0c",
                b"aaaa\0\0\0\0cc",
                b"aaaabb\0\0c",
                b"aaaabb\0\0cc",
            ])
        );
        let in_order: BTreeSet<Vec<u8>> = logs
            .iter()
            .filter(|(_, in_order)| **in_order)
            .map(|(b, _)| b.clone())
            .collect();
        assert_eq!(
            in_order,
            set(&[b"aaaa", b"aaaabb", b"aaaabbbb", b"aaaabbbbc", b"aaaabbbbcc"])
        );
        let zeros = contents(
            &model
                .clone()
                .zero_filled_tails(true)
                .crash_states()
                .unwrap(),
            "log",
        );
        assert!(zeros.contains_key(&b"aaaa\0\0\0\0\0\0"[..]));
        assert!(zeros.contains_key(&b"aaaabbbb\0\0"[..]));
        assert!(zeros.contains_key(&b"aaaabb\0\0c\0"[..]));
        // Each of the 6 contents shorter than the file's final size, filled with zeros.
        assert_eq!(zeros.len(), 15);
    }

    #[test]
    fn a_truncation_may_reach_the_disk_before_or_without_the_writes_around_it() {
        let model = model_after(&[
            create("f", 1),
            sync_root(),
            write("f", 1, 0, b"abcdef"),
            fsync("f", 1),
            RecordedOp::Truncate {
                path: p("f"),
                len: 3,
                file: id(1),
            },
            write("f", 1, 3, b"XY"),
        ]);
        let all: BTreeSet<Vec<u8>> = contents(&model.crash_states().unwrap(), "f")
            .into_keys()
            .collect();
        // Truncation lost or kept; the write lost, torn ("X") or kept.
        assert_eq!(
            all,
            set(&[b"abcdef", b"abcXef", b"abcXYf", b"abc", b"abcX", b"abcXY"])
        );
    }

    #[test]
    fn a_file_with_too_many_unsynced_writes_gets_the_in_order_states_and_single_holes() {
        let mut ops = vec![create("log", 1), sync_root()];
        let n = MAX_REORDERED_CHANGES + 1;
        for i in 0..n {
            ops.push(write("log", 1, 2 * i as u64, b"xy"));
        }
        let states = model_after(&ops).crash_states().unwrap();
        assert!(states.limited);
        let logs = contents(&states, "log");
        // In order: 0..=n whole writes, the next one torn or not: 2n + 1.
        assert_eq!(logs.values().filter(|o| **o).count(), 2 * n + 1);
        // One hole: the first write lost, the second kept.
        assert!(logs.contains_key(&b"\0\0xy"[..]));
        // Two holes are not built.
        assert!(!logs.contains_key(&b"\0\0\0\0xy"[..]));
    }

    #[test]
    fn an_fsync_syncs_the_file_it_was_made_on_whatever_its_name_is_now() {
        // A rotation: the live file is renamed while another handle on it is
        // fsynced under its old name, before and after a new live file exists.
        let mut model = model_after(&[
            create("log", 1),
            sync_root(),
            write("log", 1, 0, b"old"),
            RecordedOp::Rename {
                from: p("log"),
                to: p("log.1"),
            },
            sync_root(),
            // No file is named "log" now: the fsync is of inode 1.
            fsync("log", 1),
            create("log", 2),
            sync_root(),
            write("log", 2, 0, b"new"),
        ]);
        let states = model.crash_states().unwrap();
        assert_eq!(contents(&states, "log.1").len(), 1, "log.1 is durable");
        assert_eq!(contents(&states, "log").len(), 3, "log is not");
        // An fsync of inode 1 under the name "log" leaves the new "log" unsynced.
        model.apply(&write("log.1", 1, 3, b"more")).unwrap();
        model.apply(&fsync("log", 1)).unwrap();
        let states = model.crash_states().unwrap();
        assert_eq!(contents(&states, "log.1").len(), 1);
        assert_eq!(contents(&states, "log").len(), 3);
        model.apply(&fsync("log", 2)).unwrap();
        assert_eq!(model.crash_states().unwrap().files.len(), 1);
    }

    #[test]
    fn unsynced_names_are_lost_independently_and_a_directory_fsync_keeps_them() {
        let mut model = model_after(&[create("a", 1), fsync("a", 1), create("b", 2)]);
        let states = model.crash_states().unwrap();
        assert_eq!(states.files.len(), 4, "{states:?}");
        model.apply(&sync_root()).unwrap();
        assert_eq!(model.crash_states().unwrap().files.len(), 1);
        let err = model
            .apply(&write("never-created", 3, 0, b"x"))
            .unwrap_err();
        assert!(err.to_string().contains("create it through lift_core::fs"));
    }

    #[test]
    fn explore_keeps_each_state_once_per_key_with_its_prefixes() {
        let ops = [
            create("f", 1),
            write("f", 1, 0, b"xy"),
            fsync("f", 1),
            sync_root(),
        ];
        let explored = explore(&Model::default(), &ops, |_| ()).unwrap();
        let states = explored.states;
        // Nothing; "f" empty; "f" torn ("x"); "f" whole.
        assert_eq!(states.len(), 4);
        assert_eq!(
            (explored.distinct, explored.capped, explored.limited),
            (4, 0, 0)
        );
        let empty = states.iter().find(|s| s.files.is_empty()).unwrap();
        assert_eq!((empty.first, empty.last), (0, 3));
        let whole = states
            .iter()
            .find(|s| s.files.get(&p("f")).is_some_and(|b| b == b"xy"))
            .unwrap();
        assert_eq!((whole.first, whole.last), (2, 4));
        let by_end = explore(&Model::default(), &ops, |k| k == ops.len()).unwrap();
        assert_eq!(by_end.states.len(), 5, "the final state counts once more");
    }

    #[test]
    fn beyond_the_cap_every_in_order_state_is_kept_and_the_others_sampled() {
        let mut ops = vec![create("log", 1), sync_root()];
        for i in 0..5 {
            ops.push(write("log", 1, 2 * i, b"xy"));
        }
        let full = explore(&Model::default(), &ops, |_| ()).unwrap();
        let in_order = full.states.iter().filter(|s| s.in_order).count();
        assert_eq!(full.capped, 0);
        assert!(full.distinct > in_order + 10, "{}", full.distinct);
        let capped = explore(&Model::default().max_states(in_order + 10), &ops, |_| ()).unwrap();
        assert_eq!(capped.states.len(), in_order + 10);
        assert_eq!(capped.distinct, full.distinct);
        assert_eq!(capped.capped, full.distinct - in_order - 10);
        assert_eq!(
            capped.states.iter().filter(|s| s.in_order).count(),
            in_order
        );
    }

    #[test]
    fn a_journal_keeps_operations_and_marks_in_one_order() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Journal::<&str>::under(dir.path()));
        journal.mark("before");
        journal.observe(&Op::Unlink {
            path: &dir.path().join("f"),
        });
        journal.observe(&Op::Unlink {
            path: Path::new("/elsewhere"),
        });
        journal.mark("after");
        let (ops, marks) = split(journal.take());
        assert_eq!(ops.len(), 1);
        assert_eq!(marks, vec![(0, "before"), (1, "after")]);
        assert!(journal.take().is_empty());
    }
}
