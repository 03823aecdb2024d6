//! `lift secrets`: store, read and rotate secrets.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::context::Context;

/// Arguments of `lift secrets`.
#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// The secret store directory.
    #[arg(long, value_name = "DIR", env = "LIFT_SECRETS_STORE")]
    pub store: Option<PathBuf>,
    /// The 32-byte key file that encrypts the store.
    #[arg(long, value_name = "FILE", env = "LIFT_SECRETS_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Store values unencrypted (development only; logged at warn level).
    #[arg(long)]
    pub plaintext: bool,
    /// The operation.
    #[command(subcommand)]
    pub op: SecretsOp,
}

/// A `lift secrets` operation.
#[derive(Debug, Subcommand)]
pub enum SecretsOp {
    /// Write a new version; the value is read from stdin.
    Put {
        /// The secret name.
        name: String,
    },
    /// Print a version's value.
    Get {
        /// The secret name.
        name: String,
        /// The staging label to read.
        #[arg(long, default_value = "AWSCURRENT")]
        stage: String,
    },
    /// List secrets.
    List,
    /// Show a secret's versions and labels.
    Describe {
        /// The secret name.
        name: String,
    },
    /// Rotate a secret through the four steps.
    Rotate {
        /// The secret name.
        name: String,
        /// The kind of value to generate (default: detected from the current value).
        #[arg(long)]
        kind: Option<String>,
    },
    /// Show a secret's rotation history (never values).
    History {
        /// The secret name.
        name: String,
    },
    /// Delete a secret.
    Delete {
        /// The secret name.
        name: String,
    },
}

pub(crate) async fn run(_args: SecretsArgs, _ctx: &Context) -> lift::Result<u8> {
    Err(crate::cli::not_available("secrets"))
}
