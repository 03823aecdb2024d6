//! `lift deploy`: drive the Pulumi CLI.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::context::Context;

/// Arguments of `lift deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The Pulumi project directory.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub cwd: PathBuf,
    /// The stack to operate on. Every command passes it explicitly; the globally selected stack is never used.
    #[arg(long, value_name = "NAME")]
    pub stack: String,
    /// The pulumi binary (default: LIFT_PULUMI, then PATH).
    #[arg(long, value_name = "PATH")]
    pub pulumi: Option<PathBuf>,
    /// The operation.
    #[command(subcommand)]
    pub op: DeployOp,
}

/// A `lift deploy` operation.
#[derive(Debug, Subcommand)]
pub enum DeployOp {
    /// Create the stack, or select it when it exists.
    Init,
    /// Show the changes an update would make.
    Preview,
    /// Create or update the stack's resources.
    Up,
    /// Reconcile the state with the cloud.
    Refresh,
    /// Delete every resource of the stack.
    Destroy,
    /// Print the stack's outputs.
    Outputs,
    /// Print the stack's update history.
    History,
    /// Cancel the update in progress.
    Cancel,
}

pub(crate) async fn run(_args: DeployArgs, _ctx: &Context) -> lift::Result<u8> {
    Err(crate::cli::not_available("deploy"))
}
