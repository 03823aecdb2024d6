//! What the sink promises: the [`Durability`] policy, and the [`Receipt`] that acknowledges a record.
//!
//! A leaf: the staging buffer, the writer and the syncer all speak of these.

use std::time::Duration;

use crate::record::to_hex;

/// When the sink makes records durable with fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// One write and one fsync per record; a record is acknowledged once it is on disk.
    EveryRecord,
    /// Records waiting together go out in one write and one fsync; each is
    /// acknowledged once on disk. Throughput grows with the number of concurrent writers.
    #[default]
    GroupCommit,
    /// Records waiting together go out in one write; fsync runs at most this
    /// often. A record is acknowledged once written to the operating system: it
    /// survives the process crashing, and a machine crash loses at most one interval.
    Interval(Duration),
}

/// What a durable append returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The record's sequence number.
    pub seq: u64,
    /// The record's hash.
    pub hash: [u8; 32],
}

impl Receipt {
    /// The record's hash as 64 lower-case hex digits, as stored in the log.
    pub fn hash_hex(&self) -> String {
        to_hex(&self.hash)
    }
}
