//! What a project config file (the lift CLI's `lift.toml`) says about an
//! environment's audit trail. The CLI reads the file and opens the sink with
//! these values; the library never reads files or variables for them.

use std::path::PathBuf;

/// The `[environments.NAME.audit]` table.
///
/// ```
/// let settings: lift_audit::AuditSettings =
///     serde_json::from_str(r#"{"log": "audit.jsonl", "key_file": "audit.key"}"#)?;
/// assert!(settings.checkpoint.is_none());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditSettings {
    /// The audit log file.
    #[serde(default)]
    pub log: Option<PathBuf>,
    /// The chain's key file (HMAC-SHA256; 32 bytes or more).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Where signed checkpoints go (default: `<log>.checkpoint`); keep them
    /// where the log's writers cannot rewrite history.
    #[serde(default)]
    pub checkpoint: Option<PathBuf>,
    /// The Ed25519 key file that signs checkpoints (default: `<log>.signing-key`),
    /// and an S3 trail's digests (required with `s3`).
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
    /// An S3 audit trail, `s3://BUCKET/PREFIX` (see `S3AuditSink`), instead of `log`:
    /// each lift process writes its own chain of segments there.
    #[serde(default)]
    pub s3: Option<String>,
}
