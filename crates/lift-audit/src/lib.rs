//! A tamper-evident, append-only audit trail, and its verifier.
//!
//! Every lift crate writes its audit events through [`lift_core::AuditSink`];
//! [`FileAuditSink`] is the sink that stores them so that an auditor can trust
//! them. Each event becomes one JSON line that carries a sequence number and
//! the hash of the previous record; the record's own hash is SHA-256 (or
//! HMAC-SHA256 under an [`AuditKey`]) over a canonical, domain-separated
//! encoding documented in `docs/audit-format.md`. Signed Ed25519
//! [`Checkpoint`]s, kept on separate storage, pin the chain's length and head,
//! so that truncation and rollback are detected too. [`verify`] streams the
//! files and names the first bad record.
//!
//! ```
//! use lift_audit::{FileAuditSink, SinkOptions, verify};
//! use lift_core::{AuditEvent, AuditSink, Resource};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let log = dir.path().join("audit.jsonl");
//!
//! let sink = FileAuditSink::open(SinkOptions::new(&log)).await?;
//! sink.record(AuditEvent::new("secrets", "put", Resource::new("secret", "prod/db"))).await?;
//! sink.close().await?; // fsync and a final signed checkpoint
//!
//! let report = verify(&[log], None, None)?; // uses audit.jsonl.checkpoint
//! assert!(report.intact);
//! assert_eq!(report.records_checked, 1);
//! # Ok(()) }
//! ```

mod checkpoint;
mod durability;
mod error;
mod event_json;
mod follow;
mod hash_ahead;
mod health;
mod key;
mod layer;
mod lines;
mod manifest;
mod options;
mod paths;
mod query;
mod record;
mod recovery;
#[cfg(feature = "s3")]
mod s3;
mod settings;
mod sink;
mod staging;
mod syncer;
mod verify;
mod writer;

/// The AWS SDK for S3 that [`S3AuditSink`] and [`verify_s3`] take clients of.
#[cfg(feature = "s3")]
pub use aws_sdk_s3;
pub use checkpoint::{Checkpoint, default_checkpoint_path};
pub use durability::{Durability, Receipt};
/// The Ed25519 public key type of checkpoints (from `ed25519-dalek`).
pub use ed25519_dalek::VerifyingKey;
pub use error::{Error, Result};
pub use follow::{FollowFrom, Follower};
pub use health::{AuditHealthCheck, FULL_VERIFY_LIMIT};
pub use key::{AuditKey, CheckpointSigner, KEY_FILE_ENV, MIN_KEY_LEN};
pub use layer::{AUDIT_TARGET, AuditForwarder, AuditLayer, LayerStats, looks_secret};
pub use manifest::{Manifest, chain_files, manifest_path};
pub use options::SinkOptions;
pub use paths::{default_signing_key_path, lock_path};
pub use query::{Filter, Query, QueryDocument, parse_time, query};
pub use record::{GENESIS, MAX_EVENT_LEN, MAX_RECORD_LEN, Record};
#[cfg(feature = "s3")]
pub use s3::{
    RetentionMode, S3AuditSink, S3Digest, S3Finding, S3FindingKind, S3SinkOptions, S3VerifyOptions,
    S3VerifyReport, S3WriterSummary, SegmentEntry, client_from_env, verify_s3,
};
pub use settings::AuditSettings;
pub use sink::FileAuditSink;
pub use verify::{
    CHECKPOINT_KEY_ACTION, CHECKPOINT_MISSING_ACTION, CheckpointReport, Failure, Finding,
    SignatureTrust, VerifyOptions, VerifyReport, verify, verify_since_checkpoint, verify_with,
};
