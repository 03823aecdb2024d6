//! Durable files: lift-core's one I/O exception.
//!
//! `lift-core` otherwise holds contracts and does no I/O. This module is the
//! one home of the few file primitives that every lift crate needs and that
//! must behave identically everywhere, because each copy that drifted apart
//! was a bug (a missing directory fsync, a temporary file that followed the
//! umask or had a fixed name, three permission policies for key files):
//!
//! - [`write_atomic`] replaces a file so that a crash leaves the old or the new
//!   content, never a torn one: a temporary file with a unique name, created
//!   with `O_CREAT|O_EXCL|O_NOFOLLOW` and exactly the requested mode whatever
//!   the umask, is written, fsynced, renamed over the target, and the
//!   directory is fsynced. [`write_new`] does the same but never replaces an
//!   existing file (for generated keys).
//! - [`FileLock`] is an `flock` lock, exclusive or shared, on a lock file
//!   opened with `O_NOFOLLOW`, blocking or not.
//! - [`read_key_file`] reads a secret key file under one permission policy:
//!   a regular file (not a symbolic link, FIFO or device), not readable or
//!   writable by group or others, and not larger than a bound.
//! - [`random_bytes`] fills a buffer from the operating system's CSPRNG.
//! - [`append`], [`truncate`], [`sync_data`], [`sync_all`], [`sync_dir`],
//!   [`rename`] and [`remove_file`] are the observed forms of the other
//!   durable operations lift performs on files it owns.
//!
//! Every durable operation of this module is reported, after it succeeded, to
//! the process-wide [`Observer`] if one is installed (none is by default; the
//! check then costs one relaxed atomic load). Crash-consistency tests record
//! the operations in order ([`Recorder`]) and replay prefixes of them to
//! build every state a crash can leave on disk. An operation made through an
//! open file also names the file it touched ([`FileId`]), since its name may
//! have changed since it was opened.
//!
//! ```
//! use lift_core::fs::{FileLock, KeyFileOptions, read_key_file, write_atomic};
//!
//! # fn main() -> Result<(), lift_core::fs::FsError> {
//! # let dir = tempfile::tempdir().map_err(|e| lift_core::fs::FsError::io("create", "tmp", e))?;
//! let key = dir.path().join("app.key");
//! let _lock = FileLock::exclusive(dir.path().join("app.key.lock"))?;
//! write_atomic(&key, b"0123456789abcdef0123456789abcdef", 0o600)?;
//! let bytes = read_key_file(&key, &KeyFileOptions::new())?;
//! assert_eq!(bytes.len(), 32);
//! # Ok(()) }
//! ```

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use nix::fcntl::{Flock, FlockArg, OFlag};
use zeroize::Zeroizing;

use crate::{Classify, ErrorKind};

/// What can go wrong in a durable-file operation.
///
/// Messages name the file and, where there is one, the fix. They never
/// contain file contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// The operating system refused or failed an operation.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done: `create`, `write`, `fsync`, `rename into place`, ...
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A key file is accessible to group or others.
    #[error(
        "{} has mode {mode:04o}, which lets group or others access it; a key file must be private: run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file is not a regular file.
    #[error("{} is {what}, not a regular file; point at the key file itself", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is instead: `a symbolic link`, `a directory`, `a FIFO`, ...
        what: &'static str,
    },
    /// A key file is larger than the caller allows.
    #[error("{} is larger than {max} bytes, too large for a key file; is it the right file?", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The largest size allowed.
        max: usize,
    },
    /// A path has no parent directory or no file name.
    #[error("{} does not name a file in a directory", path.display())]
    InvalidPath {
        /// The path.
        path: PathBuf,
    },
    /// The operating system's random number generator failed.
    #[error("cannot read random bytes from the operating system: {0}")]
    Random(String),
}

impl FsError {
    /// An [`FsError::Io`] for `action` on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FsError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// The operating system's error, for [`FsError::Io`].
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            FsError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Classify for FsError {
    fn kind(&self) -> ErrorKind {
        match self {
            FsError::Io { source, .. } => ErrorKind::from_io(source.kind()),
            FsError::Permissions { .. } => ErrorKind::PermissionDenied,
            FsError::NotRegular { .. } | FsError::TooLarge { .. } | FsError::InvalidPath { .. } => {
                ErrorKind::InvalidInput
            }
            FsError::Random(_) => ErrorKind::Unavailable,
        }
    }
}

impl From<FsError> for crate::Error {
    fn from(err: FsError) -> Self {
        crate::Error::from_classified(err)
    }
}

/// `Result` with [`FsError`].
pub type Result<T, E = FsError> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------
// Observation
// ---------------------------------------------------------------------------

/// Which file an operation on an open file touched: the device and inode
/// numbers of its handle (`fstat`).
///
/// A name can change between opening a file and fsyncing it (a rotation
/// renames a log that another thread still fsyncs through its handle), so a
/// recorder tells files apart by this rather than by the path it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId {
    /// The device holding the file.
    pub dev: u64,
    /// Its inode number on that device.
    pub ino: u64,
}

impl FileId {
    /// The file an open handle refers to.
    pub fn of(file: &File) -> std::io::Result<FileId> {
        file.metadata().map(|meta| FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// The file a name refers to now (not following a symbolic link).
    pub fn of_path(path: &Path) -> std::io::Result<FileId> {
        std::fs::symlink_metadata(path).map(|meta| FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

/// A durable operation, reported to the [`Observer`] after it succeeded.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Op<'a> {
    /// A new, empty file was created (with `O_EXCL`) with this mode.
    Create {
        /// The new file.
        path: &'a Path,
        /// Its permission bits.
        mode: u32,
        /// The file created (`None` if `fstat` failed).
        file: Option<FileId>,
    },
    /// `data` was written at `offset`.
    Write {
        /// The file, by the name its writer gave.
        path: &'a Path,
        /// Where the data starts.
        offset: u64,
        /// The bytes.
        data: &'a [u8],
        /// The file written (`None` if `fstat` failed).
        file: Option<FileId>,
    },
    /// The file was cut (or extended) to `len` bytes.
    Truncate {
        /// The file, by the name its writer gave.
        path: &'a Path,
        /// Its new length.
        len: u64,
        /// The file cut (`None` if `fstat` failed).
        file: Option<FileId>,
    },
    /// The file's data (and, for `fsync`, its metadata) reached the disk.
    Fsync {
        /// The file, by the name its writer gave: it may have been renamed
        /// or removed since it was opened.
        path: &'a Path,
        /// The file fsynced (`None` if `fstat` failed).
        file: Option<FileId>,
    },
    /// `from` was renamed to `to`, replacing it.
    Rename {
        /// The old name.
        from: &'a Path,
        /// The new name.
        to: &'a Path,
    },
    /// `to` was created as a second name (hard link) of `from`.
    Link {
        /// The existing name.
        from: &'a Path,
        /// The new name.
        to: &'a Path,
    },
    /// The directory was fsynced: the names created, renamed or removed in it are durable.
    SyncDir {
        /// The directory.
        path: &'a Path,
    },
    /// The name was removed.
    Unlink {
        /// The removed name.
        path: &'a Path,
    },
}

/// Receives every durable operation of this module, in the order they happen.
///
/// Called on the thread that performed the operation, right after it
/// succeeded; keep it quick. Install one with [`set_observer`].
pub trait Observer: Send + Sync {
    /// One operation.
    fn observe(&self, op: &Op<'_>);
}

static OBSERVING: AtomicBool = AtomicBool::new(false);
static OBSERVER: RwLock<Option<Arc<dyn Observer>>> = RwLock::new(None);

/// Installs `observer` for the whole process (or removes it with `None`),
/// returning the previous one.
///
/// Process-wide, because the operations happen on whatever thread a crate
/// uses (lift-audit's writer and syncer threads, tokio's blocking pool).
/// Tests that run in parallel in one process see each other's operations:
/// filter by path, as [`Recorder::under`] does.
pub fn set_observer(observer: Option<Arc<dyn Observer>>) -> Option<Arc<dyn Observer>> {
    let mut slot = OBSERVER.write().unwrap_or_else(PoisonError::into_inner);
    OBSERVING.store(observer.is_some(), Ordering::Release);
    std::mem::replace(&mut *slot, observer)
}

/// Reports `op` to the installed observer, if any.
#[inline]
fn notify_with(op: &Op<'_>) {
    if observing() {
        notify_slow(op);
    }
}

/// Whether an observer is installed (so that an operation's [`FileId`] is worth an `fstat`).
#[inline]
fn observing() -> bool {
    OBSERVING.load(Ordering::Relaxed)
}

#[cold]
fn notify_slow(op: &Op<'_>) {
    let observer = OBSERVER
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if let Some(observer) = observer {
        observer.observe(op);
    }
}

/// An operation as recorded by a [`Recorder`], owning its paths and data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordedOp {
    /// See [`Op::Create`].
    Create {
        /// The new file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The file created.
        file: Option<FileId>,
    },
    /// See [`Op::Write`].
    Write {
        /// The file, by the name its writer gave.
        path: PathBuf,
        /// Where the data starts.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
        /// The file written.
        file: Option<FileId>,
    },
    /// See [`Op::Truncate`].
    Truncate {
        /// The file, by the name its writer gave.
        path: PathBuf,
        /// Its new length.
        len: u64,
        /// The file cut.
        file: Option<FileId>,
    },
    /// See [`Op::Fsync`].
    Fsync {
        /// The file, by the name its writer gave (perhaps no longer its name).
        path: PathBuf,
        /// The file fsynced.
        file: Option<FileId>,
    },
    /// See [`Op::Rename`].
    Rename {
        /// The old name.
        from: PathBuf,
        /// The new name.
        to: PathBuf,
    },
    /// See [`Op::Link`].
    Link {
        /// The existing name.
        from: PathBuf,
        /// The new name.
        to: PathBuf,
    },
    /// See [`Op::SyncDir`].
    SyncDir {
        /// The directory.
        path: PathBuf,
    },
    /// See [`Op::Unlink`].
    Unlink {
        /// The removed name.
        path: PathBuf,
    },
}

impl RecordedOp {
    /// Every path the operation touches.
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            RecordedOp::Create { path, .. }
            | RecordedOp::Write { path, .. }
            | RecordedOp::Truncate { path, .. }
            | RecordedOp::Fsync { path, .. }
            | RecordedOp::SyncDir { path }
            | RecordedOp::Unlink { path } => vec![path],
            RecordedOp::Rename { from, to } | RecordedOp::Link { from, to } => vec![from, to],
        }
    }
}

impl From<&Op<'_>> for RecordedOp {
    fn from(op: &Op<'_>) -> Self {
        match *op {
            Op::Create { path, mode, file } => RecordedOp::Create {
                path: path.to_owned(),
                mode,
                file,
            },
            Op::Write {
                path,
                offset,
                data,
                file,
            } => RecordedOp::Write {
                path: path.to_owned(),
                offset,
                data: data.to_vec(),
                file,
            },
            Op::Truncate { path, len, file } => RecordedOp::Truncate {
                path: path.to_owned(),
                len,
                file,
            },
            Op::Fsync { path, file } => RecordedOp::Fsync {
                path: path.to_owned(),
                file,
            },
            Op::Rename { from, to } => RecordedOp::Rename {
                from: from.to_owned(),
                to: to.to_owned(),
            },
            Op::Link { from, to } => RecordedOp::Link {
                from: from.to_owned(),
                to: to.to_owned(),
            },
            Op::SyncDir { path } => RecordedOp::SyncDir {
                path: path.to_owned(),
            },
            Op::Unlink { path } => RecordedOp::Unlink {
                path: path.to_owned(),
            },
        }
    }
}

/// An [`Observer`] that keeps, in order, the operations on paths under one directory.
///
/// ```
/// use std::sync::Arc;
/// use lift_core::fs::{RecordedOp, Recorder, set_observer, write_atomic};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let recorder = Arc::new(Recorder::under(dir.path()));
/// set_observer(Some(recorder.clone()));
/// write_atomic(&dir.path().join("f"), b"x", 0o600)?;
/// set_observer(None);
/// let ops = recorder.take();
/// assert!(matches!(ops.last(), Some(RecordedOp::SyncDir { .. })));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Recorder {
    root: PathBuf,
    ops: Mutex<Vec<RecordedOp>>,
}

impl Recorder {
    /// Records operations whose paths lie under `root` (compared as given, not canonicalized).
    pub fn under(root: impl Into<PathBuf>) -> Self {
        Recorder {
            root: root.into(),
            ops: Mutex::new(Vec::new()),
        }
    }

    /// The operations recorded so far, leaving the recorder empty.
    pub fn take(&self) -> Vec<RecordedOp> {
        std::mem::take(&mut *self.ops.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Observer for Recorder {
    fn observe(&self, op: &Op<'_>) {
        let recorded = RecordedOp::from(op);
        if recorded.paths().iter().any(|p| p.starts_with(&self.root)) {
            self.ops
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(recorded);
        }
    }
}

// ---------------------------------------------------------------------------
// Observed primitives
// ---------------------------------------------------------------------------

/// Writes all of `bytes` to `file` (opened by the caller, typically with
/// `O_APPEND`), reporting a write at `offset`, the caller's idea of where the
/// data lands (the file's length for an append).
pub fn append(file: &mut File, path: &Path, offset: u64, bytes: &[u8]) -> Result<()> {
    file.write_all(bytes)
        .map_err(|e| FsError::io("append to", path, e))?;
    if observing() {
        notify_slow(&Op::Write {
            path,
            offset,
            data: bytes,
            file: FileId::of(file).ok(),
        });
    }
    Ok(())
}

/// Cuts (or extends) `file` to `len` bytes.
pub fn truncate(file: &File, path: &Path, len: u64) -> Result<()> {
    file.set_len(len)
        .map_err(|e| FsError::io("truncate", path, e))?;
    if observing() {
        notify_slow(&Op::Truncate {
            path,
            len,
            file: FileId::of(file).ok(),
        });
    }
    Ok(())
}

/// `fdatasync`: the file's data (and the metadata needed to read it, such as its length) reach the disk.
pub fn sync_data(file: &File, path: &Path) -> Result<()> {
    file.sync_data()
        .map_err(|e| FsError::io("fsync", path, e))?;
    if observing() {
        notify_slow(&Op::Fsync {
            path,
            file: FileId::of(file).ok(),
        });
    }
    Ok(())
}

/// `fsync`: the file's data and metadata reach the disk.
pub fn sync_all(file: &File, path: &Path) -> Result<()> {
    file.sync_all().map_err(|e| FsError::io("fsync", path, e))?;
    if observing() {
        notify_slow(&Op::Fsync {
            path,
            file: FileId::of(file).ok(),
        });
    }
    Ok(())
}

/// fsyncs a directory, so that names created, renamed or removed in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    // A relative path's parent may be empty: that is the current directory.
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let handle = File::open(dir).map_err(|e| FsError::io("open directory", dir, e))?;
    handle
        .sync_all()
        .map_err(|e| FsError::io("fsync directory", dir, e))?;
    notify_with(&Op::SyncDir { path: dir });
    Ok(())
}

/// fsyncs the directory holding `path`.
pub fn sync_parent(path: &Path) -> Result<()> {
    sync_dir(parent_of(path)?)
}

/// Renames `from` to `to` (replacing `to`), without fsyncing the directory.
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| FsError::io("rename into place", to, e))?;
    notify_with(&Op::Rename { from, to });
    Ok(())
}

/// Removes the name `path`, without fsyncing the directory. A missing file is an error.
pub fn remove_file(path: &Path) -> Result<()> {
    std::fs::remove_file(path).map_err(|e| FsError::io("remove", path, e))?;
    notify_with(&Op::Unlink { path });
    Ok(())
}

/// Removes `path` and fsyncs its directory. Returns whether it existed.
pub fn remove_durably(path: &Path) -> Result<bool> {
    match remove_file(path) {
        Ok(()) => {}
        Err(FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(false);
        }
        Err(err) => return Err(err),
    }
    sync_parent(path)?;
    Ok(true)
}

fn parent_of(path: &Path) -> Result<&Path> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(_)) => Ok(parent),
        _ => Err(FsError::InvalidPath {
            path: path.to_owned(),
        }),
    }
}

/// Creates `path` as a new file with exactly `mode`, never following a
/// symbolic link and never opening an existing file.
///
/// `O_EXCL` already refuses an existing name, dangling symbolic links
/// included; `O_NOFOLLOW` says so twice. The mode is set with `fchmod` after
/// creation, so the umask does not narrow (or widen) it.
pub fn create_new(path: &Path, mode: u32) -> Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .mode(mode & 0o7777)
        .open(path)
        .map_err(|e| FsError::io("create", path, e))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| FsError::io("set the permissions of", path, e))?;
    if observing() {
        notify_slow(&Op::Create {
            path,
            mode,
            file: FileId::of(&file).ok(),
        });
    }
    Ok(file)
}

/// A unique temporary name beside `path`: `.<name>.tmp.<pid>.<16 random hex digits>`.
fn temp_name(path: &Path) -> Result<PathBuf> {
    let dir = parent_of(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut suffix = [0u8; 8];
    random_bytes(&mut suffix)?;
    let mut hex = String::with_capacity(16);
    for byte in suffix {
        hex.push_str(&format!("{byte:02x}"));
    }
    Ok(dir.join(format!(".{name}.tmp.{}.{hex}", std::process::id())))
}

/// The prefix of the temporary names [`write_atomic`] uses for `path`, for
/// cleaning up after writers that died (only while holding the lock that
/// every writer of `path` holds).
pub fn temp_prefix(path: &Path) -> String {
    format!(
        ".{}.tmp.",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    )
}

/// Creates a fully written, fsynced temporary file beside `path`.
fn write_temp(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf> {
    let tmp = temp_name(path)?;
    let mut file = create_new(&tmp, mode)?;
    let written = append(&mut file, &tmp, 0, bytes).and_then(|()| sync_all(&file, &tmp));
    if let Err(err) = written {
        discard(&tmp);
        return Err(err);
    }
    Ok(tmp)
}

/// Best effort: a leftover temporary file is harmless (never read) but untidy.
fn discard(tmp: &Path) {
    if std::fs::remove_file(tmp).is_ok() {
        notify_with(&Op::Unlink { path: tmp });
    }
}

/// Replaces `path` with `bytes` atomically and durably, with exactly `mode`.
///
/// A unique temporary file in the same directory is created with
/// `O_CREAT|O_EXCL|O_NOFOLLOW` (so a symbolic link planted there is never
/// followed, and concurrent writers never share one), written, fsynced and
/// renamed over `path`; then the directory is fsynced. After a crash, `path`
/// holds the old content or the new, never a mix. If `path` is a symbolic
/// link, the link itself is replaced, not its target.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = write_temp(path, bytes, mode)?;
    if let Err(err) = rename(&tmp, path) {
        discard(&tmp);
        return Err(err);
    }
    sync_parent(path)
}

/// Creates `path` with `bytes` and exactly `mode`, atomically and durably,
/// failing with an `AlreadyExists` I/O error when it exists.
///
/// Readers never see the file partly written: it appears under its name
/// (with a hard link) only once complete and fsynced. Use it for generated
/// keys, where two processes racing must not overwrite each other's key.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = write_temp(path, bytes, mode)?;
    let linked = std::fs::hard_link(&tmp, path).map_err(|e| FsError::io("create", path, e));
    if linked.is_ok() {
        notify_with(&Op::Link {
            from: &tmp,
            to: path,
        });
    }
    discard(&tmp);
    linked?;
    sync_parent(path)
}

// ---------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------

/// Whether a [`FileLock`] excludes everyone or only exclusive holders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Excludes every other holder.
    Exclusive,
    /// Excludes exclusive holders; any number of shared holders coexist.
    Shared,
}

/// An `flock` lock on a lock file, held until dropped.
///
/// The lock file is created (mode 0600) if missing and opened with
/// `O_NOFOLLOW`, so a symbolic link planted at its name is refused. `flock`
/// locks belong to an open file description: two `FileLock`s in one process
/// exclude each other just as two processes do, and a process that dies
/// releases its locks.
pub struct FileLock {
    lock: Flock<File>,
    path: PathBuf,
    mode: LockMode,
}

impl fmt::Debug for FileLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileLock")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish()
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .mode(0o600)
        .open(path)
        .map_err(|e| FsError::io("open lock file", path, e))
}

impl FileLock {
    fn acquire(path: PathBuf, mode: LockMode, wait: bool) -> Result<Option<FileLock>> {
        let arg = match (mode, wait) {
            (LockMode::Exclusive, true) => FlockArg::LockExclusive,
            (LockMode::Exclusive, false) => FlockArg::LockExclusiveNonblock,
            (LockMode::Shared, true) => FlockArg::LockShared,
            (LockMode::Shared, false) => FlockArg::LockSharedNonblock,
        };
        let mut file = open_lock_file(&path)?;
        loop {
            match Flock::lock(file, arg) {
                Ok(lock) => return Ok(Some(FileLock { lock, path, mode })),
                Err((again, nix::errno::Errno::EINTR)) => file = again,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) if !wait => return Ok(None),
                Err((_, errno)) => {
                    return Err(FsError::io("lock", path, std::io::Error::from(errno)));
                }
            }
        }
    }

    /// Waits for the exclusive lock on `path`.
    pub fn exclusive(path: impl Into<PathBuf>) -> Result<FileLock> {
        Self::wait(path.into(), LockMode::Exclusive)
    }

    /// Waits for a shared lock on `path`.
    pub fn shared(path: impl Into<PathBuf>) -> Result<FileLock> {
        Self::wait(path.into(), LockMode::Shared)
    }

    fn wait(path: PathBuf, mode: LockMode) -> Result<FileLock> {
        let display = path.clone();
        Self::acquire(path, mode, true)?.ok_or_else(|| {
            FsError::io(
                "lock",
                display,
                std::io::Error::from(std::io::ErrorKind::WouldBlock),
            )
        })
    }

    /// Takes the exclusive lock on `path` if no one holds a lock on it.
    pub fn try_exclusive(path: impl Into<PathBuf>) -> Result<Option<FileLock>> {
        Self::acquire(path.into(), LockMode::Exclusive, false)
    }

    /// Takes a shared lock on `path` if no one holds the exclusive lock.
    pub fn try_shared(path: impl Into<PathBuf>) -> Result<Option<FileLock>> {
        Self::acquire(path.into(), LockMode::Shared, false)
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this lock is exclusive or shared.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// The open lock file.
    pub fn file(&self) -> &File {
        &self.lock
    }
}

/// A lock file kept open and locked and unlocked many times: each
/// [`LockFile::lock`] and [`LockFile::unlock`] is one `flock` call, where a
/// [`FileLock`] also opens and closes the file. For a writer that takes the
/// same lock for every batch it appends.
///
/// Dropping it releases the lock if held. Like [`FileLock`], the file is
/// opened with `O_NOFOLLOW` and created with mode 0600 when missing.
pub struct LockFile {
    path: PathBuf,
    state: LockState,
}

enum LockState {
    Open(File),
    Locked(Flock<File>),
    /// The file was lost after a failed unlock (closing it released the lock); reopened on demand.
    Closed,
}

impl fmt::Debug for LockFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFile")
            .field("path", &self.path)
            .field("locked", &self.is_locked())
            .finish()
    }
}

impl LockFile {
    /// Opens (creating if needed) the lock file at `path`, unlocked.
    pub fn open(path: impl Into<PathBuf>) -> Result<LockFile> {
        let path = path.into();
        let file = open_lock_file(&path)?;
        Ok(LockFile {
            path,
            state: LockState::Open(file),
        })
    }

    /// Waits for the lock in `mode`. Locking a held lock again is a no-op.
    pub fn lock(&mut self, mode: LockMode) -> Result<()> {
        let arg = match mode {
            LockMode::Exclusive => FlockArg::LockExclusive,
            LockMode::Shared => FlockArg::LockShared,
        };
        let mut file = match std::mem::replace(&mut self.state, LockState::Closed) {
            LockState::Open(file) => file,
            LockState::Closed => open_lock_file(&self.path)?,
            held @ LockState::Locked(_) => {
                self.state = held;
                return Ok(());
            }
        };
        loop {
            match Flock::lock(file, arg) {
                Ok(lock) => {
                    self.state = LockState::Locked(lock);
                    return Ok(());
                }
                Err((again, nix::errno::Errno::EINTR)) => file = again,
                Err((again, errno)) => {
                    self.state = LockState::Open(again);
                    return Err(FsError::io(
                        "lock",
                        self.path.clone(),
                        std::io::Error::from(errno),
                    ));
                }
            }
        }
    }

    /// Releases the lock, if held.
    pub fn unlock(&mut self) -> Result<()> {
        match std::mem::replace(&mut self.state, LockState::Closed) {
            LockState::Locked(lock) => match lock.unlock() {
                Ok(file) => {
                    self.state = LockState::Open(file);
                    Ok(())
                }
                Err((lock, errno)) => {
                    // Closing the file releases the lock for certain.
                    drop(lock);
                    Err(FsError::io(
                        "unlock",
                        self.path.clone(),
                        std::io::Error::from(errno),
                    ))
                }
            },
            other => {
                self.state = other;
                Ok(())
            }
        }
    }

    /// Whether this handle holds the lock.
    pub fn is_locked(&self) -> bool {
        matches!(self.state, LockState::Locked(_))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

// ---------------------------------------------------------------------------
// Key files and randomness
// ---------------------------------------------------------------------------

/// How [`read_key_file`] reads a key file. The permission policy is not an option.
#[derive(Debug, Clone)]
pub struct KeyFileOptions {
    max_len: usize,
    trim_newline: bool,
}

impl Default for KeyFileOptions {
    fn default() -> Self {
        KeyFileOptions::new()
    }
}

impl KeyFileOptions {
    /// At most 4,096 bytes; one trailing `\n` or `\r\n` is removed.
    pub fn new() -> Self {
        KeyFileOptions {
            max_len: 4096,
            trim_newline: true,
        }
    }

    /// The largest file accepted, in bytes.
    #[must_use]
    pub fn max_len(mut self, bytes: usize) -> Self {
        self.max_len = bytes;
        self
    }

    /// Whether one trailing `\n` or `\r\n` (as editors write) is removed.
    #[must_use]
    pub fn trim_newline(mut self, trim: bool) -> Self {
        self.trim_newline = trim;
        self
    }
}

fn file_type_name(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let ty = meta.file_type();
    if ty.is_dir() {
        "a directory"
    } else if ty.is_symlink() {
        "a symbolic link"
    } else if ty.is_fifo() {
        "a FIFO"
    } else if ty.is_socket() {
        "a socket"
    } else if ty.is_block_device() || ty.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Checks the one permission policy of key files against `meta`.
fn check_key_metadata(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if !meta.is_file() {
        return Err(FsError::NotRegular {
            path: path.to_owned(),
            what: file_type_name(meta),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(FsError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Reads a secret key file under lift's one permission policy.
///
/// Refused: a symbolic link (opened with `O_NOFOLLOW`), anything but a
/// regular file (checked on the open file, so it cannot be swapped in
/// between), a file that group or others may access (`chmod 600` fixes it),
/// and a file larger than [`KeyFileOptions::max_len`]. The bytes are read
/// into one buffer that never reallocates and is zeroed when dropped.
pub fn read_key_file(path: &Path, options: &KeyFileOptions) -> Result<Zeroizing<Vec<u8>>> {
    let file = OpenOptions::new()
        .read(true)
        // O_NONBLOCK: opening a FIFO must not hang; the type check refuses it next.
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) {
                FsError::NotRegular {
                    path: path.to_owned(),
                    what: "a symbolic link",
                }
            } else {
                FsError::io("read key file", path, e)
            }
        })?;
    let meta = file
        .metadata()
        .map_err(|e| FsError::io("inspect key file", path, e))?;
    check_key_metadata(path, &meta)?;
    let cap = options.max_len.saturating_add(1);
    let mut bytes = Zeroizing::new(Vec::with_capacity(cap));
    (&file)
        .take(cap as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| FsError::io("read key file", path, e))?;
    if bytes.len() > options.max_len {
        return Err(FsError::TooLarge {
            path: path.to_owned(),
            max: options.max_len,
        });
    }
    if options.trim_newline && bytes.ends_with(b"\n") {
        let mut len = bytes.len() - 1;
        if bytes[..len].ends_with(b"\r") {
            len -= 1;
        }
        // Zero the cut bytes too; truncate alone would leave them in the buffer.
        bytes[len..].iter_mut().for_each(|b| *b = 0);
        bytes.truncate(len);
    }
    Ok(bytes)
}

/// Fills `buf` from the operating system's CSPRNG (`getrandom(2)` on Linux).
pub fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| FsError::Random(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn write_atomic_replaces_durably_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o640).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(mode_of(&path), 0o640);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f"]);
        let err = write_atomic(Path::new("/"), b"x", 0o600).unwrap_err();
        assert!(matches!(err, FsError::InvalidPath { .. }), "{err}");
    }

    #[test]
    fn the_mode_is_exact_whatever_the_umask() {
        use nix::sys::stat::{Mode, umask};
        let dir = tempfile::tempdir().unwrap();
        // The umask is process-wide; this is the only test in lift-core that
        // changes it, and it restores it.
        let old = umask(Mode::from_bits_truncate(0o077));
        let under_077 = dir.path().join("a");
        write_atomic(&under_077, b"x", 0o644).unwrap();
        umask(Mode::from_bits_truncate(0o022));
        let under_022 = dir.path().join("b");
        write_atomic(&under_022, b"x", 0o600).unwrap();
        let new = dir.path().join("c");
        write_new(&new, b"x", 0o660).unwrap();
        umask(old);
        assert_eq!(mode_of(&under_077), 0o644);
        assert_eq!(mode_of(&under_022), 0o600);
        assert_eq!(mode_of(&new), 0o660);
    }

    #[test]
    fn a_symlink_at_a_temporary_name_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let planted = dir.path().join(".f.tmp.1.0000000000000000");
        symlink(&victim, &planted).unwrap();
        let err = create_new(&planted, 0o600).unwrap_err();
        assert_eq!(
            err.io_error().map(std::io::Error::kind),
            Some(std::io::ErrorKind::AlreadyExists)
        );
        // A dangling link is not followed into creating its target either.
        let dangling = dir.path().join(".f.tmp.2.0000000000000000");
        let target = dir.path().join("created-through-link");
        symlink(&target, &dangling).unwrap();
        assert!(create_new(&dangling, 0o600).is_err());
        assert!(!target.exists());
        // And the old fixed temporary names mean nothing to write_atomic.
        symlink(&victim, dir.path().join("f.tmp")).unwrap();
        symlink(&victim, dir.path().join(".f.tmp")).unwrap();
        write_atomic(&dir.path().join("f"), b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // A link at the target itself is replaced, not written through.
        let link = dir.path().join("g");
        symlink(&victim, &link).unwrap();
        write_atomic(&link, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }

    #[test]
    fn concurrent_writers_never_leave_a_torn_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("shared"));
        write_atomic(&path, &[0u8; 64 * 1024], 0o600).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (1..=4u8)
            .map(|id| {
                let path = Arc::clone(&path);
                std::thread::spawn(move || {
                    // Different lengths too, so a mix of two writers shows.
                    let content = vec![id; 64 * 1024 + usize::from(id) * 4096];
                    for _ in 0..25 {
                        write_atomic(&path, &content, 0o600).unwrap();
                    }
                })
            })
            .collect();
        let reader = {
            let path = Arc::clone(&path);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    let bytes = std::fs::read(&*path).unwrap();
                    let first = bytes[0];
                    assert!(bytes.iter().all(|&b| b == first), "a torn file");
                    assert_eq!(bytes.len(), 64 * 1024 + usize::from(first) * 4096);
                    reads += 1;
                }
                reads
            })
        };
        for writer in writers {
            writer.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn write_new_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_new(&path, b"first", 0o600).unwrap();
        let err = write_new(&path, b"second", 0o600).unwrap_err();
        assert_eq!(
            err.io_error().map(std::io::Error::kind),
            Some(std::io::ErrorKind::AlreadyExists)
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn locks_exclude_and_share() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.lock");
        let held = FileLock::exclusive(&path).unwrap();
        assert_eq!(held.mode(), LockMode::Exclusive);
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        assert!(FileLock::try_shared(&path).unwrap().is_none());
        drop(held);
        let a = FileLock::shared(&path).unwrap();
        let b = FileLock::try_shared(&path).unwrap();
        assert!(b.is_some());
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        drop((a, b));
        assert!(FileLock::try_exclusive(&path).unwrap().is_some());
        assert_eq!(mode_of(&path), 0o600);
        // A blocked locker gets the lock when the holder lets go.
        let held = FileLock::exclusive(&path).unwrap();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || FileLock::exclusive(path).map(|l| l.mode()))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished());
        drop(held);
        assert_eq!(waiter.join().unwrap().unwrap(), LockMode::Exclusive);
        // A symlink at the lock file's name is refused.
        let link = dir.path().join("link.lock");
        symlink(dir.path().join("elsewhere"), &link).unwrap();
        assert!(FileLock::exclusive(&link).is_err());
        assert!(!dir.path().join("elsewhere").exists());
    }

    #[test]
    fn a_kept_lock_file_locks_and_unlocks_many_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.lock");
        let mut lock = LockFile::open(&path).unwrap();
        for _ in 0..3 {
            lock.lock(LockMode::Exclusive).unwrap();
            assert!(lock.is_locked());
            lock.lock(LockMode::Exclusive).unwrap();
            assert!(FileLock::try_exclusive(&path).unwrap().is_none());
            lock.unlock().unwrap();
            assert!(!lock.is_locked());
            assert!(FileLock::try_exclusive(&path).unwrap().is_some());
        }
        lock.lock(LockMode::Shared).unwrap();
        assert!(FileLock::try_shared(&path).unwrap().is_some());
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        drop(lock);
        assert!(FileLock::try_exclusive(&path).unwrap().is_some());
        let link = dir.path().join("link.lock");
        symlink(&path, &link).unwrap();
        assert!(LockFile::open(&link).is_err());
    }

    #[test]
    fn key_files_have_one_permission_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_atomic(&path, b"0123456789abcdef0123456789abcdef\r\n", 0o600).unwrap();
        let key = read_key_file(&path, &KeyFileOptions::new()).unwrap();
        assert_eq!(&key[..], b"0123456789abcdef0123456789abcdef");
        let raw = read_key_file(&path, &KeyFileOptions::new().trim_newline(false)).unwrap();
        assert_eq!(raw.len(), 34);

        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = read_key_file(&path, &KeyFileOptions::new()).unwrap_err();
            assert!(matches!(err, FsError::Permissions { .. }), "{err}");
            let message = err.to_string();
            assert!(message.contains("chmod 600"), "{message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(read_key_file(&path, &KeyFileOptions::new()).is_ok());

        let link = dir.path().join("link");
        symlink(&path, &link).unwrap();
        let err = read_key_file(&link, &KeyFileOptions::new()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");

        let err = read_key_file(dir.path(), &KeyFileOptions::new()).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");

        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = read_key_file(&fifo, &KeyFileOptions::new()).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");

        let big = dir.path().join("big");
        write_atomic(&big, &[b'a'; 5000], 0o600).unwrap();
        let err = read_key_file(&big, &KeyFileOptions::new()).unwrap_err();
        assert!(matches!(err, FsError::TooLarge { max: 4096, .. }), "{err}");
        assert!(read_key_file(&big, &KeyFileOptions::new().max_len(5000)).is_ok());

        let err = read_key_file(&dir.path().join("missing"), &KeyFileOptions::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn random_bytes_are_random() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        random_bytes(&mut a).unwrap();
        random_bytes(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }

    #[test]
    fn the_observer_sees_every_durable_operation_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Arc::new(Recorder::under(dir.path()));
        let previous = set_observer(Some(recorder.clone()));
        let path = dir.path().join("f");
        write_atomic(&path, b"abc", 0o600).unwrap();
        let log = dir.path().join("log");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        append(&mut file, &log, 0, b"line\n").unwrap();
        sync_data(&file, &log).unwrap();
        truncate(&file, &log, 2).unwrap();
        remove_durably(&path).unwrap();
        set_observer(previous);
        let ops = recorder.take();
        let tmp = match &ops[0] {
            RecordedOp::Create {
                path, mode: 0o600, ..
            } => path.clone(),
            other => panic!("expected a create, got {other:?}"),
        };
        assert!(
            tmp.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&temp_prefix(&path))
        );
        // Each file is named by its inode: the temporary's (renamed to `path`,
        // which still exists when `log` is opened) and `log`'s differ.
        let tmp_id = match &ops[0] {
            RecordedOp::Create { file, .. } => file.unwrap(),
            _ => unreachable!(),
        };
        let log_id = Some(FileId::of(&file).unwrap());
        assert_ne!(Some(tmp_id), log_id);
        let tmp_id = Some(tmp_id);
        let expected = vec![
            RecordedOp::Create {
                path: tmp.clone(),
                mode: 0o600,
                file: tmp_id,
            },
            RecordedOp::Write {
                path: tmp.clone(),
                offset: 0,
                data: b"abc".to_vec(),
                file: tmp_id,
            },
            RecordedOp::Fsync {
                path: tmp.clone(),
                file: tmp_id,
            },
            RecordedOp::Rename {
                from: tmp,
                to: path.clone(),
            },
            RecordedOp::SyncDir {
                path: dir.path().to_owned(),
            },
            RecordedOp::Write {
                path: log.clone(),
                offset: 0,
                data: b"line\n".to_vec(),
                file: log_id,
            },
            RecordedOp::Fsync {
                path: log.clone(),
                file: log_id,
            },
            RecordedOp::Truncate {
                path: log,
                len: 2,
                file: log_id,
            },
            RecordedOp::Unlink { path },
            RecordedOp::SyncDir {
                path: dir.path().to_owned(),
            },
        ];
        assert_eq!(ops, expected);
    }
}
