//! Durable, private files: atomic replacement, owner-only permissions and cross-process locks.
//!
//! Every write goes to a temporary file in the same directory, is fsynced,
//! renamed over the target, and the directory is fsynced, so a crash leaves
//! either the old file or the new one, never a torn one.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// The mode of store directories.
pub(crate) const DIR_MODE: u32 = 0o700;
/// The mode of store files.
pub(crate) const FILE_MODE: u32 = 0o600;

static FILE_SYNCS: AtomicU64 = AtomicU64::new(0);
static DIR_SYNCS: AtomicU64 = AtomicU64::new(0);

/// How many fsyncs this process's stores have issued, for benchmarks that relate
/// an operation's time to the time its fsyncs take alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncCounters {
    /// fsyncs of regular files.
    pub file_syncs: u64,
    /// fsyncs of directories.
    pub dir_syncs: u64,
}

/// The fsyncs issued so far by this process's file stores.
pub fn sync_counters() -> SyncCounters {
    SyncCounters {
        file_syncs: FILE_SYNCS.load(Ordering::Relaxed),
        dir_syncs: DIR_SYNCS.load(Ordering::Relaxed),
    }
}

/// Fails when `path` is accessible to group or others.
pub(crate) fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        let fix = if meta.is_dir() { DIR_MODE } else { FILE_MODE };
        return Err(Error::Permissions {
            path: path.to_path_buf(),
            mode,
            fix,
        });
    }
    Ok(())
}

/// Creates `dir` and its missing parents below `root` with mode 0700, fsyncing each new entry's parent.
/// Existing directories must already be private.
pub(crate) fn ensure_dir(root: &Path, dir: &Path) -> Result<()> {
    let mut missing: Vec<PathBuf> = Vec::new();
    let mut cursor = dir.to_path_buf();
    loop {
        match std::fs::metadata(&cursor) {
            Ok(meta) if meta.is_dir() => {
                check_private(&cursor, &meta)?;
                break;
            }
            Ok(_) => {
                return Err(Error::InvalidInput(format!(
                    "{} is in the way of the secret store: it should be a directory",
                    cursor.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing.push(cursor.clone());
                if cursor == root {
                    break;
                }
                match cursor.parent() {
                    Some(parent) => cursor = parent.to_path_buf(),
                    None => break,
                }
            }
            Err(e) => return Err(Error::io("inspect", cursor, e)),
        }
    }
    for new_dir in missing.iter().rev() {
        match std::fs::DirBuilder::new().mode(DIR_MODE).create(new_dir) {
            Ok(()) => {}
            // Another process created it between our check and now; its mode is checked below.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create directory", new_dir, e)),
        }
        let meta = std::fs::metadata(new_dir).map_err(|e| Error::io("inspect", new_dir, e))?;
        check_private(new_dir, &meta)?;
        match new_dir.parent() {
            // A relative path's parent may be empty: that is the current directory.
            Some(parent) if parent.as_os_str().is_empty() => sync_dir(Path::new("."))?,
            Some(parent) => sync_dir(parent)?,
            None => {}
        }
    }
    Ok(())
}

/// fsyncs a directory so that a rename or create inside it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let handle = File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    handle
        .sync_all()
        .map_err(|e| Error::io("fsync directory", dir, e))?;
    DIR_SYNCS.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The start of the name of every temporary file that replaces `path`.
///
/// It holds a `~`, which no secret name may contain, so a temporary file can never
/// be mistaken for a secret, a lock or another file's temporary, and the clean-up of
/// one file's leftovers never touches anything else.
fn temporary_prefix(path: &Path) -> String {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{file_name}~tmp.")
}

/// Checks that every directory from `root` down to `dir` is a private directory,
/// not a symbolic link, so that a directory opened up inside the store is refused
/// however deep it sits. Missing directories are not an error: there is nothing in them.
pub(crate) fn check_dir_chain(root: &Path, dir: &Path) -> Result<()> {
    let Ok(relative) = dir.strip_prefix(root) else {
        return Ok(());
    };
    let mut cursor = root.to_path_buf();
    let check = |path: &Path| -> Result<bool> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() && path != root => {
                Err(Error::InvalidInput(format!(
                    "{} is a symbolic link inside the secret store; the store refuses links, replace it with a directory",
                    path.display()
                )))
            }
            Ok(_) => {
                let meta = std::fs::metadata(path).map_err(|e| Error::io("inspect", path, e))?;
                if !meta.is_dir() {
                    return Err(Error::InvalidInput(format!(
                        "{} is in the way of the secret store: it should be a directory",
                        path.display()
                    )));
                }
                check_private(path, &meta)?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("inspect", path, e)),
        }
    };
    if !check(&cursor)? {
        return Ok(());
    }
    for component in relative.components() {
        cursor.push(component);
        if !check(&cursor)? {
            return Ok(());
        }
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically and durably, with mode 0600.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().ok_or_else(|| {
        Error::InvalidInput(format!("{} has no parent directory", path.display()))
    })?;
    let mut suffix = [0u8; 8];
    rand::fill(&mut suffix[..]);
    let tmp = dir.join(format!(
        "{}{}.{}",
        temporary_prefix(path),
        std::process::id(),
        hex::encode(suffix)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        file.write_all(bytes)
            .map_err(|e| Error::io("write", &tmp, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
        FILE_SYNCS.fetch_add(1, Ordering::Relaxed);
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into place", path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        // Best effort: a leftover temporary file is harmless (it is never read) but untidy.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes temporary files that a writer of `path` left behind when it died mid-write.
///
/// Call it only while holding the lock that every writer of `path` takes: then no
/// live writer can own one of these files. Failures are ignored, because leftovers
/// are never read and only cost disk space.
pub(crate) fn remove_stale_temporaries(path: &Path) {
    let Some(dir) = path.parent() else {
        return;
    };
    let prefix = temporary_prefix(path);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes `path` durably; a missing file is not an error.
pub(crate) fn remove_durably(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("remove", path, e)),
    }
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Reads a private file, or `None` when it does not exist.
pub(crate) fn read_private(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io("inspect", path, e))?;
    if !meta.is_file() {
        return Err(Error::integrity(path, "it is not a regular file"));
    }
    check_private(path, &meta)?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0)));
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(Some(bytes))
}

/// An exclusive lock on a lock file, held until dropped.
///
/// `flock` locks belong to an open file description, so two handles in the
/// same process exclude each other just as two processes do.
#[derive(Debug)]
pub(crate) struct FileLock {
    _lock: Flock<File>,
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| Error::io("open lock file", path, e))
}

/// Waits for the exclusive lock on `path`.
pub(crate) fn lock_exclusive(path: &Path) -> Result<FileLock> {
    let mut file = open_lock_file(path)?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(lock) => return Ok(FileLock { _lock: lock }),
            Err((again, nix::errno::Errno::EINTR)) => file = again,
            Err((_, errno)) => {
                return Err(Error::io("lock", path, std::io::Error::from(errno)));
            }
        }
    }
}

/// Takes the exclusive lock on `path` if no one holds it.
pub(crate) fn try_lock_exclusive(path: &Path) -> Result<Option<FileLock>> {
    let file = open_lock_file(path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(FileLock { _lock: lock })),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(Error::io("lock", path, std::io::Error::from(errno))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_are_private_and_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let nested = root.join("a/b");
        ensure_dir(&root, &nested).unwrap();
        for d in [&root, &root.join("a"), &nested] {
            assert_eq!(
                std::fs::metadata(d).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        let file = nested.join("x.secret");
        let before = sync_counters();
        write_atomic(&file, b"one").unwrap();
        write_atomic(&file, b"two").unwrap();
        let after = sync_counters();
        assert!(after.file_syncs >= before.file_syncs + 2);
        assert!(after.dir_syncs >= before.dir_syncs + 2);
        assert_eq!(&read_private(&file).unwrap().unwrap()[..], b"two");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = std::fs::read_dir(&nested)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(read_private(&nested.join("missing")).unwrap().is_none());
        // A temporary file left by a writer that died is removed by the next writer.
        std::fs::write(nested.join("x.secret~tmp.1.00"), b"torn").unwrap();
        // A secret whose name starts like an old-style temporary file is not one.
        std::fs::write(nested.join(".x.secret.tmp.1.secret"), b"other").unwrap();
        remove_stale_temporaries(&file);
        let names: Vec<_> = std::fs::read_dir(&nested)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let mut names: Vec<_> = names
            .into_iter()
            .map(|n| n.into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [".x.secret.tmp.1.secret", "x.secret"]);
    }

    #[test]
    fn wide_permissions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_private(&file).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        let open_dir = dir.path().join("open");
        std::fs::create_dir(&open_dir).unwrap();
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_dir(dir.path(), &open_dir).unwrap_err();
        assert!(err.to_string().contains("chmod 700"), "{err}");
    }

    #[test]
    fn locks_exclude_each_other_within_a_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.lock");
        let held = lock_exclusive(&path).unwrap();
        assert!(try_lock_exclusive(&path).unwrap().is_none());
        drop(held);
        assert!(try_lock_exclusive(&path).unwrap().is_some());
    }
}
