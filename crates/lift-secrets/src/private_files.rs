//! The store's private files: owner-only permissions, directory checks, and the
//! durable operations, all of which go through [`lift_core::fs`] (so that crash
//! tests can record them): atomic replacement (a unique temporary file, fsync,
//! rename, directory fsync), durable removal, and `flock` locks.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use lift_core::fs as core_fs;
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

/// Fails when `path` belongs to another user than this process's effective
/// one, or is accessible to group or others.
pub(crate) fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let user = nix::unistd::geteuid().as_raw();
    if meta.uid() != user {
        return Err(Error::Owner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            user,
        });
    }
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
    core_fs::sync_dir(dir)?;
    DIR_SYNCS.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Whether `file_name` is one of [`core_fs::write_atomic`]'s temporary files for `path`:
/// its exact prefix, then `<pid>.<16 hex digits>` and nothing else.
///
/// The exact shape matters: a secret may be named `.x.secret.tmp.1` (its file is
/// `.x.secret.tmp.1.secret`), and its files must never be taken for leftovers of `x`.
fn is_temporary_of(path: &Path, file_name: &str) -> bool {
    let Some(rest) = file_name.strip_prefix(&core_fs::temp_prefix(path)) else {
        return false;
    };
    let Some((pid, random)) = rest.split_once('.') else {
        return false;
    };
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && random.len() == 16
        && random.bytes().all(|b| b.is_ascii_hexdigit())
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
            Ok(meta) => {
                // Only the root may be a link (the user chose it): follow it once.
                let meta = if meta.file_type().is_symlink() {
                    std::fs::metadata(path).map_err(|e| Error::io("inspect", path, e))?
                } else {
                    meta
                };
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
    core_fs::write_atomic(path, bytes, FILE_MODE)?;
    // One fsync of the temporary file, one of the directory.
    FILE_SYNCS.fetch_add(1, Ordering::Relaxed);
    DIR_SYNCS.fetch_add(1, Ordering::Relaxed);
    Ok(())
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
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && is_temporary_of(path, &entry.file_name().to_string_lossy()) {
            let _ = core_fs::remove_file(&entry.path());
        }
    }
}

/// Removes `path` durably; a missing file is not an error.
pub(crate) fn remove_durably(path: &Path) -> Result<()> {
    if core_fs::remove_durably(path)? {
        DIR_SYNCS.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
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
pub(crate) type FileLock = core_fs::FileLock;

/// Waits for the exclusive lock on `path`.
///
/// The lock counts only while `path` still names the locked file: a force delete
/// removes a secret's lock file while holding it, and a writer that was waiting on
/// the removed file then locks the new one instead.
pub(crate) fn lock_exclusive(path: &Path) -> Result<FileLock> {
    loop {
        let lock = core_fs::FileLock::exclusive(path)?;
        if still_named(&lock, path)? {
            return Ok(lock);
        }
    }
}

/// Takes the exclusive lock on `path` if no one holds it (see [`lock_exclusive`]).
pub(crate) fn try_lock_exclusive(path: &Path) -> Result<Option<FileLock>> {
    loop {
        match core_fs::FileLock::try_exclusive(path)? {
            Some(lock) if still_named(&lock, path)? => return Ok(Some(lock)),
            Some(_) => {}
            None => return Ok(None),
        }
    }
}

/// Whether `path` names the file `lock` holds.
fn still_named(lock: &FileLock, path: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = lock
        .file()
        .metadata()
        .map_err(|e| Error::io("inspect", path, e))?;
    match std::fs::symlink_metadata(path) {
        Ok(named) => Ok(named.dev() == held.dev() && named.ino() == held.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("inspect", path, e)),
    }
}

/// Removes a lock file while holding its lock (see [`lock_exclusive`]); a missing file is fine.
pub(crate) fn remove_lock_file(path: &Path) -> Result<()> {
    match core_fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e)
            if e.io_error()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
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
        std::fs::write(nested.join(".x.secret.tmp.1.00112233aabbccdd"), b"torn").unwrap();
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
    #[allow(clippy::print_stderr)] // the test says why it skips
    fn files_and_directories_of_another_user_are_refused() {
        // Only root can give a file away; elsewhere this test has nothing to set up.
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: giving a file to another user needs root");
            return;
        }
        let nobody = nix::unistd::Uid::from_raw(65_534);
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(DIR_MODE)).unwrap();
        let file = dir.path().join("f");
        write_atomic(&file, b"x").unwrap();
        nix::unistd::chown(&file, Some(nobody), None).unwrap();
        let err = read_private(&file).unwrap_err();
        assert!(matches!(err, Error::Owner { owner: 65_534, .. }), "{err}");
        assert!(err.to_string().contains("chown 0"), "{err}");
        let theirs = dir.path().join("theirs");
        ensure_dir(dir.path(), &theirs).unwrap();
        nix::unistd::chown(&theirs, Some(nobody), None).unwrap();
        let err = check_dir_chain(dir.path(), &theirs).unwrap_err();
        assert!(matches!(err, Error::Owner { .. }), "{err}");
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
