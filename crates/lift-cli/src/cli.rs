//! The command-line surface. Scripts outside the project rely on it: change it only additively.

use clap::{Args, Parser, Subcommand};

use crate::context::Context;

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

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print one JSON document on stdout; human text goes to stderr.
    #[arg(long, global = true)]
    pub json: bool,

    /// Append this command's audit events to FILE (a lift audit log).
    #[arg(long, global = true, value_name = "FILE", env = "LIFT_AUDIT_LOG")]
    pub audit_log: Option<std::path::PathBuf>,

    /// The key file of the audit chain (32 bytes or more; HMAC-SHA256 when set).
    #[arg(long, global = true, value_name = "FILE", env = "LIFT_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<std::path::PathBuf>,

    /// Where the audit log's signed checkpoints go; keep them where the log's
    /// writers cannot rewrite history (default: <audit-log>.checkpoint).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "LIFT_AUDIT_CHECKPOINT"
    )]
    pub audit_checkpoint: Option<std::path::PathBuf>,

    /// The Ed25519 key file that signs audit checkpoints, independent of the
    /// audit key (default: <audit-log>.signing-key, created on first use).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "LIFT_AUDIT_SIGNING_KEY_FILE"
    )]
    pub audit_signing_key: Option<std::path::PathBuf>,

    /// Write this command's audit events to an S3 audit trail,
    /// s3://BUCKET/PREFIX, as a writer of its own (segments under the
    /// bucket's Object Lock, digests signed with --audit-signing-key);
    /// verify it with `lift audit verify s3://BUCKET/PREFIX`.
    #[arg(
        long,
        global = true,
        value_name = "S3_URL",
        env = "LIFT_AUDIT_S3",
        conflicts_with = "audit_log"
    )]
    pub audit_s3: Option<String>,

    /// The project config file (default: the nearest lift.toml in the working
    /// directory or one of its parents).
    #[arg(long, global = true, value_name = "FILE", env = "LIFT_CONFIG")]
    pub config: Option<std::path::PathBuf>,

    /// The environment of the project config to use (an `[environments.NAME]` table).
    #[arg(long = "env", global = true, value_name = "NAME", env = "LIFT_ENV")]
    pub environment: Option<String>,

    /// When to colour output: auto (a terminal without NO_COLOR), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Log more (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal, unless `NO_COLOR` is set to a non-empty value.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
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
