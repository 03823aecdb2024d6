//! [`SinkOptions`]: how to open a [`FileAuditSink`](crate::FileAuditSink).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lift_core::{Clock, SystemClock};

use crate::durability::Durability;
use crate::key::AuditKey;

/// How to open a [`FileAuditSink`](crate::FileAuditSink).
///
/// Built with [`SinkOptions::new`] and setters named after the option, so
/// that a new option never breaks a caller:
///
/// ```
/// use lift_audit::{Durability, SinkOptions};
///
/// let options = SinkOptions::new("audit.jsonl")
///     .durability(Durability::EveryRecord)
///     .checkpoint_every(1_000)
///     .max_file_bytes(64 << 20);
/// assert_eq!(options.path().to_str(), Some("audit.jsonl"));
/// ```
#[derive(Debug, Clone)]
pub struct SinkOptions {
    pub(crate) path: PathBuf,
    pub(crate) key: Option<AuditKey>,
    pub(crate) durability: Durability,
    pub(crate) checkpoint_every: u64,
    pub(crate) checkpoint_path: Option<PathBuf>,
    pub(crate) signing_key_path: Option<PathBuf>,
    pub(crate) max_file_bytes: Option<u64>,
    pub(crate) staging_capacity: usize,
    pub(crate) max_batch: usize,
    pub(crate) origin: Option<String>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl SinkOptions {
    /// Defaults for a log at `path` (the live file; rotated segments sit
    /// beside it): no key, group commit, a checkpoint every 10,000 records,
    /// no rotation, room for 8,192 staged records, at most 4,096 records per write.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SinkOptions {
            path: path.into(),
            key: None,
            durability: Durability::default(),
            checkpoint_every: 10_000,
            checkpoint_path: None,
            signing_key_path: None,
            max_file_bytes: None,
            staging_capacity: 8192,
            max_batch: 4096,
            origin: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The live log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets the audit key, which keys the chain with HMAC-SHA256 (`None`: plain SHA-256).
    #[must_use]
    pub fn key(mut self, key: Option<AuditKey>) -> Self {
        self.key = key;
        self
    }

    /// Sets the fsync policy.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Writes a signed checkpoint every `records` records (0: only on flush and close).
    #[must_use]
    pub fn checkpoint_every(mut self, records: u64) -> Self {
        self.checkpoint_every = records;
        self
    }

    /// Sets the checkpoint file (`<log>.checkpoint` by default).
    #[must_use]
    pub fn checkpoint_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint_path = Some(path.into());
        self
    }

    /// Sets the checkpoint signing key file (`<log>.signing-key` by default;
    /// created with mode 0600 from the operating system's CSPRNG when missing).
    /// It is independent of the audit key.
    #[must_use]
    pub fn signing_key_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.signing_key_path = Some(path.into());
        self
    }

    /// Rotates the live file once it reaches `bytes`.
    #[must_use]
    pub fn max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = Some(bytes);
        self
    }

    /// Sets how many records may wait in the staging buffer before callers
    /// wait for room (the backpressure; at least 1).
    #[must_use]
    pub fn staging_capacity(mut self, records: usize) -> Self {
        self.staging_capacity = records;
        self
    }

    /// Sets the most records committed in one write (at least 1).
    #[must_use]
    pub fn max_batch(mut self, records: usize) -> Self {
        self.max_batch = records;
        self
    }

    /// Sets the origin named in checkpoints (`<host>:<absolute log path>` by default).
    #[must_use]
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Sets the clock stamping records and checkpoints.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}
