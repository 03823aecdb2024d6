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
mod engine;
mod events;
mod faults;
mod interrupt;
mod project;
mod secret;
mod settings;
mod stack_cmd;
mod store;
mod yaml;

use std::io::Write;
use std::path::{Path, PathBuf};

use args::Args;
use faults::Faults;
use project::Project;
use store::Backend;

/// The version printed by `pulumi version` unless `FAKE_PULUMI_VERSION` overrides it.
pub(crate) const DEFAULT_VERSION: &str = "v3.274.1";

/// How an error ends the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// A CLI-level error: `error: <message>` on stderr.
    Cli,
    /// The (fake) program failed while being evaluated; the engine reports it as a diagnostic.
    Program,
    /// Already reported (on stdout, like Pulumi's "bail" errors); only the exit code remains.
    Bail,
}

/// An error that ends the command.
#[derive(Debug, Clone)]
pub(crate) struct CliError {
    /// The message, without the `error: ` prefix.
    pub(crate) message: String,
    /// The process exit code.
    pub(crate) code: i32,
    /// How it is reported.
    pub(crate) kind: ErrorKind,
}

impl CliError {
    /// A CLI error with the generic exit code 1 (pulumi 3.227 and newer;
    /// older CLIs exited 255).
    pub(crate) fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: 1,
            kind: ErrorKind::Cli,
        }
    }

    /// The stack does not exist: exit code 6.
    pub(crate) fn stack_not_found(name: &str) -> CliError {
        CliError {
            message: format!("no stack named '{name}' found"),
            code: 6,
            kind: ErrorKind::Cli,
        }
    }

    /// A usage error (bad flags or arguments).
    pub(crate) fn usage(message: impl Into<String>) -> CliError {
        CliError::new(message)
    }

    /// A failure of the fake program itself.
    pub(crate) fn program(message: String) -> CliError {
        CliError {
            message,
            code: 1,
            kind: ErrorKind::Program,
        }
    }

    /// An error whose report was already printed.
    pub(crate) fn bail(code: i32) -> CliError {
        CliError {
            message: String::new(),
            code,
            kind: ErrorKind::Bail,
        }
    }

    /// An I/O error on a path.
    pub(crate) fn io(what: &str, path: &Path, e: &std::io::Error) -> CliError {
        CliError::new(format!("{what} {}: {e}", path.display()))
    }
}

/// Everything a command needs.
pub(crate) struct Ctx {
    /// The parsed command line.
    pub(crate) args: Args,
    /// The working directory (`--cwd` applied).
    pub(crate) cwd: PathBuf,
    /// Failure-injection settings.
    pub(crate) faults: Faults,
    /// The command words, e.g. `stack tag set`.
    pub(crate) command: String,
}

impl Ctx {
    /// The project of the working directory.
    pub(crate) fn project(&self) -> Result<Project, CliError> {
        Project::find(&self.cwd)
    }

    /// The backend.
    /// The backend, keeping stack config in the project's `Pulumi.<stack>.yaml` when there is a project.
    pub(crate) fn backend(&self) -> Result<Backend, CliError> {
        Ok(Backend::from_env()?.with_project_dir(self.project().ok().map(|p| p.dir)))
    }

    /// The stack named by `--stack`, else the selected stack.
    pub(crate) fn stack_name(
        &self,
        project: &Project,
        backend: &Backend,
    ) -> Result<String, CliError> {
        match self.args.value("stack") {
            Some(s) => {
                check_qualified(s, project, backend)?;
                normalize_stack_name(s)
            }
            None => backend.current(&project.name).ok_or_else(|| {
                CliError::new(
                    "no stack selected; please use `pulumi stack select` or `pulumi stack init` to choose one",
                )
            }),
        }
    }

    /// Emulates the diy backend's passphrase secrets manager. A stack created while a passphrase was
    /// set (`PULUMI_CONFIG_PASSPHRASE` or `PULUMI_CONFIG_PASSPHRASE_FILE`) records its fingerprint as
    /// the `encryptionsalt` of `Pulumi.<stack>.yaml`; from then on the passphrase must be given and
    /// match, as in pulumi. `FAKE_PULUMI_REQUIRE_PASSPHRASE=1` also requires one at `stack init`.
    /// Returns the fingerprint to record at `stack init`.
    ///
    /// The error says `incorrect passphrase` or `passphrase must be set …`; each caller adds what
    /// pulumi says around it.
    pub(crate) fn check_passphrase(
        &self,
        backend: &Backend,
        state: &store::StackState,
    ) -> Result<Option<String>, CliError> {
        if backend.kind != store::BackendKind::Diy || state.secrets_provider != "passphrase" {
            return Ok(None);
        }
        let required = state.passphrase_check.is_some()
            || std::env::var("FAKE_PULUMI_REQUIRE_PASSPHRASE")
                .is_ok_and(|v| v == "1" || v == "true");
        let passphrase = match std::env::var("PULUMI_CONFIG_PASSPHRASE") {
            Ok(p) => Some(p),
            Err(_) => match std::env::var_os("PULUMI_CONFIG_PASSPHRASE_FILE") {
                Some(f) => Some(std::fs::read_to_string(&f).map_err(|e| {
                    CliError::io(
                        "unable to read PULUMI_CONFIG_PASSPHRASE_FILE",
                        Path::new(&f),
                        &e,
                    )
                })?),
                None => None,
            },
        };
        let Some(passphrase) = passphrase else {
            if required {
                return Err(CliError::new(
                    "passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables",
                ));
            }
            return Ok(None);
        };
        let print = format!("fakev1:{}", store::fingerprint(&passphrase));
        match &state.passphrase_check {
            Some(expected) if *expected != print => Err(CliError::new("incorrect passphrase")),
            _ => Ok(Some(print)),
        }
    }

    /// Positional argument `i` after the command words.
    pub(crate) fn arg(&self, i: usize) -> Option<&str> {
        let skip = self.command.split(' ').count();
        self.args.positional.get(skip + i).map(String::as_str)
    }

    /// Number of positional arguments after the command words.
    pub(crate) fn arg_count(&self) -> usize {
        let skip = self.command.split(' ').count();
        self.args.positional.len().saturating_sub(skip)
    }
}

/// Refuses a qualified stack name pulumi would refuse: on a diy backend the organization must be
/// `organization`, and a project part must name this project.
pub(crate) fn check_qualified(
    raw: &str,
    project: &Project,
    backend: &Backend,
) -> Result<(), CliError> {
    let parts: Vec<&str> = raw.split('/').collect();
    if parts.len() > 1 && backend.kind == store::BackendKind::Diy && parts[0] != "organization" {
        return Err(CliError::new("organization name must be 'organization'"));
    }
    if parts.len() == 3 && parts[1] != project.name {
        return Err(CliError::new(format!(
            "could not create stack: provided project name \"{}\" doesn't match Pulumi.yaml",
            parts[1]
        )));
    }
    Ok(())
}

/// Accepts `dev`, `org/dev` and `org/project/dev`, and validates the name like Pulumi.
pub(crate) fn normalize_stack_name(raw: &str) -> Result<String, CliError> {
    let name = raw.rsplit('/').next().unwrap_or(raw);
    if raw.split('/').count() > 3 {
        return Err(CliError::new(format!(
            "could not parse stack reference '{raw}'"
        )));
    }
    if name.is_empty()
        || name.len() > 100
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(CliError::new(
            "a stack name may only contain alphanumeric, hyphens, underscores, or periods",
        ));
    }
    Ok(name.to_owned())
}

/// Prints a JSON document the way Pulumi's `ui.PrintJSON` does: two-space indentation and a newline.
///
/// Structs keep their field order (Go prints struct fields in declaration order); maps are sorted.
pub(crate) fn print_json<T: serde::Serialize + ?Sized>(ctx: &Ctx, v: &T) {
    let mut out = std::io::stdout().lock();
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".to_owned());
    if ctx.faults.garbage_json(&ctx.command) {
        // Deliberately malformed: half a document and trailing junk.
        let mut cut = (text.len() / 2).max(1).min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let _ = writeln!(out, "{} <<garbage", &text[..cut]);
        return;
    }
    let _ = writeln!(out, "{text}");
}

/// `configValueJSON` of `pkg/cmd/pulumi/config`: the value is omitted for a secret unless shown.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ConfigValueJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<String>,
    #[serde(rename = "objectValue", skip_serializing_if = "Option::is_none")]
    pub(crate) object_value: Option<serde_json::Value>,
    pub(crate) secret: bool,
}

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
    fn stack_names_are_normalized_and_validated() {
        assert_eq!(normalize_stack_name("dev").unwrap(), "dev");
        assert_eq!(normalize_stack_name("org/proj/dev").unwrap(), "dev");
        assert!(normalize_stack_name("bad name").is_err());
        assert!(normalize_stack_name("a/b/c/d").is_err());
    }

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
