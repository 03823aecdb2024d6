//! The command-line surface: the clap definition of every command, and the
//! whole `lift` command line built from it. Scripts outside the project rely
//! on it: change it only additively.
//!
//! It only defines; `lib.rs` runs what it parses.

use clap::{Arg, CommandFactory as _, Parser, Subcommand};
use clap_complete::Shell;

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

/// The whole `lift` command line: [`Cli`] plus the commands about the command
/// line itself (`completions`, `man`), which need the finished definition.
pub fn command() -> clap::Command {
    Cli::command()
        .subcommand(completions_command())
        .subcommand(man_command())
}

/// The `completions` subcommand; `completions.rs` runs it.
fn completions_command() -> clap::Command {
    clap::Command::new("completions")
        .about("Print a shell completion script (bash, zsh, fish, powershell, elvish)")
        .long_about(
            "Print a shell completion script on stdout.\n\n\
             bash:       lift completions bash > ~/.local/share/bash-completion/completions/lift\n\
             zsh:        lift completions zsh > \"${fpath[1]}/_lift\"\n\
             fish:       lift completions fish > ~/.config/fish/completions/lift.fish\n\
             powershell: lift completions powershell | Out-String | Invoke-Expression",
        )
        .arg(
            Arg::new("shell")
                .value_name("SHELL")
                .help("The shell to complete for")
                .required(true)
                .value_parser(clap::value_parser!(Shell)),
        )
}

/// The `man` subcommand; `man.rs` runs it.
fn man_command() -> clap::Command {
    clap::Command::new("man")
        .about("Print lift's man page (roff) on stdout; read it with `lift man | man -l -`")
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
