//! lift's build tasks, run as `cargo xtask <task>` (matklad's cargo-xtask convention).
//!
//! - `codegen [--check]`: renders the JSON Schemas, the CLI reference and the man pages into `docs/`.
//! - `tidy`: checks the layering rules of docs/architecture.md from `cargo metadata` and the facade's source, and that no crate has a cycle between its modules.
//! - `release --version X.Y.Z [--dry-run]`: sets every version in lockstep and packages each crate.
//! - `features`: checks the facade with each feature alone, with none and with all.
//! - `pulumi [--bin-dir]`: builds the pinned Pulumi CLI and YAML language host from `tools/` into a cache.
//! - `ci`: everything CI runs: fmt, clippy, codegen check, tidy, features and the tests (xtask's own included).
//!
//! xtask depends on lift-cli without its `aws` feature, so no task builds the AWS SDK
//! for itself; only `ci`'s cargo steps build it, for the code that uses it.

// A build tool reports on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod ci;
mod codegen;
mod features;
mod module_cycles;
mod pulumi;
mod release;
mod tidy;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::workspace::project_root;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "lift's build tasks")]
struct Args {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Render the checked-in generated files (JSON Schemas, CLI reference, man pages).
    Codegen {
        /// Fail instead of writing when a generated file is stale.
        #[arg(long)]
        check: bool,
    },
    /// Check the layering rules of docs/architecture.md (lift-core alone, feature crates on lift-core, the facade on lift-core and the feature crates without logic, lift-cli on the facade), that internal dependencies carry a version and that no crate has a cycle between its modules.
    Tidy,
    /// Set every crate's version in lockstep and package each publishable crate in dependency order.
    Release {
        /// The new version, X.Y.Z.
        #[arg(long)]
        version: String,
        /// Work on a temporary copy of the workspace and change nothing here.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the facade with each feature alone, with no feature and with all of them.
    Features,
    /// Build the pinned Pulumi CLI, its YAML language host and the Go Automation API helper from `tools/` (once per version) and print where they are.
    Pulumi {
        /// Print only the directory holding the binaries, for `PATH`.
        #[arg(long)]
        bin_dir: bool,
    },
    /// Run everything CI runs: fmt, clippy, codegen check, tidy, features and the whole test suite.
    Ci,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.task {
        Task::Codegen { check } => codegen::run(&project_root(), check),
        Task::Tidy => tidy::run(&project_root()),
        Task::Release { version, dry_run } => release::run(&project_root(), &version, dry_run),
        Task::Features => features::run(&project_root()),
        Task::Pulumi { bin_dir } => pulumi::run(&project_root(), bin_dir),
        Task::Ci => ci::run(&project_root()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
