//! `lift deploy`: drive the Pulumi CLI.
//!
//! - `args`: the command line;
//! - `diff`: the property changes of a step, for `[diff: ...]`, `--diff` and `--json`;
//! - `run`: what each command does;
//! - `documents`: the `--json` documents;
//! - `render`: the live view and the human summary;
//! - `signals`: SIGINT, SIGTERM and SIGHUP while an operation runs.

mod args;
mod diff;
mod documents;
mod render;
mod run;
mod signals;

pub(crate) use args::DeployArgs;
pub(crate) use documents::{
    ConfigDocument, DeployDocument, DeployFailureDocument, HistoryDocument, OutputsDocument,
    StackActionDocument, StacksDocument, TagsDocument,
};
pub(crate) use run::run;
