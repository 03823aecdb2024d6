//! The command line of `lift deploy`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use lift::pulumi::OpOptions;

/// Arguments of `lift deploy`.
///
/// `--cwd`, `--stack`, `--backend-url`, `--pulumi` and `--grace` are accepted before or after
/// the subcommand: `lift deploy --cwd infra init --stack dev` works.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The Pulumi project directory.
    #[arg(long, value_name = "DIR", default_value = ".", global = true)]
    pub cwd: PathBuf,
    /// The stack: `dev`, `org/dev` or `org/project/dev`, resolved as pulumi
    /// resolves it (on DIY backends the organization is `organization`).
    /// Every command passes it explicitly; the globally selected stack is never used.
    #[arg(long, value_name = "NAME", global = true, env = "LIFT_STACK")]
    pub stack: Option<String>,
    /// The pulumi binary (default: LIFT_PULUMI, then PATH).
    #[arg(long, value_name = "PATH", global = true)]
    pub pulumi: Option<PathBuf>,
    /// The state backend, such as `s3://bucket/prefix` or `file://DIR`
    /// (default: PULUMI_BACKEND_URL, then pulumi's own login).
    #[arg(long, value_name = "URL", global = true)]
    pub backend_url: Option<String>,
    /// Seconds an interrupted pulumi gets to stop (SIGINT) before it is killed.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, global = true)]
    pub grace: u64,
    /// The operation.
    #[command(subcommand)]
    pub op: DeployOp,
}

/// A `lift deploy` operation.
#[derive(Debug, Subcommand)]
pub enum DeployOp {
    /// Create the stack, or select it when it exists (never changes the globally selected stack).
    Init {
        /// The stack's secrets provider: passphrase, awskms://..., azurekeyvault://..., gcpkms://..., hashivault://...
        #[arg(long, value_name = "URL")]
        secrets_provider: Option<String>,
    },
    /// List the project's stacks.
    Ls,
    /// Delete the stack, its configuration and its history.
    Rm {
        /// Delete it even if it still has resources.
        #[arg(long)]
        force: bool,
        /// Confirm the deletion (required: this cannot be undone).
        #[arg(long)]
        yes: bool,
    },
    /// Show the changes an update would make.
    Preview(OpArgs),
    /// Create or update the stack's resources.
    Up(OpArgs),
    /// Reconcile the state with the cloud.
    Refresh(OpArgs),
    /// Delete every resource of the stack.
    Destroy(OpArgs),
    /// Print the stack's outputs.
    Outputs {
        /// Print secret values instead of "[secret]".
        #[arg(long)]
        show_secrets: bool,
    },
    /// Print the stack's update history, newest first.
    History {
        /// How many updates to show (0 shows none).
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
    /// Cancel the update running on the stack.
    ///
    /// On the Pulumi Cloud the service cancels it. On a DIY backend (file, S3)
    /// pulumi can only break the lock: lift interrupts an update that a lift
    /// process on this machine runs, refuses when another live pulumi holds
    /// the lock (unless --force), and otherwise says that it broke the lock.
    Cancel {
        /// Break the lock even when a live pulumi that lift did not start holds it.
        #[arg(long)]
        force: bool,
    },
    /// Write the stack's state (secrets stay encrypted) to a file, or to stdout.
    Export {
        /// The file to write (default: stdout).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Replace the stack's state with a file written by `export`.
    Import {
        /// The file to read.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Read and write the stack's configuration.
    Config {
        /// The config command.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Read and write the stack's tags.
    Tag {
        /// The tag command.
        #[command(subcommand)]
        command: TagCommand,
    },
}

/// A `lift deploy config` command.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print one value.
    Get {
        /// The key, `key` or `namespace:key`.
        key: String,
        /// Treat the key as a property path (`a.b[0]`).
        #[arg(long)]
        path: bool,
        /// Print a secret value instead of "[secret]".
        #[arg(long)]
        show_secrets: bool,
    },
    /// Set a value, read from stdin byte for byte (never from the command line).
    Set {
        /// The key, `key` or `namespace:key`.
        key: String,
        /// Store the value encrypted.
        #[arg(long, conflicts_with = "plaintext")]
        secret: bool,
        /// Store the value in plain text even if it looks like a secret.
        #[arg(long)]
        plaintext: bool,
        /// Treat the key as a property path (`a.b[0]`).
        #[arg(long)]
        path: bool,
    },
    /// Remove a value.
    Rm {
        /// The key.
        key: String,
        /// Treat the key as a property path.
        #[arg(long)]
        path: bool,
    },
    /// List every value (secrets as "[secret]", and not decrypted, unless --show-secrets).
    Ls {
        /// Decrypt and print secret values.
        #[arg(long)]
        show_secrets: bool,
    },
}

/// A `lift deploy tag` command.
#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// Print one tag.
    Get {
        /// The tag's name.
        name: String,
    },
    /// Set a tag.
    Set {
        /// The tag's name.
        name: String,
        /// Its value.
        value: String,
    },
    /// Remove a tag.
    Rm {
        /// The tag's name.
        name: String,
    },
    /// List every tag.
    Ls,
}

/// The options of preview, up, refresh and destroy.
#[derive(Debug, Args)]
pub struct OpArgs {
    /// The update message.
    #[arg(long, short)]
    pub message: Option<String>,
    /// Limit the operation to this URN (repeatable).
    #[arg(long, value_name = "URN")]
    pub target: Vec<String>,
    /// Include the targets' dependents.
    #[arg(long)]
    pub target_dependents: bool,
    /// Leave this URN out (repeatable).
    #[arg(long, value_name = "URN")]
    pub exclude: Vec<String>,
    /// Leave the excluded resources' dependents out too.
    #[arg(long)]
    pub exclude_dependents: bool,
    /// Force the replacement of this URN (repeatable).
    #[arg(long, value_name = "URN")]
    pub replace: Vec<String>,
    /// How many resource operations run at once.
    #[arg(long)]
    pub parallel: Option<u32>,
    /// Fail if the operation would change anything.
    #[arg(long)]
    pub expect_no_changes: bool,
    /// Refresh the state first.
    #[arg(long)]
    pub refresh: bool,
    /// Show a detailed diff.
    #[arg(long)]
    pub diff: bool,
    /// Keep going after a resource fails.
    #[arg(long)]
    pub continue_on_error: bool,
    /// Use this stack config file.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Interrupt the operation after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Print secret output values instead of "[secret]".
    #[arg(long)]
    pub show_secrets: bool,
    /// Go ahead without asking: up, refresh and destroy need it when stdin is not a terminal.
    #[arg(long, short)]
    pub yes: bool,
    /// The stack's name, typed out: destroy needs it with --yes in an
    /// environment whose policy has confirm_destroy (production-class ones).
    #[arg(long, value_name = "NAME")]
    pub confirm_stack: Option<String>,
}

impl OpArgs {
    pub(crate) fn options(&self) -> OpOptions {
        let mut options = OpOptions::default()
            .target_dependents(self.target_dependents)
            .exclude_dependents(self.exclude_dependents)
            .expect_no_changes(self.expect_no_changes)
            .refresh(self.refresh)
            .diff(self.diff)
            .continue_on_error(self.continue_on_error);
        if let Some(message) = &self.message {
            options = options.message(message.clone());
        }
        for urn in &self.target {
            options = options.target(urn.clone());
        }
        for urn in &self.exclude {
            options = options.exclude(urn.clone());
        }
        for urn in &self.replace {
            options = options.replace(urn.clone());
        }
        if let Some(n) = self.parallel {
            options = options.parallel(n);
        }
        if let Some(path) = &self.config_file {
            options = options.config_file(path.clone());
        }
        if let Some(seconds) = self.timeout {
            options = options.timeout(Duration::from_secs(seconds));
        }
        options
    }

    /// The same selection for the preview shown before a confirmation: what
    /// the operation takes and a preview does not is left out.
    pub(crate) fn preview_options(&self) -> OpOptions {
        let mut options = OpOptions::default()
            .target_dependents(self.target_dependents)
            .exclude_dependents(self.exclude_dependents)
            .refresh(self.refresh)
            .diff(self.diff);
        for urn in &self.target {
            options = options.target(urn.clone());
        }
        for urn in &self.exclude {
            options = options.exclude(urn.clone());
        }
        for urn in &self.replace {
            options = options.replace(urn.clone());
        }
        if let Some(n) = self.parallel {
            options = options.parallel(n);
        }
        if let Some(path) = &self.config_file {
            options = options.config_file(path.clone());
        }
        options
    }
}
