//! Private temporary directories for event logs and state files.

use std::os::unix::fs::PermissionsExt;

use crate::error::{Error, Result};

/// A temporary directory only the current user can read (mode 0700), removed on drop.
pub(crate) fn private_temp_dir() -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("lift-pulumi-")
        .tempdir()
        .map_err(|err| Error::io("cannot create a private temporary directory", err))?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(|err| Error::io("cannot restrict the temporary directory to mode 0700", err))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_temp_dirs_are_0700_and_vanish() {
        let dir = private_temp_dir().unwrap();
        let path = dir.path().to_path_buf();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        drop(dir);
        assert!(!path.exists());
    }
}
