//! A fake `pulumi` CLI for testing `lift-pulumi` on machines without Pulumi.
//!
//! It emulates the command surface and JSON output of Pulumi 3.x as Pulumi's Go Automation API calls it,
//! keeps its state in JSON files, evaluates a small `Pulumi.yaml` program itself and writes realistic
//! engine event logs. Environment variables inject failures. See `README.md` beside this file.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line binary speaks on stdout and stderr"
)]

mod args;
mod clock;
mod config_cmd;
mod context;
mod engine;
mod error;
mod events;
mod faults;
mod interrupt;
mod output;
mod project;
mod secret;
mod settings;
mod stack_cmd;
mod stack_name;
mod store;
mod yaml;

use std::io::Write;

use args::Args;
use context::Ctx;
use error::{CliError, ErrorKind};
use faults::Faults;
use output::print_json;

const COMMANDS: &[&[&str]] = &[
    &["stack", "tag", "get"],
    &["stack", "tag", "set"],
    &["stack", "tag", "rm"],
    &["stack", "tag", "ls"],
    &["stack", "init"],
    &["stack", "select"],
    &["stack", "ls"],
    &["stack", "rm"],
    &["stack", "export"],
    &["stack", "import"],
    &["stack", "output"],
    &["stack", "history"],
    &["stack", "unselect"],
    &["stack"],
    &["config", "get"],
    &["config", "set"],
    &["config", "set-all"],
    &["config", "rm"],
    &["config", "rm-all"],
    &["config"],
    &["plugin", "ls"],
    &["version"],
    &["whoami"],
    &["cancel"],
    &["preview"],
    &["up"],
    &["update"],
    &["refresh"],
    &["destroy"],
    &["install"],
];

fn command_of(positional: &[String]) -> Option<String> {
    COMMANDS
        .iter()
        .find(|words| {
            words.len() <= positional.len() && words.iter().zip(positional).all(|(w, p)| w == p)
        })
        .map(|words| words.join(" "))
}

fn run(argv: Vec<String>) -> Result<(), CliError> {
    let mut args = Args::parse(&argv)?;
    if command_of(&args.positional).as_deref() == Some("stack ls") {
        args = Args::parse_with(&argv, &[('p', "project"), ('t', "tag")])?;
    }
    let faults = Faults::from_env();
    let mut cwd =
        std::env::current_dir().map_err(|e| CliError::new(format!("getting cwd: {e}")))?;
    if let Some(dir) = args.value("cwd") {
        cwd = cwd.join(dir);
        if !cwd.is_dir() {
            return Err(CliError::new(format!(
                "changing the working directory: chdir {}: no such file or directory",
                cwd.display()
            )));
        }
    }
    if args.positional.is_empty() || args.bool("help") {
        println!(
            "Pulumi - Modern Infrastructure as Code (fake for tests)\n\nUsage:\n  pulumi [command]\n\nAvailable Commands:\n  cancel, config, destroy, preview, refresh, stack, up, version, whoami"
        );
        return Ok(());
    }
    let Some(command) = command_of(&args.positional) else {
        return Err(CliError::usage(format!(
            "unknown command \"{}\" for \"pulumi\"",
            args.positional[0]
        )));
    };
    let ctx = Ctx {
        args,
        cwd,
        faults,
        command,
    };
    ctx.faults.before_command(&ctx.command)?;
    match ctx.command.as_str() {
        "version" => {
            println!("{}", ctx.faults.version());
            Ok(())
        }
        "whoami" => stack_cmd::whoami(&ctx),
        "cancel" => stack_cmd::cancel(&ctx),
        "preview" => engine::run(&ctx, engine::Operation::Preview),
        "up" | "update" => engine::run(&ctx, engine::Operation::Up),
        "refresh" => engine::run(&ctx, engine::Operation::Refresh),
        "destroy" => engine::run(&ctx, engine::Operation::Destroy),
        "install" => Ok(()),
        "plugin ls" => {
            if ctx.args.bool("json") {
                print_json(&ctx, &serde_json::json!([]));
            }
            Ok(())
        }
        c if c.starts_with("config") => config_cmd::run(&ctx),
        _ => stack_cmd::run(&ctx),
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    faults::record_invocation(&argv);
    let code = match run(argv) {
        Ok(()) => 0,
        Err(e) => {
            match e.kind {
                ErrorKind::Cli | ErrorKind::Program => {
                    let _ = std::io::stdout().flush();
                    eprintln!("error: {}", e.message);
                }
                ErrorKind::Bail => {}
            }
            e.code
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_command_path_wins() {
        let p = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            command_of(&p("stack tag set k v")).as_deref(),
            Some("stack tag set")
        );
        assert_eq!(command_of(&p("stack")).as_deref(), Some("stack"));
        assert_eq!(
            command_of(&p("config set k")).as_deref(),
            Some("config set")
        );
        assert_eq!(command_of(&p("frob")), None);
    }
}
