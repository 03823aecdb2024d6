//! What every command shares: output mode, the audit sink, error reporting.

use std::sync::Arc;

use lift::{AuditSink, Error, ErrorKind, NoopAuditSink};
use serde::Serialize;

use crate::global_args::GlobalArgs;
use crate::output::write_line;

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
    /// The selected environment's name (`--env`, `LIFT_ENV` or the config
    /// file's `default_environment`), if any.
    pub(crate) environment: Option<String>,
    /// The selected environment's policy (nothing enforced without one).
    pub(crate) policy: crate::project::Policy,
    /// The project config file, when one was found or given.
    pub(crate) project: Option<crate::project::LoadedConfig>,
    /// The parsed command line, for where each value came from.
    pub(crate) matches: clap::ArgMatches,
    /// `--color`, as given; see `crate::output` for how it resolves.
    pub(crate) color: crate::global_args::ColorChoice,
    /// Closes an S3 audit trail's writer when the command ends (`--audit-s3`).
    audit_closer: Option<Arc<dyn crate::s3_audit::CloseAudit>>,
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
    /// The context of a parsed command line: opens the audit sink, stamped
    /// with the environment when one is selected.
    pub(crate) async fn new(
        global: &GlobalArgs,
        environment: Option<crate::project::Environment>,
        project: Option<crate::project::LoadedConfig>,
        matches: clap::ArgMatches,
    ) -> lift::Result<Self> {
        let _ = AUDIT_CHECKPOINT.set(global.audit_checkpoint.clone());
        let _ = AUDIT_SIGNING_KEY.set(global.audit_signing_key.clone());
        let mut audit_closer: Option<Arc<dyn crate::s3_audit::CloseAudit>> = None;
        // `lift health` changes nothing and records nothing, so it opens no sink:
        // opening one would create a missing log (with its checkpoint, lock and
        // signing key) and refuse a damaged one, which the report is there to show.
        let records = matches.subcommand_name() != Some("health");
        let audit: Arc<dyn AuditSink> = match (&global.audit_log, &global.audit_s3) {
            _ if !records => Arc::new(NoopAuditSink),
            (None, Some(url)) => {
                let sink = crate::s3_audit::LazyS3Sink::new(
                    url,
                    global.audit_key_file.as_deref(),
                    global.audit_signing_key.as_deref(),
                )?;
                audit_closer = Some(sink.clone());
                sink
            }
            (Some(path), _) => {
                crate::audit_sink::open_sink(
                    path,
                    &crate::audit_sink::SinkFiles {
                        key: global.audit_key_file.as_deref(),
                        checkpoint: global.audit_checkpoint.as_deref(),
                        signing_key: global.audit_signing_key.as_deref(),
                    },
                )
                .await?
            }
            (None, None) => Arc::new(NoopAuditSink),
        };
        let (environment, policy) = match environment {
            Some(env) => (Some(env.name), env.policy),
            None => (None, crate::project::Policy::default()),
        };
        let audit: Arc<dyn AuditSink> = match &environment {
            Some(name) => Arc::new(crate::project::stamp::EnvironmentStamp::new(
                audit,
                name.clone(),
            )),
            None => audit,
        };
        Ok(Context {
            json: global.json,
            audit,
            audit_log: global.audit_log.clone(),
            audit_key_file: global.audit_key_file.clone(),
            environment,
            policy,
            project,
            matches,
            color: global.color,
            audit_closer,
        })
    }

    /// A context for unit tests: no environment, no config file, no audit log.
    #[cfg(test)]
    pub(crate) fn for_tests(json: bool, audit: Arc<dyn AuditSink>) -> Self {
        Context {
            json,
            audit,
            audit_log: None,
            audit_key_file: None,
            environment: None,
            policy: crate::project::Policy::default(),
            project: None,
            matches: clap::ArgMatches::default(),
            color: crate::global_args::ColorChoice::Never,
            audit_closer: None,
        }
    }

    /// Flushes the audit sink; an S3 trail's writer is closed with a final signed digest.
    pub(crate) async fn close(&self) -> lift::Result<()> {
        match &self.audit_closer {
            Some(closer) => closer.close().await,
            None => self.audit.flush().await,
        }
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
