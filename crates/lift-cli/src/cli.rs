//! The command-line surface. Scripts outside the project rely on it: change it only additively.

use clap::{Parser, Subcommand};

use crate::context::Context;
use crate::global_args::GlobalArgs;

/// lift: deployment infrastructure for Rust services on AWS Lambda.
#[derive(Debug, Parser)]
#[command(name = "lift", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The lift commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy with Pulumi: init, preview, up, refresh, destroy, outputs, history, cancel, config.
    Deploy(crate::deploy::DeployArgs),
    /// Check the health of this host, of a process (--pid) or of a service (--url).
    Health(crate::health::HealthArgs),
    /// Store, read and rotate secrets.
    Secrets(crate::secrets::SecretsArgs),
    /// Verify, query and follow audit trails.
    Audit(crate::audit::AuditArgs),
    /// Walk through lift end to end on embedded defaults, in a temporary directory.
    Demo(crate::demo::DemoArgs),
    /// Show the environments of the project config (lift.toml) and what they resolve to.
    Env(crate::environments::EnvArgs),
}

/// Runs a parsed command and returns its exit code.
pub(crate) async fn run(command: Command, ctx: &Context) -> lift::Result<u8> {
    match command {
        Command::Deploy(args) => crate::deploy::run(args, ctx).await,
        Command::Health(args) => crate::health::run(args, ctx).await,
        Command::Secrets(args) => crate::secrets::run(args, ctx).await,
        Command::Audit(args) => crate::audit::run(args, ctx).await,
        Command::Demo(args) => crate::demo::run(args, ctx).await,
        Command::Env(args) => crate::environments::run(args, ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
