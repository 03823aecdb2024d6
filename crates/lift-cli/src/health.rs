//! `lift health`: run the standard checks on this machine.

use clap::Args;

use crate::context::Context;

/// Arguments of `lift health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Re-run the checks every SECONDS until interrupted.
    #[arg(long, value_name = "SECONDS")]
    pub watch: Option<u64>,
}

pub(crate) async fn run(_args: HealthArgs, _ctx: &Context) -> lift::Result<u8> {
    Err(crate::cli::not_available("health"))
}
