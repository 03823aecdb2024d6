//! Private files and directories: everything the demo writes is readable by
//! its owner only, since it holds keys and a password.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use lift::{Error, ErrorKind};

/// Creates `dir` and its missing parents with mode 0700.
pub(super) fn create_private_dir(dir: &Path) -> lift::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|err| io_error(&format!("cannot create {}", dir.display()), &err))
}

/// Writes a file readable by its owner only, atomically (temporary file, fsync, rename).
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> lift::Result<()> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|err| io_error(&format!("cannot write {}", path.display()), &err))
}

/// `n` bytes from the operating system's CSPRNG, zeroed when dropped.
pub(super) fn random_bytes(n: usize) -> lift::Result<zeroize::Zeroizing<Vec<u8>>> {
    let mut bytes = zeroize::Zeroizing::new(vec![0u8; n]);
    lift::fs::random_bytes(&mut bytes)?;
    Ok(bytes)
}

/// An error for a failed I/O operation, classified by its kind.
pub(super) fn io_error(what: &str, err: &std::io::Error) -> Error {
    Error::new(ErrorKind::from_io(err.kind()), format!("{what}: {err}"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn files_and_directories_are_private() -> lift::Result<()> {
        let tmp = tempfile::tempdir().map_err(|e| io_error("tempdir", &e))?;
        let dir = tmp.path().join("a/b");
        create_private_dir(&dir)?;
        let file = dir.join("key");
        write_private(&file, b"one")?;
        write_private(&file, b"two")?;
        let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode(&dir).ok(), Some(0o700));
        assert_eq!(mode(&file).ok(), Some(0o600));
        assert_eq!(std::fs::read(&file).ok().as_deref(), Some(&b"two"[..]));
        assert!(!file.with_extension("tmp").exists(), "no temporary is left");
        Ok(())
    }

    #[test]
    fn random_bytes_differ() -> lift::Result<()> {
        let a = random_bytes(32)?;
        let b = random_bytes(32)?;
        assert_eq!(a.len(), 32);
        assert_ne!(*a, *b);
        Ok(())
    }
}
