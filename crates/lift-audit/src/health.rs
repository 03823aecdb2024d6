//! The audit log's health check: writable, and its chain intact since the last checkpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use async_trait::async_trait;
use lift_core::{CheckOutcome, HealthCheck};

use crate::verify::{VerifyOptions, verify_since_checkpoint, verify_with};

/// Logs up to this size are verified whole by the health check; larger ones from their last checkpoint.
pub const FULL_VERIFY_LIMIT: u64 = 64 * 1024 * 1024;

/// Checks that the log can be appended to and that its chain verifies from
/// the last checkpoint to the end (the whole chain when there is none).
#[derive(Debug, Clone)]
pub struct AuditHealthCheck {
    name: String,
    path: PathBuf,
    options: VerifyOptions,
    full_verify_limit: u64,
}

impl AuditHealthCheck {
    /// A check of the log at `path`, verified with `options` (key, checkpoint).
    pub fn new(path: impl Into<PathBuf>, options: VerifyOptions) -> Self {
        AuditHealthCheck {
            name: "audit_log".to_owned(),
            path: path.into(),
            options,
            full_verify_limit: FULL_VERIFY_LIMIT,
        }
    }

    /// Renames the check (default `audit_log`).
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Verifies the whole chain when the log is at most `bytes` long (default
    /// [`FULL_VERIFY_LIMIT`]), and only the records since the last checkpoint
    /// beyond that. A checkpoint is written at every flush, so checking only
    /// since it would miss an edit of any record it already covers.
    #[must_use]
    pub fn full_verify_limit(mut self, bytes: u64) -> Self {
        self.full_verify_limit = bytes;
        self
    }
}

fn writable(path: &Path) -> Result<(), String> {
    // Opening for append (without writing) asks the kernel the same question a write would.
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map(drop)
        .map_err(|e| format!("audit log {} is not writable: {e}", path.display()))
}

#[async_trait]
impl HealthCheck for AuditHealthCheck {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> CheckOutcome {
        let started = Instant::now();
        let path = self.path.clone();
        let options = self.options.clone();
        let limit = self.full_verify_limit;
        let span = tracing::debug_span!("audit_health_check", path = %path.display());
        let _entered = span.enter();
        let result = tokio::task::spawn_blocking(move || {
            if !path.exists() {
                return Err(CheckOutcome::unknown(format!(
                    "audit log {} does not exist yet; it is created by the first audited command",
                    path.display()
                )));
            }
            writable(&path).map_err(CheckOutcome::unhealthy)?;
            let size = std::fs::metadata(&path)
                .map(|m| m.len())
                .unwrap_or(u64::MAX);
            let whole = size <= limit;
            let verified = if whole {
                verify_with(std::slice::from_ref(&path), &options)
            } else {
                verify_since_checkpoint(&path, &options)
            };
            verified.map(|report| (report, whole)).map_err(|e| {
                CheckOutcome::unhealthy(format!("cannot verify audit log {}: {e}", path.display()))
            })
        })
        .await;
        let outcome = match result {
            Ok(Ok((report, whole))) => {
                let scope = match (&report.checkpoint, whole) {
                    (Some(cp), true) => format!(" and matches checkpoint {}", cp.size),
                    (Some(cp), false) => format!(" since checkpoint {}", cp.size),
                    (None, _) => " (no checkpoint yet)".to_owned(),
                };
                let base = match &report.failure {
                    None => CheckOutcome::healthy(format!(
                        "audit log {} is writable and its chain is intact{scope}",
                        self.path.display(),
                    )),
                    Some(failure) => CheckOutcome::unhealthy(format!(
                        "audit log {}: {} at record {}: {}; run `lift audit verify {}`",
                        self.path.display(),
                        failure.finding,
                        failure.seq,
                        failure.message,
                        self.path.display()
                    )),
                };
                let base = base.observe("records_checked", report.records_checked as f64, "count");
                match &report.checkpoint {
                    Some(cp) => base.observe("checkpoint_size", cp.size as f64, "count"),
                    None => base,
                }
            }
            Ok(Err(outcome)) => outcome,
            Err(err) => CheckOutcome::unhealthy(format!("audit health check failed: {err}")),
        };
        outcome.took(started.elapsed())
    }
}
