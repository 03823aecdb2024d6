//! `lift audit`: verify, query and follow audit trails; and the `--audit-log` sink.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::context::Context;

/// Arguments of `lift audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The operation.
    #[command(subcommand)]
    pub op: AuditOp,
}

/// A `lift audit` operation.
#[derive(Debug, Subcommand)]
pub enum AuditOp {
    /// Recompute the hash chain and check it against the checkpoint; exit 1 naming the first bad record.
    Verify {
        /// The log files, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The audit key file (default: LIFT_AUDIT_KEY_FILE).
        #[arg(long, value_name = "F")]
        key_file: Option<PathBuf>,
        /// The checkpoint file (default: <log>.checkpoint when it exists).
        #[arg(long, value_name = "F")]
        checkpoint: Option<PathBuf>,
    },
    /// Filter records.
    Query {
        /// The log files, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Follow a live log.
    Tail {
        /// The log file.
        file: PathBuf,
    },
}

pub(crate) async fn run(_args: AuditArgs, _ctx: &Context) -> lift::Result<u8> {
    Err(crate::cli::not_available("audit"))
}

/// Opens the sink behind the global `--audit-log FILE`.
pub(crate) async fn open_sink(
    _path: &Path,
    _key_file: Option<&Path>,
) -> lift::Result<Arc<dyn lift::AuditSink>> {
    Err(crate::cli::not_available("--audit-log"))
}
