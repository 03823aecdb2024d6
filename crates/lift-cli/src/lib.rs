//! The `lift` command line.
//!
//! Exit codes: 0 on success, 1 when the operation failed (a failed deploy, a
//! broken audit chain, an unhealthy report), 2 on bad usage or bad input.
//! With `--json`, the result is one JSON document on stdout and human text
//! goes to stderr.

// A command-line program prints by design.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod audit;
mod cli;
mod context;
mod demo;
mod deploy;
mod health;
mod output;
mod schemas;
mod secrets;

use std::process::ExitCode;

use clap::Parser;

pub use cli::Cli;
pub use schemas::json_schemas;

/// Exit code: the operation failed.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: bad usage or bad input.
pub const EXIT_USAGE: u8 = 2;

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with code 0; usage errors exit 2.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    output::init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let json = cli.global.json;
    let code = runtime.block_on(async move {
        let ctx = match context::Context::new(&cli.global).await {
            Ok(ctx) => ctx,
            Err(err) => return output::report_error(json, &err),
        };
        let result = cli::run(cli.command, &ctx).await;
        let closed = ctx.close().await;
        match (result, closed) {
            (Ok(code), Ok(())) => code,
            (Err(err), _) | (Ok(_), Err(err)) => output::report_error(json, &err),
        }
    });
    ExitCode::from(code)
}
