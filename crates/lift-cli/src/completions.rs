//! `lift completions SHELL`: a completion script for bash, zsh, fish,
//! PowerShell or elvish, generated from the same definition as the parser.

use clap::{Arg, ArgMatches, Command};
use clap_complete::Shell;

use crate::output::{EXIT_OK, EXIT_USAGE, stderr_line, write_bytes};

/// The `completions` subcommand.
pub(crate) fn command() -> Command {
    Command::new("completions")
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

/// The completion script for `shell`, covering every lift command.
pub(crate) fn script(shell: Shell) -> Vec<u8> {
    let mut buffer = Vec::new();
    // Rendered into memory first: the generator panics on a write error, and
    // stdout may be a pipe that the reader already closed.
    clap_complete::generate(shell, &mut crate::command(), "lift", &mut buffer);
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
