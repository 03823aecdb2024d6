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
            Error::InvalidConfig(_) | Error::InvalidEnv { .. } | Error::NoSuchProcess { .. } => {
                ErrorKind::InvalidInput
            }
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
    }
}
