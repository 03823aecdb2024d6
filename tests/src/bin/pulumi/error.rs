//! The error that ends a command, and how it is reported.

use std::path::Path;

/// How an error ends the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// A CLI-level error: `error: <message>` on stderr.
    Cli,
    /// The (fake) program failed while being evaluated; the engine reports it as a diagnostic.
    Program,
    /// Already reported (on stdout, like Pulumi's "bail" errors); only the exit code remains.
    Bail,
}

/// An error that ends the command.
#[derive(Debug, Clone)]
pub(crate) struct CliError {
    /// The message, without the `error: ` prefix.
    pub(crate) message: String,
    /// The process exit code.
    pub(crate) code: i32,
    /// How it is reported.
    pub(crate) kind: ErrorKind,
}

impl CliError {
    /// A CLI error with the generic exit code 1 (pulumi 3.227 and newer;
    /// older CLIs exited 255).
    pub(crate) fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: 1,
            kind: ErrorKind::Cli,
        }
    }

    /// The stack does not exist: exit code 6.
    pub(crate) fn stack_not_found(name: &str) -> CliError {
        CliError {
            message: format!("no stack named '{name}' found"),
            code: 6,
            kind: ErrorKind::Cli,
        }
    }

    /// A usage error (bad flags or arguments).
    pub(crate) fn usage(message: impl Into<String>) -> CliError {
        CliError::new(message)
    }

    /// A failure of the fake program itself.
    pub(crate) fn program(message: String) -> CliError {
        CliError {
            message,
            code: 1,
            kind: ErrorKind::Program,
        }
    }

    /// An error whose report was already printed.
    pub(crate) fn bail(code: i32) -> CliError {
        CliError {
            message: String::new(),
            code,
            kind: ErrorKind::Bail,
        }
    }

    /// An I/O error on a path.
    pub(crate) fn io(what: &str, path: &Path, e: &std::io::Error) -> CliError {
        CliError::new(format!("{what} {}: {e}", path.display()))
    }
}
