//! [`SinkOptions`]: how to open a [`FileAuditSink`](crate::FileAuditSink).

use std::path::PathBuf;
use std::sync::Arc;

use lift_core::{Clock, SystemClock};

use crate::durability::Durability;
use crate::key::AuditKey;

/// How to open a [`FileAuditSink`].
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// The live log file. Rotated segments sit beside it.
    pub path: PathBuf,
    /// The audit key: keys the chain with HMAC-SHA256.
    pub key: Option<AuditKey>,
    /// The fsync policy.
    pub durability: Durability,
    /// Write a signed checkpoint every this many records (0: only on flush and close).
    pub checkpoint_every: u64,
    /// The checkpoint file; `<log>.checkpoint` by default.
    pub checkpoint_path: Option<PathBuf>,
    /// The Ed25519 checkpoint signing key file, independent of the audit key;
    /// `<log>.signing-key` by default, created when missing.
    pub signing_key_path: Option<PathBuf>,
    /// Rotate the live file once it reaches this many bytes.
    pub max_file_bytes: Option<u64>,
    /// How many records may wait for the writer before callers wait (backpressure).
    pub channel_capacity: usize,
    /// The most records committed in one write.
    pub max_batch: usize,
    /// The checkpoint origin; `<host>:<absolute log path>` by default.
    pub origin: Option<String>,
    /// The clock stamping records and checkpoints.
    pub clock: Arc<dyn Clock>,
}

impl SinkOptions {
    /// Defaults for a log at `path`: no key, group commit, a checkpoint every 10,000 records, no rotation.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SinkOptions {
            path: path.into(),
            key: None,
            durability: Durability::default(),
            checkpoint_every: 10_000,
            checkpoint_path: None,
            signing_key_path: None,
            max_file_bytes: None,
            channel_capacity: 8192,
            max_batch: 4096,
            origin: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Sets the audit key.
    #[must_use]
    pub fn key(mut self, key: Option<AuditKey>) -> Self {
        self.key = key;
        self
    }

    /// Sets the durability policy.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the checkpoint interval in records.
    #[must_use]
    pub fn checkpoint_every(mut self, records: u64) -> Self {
        self.checkpoint_every = records;
        self
    }

    /// Sets the checkpoint file.
    #[must_use]
    pub fn checkpoint_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint_path = Some(path.into());
        self
    }

    /// Sets the checkpoint signing key file (`<log>.signing-key` by default;
    /// created with mode 0600 from the operating system's CSPRNG when missing).
    #[must_use]
    pub fn signing_key_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.signing_key_path = Some(path.into());
        self
    }

    /// Rotates files at `bytes`.
    #[must_use]
    pub fn max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = Some(bytes);
        self
    }

    /// Sets the clock.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}
