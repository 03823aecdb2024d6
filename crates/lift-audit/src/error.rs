//! The errors lift-audit can produce.

use std::path::PathBuf;

use lift_core::{Classify, ErrorKind};

/// What can go wrong while writing, reading or verifying an audit trail.
///
/// Messages name the file and say what to do; they never contain key material
/// or the contents of a refused event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done: `open`, `read`, `append to`, ...
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The audit key file holds fewer than [`crate::MIN_KEY_LEN`] bytes.
    #[error(
        "audit key file {} holds {len} bytes; an audit key needs at least 32 random bytes (for example `head -c 32 /dev/urandom > {}`)",
        path.display(),
        path.display()
    )]
    KeyTooShort {
        /// The key file.
        path: PathBuf,
        /// How many bytes it held.
        len: usize,
    },
    /// A caller passed a bad value (an option, a filter, a time).
    #[error("{0}")]
    InvalidInput(String),
    /// The event carries a field marked secret and was refused; nothing was written.
    #[error("{0}")]
    SecretRefused(String),
    /// Stored data is not what it must be: a corrupt last record, a log shorter than its checkpoint.
    #[error("{0}")]
    Integrity(String),
    /// A checkpoint file could not be read or does not verify.
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A record line could not be parsed.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The log file.
        path: PathBuf,
        /// The 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The sink was closed, or its writer stopped after an unrecoverable error.
    #[error("audit sink for {} is closed{reason}; reopen it with FileAuditSink::open", path.display())]
    Closed {
        /// The log file.
        path: PathBuf,
        /// Why, as `": ..."`, or empty after a normal close.
        reason: String,
    },
    /// A durable-file operation of `lift_core::fs` failed: a write, an fsync,
    /// a rename, a lock, or a key file refused by the permission policy.
    #[error(transparent)]
    Fs(#[from] lift_core::fs::FsError),
    /// A request to an object store (S3) failed.
    #[error("cannot {operation} s3://{bucket}/{key}: {message}")]
    Remote {
        /// What was being done: `put`, `get`, `list`.
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// The object key or prefix.
        key: String,
        /// The service's or the client's message.
        message: String,
    },
    /// An event could not be serialized.
    #[error("cannot serialize audit event {action}: {message}")]
    Serialize {
        /// The event's action.
        action: String,
        /// The serializer's message.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { source, .. } => ErrorKind::from_io(source.kind()),
            Error::KeyTooShort { .. } | Error::InvalidInput(_) | Error::SecretRefused(_) => {
                ErrorKind::InvalidInput
            }
            Error::Integrity(_) | Error::Checkpoint { .. } | Error::Parse { .. } => {
                ErrorKind::Integrity
            }
            Error::Closed { .. } | Error::Remote { .. } => ErrorKind::Unavailable,
            Error::Fs(err) => err.kind(),
            Error::Serialize { .. } => ErrorKind::InvalidInput,
        }
    }
}

impl From<Error> for lift_core::Error {
    fn from(err: Error) -> Self {
        lift_core::Error::from_classified(err)
    }
}

/// `Result` with lift-audit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_classify_and_convert() {
        let err = Error::KeyTooShort {
            path: "/k".into(),
            len: 3,
        };
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("at least 32"));
        let core: lift_core::Error = Error::Integrity("broken chain".into()).into();
        assert_eq!(core.kind(), ErrorKind::Integrity);
        assert_eq!(core.message(), "broken chain");
    }
}
