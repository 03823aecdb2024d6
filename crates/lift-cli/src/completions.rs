//! `lift completions SHELL`: a completion script for bash, zsh, fish,
//! PowerShell or elvish, generated from the same definition as the parser
//! (`cli.rs` defines the subcommand).

use clap::ArgMatches;
use clap_complete::Shell;

use crate::cli::command;
use crate::output::{EXIT_OK, EXIT_USAGE, stderr_line, write_bytes};

/// The completion script for `shell`, covering every lift command.
pub(crate) fn script(shell: Shell) -> Vec<u8> {
    let mut buffer = Vec::new();
    // Rendered into memory first: the generator panics on a write error, and
    // stdout may be a pipe that the reader already closed.
    clap_complete::generate(shell, &mut command(), "lift", &mut buffer);
    buffer
}

/// Prints the script for the shell in `matches` and returns the exit code.
pub(crate) fn run(matches: &ArgMatches) -> u8 {
    match matches.get_one::<Shell>("shell") {
        Some(shell) => {
            write_bytes(&mut std::io::stdout().lock(), &script(*shell));
            EXIT_OK
        }
        None => {
            stderr_line(&"error: name a shell: bash, zsh, fish, powershell or elvish");
            EXIT_USAGE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_every_command() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell] {
            let script = String::from_utf8_lossy(&script(shell)).into_owned();
            for command in [
                "deploy",
                "health",
                "secrets",
                "audit",
                "demo",
                "completions",
            ] {
                assert!(script.contains(command), "{shell}: {command} missing");
            }
        }
    }
}
