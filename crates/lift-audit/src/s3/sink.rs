//! `S3AuditSink`: a writer's chain in S3 segments under Object Lock, with signed digests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectLockMode;
use lift_core::{AuditEvent, AuditSink, Clock, SystemClock};

use super::digest::{S3Digest, SegmentEntry, sha256_hex};
use super::{digest_key, remote, segment_key, writer_prefix};
use crate::durability::Receipt;
use crate::error::{Error, Result};
use crate::event_json::encode_event;
use crate::key::{AuditKey, CheckpointSigner};
use crate::record::{GENESIS, Hasher, encode_line, format_time, to_hex};

/// The Object Lock mode of the objects the sink writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionMode {
    /// Users with `s3:BypassGovernanceRetention` can still overwrite or delete.
    Governance,
    /// No one, not even the root user, can until the retention date passes.
    Compliance,
}

/// How to open an [`S3AuditSink`].
#[derive(Debug, Clone)]
pub struct S3SinkOptions {
    bucket: String,
    prefix: String,
    writer: String,
    key: Option<AuditKey>,
    signer: CheckpointSigner,
    retention: Option<(RetentionMode, Duration)>,
    segment_records: usize,
    segment_interval: Duration,
    digest_every: u64,
    digest_interval: Duration,
    clock: Arc<dyn Clock>,
}

impl S3SinkOptions {
    /// A writer under `s3://bucket/prefix`, signing digests with `signer`.
    ///
    /// Defaults: a new writer id (`<host>-<pid>-<8 random hex digits>`), no
    /// audit key, the bucket's default retention, a segment every 1,000
    /// records or 60 s, a digest every 10,000 records or 300 s.
    pub fn new(bucket: impl Into<String>, prefix: &str, signer: CheckpointSigner) -> Self {
        let mut random = [0u8; 4];
        // With no randomness the pid and host still tell most writers apart;
        // `open` refuses an id that is already in use.
        let _ = lift_core::fs::random_bytes(&mut random);
        let origin = lift_core::Origin::current();
        let writer = sanitize(&format!(
            "{}-{}-{}",
            origin.host,
            origin.pid,
            hex::encode(random)
        ));
        S3SinkOptions {
            bucket: bucket.into(),
            prefix: normalize_prefix(prefix),
            writer,
            key: None,
            signer,
            retention: None,
            segment_records: 1_000,
            segment_interval: Duration::from_secs(60),
            digest_every: 10_000,
            digest_interval: Duration::from_secs(300),
            clock: Arc::new(SystemClock),
        }
    }

    /// Sets the writer id: letters, digits, `.`, `_` and `-`, at most 128; unique per writer.
    #[must_use]
    pub fn writer(mut self, writer: impl Into<String>) -> Self {
        self.writer = writer.into();
        self
    }

    /// Sets the audit key, which keys the chain with HMAC-SHA256.
    #[must_use]
    pub fn key(mut self, key: Option<AuditKey>) -> Self {
        self.key = key;
        self
    }

    /// Puts every object under Object Lock `mode` for `period` (default: the bucket's default retention).
    #[must_use]
    pub fn retention(mut self, mode: RetentionMode, period: Duration) -> Self {
        self.retention = Some((mode, period));
        self
    }

    /// Writes a segment once this many records wait (at least 1).
    #[must_use]
    pub fn segment_records(mut self, records: usize) -> Self {
        self.segment_records = records.max(1);
        self
    }

    /// Writes a segment when a record arrives this long after the segment's first one.
    #[must_use]
    pub fn segment_interval(mut self, interval: Duration) -> Self {
        self.segment_interval = interval;
        self
    }

    /// Writes a digest once this many records follow the last one (at least 1).
    #[must_use]
    pub fn digest_every(mut self, records: u64) -> Self {
        self.digest_every = records.max(1);
        self
    }

    /// Writes a digest when a segment is written this long after the last digest.
    #[must_use]
    pub fn digest_interval(mut self, interval: Duration) -> Self {
        self.digest_interval = interval;
        self
    }

    /// Sets the clock stamping records, digests and retention dates.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The writer id.
    pub fn writer_id(&self) -> &str {
        &self.writer
    }
}

/// `prefix` with one trailing `/` (empty stays empty).
pub(crate) fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect()
}

fn valid_writer(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && sanitize(id) == id && id != "." && id != ".."
}

/// The writer's chain and what it has not yet written.
#[derive(Debug)]
struct State {
    hasher: Hasher,
    seq: u64,
    head: [u8; 32],
    /// Record lines not yet in a segment.
    buf: Vec<u8>,
    buf_first_seq: u64,
    buf_records: usize,
    buf_started: Option<Instant>,
    next_segment: u64,
    /// Segments written since the last digest.
    undigested: Vec<SegmentEntry>,
    records_since_digest: u64,
    last_digest: Instant,
    next_digest: u64,
    previous_digest: Option<String>,
    closed: bool,
}

/// An audit sink for fleets (AWS Lambda): each writer keeps its own hash
/// chain in S3, in segment objects under Object Lock, and signs digests that
/// name its segments' SHA-256 hashes and the previous digest, the way
/// CloudTrail's digest files do. Writers never coordinate.
///
/// Invariants: a record is in S3 once its segment is written (when
/// `segment_records` records wait, on [`S3AuditSink::flush`], or on
/// [`S3AuditSink::close`]); a failed write leaves the records buffered for the
/// next attempt; segment and digest numbers have no gaps. Call `flush` at the
/// end of each Lambda invocation: a frozen instance may never run again.
#[derive(Debug, Clone)]
pub struct S3AuditSink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    options: S3SinkOptions,
    state: tokio::sync::Mutex<State>,
}

impl S3AuditSink {
    /// Starts a writer. Fails when its id is not valid or already has objects
    /// under the prefix (two writers must never share a chain).
    pub async fn open(client: Client, options: S3SinkOptions) -> Result<Self> {
        if !valid_writer(&options.writer) {
            return Err(Error::InvalidInput(format!(
                "audit writer id {:?} is not valid; use letters, digits, '.', '_' and '-' (at most 128)",
                options.writer
            )));
        }
        let prefix = writer_prefix(&options.prefix, &options.writer);
        let span = tracing::info_span!("s3_audit_open", bucket = %options.bucket, prefix = %prefix);
        let _entered = span.enter();
        let listed = client
            .list_objects_v2()
            .bucket(&options.bucket)
            .prefix(&prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| remote("list", &options.bucket, &prefix, &e))?;
        if listed.key_count().unwrap_or(0) > 0 || !listed.contents().is_empty() {
            return Err(Error::InvalidInput(format!(
                "audit writer {} already has objects under s3://{}/{prefix}; give each writer its own id",
                options.writer, options.bucket
            )));
        }
        let state = State {
            hasher: Hasher::new(options.key.as_ref()),
            seq: 0,
            head: GENESIS,
            buf: Vec::new(),
            buf_first_seq: 1,
            buf_records: 0,
            buf_started: None,
            next_segment: 1,
            undigested: Vec::new(),
            records_since_digest: 0,
            last_digest: Instant::now(),
            next_digest: 1,
            previous_digest: None,
            closed: false,
        };
        Ok(S3AuditSink {
            inner: Arc::new(Inner {
                client,
                options,
                state: tokio::sync::Mutex::new(state),
            }),
        })
    }

    /// The writer id.
    pub fn writer(&self) -> &str {
        &self.inner.options.writer
    }

    /// Chains one event. It reaches S3 with its segment: at once when the
    /// segment is full or old enough, otherwise at the next flush.
    pub async fn append(&self, event: AuditEvent) -> Result<Receipt> {
        let mut bytes = Vec::new();
        encode_event(&event, &mut bytes)?;
        drop(event);
        let options = &self.inner.options;
        let mut state = self.inner.state.lock().await;
        if state.closed {
            return Err(self.closed());
        }
        let time = format_time(options.clock.now());
        let seq = state.seq + 1;
        let prev = state.head;
        let State { buf, hasher, .. } = &mut *state;
        let hash = encode_line(buf, hasher, seq, &time, &prev, &bytes);
        if state.buf_records == 0 {
            state.buf_first_seq = seq;
            state.buf_started = Some(Instant::now());
        }
        state.seq = seq;
        state.head = hash;
        state.buf_records += 1;
        let due = state.buf_records >= options.segment_records
            || state
                .buf_started
                .is_some_and(|t| t.elapsed() >= options.segment_interval);
        if due {
            self.write_segment(&mut state).await?;
            let digest_due = state.records_since_digest >= options.digest_every
                || state.last_digest.elapsed() >= options.digest_interval;
            if digest_due {
                self.write_digest(&mut state, false).await?;
            }
        }
        Ok(Receipt { seq, hash })
    }

    /// Writes the waiting records as a segment and a digest covering every
    /// segment so far. Call it at the end of each Lambda invocation.
    pub async fn flush(&self) -> Result<()> {
        let mut state = self.inner.state.lock().await;
        if state.closed {
            return Err(self.closed());
        }
        self.write_segment(&mut state).await?;
        if !state.undigested.is_empty() {
            self.write_digest(&mut state, false).await?;
        }
        Ok(())
    }

    /// Flushes and writes a final digest marking the chain closed; later calls fail.
    pub async fn close(&self) -> Result<()> {
        let mut state = self.inner.state.lock().await;
        if state.closed {
            return Ok(());
        }
        self.write_segment(&mut state).await?;
        self.write_digest(&mut state, true).await?;
        state.closed = true;
        Ok(())
    }

    /// Closes the sink when the process receives SIGTERM (Lambda sends it to
    /// a function with extensions before shutting the instance down, and ECS
    /// and Kubernetes before stopping a task).
    ///
    /// Installing the handler replaces SIGTERM's default action: the process
    /// no longer ends on SIGTERM by itself. Await the returned task and exit
    /// if the process should stop. Needs a tokio runtime with I/O enabled.
    pub fn close_on_sigterm(&self) -> Result<tokio::task::JoinHandle<Result<()>>> {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| Error::io("listen for SIGTERM for", "s3 audit sink", e))?;
        let sink = self.clone();
        Ok(tokio::spawn(async move {
            terminate.recv().await;
            tracing::info!(writer = %sink.writer(), "SIGTERM: closing the S3 audit sink");
            let closed = sink.close().await;
            if let Err(err) = &closed {
                tracing::error!(error = %err, "closing the S3 audit sink on SIGTERM failed");
            }
            closed
        }))
    }

    fn closed(&self) -> Error {
        Error::Closed {
            path: format!(
                "s3://{}/{}",
                self.inner.options.bucket,
                writer_prefix(&self.inner.options.prefix, &self.inner.options.writer)
            )
            .into(),
            reason: String::new(),
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        let options = &self.inner.options;
        let span = tracing::debug_span!("s3_put", bucket = %options.bucket, key = %key, bytes = bytes.len());
        let _entered = span.enter();
        let mut request = self
            .inner
            .client
            .put_object()
            .bucket(&options.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes));
        if let Some((mode, period)) = options.retention {
            let until = options.clock.now()
                + chrono::Duration::from_std(period).unwrap_or(chrono::Duration::MAX);
            request = request
                .object_lock_mode(match mode {
                    RetentionMode::Governance => ObjectLockMode::Governance,
                    RetentionMode::Compliance => ObjectLockMode::Compliance,
                })
                .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(
                    until.timestamp(),
                ));
        }
        request
            .send()
            .await
            .map_err(|e| remote("put", &options.bucket, key, &e))?;
        Ok(())
    }

    /// Writes the buffered records as the next segment; nothing when none wait.
    async fn write_segment(&self, state: &mut State) -> Result<()> {
        if state.buf_records == 0 {
            return Ok(());
        }
        let options = &self.inner.options;
        let key = segment_key(&options.prefix, &options.writer, state.next_segment);
        let sha256 = sha256_hex(&state.buf);
        // On failure the records stay buffered, so the next flush retries them.
        self.put(&key, state.buf.clone(), "application/x-ndjson")
            .await?;
        state.undigested.push(SegmentEntry {
            key,
            sha256,
            first_seq: state.buf_first_seq,
            last_seq: state.seq,
        });
        state.records_since_digest += state.buf_records as u64;
        state.next_segment += 1;
        state.buf.clear();
        state.buf_records = 0;
        state.buf_started = None;
        Ok(())
    }

    async fn write_digest(&self, state: &mut State, closed: bool) -> Result<()> {
        let options = &self.inner.options;
        let mut digest = S3Digest {
            version: 1,
            writer: options.writer.clone(),
            number: state.next_digest,
            time: options.clock.now(),
            previous: state.previous_digest.clone(),
            segments: state.undigested.clone(),
            head_seq: state.seq,
            head: to_hex(&state.head),
            closed,
            key_id: state.hasher.kid().map(str::to_owned),
            public_key: String::new(),
            signature: String::new(),
        };
        digest.sign(&options.signer);
        let bytes = digest.to_bytes();
        let sha256 = sha256_hex(&bytes);
        let key = digest_key(&options.prefix, &options.writer, state.next_digest);
        self.put(&key, bytes, "application/json").await?;
        state.previous_digest = Some(sha256);
        state.next_digest += 1;
        state.undigested.clear();
        state.records_since_digest = 0;
        state.last_digest = Instant::now();
        Ok(())
    }
}

#[async_trait::async_trait]
impl AuditSink for S3AuditSink {
    async fn record(&self, event: AuditEvent) -> lift_core::Result<()> {
        self.append(event).await?;
        Ok(())
    }

    async fn flush(&self) -> lift_core::Result<()> {
        S3AuditSink::flush(self).await.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_writer_ids() {
        assert_eq!(normalize_prefix("/audit/prod/"), "audit/prod/");
        assert_eq!(normalize_prefix(""), "");
        assert!(valid_writer("fn-1.a_b"));
        assert!(!valid_writer("a/b"));
        assert!(!valid_writer(".."));
        assert!(!valid_writer(""));
        let signer = AuditKey::from_bytes(&[1u8; 32]).unwrap().signer();
        let options = S3SinkOptions::new("b", "p", signer);
        assert!(valid_writer(options.writer_id()), "{}", options.writer_id());
    }
}
