//! The `lift` command line.
//!
//! Exit codes (the table in docs/cli.md): 0 on success, 1 when the operation
//! failed (a failed deploy, a broken audit chain, an unhealthy report), 2 on
//! bad usage or bad input, 75 on a conflict worth retrying (a locked stack, a
//! rotation in progress).
//! With `--json`, the result is one JSON document on stdout and human text
//! goes to stderr.

// Printing goes through `output` (stdout_line, stderr_line, write_bytes), which
// ends quietly on a closed pipe; print macros are linted out (workspace lints).

mod audit;
mod audit_sink;
mod cli;
mod completions;
mod context;
mod demo;
mod deploy;
mod environments;
mod global_args;
mod health;
mod man;
mod output;
mod project;
mod s3_audit;
mod schemas;
mod secret_document;
mod secrets;

use std::process::ExitCode;

use clap::FromArgMatches as _;

pub use cli::{Cli, command};
pub use man::man_pages;
pub use output::{EXIT_CONFLICT, EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
pub use schemas::json_schemas;

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    let matches = match command().try_get_matches() {
        Ok(matches) => matches,
        Err(err) => return ExitCode::from(usage_error(&err)),
    };
    match matches.subcommand() {
        Some(("completions", sub)) => return ExitCode::from(completions::run(sub)),
        Some(("man", _)) => return ExitCode::from(man::run()),
        _ => {}
    }
    let parsed = match project::with_environment(matches) {
        Ok(parsed) => parsed,
        Err(project::ParseFailure::Usage(err)) => return ExitCode::from(usage_error(&err)),
        Err(project::ParseFailure::Config(err, json)) => {
            return ExitCode::from(output::report_error(json, &err));
        }
    };
    output::init_tracing(parsed.global.verbose, parsed.global.color);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            output::stderr_line(&format!("error: cannot start the async runtime: {err}"));
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let json = parsed.global.json;
    let code = runtime.block_on(async move {
        if let Some(env) = &parsed.environment {
            if let Err(err) = env.policy.check(&env.name, &parsed.matches) {
                return output::report_error(json, &err);
            }
        }
        if let Err(err) = parsed.create_configured_parents() {
            return output::report_error(json, &err);
        }
        let project::Parsed {
            global: _,
            matches,
            config,
            environment,
        } = parsed;
        let cli = match Cli::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(err) => return usage_error(&err),
        };
        let ctx = match context::Context::new(&cli.global, environment, config, matches).await {
            Ok(ctx) => ctx,
            Err(err) => return output::report_error(json, &err),
        };
        let result = run(cli.command, &ctx).await;
        let closed = ctx.close().await;
        match (result, closed) {
            (Ok(code), Ok(())) => code,
            (Err(err), _) | (Ok(_), Err(err)) => output::report_error(json, &err),
        }
    });
    ExitCode::from(code)
}

/// Runs a parsed command and returns its exit code.
async fn run(command: cli::Command, ctx: &context::Context) -> lift::Result<u8> {
    match command {
        cli::Command::Deploy(args) => deploy::run(args, ctx).await,
        cli::Command::Health(args) => health::run(args, ctx).await,
        cli::Command::Secrets(args) => secrets::run(args, ctx).await,
        cli::Command::Audit(args) => audit::run(args, ctx).await,
        cli::Command::Demo(args) => demo::run(args, ctx).await,
        cli::Command::Env(args) => environments::run(args, ctx),
    }
}

/// Prints a parse error, or help and version, and returns the exit code:
/// help and version go to stdout with 0, usage errors exit 2.
fn usage_error(err: &clap::Error) -> u8 {
    // `print` fails only on a closed stream, and then there is no one to tell.
    let _ = err.print();
    if err.use_stderr() {
        EXIT_USAGE
    } else {
        EXIT_OK
    }
}
