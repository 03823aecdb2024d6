//! `lift demo`: lift's main job end to end, on embedded defaults, in a temporary directory.

use clap::Args;

use crate::context::Context;

/// Arguments of `lift demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {}

pub(crate) async fn run(_args: DemoArgs, _ctx: &Context) -> lift::Result<u8> {
    Err(crate::cli::not_available("demo"))
}
