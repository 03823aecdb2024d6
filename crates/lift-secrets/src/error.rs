//! The errors of lift-secrets.
//!
//! Messages name secrets, versions, labels and files; they never carry a value.

use std::path::PathBuf;

use lift_core::{Classify, ErrorKind};

/// What can go wrong in lift-secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The secret does not exist.
    #[error("secret {name} not found; list the store's secrets to check the name")]
    SecretNotFound {
        /// The secret.
        name: String,
    },
    /// No version of the secret holds the label.
    #[error("secret {name} has no version labelled {stage}")]
    StageNotFound {
        /// The secret.
        name: String,
        /// The label.
        stage: String,
    },
    /// The version does not exist.
    #[error("secret {name} has no version {version}")]
    VersionNotFound {
        /// The secret.
        name: String,
        /// The version id.
        version: String,
    },
    /// An idempotency token was reused with a different value.
    #[error(
        "version {version} of secret {name} already exists with a different value; use a new idempotency token"
    )]
    TokenReused {
        /// The secret.
        name: String,
        /// The version id (the token).
        version: String,
    },
    /// The secret is soft-deleted.
    #[error(
        "secret {name} is scheduled for deletion on {date}; restore it before using it (`lift secrets restore {name}`)"
    )]
    MarkedForDeletion {
        /// The secret.
        name: String,
        /// When it will be purged.
        date: String,
    },
    /// A label move named the wrong source version (a lost compare-and-set).
    #[error(
        "staging label {stage} of secret {name} is on {actual}, not on {expected}; describe the secret and retry"
    )]
    StageMismatch {
        /// The secret.
        name: String,
        /// The label.
        stage: String,
        /// The version the caller expected to hold the label.
        expected: String,
        /// The version that holds it (or "no version").
        actual: String,
    },
    /// The value is larger than the store accepts.
    #[error(
        "the value for secret {name} is {len} bytes; the limit is {limit} bytes (AWS Secrets Manager's is 65536)"
    )]
    ValueTooLarge {
        /// The secret.
        name: String,
        /// The value's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Bad input that fits no other variant.
    #[error("{0}")]
    InvalidInput(String),
    /// A store file failed its integrity check.
    #[error(
        "store file {path} failed its integrity check: {reason}; restore it from a backup or delete it"
    )]
    Integrity {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A store file was written with another key than the one given.
    #[error(
        "store file {path} was written with key {file_key}, but the key given is {given_key}; pass the store's key file (--key-file or LIFT_SECRETS_KEY_FILE). The file is not damaged: do not delete it"
    )]
    WrongKey {
        /// The file.
        path: PathBuf,
        /// The id of the key that wrote the file (or `-` for none).
        file_key: String,
        /// The id of the key given (or `-` for none).
        given_key: String,
    },
    /// A secret file is older than the store's manifest says it must be: it was rolled back.
    #[error(
        "store file {path} is generation {found}, but the store's manifest says generation {expected} was written: the file was rolled back (an older copy was put in its place). Do not trust its values; move the file away, then put a fresh value (and rotate the credential if the old one may be compromised)"
    )]
    RolledBack {
        /// The file.
        path: PathBuf,
        /// The generation in the file.
        found: u64,
        /// The generation the manifest records.
        expected: u64,
    },
    /// AWSCURRENT moved since a rotation began, so the rotation must not promote its version.
    #[error(
        "rotation {rotation_id} of secret {name} stopped: AWSCURRENT is on {actual}, but it was on {expected} when the rotation began, so someone put or promoted another version since. The pending version {pending} was not made AWSCURRENT; cancel the rotation with `lift secrets cancel {name}` and start a new one if you still want to rotate"
    )]
    CurrentMoved {
        /// The secret.
        name: String,
        /// The rotation.
        rotation_id: String,
        /// The version that held AWSCURRENT when the rotation began.
        expected: String,
        /// The version that holds it now.
        actual: String,
        /// The rotation's pending version.
        pending: String,
    },
    /// A rotation checkpoint names a version that is not the secret's pending version.
    #[error(
        "rotation {rotation_id} of secret {name} names version {version} as its pending version, but that version {why}: the checkpoint does not belong to this secret's rotation (it is stale or was edited), and finishing it could bring an old value back. Cancel it with `lift secrets cancel {name}`"
    )]
    ForeignCheckpoint {
        /// The secret.
        name: String,
        /// The rotation.
        rotation_id: String,
        /// The version the checkpoint names.
        version: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Another rotator (AWS's own rotation, say) rotates the secret.
    #[error(
        "secret {name} is rotated by {other}; two rotators would fight over AWSPENDING and AWSCURRENT. Turn that rotation off (for AWS: `aws secretsmanager cancel-rotate-secret --secret-id {name}`) or rotate with --force"
    )]
    OtherRotator {
        /// The secret.
        name: String,
        /// Who rotates it.
        other: String,
    },
    /// A file or directory is readable or writable by others.
    #[error(
        "{path} has mode {mode:04o} but must not be accessible to group or others; run `chmod {fix:o} {path}`"
    )]
    Permissions {
        /// The file or directory.
        path: PathBuf,
        /// Its current mode bits.
        mode: u32,
        /// The mode to set.
        fix: u32,
    },
    /// A file or directory of the store belongs to another user.
    #[error(
        "{path} belongs to uid {owner}, but this process runs as uid {user}; a secret store's files must belong to the user that runs lift: run `chown {user} {path}` if that user should own it, or run lift as uid {owner}"
    )]
    Owner {
        /// The file or directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective uid of this process.
        user: u32,
    },
    /// The store was created for another environment than the one it is opened for.
    #[error(
        "secret store {root} belongs to environment {recorded}, but it was opened for environment {expected}; open it for environment {recorded}, or give environment {expected} its own store"
    )]
    EnvironmentMismatch {
        /// The store's root directory.
        root: PathBuf,
        /// The environment the store records.
        recorded: String,
        /// The environment it was opened for.
        expected: String,
    },
    /// The store has no key and plaintext was not chosen.
    #[error(
        "secret store {root} has no encryption key: pass --key-file FILE or set LIFT_SECRETS_KEY_FILE, or choose --plaintext for development"
    )]
    NoKey {
        /// The store's root directory.
        root: PathBuf,
    },
    /// The key file is unusable.
    #[error("key file {path}: {reason}")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// The operation, as a verb.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A durable-file operation failed.
    #[error(transparent)]
    Fs(#[from] lift_core::fs::FsError),
    /// A rotation is in progress.
    #[error("{0}")]
    RotationInProgress(String),
    /// `resume` or `cancel` found nothing to continue.
    #[error(
        "no rotation of secret {name} is in progress; start one with `lift secrets rotate {name}`"
    )]
    NoRotation {
        /// The secret.
        name: String,
    },
    /// Rotation is switched off for the provider or for the secret.
    #[error("rotation of secret {name} is disabled {scope}; enable it before rotating")]
    RotationDisabled {
        /// The secret.
        name: String,
        /// "for this provider" or "for this secret".
        scope: &'static str,
    },
    /// A failure injected on purpose by a fault plan.
    #[error("injected failure at {step} of secret {name}: {message}")]
    Injected {
        /// The secret.
        name: String,
        /// The step.
        step: String,
        /// The configured message.
        message: String,
    },
    /// A rotation step failed.
    #[error("{step} of secret {name} failed: {source}")]
    Step {
        /// The secret.
        name: String,
        /// The step.
        step: String,
        /// The cause, classified.
        source: lift_core::Error,
    },
    /// An error from a wrapped provider or from user code, kept with its classification.
    #[error(transparent)]
    Core(#[from] lift_core::Error),
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`Error::Integrity`].
    pub(crate) fn integrity(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Integrity {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::SecretNotFound { .. }
            | Error::StageNotFound { .. }
            | Error::VersionNotFound { .. }
            | Error::NoRotation { .. } => ErrorKind::NotFound,
            Error::TokenReused { .. }
            | Error::StageMismatch { .. }
            | Error::RotationInProgress(_) => ErrorKind::Conflict,
            // Not transient: retrying does not bring a deleted secret back, and a cache
            // must never serve a deleted (revoked) secret as if the store were only down.
            Error::MarkedForDeletion { .. }
            | Error::CurrentMoved { .. }
            | Error::OtherRotator { .. } => ErrorKind::FailedPrecondition,
            Error::WrongKey { .. } | Error::EnvironmentMismatch { .. } => ErrorKind::InvalidInput,
            Error::RolledBack { .. } | Error::ForeignCheckpoint { .. } => ErrorKind::Integrity,
            Error::ValueTooLarge { .. }
            | Error::InvalidInput(_)
            | Error::NoKey { .. }
            | Error::BadKey { .. }
            | Error::RotationDisabled { .. } => ErrorKind::InvalidInput,
            Error::Integrity { .. } => ErrorKind::Integrity,
            Error::Permissions { .. } | Error::Owner { .. } => ErrorKind::PermissionDenied,
            Error::Io { source, .. } => ErrorKind::from_io(source.kind()),
            Error::Fs(err) => err.kind(),
            Error::Injected { .. } => ErrorKind::External,
            Error::Step { source, .. } => source.kind(),
            Error::Core(err) => err.kind(),
        }
    }
}

impl From<Error> for lift_core::Error {
    fn from(err: Error) -> Self {
        match err {
            // Keep an already-classified error as it is rather than wrapping it twice.
            Error::Core(inner) => inner,
            other => lift_core::Error::from_classified(other),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_shared_vocabulary() {
        let err = Error::TokenReused {
            name: "db".into(),
            version: "v1".into(),
        };
        assert_eq!(err.kind(), ErrorKind::Conflict);
        let core: lift_core::Error = err.into();
        assert_eq!(core.kind(), ErrorKind::Conflict);
        assert!(core.message().contains("new idempotency token"));
        let perms = Error::Permissions {
            path: "/s".into(),
            mode: 0o755,
            fix: 0o700,
        };
        assert_eq!(perms.kind(), ErrorKind::PermissionDenied);
        assert!(perms.to_string().contains("chmod 700 /s"));
        assert!(perms.to_string().contains("0755"));
        let wrapped = Error::Core(lift_core::Error::conflict("busy"));
        let back: lift_core::Error = wrapped.into();
        assert_eq!(back.message(), "busy");
    }
}
