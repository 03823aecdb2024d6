//! The shared error vocabulary.

use std::fmt;

/// The classification every lift error maps to.
///
/// A caller can handle, say, [`ErrorKind::Conflict`] the same way whichever
/// crate raised it: retry a concurrent Pulumi update later, or wait for a
/// rotation in progress to finish.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The named thing (stack, secret, version, file) does not exist.
    NotFound,
    /// The thing to create exists already.
    AlreadyExists,
    /// Another operation holds the resource (a concurrent update, a rotation in progress).
    Conflict,
    /// The caller gave bad input: a malformed name, a bad flag, an unparseable value.
    InvalidInput,
    /// The operating system or the remote service refused access.
    PermissionDenied,
    /// A dependency (a CLI, a service, a disk) is missing or transiently failing.
    Unavailable,
    /// The operation ran out of time.
    Timeout,
    /// The operation was cancelled on request.
    Cancelled,
    /// Stored data failed an integrity check: a bad MAC, a broken hash chain, a torn file.
    Integrity,
    /// An I/O operation failed.
    Io,
    /// An external program or service failed in a way lift cannot classify further.
    External,
    /// The operation refused to go on because a condition the caller asked for
    /// does not hold: changes were found where none were expected, a policy
    /// rejected the change, or the state moved since the operation began.
    /// Retrying without a change by the caller fails the same way.
    FailedPrecondition,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::Conflict,
        ErrorKind::InvalidInput,
        ErrorKind::PermissionDenied,
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::Cancelled,
        ErrorKind::Integrity,
        ErrorKind::Io,
        ErrorKind::External,
        ErrorKind::FailedPrecondition,
    ];

    /// The stable snake_case name used in JSON documents and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Integrity => "integrity",
            ErrorKind::Io => "io",
            ErrorKind::External => "external",
            ErrorKind::FailedPrecondition => "failed_precondition",
        }
    }

    /// Whether retrying the same operation later may succeed without a change by the caller.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Conflict | ErrorKind::Unavailable | ErrorKind::Timeout
        )
    }

    /// Classifies an [`std::io::ErrorKind`].
    pub fn from_io(kind: std::io::ErrorKind) -> ErrorKind {
        use std::io::ErrorKind as Io;
        match kind {
            Io::NotFound => ErrorKind::NotFound,
            Io::AlreadyExists => ErrorKind::AlreadyExists,
            Io::PermissionDenied => ErrorKind::PermissionDenied,
            Io::TimedOut => ErrorKind::Timeout,
            Io::InvalidInput | Io::InvalidData => ErrorKind::InvalidInput,
            Io::Interrupted => ErrorKind::Cancelled,
            Io::ConnectionRefused
            | Io::ConnectionReset
            | Io::ConnectionAborted
            | Io::NotConnected => ErrorKind::Unavailable,
            _ => ErrorKind::Io,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every crate's error type so that callers can classify it.
pub trait Classify {
    /// The shared classification of this error.
    fn kind(&self) -> ErrorKind;
}

/// The error type of the `lift-core` traits.
///
/// Feature crates keep their own precise `Error` enums and convert into this
/// type at trait boundaries, keeping the message and the original error as
/// the source.
///
/// The message must never contain a secret value.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// Creates an error of `kind` with a lower-case message that says what failed and what to do.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Wraps another crate's error, keeping its message and its classification.
    pub fn from_classified<E>(err: E) -> Self
    where
        E: Classify + std::error::Error + Send + Sync + 'static,
    {
        Error {
            kind: err.kind(),
            message: err.to_string(),
            source: Some(Box::new(err)),
        }
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Conflict, message)
    }

    /// The classification.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the source chain.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Looks for an error of type `E` in the source chain (including the wrapped error itself).
    pub fn find_source<E: std::error::Error + 'static>(&self) -> Option<&E> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        while let Some(err) = current {
            if let Some(found) = err.downcast_ref::<E>() {
                return Some(found);
            }
            current = err.source();
        }
        None
    }
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Error");
        s.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            s.field("source", source);
        }
        s.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error {
            kind: ErrorKind::from_io(err.kind()),
            message: err.to_string(),
            source: Some(Box::new(err)),
        }
    }
}

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("stack dev is locked by another update")]
    struct Locked;

    impl Classify for Locked {
        fn kind(&self) -> ErrorKind {
            ErrorKind::Conflict
        }
    }

    #[test]
    fn classified_errors_keep_kind_message_and_source() {
        let err = Error::from_classified(Locked);
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert_eq!(err.to_string(), "stack dev is locked by another update");
        assert!(err.find_source::<Locked>().is_some());
        assert!(err.kind().is_transient());
    }

    #[test]
    fn io_errors_are_classified() {
        let err: Error = std::io::Error::from(std::io::ErrorKind::PermissionDenied).into();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn kind_names_round_trip_through_serde() {
        for kind in ErrorKind::ALL {
            let json = serde_json::to_string(&kind).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            let back: ErrorKind = serde_json::from_str(&json).unwrap_or(ErrorKind::External);
            assert_eq!(back, kind);
        }
    }
}
