//! What every command shares: output mode, the audit sink, error reporting.

use std::sync::Arc;

use lift::{AuditSink, Error, ErrorKind, NoopAuditSink};
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::{EXIT_FAILURE, EXIT_USAGE};

/// The state shared by every command.
pub(crate) struct Context {
    /// Whether `--json` was given.
    pub(crate) json: bool,
    /// Where the command's audit events go (a no-op sink without `--audit-log`).
    pub(crate) audit: Arc<dyn AuditSink>,
    /// The `--audit-log` file, if any.
    pub(crate) audit_log: Option<std::path::PathBuf>,
    /// The `--audit-key-file`, if any.
    pub(crate) audit_key_file: Option<std::path::PathBuf>,
}

/// The global `--audit-checkpoint` (or `LIFT_AUDIT_CHECKPOINT`), which
/// `lift audit verify` uses when it is given no `--checkpoint`.
static AUDIT_CHECKPOINT: std::sync::OnceLock<Option<std::path::PathBuf>> =
    std::sync::OnceLock::new();

/// The global `--audit-checkpoint`, if one was given.
pub(crate) fn audit_checkpoint() -> Option<&'static std::path::Path> {
    AUDIT_CHECKPOINT.get().and_then(Option::as_deref)
}

/// The global `--audit-signing-key` (or `LIFT_AUDIT_SIGNING_KEY_FILE`).
static AUDIT_SIGNING_KEY: std::sync::OnceLock<Option<std::path::PathBuf>> =
    std::sync::OnceLock::new();

/// The global `--audit-signing-key`, if one was given.
pub(crate) fn audit_signing_key() -> Option<&'static std::path::Path> {
    AUDIT_SIGNING_KEY.get().and_then(Option::as_deref)
}

impl Context {
    pub(crate) async fn new(global: &GlobalArgs) -> lift::Result<Self> {
        let _ = AUDIT_CHECKPOINT.set(global.audit_checkpoint.clone());
        let _ = AUDIT_SIGNING_KEY.set(global.audit_signing_key.clone());
        let audit: Arc<dyn AuditSink> = match &global.audit_log {
            Some(path) => {
                crate::audit::open_sink(
                    path,
                    &crate::audit::SinkFiles {
                        key: global.audit_key_file.as_deref(),
                        checkpoint: global.audit_checkpoint.as_deref(),
                        signing_key: global.audit_signing_key.as_deref(),
                    },
                )
                .await?
            }
            None => Arc::new(NoopAuditSink),
        };
        Ok(Context {
            json: global.json,
            audit,
            audit_log: global.audit_log.clone(),
            audit_key_file: global.audit_key_file.clone(),
        })
    }

    /// Flushes the audit sink.
    pub(crate) async fn close(&self) -> lift::Result<()> {
        self.audit.flush().await
    }

    /// Prints human text: on stdout normally, on stderr under `--json`.
    pub(crate) fn say(&self, text: impl std::fmt::Display) {
        if self.json {
            write_line(&mut std::io::stderr().lock(), &text);
        } else {
            write_line(&mut std::io::stdout().lock(), &text);
        }
    }

    /// Prints the command's JSON document on stdout.
    pub(crate) fn emit_json(&self, document: &impl Serialize) -> lift::Result<()> {
        let text = serde_json::to_string_pretty(document).map_err(|err| {
            Error::new(
                ErrorKind::External,
                format!("cannot render JSON output: {err}"),
            )
        })?;
        write_line(&mut std::io::stdout().lock(), &text);
        Ok(())
    }
}

/// Writes one line. A closed pipe (`lift ... | head`) is not an error worth a
/// panic or a message: the reader has what it wanted.
fn write_line(out: &mut impl std::io::Write, text: &impl std::fmt::Display) {
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
