//! How lift writes to the terminal: lines that survive a closed pipe, error
//! reports, exit codes, colour and log lines.
//!
//! Every byte lift prints goes through the writers here, so that `lift ... |
//! head` ends quietly: a closed pipe is the reader saying it has what it
//! wanted, not an error worth a panic or a message.

use std::io::IsTerminal as _;

use lift::{Error, ErrorKind};

use crate::global_args::ColorChoice;

/// Exit code: the command did what was asked.
pub const EXIT_OK: u8 = 0;
/// Exit code: the operation failed (a failed deploy, a broken audit chain, an
/// unhealthy report, a secret that does not exist).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: bad usage or bad input (a mistyped flag or path, a missing or
/// non-private key file, a value that does not parse).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a conflict worth retrying later (a stack or a rotation locked
/// by another run, a concurrent change).
///
/// It is sysexits' `EX_TEMPFAIL`, "try again later", rather than 3: the
/// Pulumi CLI gives 3 to 8 their own meanings (3 is an authentication
/// failure), and a script that drives both tools must not confuse them.
pub const EXIT_CONFLICT: u8 = 75;

/// One of the two streams lift writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Standard output: documents, tables, values.
    Stdout,
    /// Standard error: logs, progress, errors, human text under `--json`.
    Stderr,
}

impl Stream {
    fn is_terminal(self) -> bool {
        match self {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        }
    }
}

/// Whether text written to `stream` may carry colour (ANSI escape codes).
///
/// `--color always` colours, `--color never` does not, and `--color auto`
/// (the default) colours when `stream` is a terminal and `NO_COLOR` is unset
/// or empty (<https://no-color.org>). An explicit `--color always` wins over
/// `NO_COLOR`, as a command-line flag wins over the environment.
pub(crate) fn use_color(choice: ColorChoice, stream: Stream) -> bool {
    resolve_color(
        choice,
        stream.is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// [`use_color`] without the process's state, for tests.
fn resolve_color(choice: ColorChoice, terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && no_color.is_none_or(std::ffi::OsStr::is_empty),
    }
}

/// Writes one line. A closed pipe (`lift ... | head`) is not an error worth a
/// panic or a message: the reader has what it wanted.
pub(crate) fn write_line(out: &mut impl std::io::Write, text: &impl std::fmt::Display) {
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// Writes bytes as they are (no newline added), ignoring a closed pipe.
pub(crate) fn write_bytes(out: &mut impl std::io::Write, bytes: &[u8]) {
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

/// Writes one line on stdout; see [`write_line`].
pub(crate) fn stdout_line(text: &impl std::fmt::Display) {
    write_line(&mut std::io::stdout().lock(), text);
}

/// Writes one line on stderr; see [`write_line`].
pub(crate) fn stderr_line(text: &impl std::fmt::Display) {
    write_line(&mut std::io::stderr().lock(), text);
}

/// The exit code for an error.
///
/// - [`EXIT_USAGE`] for bad input, and for a file the user named that is
///   missing, unreadable or refused by the key-file policy (the fix is in the
///   command line, not in a retry);
/// - [`EXIT_CONFLICT`] for a conflict ([`ErrorKind::Conflict`]: locked or
///   concurrent), which a later retry may get past;
/// - [`EXIT_FAILURE`] for everything else.
pub(crate) fn exit_code_for(err: &Error) -> u8 {
    if is_broken_pipe(err) {
        return EXIT_OK;
    }
    if is_input_file_error(err) {
        return EXIT_USAGE;
    }
    match err.kind() {
        ErrorKind::InvalidInput => EXIT_USAGE,
        // An idempotency token sent again with another value never succeeds on
        // a retry: it is the caller's mistake, not a race.
        ErrorKind::Conflict
            if matches!(
                err.find_source::<lift::secrets::Error>(),
                Some(lift::secrets::Error::TokenReused { .. })
            ) =>
        {
            EXIT_FAILURE
        }
        ErrorKind::Conflict => EXIT_CONFLICT,
        _ => EXIT_FAILURE,
    }
}

/// Whether `err` is a write to a pipe whose reader went away (`lift ... |
/// head`): the reader has what it wanted, so the command ends quietly.
fn is_broken_pipe(err: &Error) -> bool {
    err.find_source::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Whether `err` is about a file the user named: a key file refused by the
/// key-file policy (group- or world-readable, not a regular file, too large),
/// or a path that does not exist or cannot be read.
fn is_input_file_error(err: &Error) -> bool {
    // The lift crates wrap `lift_core::fs` errors transparently, so the file
    // error is found through the crate's own error type.
    let fs = err
        .find_source::<lift::fs::FsError>()
        .or_else(|| match err.find_source::<lift::audit::Error>() {
            Some(lift::audit::Error::Fs(fs)) => Some(fs),
            _ => None,
        })
        .or_else(|| match err.find_source::<lift::secrets::Error>() {
            Some(lift::secrets::Error::Fs(fs)) => Some(fs),
            _ => None,
        });
    // lift-secrets checks the modes of its key file and store itself.
    if matches!(
        err.find_source::<lift::secrets::Error>(),
        Some(lift::secrets::Error::Permissions { .. })
    ) {
        return true;
    }
    match fs {
        Some(lift::fs::FsError::Io { action, source, .. }) => match source.kind() {
            std::io::ErrorKind::NotFound => true,
            std::io::ErrorKind::PermissionDenied => action.contains("key file"),
            _ => false,
        },
        Some(
            lift::fs::FsError::Permissions { .. }
            | lift::fs::FsError::NotRegular { .. }
            | lift::fs::FsError::TooLarge { .. }
            | lift::fs::FsError::InvalidPath { .. },
        ) => true,
        _ => false,
    }
}

/// Marks an error about a path the user gave as bad input (exit 2) when the
/// path is missing or not readable: the fix is a corrected command line.
///
/// Commands wrap the loading of a user-named file with it; errors of other
/// kinds pass through unchanged.
pub(crate) fn user_input(err: Error) -> Error {
    match err.kind() {
        ErrorKind::NotFound | ErrorKind::PermissionDenied => {
            let message = err.message().to_owned();
            Error::new(ErrorKind::InvalidInput, message).with_source(err)
        }
        _ => err,
    }
}

/// Prints an error (as `{"error": {...}}` under `--json`) and returns its exit code.
///
/// A closed pipe is not reported: there is no one left to read the report.
pub(crate) fn report_error(json: bool, err: &Error) -> u8 {
    if is_broken_pipe(err) {
        return EXIT_OK;
    }
    if json {
        print_error_document(err);
    }
    let mut text = format!("error: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(&format!("\n  caused by: {cause_text}"));
        }
        source = cause.source();
    }
    stderr_line(&text);
    exit_code_for(err)
}

/// Prints `{"error": {"kind": ..., "message": ...}}` on stdout: the document a
/// command prints on failure under `--json` (see [`report_error`]), for a
/// command whose own options ask for JSON output (`lift health --health-json`).
pub(crate) fn print_error_document(err: &Error) {
    let document = serde_json::json!({
        "error": { "kind": err.kind().as_str(), "message": err.message() }
    });
    stdout_line(&format!("{document:#}"));
}

/// Logs to stderr, at warn by default. `RUST_LOG` overrides `-v`.
///
/// Log lines carry colour only where [`use_color`] allows it on stderr: a log
/// file or a CI log never gets escape codes.
pub(crate) fn init_tracing(verbose: u8, color: ColorChoice) {
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(use_color(color, Stream::Stderr))
        .with_writer(std::io::stderr)
        .try_init();
}

/// The JSON document printed on failure under `--json`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct ErrorDocument {
    /// The error.
    pub(crate) error: ErrorBody,
}

/// The body of an [`ErrorDocument`].
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct ErrorBody {
    /// The classification.
    pub(crate) kind: lift::ErrorKind,
    /// What failed and what to do.
    pub(crate) message: String,
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn auto_colours_a_terminal_without_no_color() {
        assert!(resolve_color(ColorChoice::Auto, true, None));
        assert!(resolve_color(ColorChoice::Auto, true, Some(OsStr::new(""))));
        assert!(!resolve_color(
            ColorChoice::Auto,
            true,
            Some(OsStr::new("1"))
        ));
        assert!(!resolve_color(ColorChoice::Auto, false, None));
    }

    #[test]
    fn explicit_choices_win() {
        assert!(resolve_color(
            ColorChoice::Always,
            false,
            Some(OsStr::new("1"))
        ));
        assert!(!resolve_color(ColorChoice::Never, true, None));
    }

    #[test]
    fn exit_codes_follow_the_table() {
        assert_eq!(exit_code_for(&Error::invalid_input("bad")), EXIT_USAGE);
        assert_eq!(exit_code_for(&Error::conflict("locked")), EXIT_CONFLICT);
        assert_eq!(exit_code_for(&Error::not_found("no secret")), EXIT_FAILURE);
        assert_eq!(
            exit_code_for(&Error::new(ErrorKind::External, "pulumi failed")),
            EXIT_FAILURE
        );
    }

    #[test]
    fn a_missing_or_public_key_file_is_bad_input() {
        let missing = lift::fs::FsError::io(
            "read key file",
            "/nonexistent/key",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert_eq!(exit_code_for(&Error::from(missing)), EXIT_USAGE);
        let public = lift::fs::FsError::Permissions {
            path: "/tmp/key".into(),
            mode: 0o644,
        };
        assert_eq!(exit_code_for(&Error::from(public)), EXIT_USAGE);
        let through_audit = lift::audit::Error::Fs(lift::fs::FsError::Permissions {
            path: "/tmp/key".into(),
            mode: 0o640,
        });
        assert_eq!(
            exit_code_for(&Error::from_classified(through_audit)),
            EXIT_USAGE
        );
        // A disk error on a file lift writes is an operation failure.
        let full = lift::fs::FsError::io(
            "write",
            "/tmp/log",
            std::io::Error::from(std::io::ErrorKind::StorageFull),
        );
        assert_eq!(exit_code_for(&Error::from(full)), EXIT_FAILURE);
    }

    #[test]
    fn a_closed_pipe_ends_quietly_with_0() {
        let closed = Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert_eq!(exit_code_for(&closed), EXIT_OK);
        assert_eq!(report_error(false, &closed), EXIT_OK);
    }

    #[test]
    fn user_input_turns_a_missing_path_into_bad_input() {
        let err = user_input(Error::not_found("cannot open /nope: no such file"));
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.message(), "cannot open /nope: no such file");
        let other = user_input(Error::conflict("locked"));
        assert_eq!(other.kind(), ErrorKind::Conflict);
    }

    #[test]
    fn writing_to_a_closed_pipe_is_quiet() {
        struct Closed;
        impl std::io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
        }
        write_line(&mut Closed, &"text");
        write_bytes(&mut Closed, b"bytes");
    }
}
