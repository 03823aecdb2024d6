//! The options every command takes (`--json`, the audit trail, `--config`,
//! `--env`, `--color`, `-v`): a leaf, so that the context and the output
//! helpers can read them without importing the command tree.

use clap::Args;

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print one JSON document on stdout; human text goes to stderr.
    #[arg(long, global = true)]
    pub json: bool,

    /// Append this command's audit events to FILE (a lift audit log).
    #[arg(long, global = true, value_name = "FILE", env = "LIFT_AUDIT_LOG")]
    pub audit_log: Option<std::path::PathBuf>,

    /// The key file of the audit chain (32 bytes or more; HMAC-SHA256 when set).
    #[arg(long, global = true, value_name = "FILE", env = "LIFT_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<std::path::PathBuf>,

    /// Where the audit log's signed checkpoints go; keep them where the log's
    /// writers cannot rewrite history (default: <audit-log>.checkpoint).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "LIFT_AUDIT_CHECKPOINT"
    )]
    pub audit_checkpoint: Option<std::path::PathBuf>,

    /// The Ed25519 key file that signs audit checkpoints, independent of the
    /// audit key (default: <audit-log>.signing-key, created on first use).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "LIFT_AUDIT_SIGNING_KEY_FILE"
    )]
    pub audit_signing_key: Option<std::path::PathBuf>,

    /// Write this command's audit events to an S3 audit trail,
    /// s3://BUCKET/PREFIX, as a writer of its own (segments under the
    /// bucket's Object Lock, digests signed with --audit-signing-key);
    /// verify it with `lift audit verify s3://BUCKET/PREFIX`.
    #[arg(
        long,
        global = true,
        value_name = "S3_URL",
        env = "LIFT_AUDIT_S3",
        conflicts_with = "audit_log"
    )]
    pub audit_s3: Option<String>,

    /// The project config file (default: the nearest lift.toml in the working
    /// directory or one of its parents).
    #[arg(long, global = true, value_name = "FILE", env = "LIFT_CONFIG")]
    pub config: Option<std::path::PathBuf>,

    /// The environment of the project config to use (an `[environments.NAME]` table).
    #[arg(long = "env", global = true, value_name = "NAME", env = "LIFT_ENV")]
    pub environment: Option<String>,

    /// When to colour output: auto (a terminal without NO_COLOR), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Log more (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal, unless `NO_COLOR` is set to a non-empty value.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}
