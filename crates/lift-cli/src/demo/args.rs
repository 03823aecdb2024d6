//! The command line of `lift demo`, apart from the code that runs it: the
//! definition in `cli.rs` uses it, and the walkthrough parses a whole command
//! line with that definition.

use std::path::PathBuf;

use clap::Args;

/// Arguments of `lift demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run in DIR, which must be new or empty, instead of a fresh temporary directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Remove what the demo created at the end instead of keeping it for inspection.
    #[arg(long)]
    pub remove: bool,
}
