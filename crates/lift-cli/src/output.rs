//! How lift writes to the terminal: lines that survive a closed pipe, error
//! reports, exit codes and log lines.

use lift::{Error, ErrorKind};

use crate::{EXIT_FAILURE, EXIT_USAGE};

/// Writes one line. A closed pipe (`lift ... | head`) is not an error worth a
/// panic or a message: the reader has what it wanted.
pub(crate) fn write_line(out: &mut impl std::io::Write, text: &impl std::fmt::Display) {
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// The exit code for an error: 2 for bad input, 1 for everything else.
pub(crate) fn exit_code_for(err: &Error) -> u8 {
    match err.kind() {
        ErrorKind::InvalidInput => EXIT_USAGE,
        _ => EXIT_FAILURE,
    }
}

/// Prints an error (as `{"error": {...}}` under `--json`) and returns its exit code.
pub(crate) fn report_error(json: bool, err: &Error) -> u8 {
    if json {
        let document = serde_json::json!({
            "error": { "kind": err.kind().as_str(), "message": err.message() }
        });
        write_line(&mut std::io::stdout().lock(), &format!("{document:#}"));
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
    write_line(&mut std::io::stderr().lock(), &text);
    exit_code_for(err)
}

/// Logs to stderr, at warn by default. `RUST_LOG` overrides `-v`.
pub(crate) fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
