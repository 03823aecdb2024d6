//! The names of a file store's files: the suffix of each kind of file under the
//! store root, and the rule that keeps one secret's files from colliding with
//! another's. [`crate::FileSecretsProvider`] and [`crate::FileRotationStore`]
//! both name their files from here.

use lift_core::SecretName;

use crate::{Error, Result};

/// The suffix of secret files.
pub(crate) const SECRET_SUFFIX: &str = ".secret";
/// The suffix of the lock file beside each secret file.
pub(crate) const LOCK_SUFFIX: &str = ".lock";
/// The suffix of a secret's rotation state file.
pub(crate) const STATE_SUFFIX: &str = ".rotation";
/// The suffix of a secret's rotation lock file.
pub(crate) const STATE_LOCK_SUFFIX: &str = ".rlock";
/// Suffixes of the files the stores keep: a directory named like one of them would
/// collide with the file of a shorter name (`a.lock/b` against the lock of `a`).
const RESERVED_SUFFIXES: [&str; 4] = [SECRET_SUFFIX, LOCK_SUFFIX, STATE_SUFFIX, STATE_LOCK_SUFFIX];

/// Refuses a name one of whose directories would be named like another secret's file
/// (`a.lock/b` against the lock file of `a`, `c.secret/d` against the file of `c`).
pub(crate) fn check_layout(name: &SecretName) -> Result<()> {
    let components: Vec<&str> = name.as_str().split('/').collect();
    if let Some((_, directories)) = components.split_last() {
        for dir in directories {
            if let Some(suffix) = RESERVED_SUFFIXES.iter().find(|s| dir.ends_with(*s)) {
                return Err(Error::InvalidInput(format!(
                    "secret name {name} cannot be stored in a file store: its component {dir:?} ends in {suffix:?}, which would collide with the files of another secret; rename it"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> SecretName {
        s.parse().unwrap()
    }

    #[test]
    fn a_directory_named_like_any_store_file_is_refused() {
        for dir in ["a.secret", "a.lock", "a.rotation", "a.rlock"] {
            let err = check_layout(&name(&format!("{dir}/b"))).unwrap_err();
            assert!(err.to_string().contains("collide"), "{dir}: {err}");
        }
        // The last component may end in anything: its file gets a suffix of its own.
        for ok in ["a.lock", "prod/db.secret", "x/y.rlock", "plain/name"] {
            check_layout(&name(ok)).unwrap();
        }
    }
}
