//! The files that sit beside a log: its signing key and its lock.

use std::path::{Path, PathBuf};

use crate::checkpoint::append_suffix;

/// The default checkpoint signing key file of `log`: `<log>.signing-key`.
pub fn default_signing_key_path(log: &Path) -> PathBuf {
    append_suffix(log, ".signing-key")
}

/// The path of the lock file every writer of `log` holds while it appends: `<log>.lock`.
pub fn lock_path(log: &Path) -> PathBuf {
    append_suffix(log, ".lock")
}
