//! The errors lift-monitor can produce.

use lift_core::{Classify, ErrorKind};

/// What went wrong in lift-monitor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value was rejected.
    #[error("invalid monitor configuration: {0}")]
    InvalidConfig(String),

    /// An environment variable had a value that cannot be parsed.
    #[error("environment variable {name} has an invalid value {value:?}: {expected}")]
    InvalidEnv {
        /// The variable.
        name: &'static str,
        /// The value found.
        value: String,
        /// What was expected.
        expected: &'static str,
    },

    /// A file of the operating system could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The operation needs a tokio runtime and none is running.
    #[error("no tokio runtime is running; call this from inside a tokio runtime")]
    NoRuntime,

    /// There is no process with this id.
    #[error("no process has pid {pid}")]
    NoSuchProcess {
        /// The pid asked for.
        pid: u32,
    },

    /// The pid is a thread of another process (it has a `/proc` directory, hidden from
    /// listings, but is not a thread-group leader).
    #[error("{tid} is a thread of process {process}; pass --pid {process}")]
    ThreadOfProcess {
        /// The thread id asked for.
        tid: u32,
        /// The process the thread belongs to (its thread-group id).
        process: u32,
    },

    /// The process has exited but its parent has not reaped it: there is nothing left to
    /// measure.
    #[error("process {pid} is a zombie (exited, not yet reaped by its parent, process {parent})")]
    Zombie {
        /// The pid asked for.
        pid: u32,
        /// Its parent, which has not waited for it.
        parent: u32,
    },

    /// The process existed when sampling began and exited before it ended.
    #[error("process {pid} exited while it was measured")]
    ProcessExited {
        /// The pid asked for.
        pid: u32,
    },

    /// A service's health endpoint could not be fetched or read.
    #[error("cannot check {url}: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },

    /// lift's Lambda extension could not register with the Extensions API.
    #[error("cannot register with the Lambda Extensions API: {reason}")]
    Extension {
        /// What went wrong.
        reason: String,
    },

    /// A metrics document could not be rendered.
    #[error("cannot render metrics: {0}")]
    Render(String),
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidConfig(_)
            | Error::InvalidEnv { .. }
            | Error::NoSuchProcess { .. }
            | Error::ThreadOfProcess { .. } => ErrorKind::InvalidInput,
            // The pid was right; the process is gone, or going.
            Error::Zombie { .. } | Error::ProcessExited { .. } => ErrorKind::NotFound,
            Error::Fetch { .. } | Error::Extension { .. } => ErrorKind::Unavailable,
            Error::Io { source, .. } => ErrorKind::from_io(source.kind()),
            Error::NoRuntime => ErrorKind::Unavailable,
            Error::Render(_) => ErrorKind::External,
        }
    }
}

impl From<Error> for lift_core::Error {
    fn from(err: Error) -> Self {
        lift_core::Error::from_classified(err)
    }
}

/// `Result` with lift-monitor's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_classify_and_convert() {
        let err = Error::InvalidEnv {
            name: "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            value: "lots".into(),
            expected: "a whole number of megabytes",
        };
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let core: lift_core::Error = err.into();
        assert_eq!(core.kind(), ErrorKind::InvalidInput);
        assert!(core.message().contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"));
        assert_eq!(Error::NoRuntime.kind(), ErrorKind::Unavailable);
        // A pid that was right when sampling began is not the caller's mistake.
        assert_eq!(Error::ProcessExited { pid: 7 }.kind(), ErrorKind::NotFound);
        assert_eq!(
            Error::Zombie { pid: 7, parent: 1 }.kind(),
            ErrorKind::NotFound
        );
        let thread = Error::ThreadOfProcess {
            tid: 60,
            process: 1,
        };
        assert_eq!(thread.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            thread.to_string(),
            "60 is a thread of process 1; pass --pid 1"
        );
    }
}
