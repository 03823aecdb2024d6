//! `FileAuditSink`: the hash-chained, group-committed, checkpointed file sink.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lift_core::{Actor, AuditEvent, AuditSink, Clock, Resource, SystemClock};
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

use tokio::sync::oneshot;

use crate::checkpoint::{Checkpoint, append_suffix, default_checkpoint_path, sync_parent};
use crate::durable::{Durable, Failure, Head, Syncing, Then, Waiter, closed_error};
use crate::error::{Error, Result};
use crate::key::{AuditKey, CheckpointSigner};
use crate::manifest::Manifest;
use crate::record::{Hasher, MAX_EVENT_LEN, encode_line, format_time, to_hex};
use crate::recovery::{ChainTail, absorb, recover, segment_path};
use crate::staging::{Entry, Reply, Staging};
use lift_core::fs::{FileLock, LockFile, LockMode};

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

/// Serializes an event as its record's `event` member, into `out`.
///
/// Invariant: the only way bytes reach the staging buffer, so no record ever
/// holds an event with fields marked secret.
fn encode_event(event: &AuditEvent, out: &mut Vec<u8>) -> Result<()> {
    event
        .check_no_secrets()
        .map_err(|e| Error::SecretRefused(e.message().to_owned()))?;
    let start = out.len();
    event.write_json(out).map_err(|e| Error::Serialize {
        action: event.action.clone(),
        message: e.to_string(),
    })?;
    let len = out.len() - start;
    if len > MAX_EVENT_LEN {
        out.truncate(start);
        return Err(Error::InvalidInput(format!(
            "audit event {}/{} is {len} bytes serialized; the limit is {MAX_EVENT_LEN} bytes, so keep large payloads out of audit details",
            event.event_type, event.action
        )));
    }
    Ok(())
}

/// The default checkpoint signing key file of `log`: `<log>.signing-key`.
pub fn default_signing_key_path(log: &Path) -> PathBuf {
    append_suffix(log, ".signing-key")
}

/// The path of the lock file every writer of `log` holds while it appends: `<log>.lock`.
pub fn lock_path(log: &Path) -> PathBuf {
    append_suffix(log, ".lock")
}

/// The event recording that a torn tail was cut.
fn repair_event(log: &Path, cut_bytes: u64, last_good_seq: u64, file: &str) -> AuditEvent {
    AuditEvent::new(
        "audit",
        "repair.torn_tail",
        Resource::new("audit_log", log.display().to_string()),
    )
    .actor(Actor::system())
    .detail("cut_bytes", cut_bytes)
    .detail("last_good_seq", last_good_seq)
    .detail("file", file.to_owned())
}

/// The event recording that a writer found a non-empty log without its checkpoint.
fn checkpoint_missing_event(log: &Path, checkpoint: &Path, records: u64) -> AuditEvent {
    AuditEvent::new(
        "audit",
        crate::verify::CHECKPOINT_MISSING_ACTION,
        Resource::new("audit_log", log.display().to_string()),
    )
    .actor(Actor::system())
    .outcome(lift_core::Outcome::failure(format!(
        "checkpoint {} is missing; records 1 to {records} are not covered by any checkpoint",
        checkpoint.display()
    )))
    .detail("checkpoint", checkpoint.display().to_string())
    .detail("unanchored_records", records)
}

/// Runs `f` with this thread's (cleared) serialization buffer, so that
/// serializing an event allocates nothing once the buffer has grown.
fn with_scratch<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(4096));
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let out = f(&mut buf);
            // Give back what one huge event made it grow to.
            if buf.capacity() > 1 << 20 {
                *buf = Vec::with_capacity(4096);
            }
            out
        }
        Err(_) => f(&mut Vec::new()),
    })
}

/// An append-only, hash-chained audit log on local files.
///
/// Invariants: records are numbered 1, 2, ... without gaps across rotations;
/// each links to its predecessor's hash; a call returns `Ok` only once its
/// record is durable under the [`Durability`] policy; nothing is dropped
/// silently (a full staging buffer makes callers wait; a failure is returned).
/// Clones share one writer. Dropping the last clone flushes, fsyncs and
/// writes a final checkpoint before returning.
#[derive(Clone, Debug)]
pub struct FileAuditSink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    staging: Arc<Staging>,
    path: PathBuf,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    failure: Failure,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Shutting the staging buffer makes the writer drain, fsync and
        // checkpoint; wait for it so that a process exiting right after the
        // drop loses nothing.
        self.staging.shut();
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl FileAuditSink {
    /// Opens (creating if needed) the log, repairs a torn tail, and starts the writer.
    ///
    /// Fails with an integrity error when the log's last record is damaged,
    /// was written under another key, or ends before the signed checkpoint.
    pub async fn open(options: SinkOptions) -> Result<Self> {
        let path = options.path.clone();
        let span = tracing::info_span!("audit_sink_open", path = %path.display());
        let _entered = span.enter();
        let staging = Arc::new(Staging::new(options.channel_capacity));
        let writer = tokio::task::spawn_blocking(move || Writer::open(options))
            .await
            .map_err(|e| Error::Closed {
                path: path.clone(),
                reason: format!(": the opening task failed: {e}"),
            })??;
        let failure = Arc::clone(&writer.failure);
        let writer_staging = Arc::clone(&staging);
        let thread = std::thread::Builder::new()
            .name("lift-audit-writer".into())
            .spawn(move || writer.run_thread(&writer_staging))
            .map_err(|e| Error::io("start the writer thread for", &path, e))?;
        Ok(FileAuditSink {
            inner: Arc::new(Inner {
                staging,
                path,
                thread: Mutex::new(Some(thread)),
                failure,
            }),
        })
    }

    /// The live log file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn closed(&self) -> Error {
        closed_error(&self.inner.path, &self.inner.failure)
    }

    async fn answer<T>(&self, rx: oneshot::Receiver<Result<T>>) -> Result<T> {
        rx.await.map_err(|_| self.closed())?
    }

    /// Appends one event and returns its receipt once durable under the policy.
    ///
    /// Events with fields marked secret are refused before anything is written.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn would store the event twice, see the comment below"
    )]
    pub fn append(&self, event: AuditEvent) -> impl Future<Output = Result<Receipt>> + Send + '_ {
        // An `async move` block stores the event once; an `async fn` taking it
        // by value stores it twice (rust-lang/rust#62958), which matters at
        // hundreds of thousands of calls a second.
        async move {
            let answer = self.stage(&event).await?;
            // Serialized: free the event now, most likely on the thread that
            // built it, rather than after the wait, wherever the task is then.
            drop(event);
            self.answer(answer).await
        }
    }

    /// Waits for room, serializes the event and stages it; returns where the answer will come.
    async fn stage(&self, event: &AuditEvent) -> Result<oneshot::Receiver<Result<Receipt>>> {
        let staging = &self.inner.staging;
        // Waits while the staging buffer is full: this is the backpressure.
        staging.reserve(1).await.map_err(|_| self.closed())?;
        let (reply, answer) = oneshot::channel();
        // Serializing here, on the caller's task, spreads the most expensive
        // step over all cores; the writer thread only hashes and writes.
        with_scratch(|scratch| match encode_event(event, scratch) {
            Ok(()) => staging
                .push(scratch, 1, |range| Entry::Record(range, reply))
                .map_err(|_| self.closed()),
            Err(err) => {
                staging.unreserve(1);
                Err(err)
            }
        })?;
        Ok(answer)
    }

    /// Appends several events as consecutive records, answering once for all.
    ///
    /// They are committed together, in order, with nothing in between; this
    /// saves the per-call round trip when a caller has many events at once.
    /// Nothing is written when any of them is refused (marked secret, or not
    /// serializable). Under [`Durability::EveryRecord`] each is made durable
    /// in turn, so an I/O failure part-way leaves the earlier ones in the log.
    pub async fn append_all(&self, events: &[AuditEvent]) -> Result<Vec<Receipt>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let staging = &self.inner.staging;
        staging
            .reserve(events.len())
            .await
            .map_err(|_| self.closed())?;
        let (reply, rx) = oneshot::channel();
        with_scratch(|scratch| {
            let mut ranges = Vec::with_capacity(events.len());
            for event in events {
                let start = scratch.len();
                if let Err(err) = encode_event(event, scratch) {
                    staging.unreserve(events.len());
                    return Err(err);
                }
                ranges.push(start..scratch.len());
            }
            staging
                .push(scratch, events.len(), |all| {
                    let shifted = ranges
                        .into_iter()
                        .map(|r| all.start + r.start..all.start + r.end)
                        .collect();
                    Entry::Group(shifted, reply)
                })
                .map_err(|_| self.closed())
        })?;
        self.answer(rx).await
    }

    /// Makes everything appended so far durable and writes a signed checkpoint.
    pub async fn sync(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .staging
            .push(&[], 0, |_| Entry::Flush(reply))
            .map_err(|_| self.closed())?;
        self.answer(rx).await
    }

    /// Flushes, fsyncs, writes a final checkpoint and stops the writer.
    ///
    /// Later calls on any clone fail with [`Error::Closed`].
    pub async fn close(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .staging
            .push_close(reply)
            .map_err(|_| self.closed())?;
        self.answer(rx).await
    }
}

#[async_trait::async_trait]
impl AuditSink for FileAuditSink {
    // Written out rather than as an `async fn`, which `async_trait` expands
    // into a future holding the event twice (see `append`).
    fn record<'life0, 'async_trait>(
        &'life0 self,
        event: AuditEvent,
    ) -> Pin<Box<dyn Future<Output = lift_core::Result<()>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        // The body of `append`, inlined: awaiting `append` from here would
        // store the event twice again.
        Box::pin(async move {
            let answer = self.stage(&event).await?;
            drop(event);
            self.answer(answer).await?;
            Ok(())
        })
    }

    async fn flush(&self) -> lift_core::Result<()> {
        self.sync().await.map_err(Into::into)
    }
}

/// One caller's records: their bytes in the batch taken from the staging buffer.
enum Unit {
    Record(Range<usize>, Reply<Receipt>),
    Group(Vec<Range<usize>>, Reply<Vec<Receipt>>),
}

/// The writer's state. It lives on its own thread, so that blocking file
/// I/O never stalls the caller's runtime and a final flush survives it.
struct Writer {
    log: PathBuf,
    durability: Durability,
    max_file_bytes: Option<u64>,
    max_batch: usize,
    clock: Arc<dyn Clock>,
    hasher: Hasher,
    file: File,
    len: u64,
    tail: ChainTail,
    buf: Vec<u8>,
    failure: Failure,
    syncing: Syncing,
    /// `<log>.lock`, kept open: held while catching up with other writers and appending.
    lock: LockFile,
    /// Serialized system events (repairs, a missing checkpoint) that go into
    /// the chain before the next batch, acknowledged by no caller.
    pending: Vec<Vec<u8>>,
    /// Record lines written or read since the last hand-over to the syncer,
    /// which computes the content digest from them.
    digest_lines: Vec<u8>,
}

impl Writer {
    fn open(options: SinkOptions) -> Result<Writer> {
        let log = options.path.clone();
        if log.file_name().is_none() {
            return Err(Error::InvalidInput(format!(
                "audit log path {} names no file; give a file path such as ./audit.jsonl",
                log.display()
            )));
        }
        let hasher = Hasher::new(options.key.as_ref());
        let lock_path = lock_path(&log);
        // Other processes may append to this log: recovery, the checkpoint
        // check and the decision to record a repair happen under the lock.
        let lock = FileLock::exclusive(&lock_path)?;
        let checkpoint_path = options
            .checkpoint_path
            .clone()
            .unwrap_or_else(|| default_checkpoint_path(&log));
        let existing = Checkpoint::load_if_exists(&checkpoint_path)?;
        let (file, tail) = recover(&log, &hasher, existing.as_ref())?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", &log, e))?
            .len();
        let mut checkpointed =
            check_against_checkpoint(existing.as_ref(), &checkpoint_path, &hasher, &tail, &log)?;
        // The signing key is independent of the chain key: its own file,
        // created on first use, read under the key-file policy.
        let signer = CheckpointSigner::load_or_create(
            &options
                .signing_key_path
                .clone()
                .unwrap_or_else(|| default_signing_key_path(&log)),
        )?;
        let signer_public_key = signer.public_key_hex();
        let origin = options.origin.clone().unwrap_or_else(|| {
            let host = lift_core::Origin::current().host;
            let absolute = std::path::absolute(&log).unwrap_or_else(|_| log.clone());
            format!("{host}:{}", absolute.display())
        });
        if checkpointed.is_none() && tail.seq == 0 {
            // A new (or empty) log gets its checkpoint at once, before any
            // record, so that a log with records and no checkpoint can only
            // mean a lost or deleted checkpoint, never one not written yet.
            Checkpoint::sign(
                &signer,
                &origin,
                0,
                &tail.head,
                &tail.digest,
                options.clock.now(),
                hasher.kid(),
            )
            .store(&checkpoint_path)?;
            checkpointed = Some(0);
        }
        let failure = Failure::default();
        let durable = Durable {
            log: log.clone(),
            file: file
                .try_clone()
                .map_err(|e| Error::io("open a second handle on", &log, e))?,
            unsynced: false,
            last_sync: Instant::now(),
            head: head_of(&tail),
            checkpoint_path: checkpoint_path.clone(),
            checkpoint_every: options.checkpoint_every,
            checkpointed,
            origin,
            clock: Arc::clone(&options.clock),
            signer,
            key_id: hasher.kid().map(str::to_owned),
            failure: Arc::clone(&failure),
            lock_path: lock_path.clone(),
            digest: tail.digest,
        };
        let mut writer = Writer {
            log,
            durability: options.durability,
            max_file_bytes: options.max_file_bytes,
            max_batch: options.max_batch.max(1),
            clock: options.clock,
            hasher,
            file,
            len,
            tail,
            buf: Vec::with_capacity(1 << 16),
            failure,
            syncing: Syncing::Inline(Box::new(durable)),
            lock: LockFile::open(&lock_path)?,
            pending: Vec::new(),
            digest_lines: Vec::new(),
        };
        if writer.tail.cut_bytes > 0 {
            tracing::warn!(
                path = %writer.log.display(),
                cut_bytes = writer.tail.cut_bytes,
                "cut a torn record from the end of the audit log"
            );
            let event = repair_event(
                &writer.log,
                writer.tail.cut_bytes,
                writer.tail.seq,
                &writer.tail.head_file,
            );
            writer.stage_system_event(&event)?;
        }
        let announced = existing
            .as_ref()
            .is_some_and(|cp| cp.public_key == signer_public_key && cp.size > 0);
        if !announced && options.key.is_some() {
            // A verifier holding the chain key learns from the chain itself
            // which signing keys it may trust; the record is keyed like
            // every other, so no one without the chain key can add one.
            // (An unkeyed chain can be rewritten by anyone, so naming a key
            // in it would prove nothing: its checkpoints are trusted through
            // a public key given to the verifier.)
            let event = AuditEvent::new(
                "audit",
                crate::verify::CHECKPOINT_KEY_ACTION,
                Resource::new("audit_log", writer.log.display().to_string()),
            )
            .actor(Actor::system())
            .detail("public_key", signer_public_key.clone());
            writer.stage_system_event(&event)?;
        }
        if checkpointed.is_none() && writer.tail.seq > 0 {
            // Signing a checkpoint over these records would make a truncated
            // or rewritten log look anchored: say so in the chain first.
            tracing::warn!(
                path = %writer.log.display(),
                checkpoint = %checkpoint_path.display(),
                records = writer.tail.seq,
                "the audit log has records but no checkpoint"
            );
            let event = checkpoint_missing_event(&writer.log, &checkpoint_path, writer.tail.seq);
            writer.stage_system_event(&event)?;
        }
        drop(lock);
        if !writer.pending.is_empty() {
            writer.write_pending()?;
        }
        Ok(writer)
    }

    /// Serializes a system event to go into the chain before the next batch.
    fn stage_system_event(&mut self, event: &AuditEvent) -> Result<()> {
        let mut bytes = Vec::new();
        encode_event(event, &mut bytes)?;
        self.pending.push(bytes);
        Ok(())
    }

    /// Writes the pending system events now and makes them durable (at open, on the opening thread).
    fn write_pending(&mut self) -> Result<()> {
        if let Err(message) = self.write_events(&[]) {
            return Err(Error::Integrity(format!(
                "cannot record the repair of {} in its chain: {message}",
                self.log.display()
            )));
        }
        let head = self.head();
        let lines = std::mem::take(&mut self.digest_lines);
        if self.syncing.written(head, Vec::new(), lines).is_err() {
            return Err(self.closed_error());
        }
        self.syncing.barrier_and_wait(Then::Done)
    }

    fn run_thread(mut self, staging: &Arc<Staging>) {
        // However this thread ends (even by a panic), callers must hear so
        // rather than wait forever for room or for an answer.
        let guard = AbandonOnExit(Arc::clone(staging));
        if self.durability != Durability::EveryRecord {
            let syncing = std::mem::replace(&mut self.syncing, Syncing::Stopped);
            self.syncing = match syncing {
                Syncing::Inline(durable) => match Syncing::start_thread(durable, self.durability) {
                    Ok(started) => started,
                    Err(err) => {
                        self.fail(format!("cannot start the audit syncer thread: {err}"));
                        return;
                    }
                },
                other => other,
            };
        }
        let mut bytes = Vec::new();
        let mut entries = Vec::new();
        while staging.take(&mut bytes, &mut entries) {
            let closing = self.process(&bytes, &mut entries);
            bytes.clear();
            if closing {
                break;
            }
        }
        for entry in staging.abandon() {
            self.refuse(entry);
        }
        drop(guard);
        // Every handle is gone, or the sink was closed: make everything durable
        // and checkpoint it.
        self.syncing.finish();
    }

    fn fail(&self, reason: String) {
        tracing::error!(path = %self.log.display(), reason = %reason, "audit writer stopped");
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    fn failed(&self) -> bool {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    fn closed_error(&self) -> Error {
        closed_error(&self.log, &self.failure)
    }

    fn refuse(&self, entry: Entry) {
        match entry {
            Entry::Record(_, reply) => drop(reply.send(Err(self.closed_error()))),
            Entry::Group(_, reply) => drop(reply.send(Err(self.closed_error()))),
            Entry::Flush(reply) | Entry::Close(reply) => {
                drop(reply.send(Err(self.closed_error())));
            }
        }
    }

    /// Handles a batch of requests in order. Returns true after a close.
    fn process(&mut self, bytes: &[u8], entries: &mut Vec<Entry>) -> bool {
        let mut units = Vec::new();
        let mut records = 0;
        let mut closing = false;
        for entry in entries.drain(..) {
            if closing {
                self.refuse(entry);
                continue;
            }
            match entry {
                Entry::Record(range, reply) => {
                    records += 1;
                    units.push(Unit::Record(range, reply));
                }
                Entry::Group(ranges, reply) => {
                    records += ranges.len();
                    units.push(Unit::Group(ranges, reply));
                }
                Entry::Flush(reply) => {
                    self.write_units(bytes, std::mem::take(&mut units));
                    records = 0;
                    self.syncing.barrier(
                        Then::Checkpoint,
                        Box::new(move |result| drop(reply.send(result))),
                    );
                }
                Entry::Close(reply) => {
                    self.write_units(bytes, std::mem::take(&mut units));
                    records = 0;
                    self.syncing.barrier(
                        Then::Checkpoint,
                        Box::new(move |result| drop(reply.send(result))),
                    );
                    closing = true;
                }
            }
            if records >= self.max_batch {
                self.write_units(bytes, std::mem::take(&mut units));
                records = 0;
            }
        }
        self.write_units(bytes, units);
        closing
    }

    /// Writes received records in order and hands them on to be made durable.
    ///
    /// Under `EveryRecord` each record gets its own write and fsync; otherwise
    /// all of them go out in one write.
    fn write_units(&mut self, bytes: &[u8], units: Vec<Unit>) {
        if units.is_empty() {
            return;
        }
        if self.failed() {
            for unit in units {
                self.refuse_unit(unit);
            }
            return;
        }
        if self.durability == Durability::EveryRecord {
            for unit in units {
                self.write_one_by_one(bytes, unit);
            }
            return;
        }
        // The ranges come from the staging buffer that filled `bytes`.
        let mut events: Vec<&[u8]> = Vec::with_capacity(units.len());
        let mut shape = Vec::with_capacity(units.len());
        for unit in units {
            match unit {
                Unit::Record(range, reply) => {
                    events.push(&bytes[range]);
                    shape.push((1, Ok(reply)));
                }
                Unit::Group(ranges, reply) => {
                    shape.push((ranges.len(), Err(reply)));
                    events.extend(ranges.into_iter().map(|range| &bytes[range]));
                }
            }
        }
        match self.write_events(&events) {
            Ok(receipts) => {
                let mut receipts = receipts.into_iter();
                let waiters = shape
                    .into_iter()
                    .filter_map(|(n, reply)| match reply {
                        Ok(reply) => receipts.next().map(|r| Waiter::Record(reply, r)),
                        Err(reply) => {
                            Some(Waiter::Group(reply, receipts.by_ref().take(n).collect()))
                        }
                    })
                    .collect();
                self.written(waiters);
            }
            Err(message) => {
                for (_, reply) in shape {
                    let error = self.append_error(&message);
                    match reply {
                        Ok(reply) => drop(reply.send(Err(error))),
                        Err(reply) => drop(reply.send(Err(error))),
                    }
                }
            }
        }
        self.rotate_if_due();
    }

    /// `EveryRecord`: one write and one fsync per record, a group answered at
    /// its end. An I/O failure part-way through a group leaves its earlier
    /// records in the log (each was durable before the next was written).
    fn write_one_by_one(&mut self, bytes: &[u8], unit: Unit) {
        let (ranges, reply) = match unit {
            Unit::Record(range, reply) => (vec![range], Ok(reply)),
            Unit::Group(ranges, reply) => (ranges, Err(reply)),
        };
        let mut receipts = Vec::with_capacity(ranges.len());
        let mut failure = None;
        for range in ranges {
            if self.failed() {
                failure = Some(self.closed_error());
                break;
            }
            match self.write_events(&[&bytes[range]]) {
                Ok(mut one) => {
                    let head = self.head();
                    let lines = std::mem::take(&mut self.digest_lines);
                    if self.syncing.written(head, Vec::new(), lines).is_err() {
                        // The fsync failed: the sink has stopped, and says why.
                        failure = Some(self.closed_error());
                        break;
                    }
                    receipts.append(&mut one);
                }
                Err(message) => {
                    failure = Some(self.append_error(&message));
                    break;
                }
            }
        }
        match (reply, failure) {
            (Ok(reply), None) => {
                if let Some(receipt) = receipts.pop() {
                    drop(reply.send(Ok(receipt)));
                }
            }
            (Err(reply), None) => drop(reply.send(Ok(receipts))),
            (Ok(reply), Some(err)) => drop(reply.send(Err(err))),
            (Err(reply), Some(err)) => drop(reply.send(Err(err))),
        }
        // Rotate between units, never inside a group.
        self.rotate_if_due();
    }

    fn refuse_unit(&self, unit: Unit) {
        match unit {
            Unit::Record(_, reply) => drop(reply.send(Err(self.closed_error()))),
            Unit::Group(_, reply) => drop(reply.send(Err(self.closed_error()))),
        }
    }

    /// The chain's current end.
    fn head(&self) -> Head {
        head_of(&self.tail)
    }

    /// Hands written records on: the waiters hear back once the policy is met.
    fn written(&mut self, waiters: Vec<Waiter>) {
        let head = self.head();
        let waiting = match self.durability {
            // Written to the operating system is what this policy acknowledges.
            Durability::Interval(_) => {
                waiters.into_iter().for_each(Waiter::succeed);
                Vec::new()
            }
            _ => waiters,
        };
        let lines = std::mem::take(&mut self.digest_lines);
        if let Err(waiters) = self.syncing.written(head, waiting, lines) {
            for waiter in waiters {
                waiter.fail(self.closed_error());
            }
        }
    }

    fn append_error(&self, message: &str) -> Error {
        Error::io(
            "append to",
            &self.log,
            std::io::Error::other(message.to_owned()),
        )
    }

    /// Encodes and writes records, advancing the chain. On failure, cuts the
    /// partial write, leaves the chain as it was and returns the message.
    ///
    /// Runs under the log's lock: it first catches up with records other
    /// processes appended (the chain head may have moved), then writes the
    /// pending system events and `events` in one write.
    fn write_events(&mut self, events: &[&[u8]]) -> std::result::Result<Vec<Receipt>, String> {
        if events.is_empty() && self.pending.is_empty() {
            return Ok(Vec::new());
        }
        self.lock
            .lock(LockMode::Exclusive)
            .map_err(|e| e.to_string())?;
        let result = self.write_locked(events);
        if let Err(err) = self.lock.unlock() {
            // Not fatal: the next lock or the file's close releases it.
            tracing::warn!(path = %self.log.display(), error = %err, "cannot unlock the audit log");
        }
        result
    }

    /// [`Writer::write_events`] with the lock held.
    fn write_locked(&mut self, events: &[&[u8]]) -> std::result::Result<Vec<Receipt>, String> {
        if let Err(err) = self.catch_up() {
            // Garbage or a fork from another writer, or a file that cannot be
            // read: never append after it.
            let message = err.to_string();
            self.fail(message.clone());
            return Err(message);
        }
        self.buf.clear();
        let start = (
            self.tail.seq,
            self.tail.head,
            self.tail.head_offset,
            self.tail.head_file.clone(),
        );
        let mut receipts = Vec::with_capacity(events.len());
        // One clock reading per batch: the records of a batch are written together.
        let time = format_time(self.clock.now());
        let pending = std::mem::take(&mut self.pending);
        let system = pending.iter().map(Vec::as_slice);
        for (i, event) in system.chain(events.iter().copied()).enumerate() {
            let seq = self.tail.seq + 1;
            let line_start = self.buf.len();
            let offset = self.len + line_start as u64;
            let hash = encode_line(
                &mut self.buf,
                &self.hasher,
                seq,
                &time,
                &self.tail.head,
                event,
            );
            self.tail.seq = seq;
            self.tail.head = hash;
            self.tail.head_offset = offset;
            if i >= pending.len() {
                receipts.push(Receipt { seq, hash });
            }
        }
        let span = tracing::trace_span!(
            "audit_write",
            records = events.len() + pending.len(),
            bytes = self.buf.len()
        );
        let written =
            span.in_scope(|| lift_core::fs::append(&mut self.file, &self.log, self.len, &self.buf));
        match written {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                self.digest_lines.extend_from_slice(&self.buf);
                let name = file_name(&self.log);
                if self.tail.head_file != name {
                    self.tail.head_file = name;
                }
                Ok(receipts)
            }
            Err(err) => {
                // Put the file and the chain back where they were, so that
                // nothing is ever appended after a partial write.
                let restored = lift_core::fs::truncate(&self.file, &self.log, self.len)
                    .and_then(|()| lift_core::fs::sync_all(&self.file, &self.log));
                (
                    self.tail.seq,
                    self.tail.head,
                    self.tail.head_offset,
                    self.tail.head_file,
                ) = start;
                self.pending = pending;
                let message = err.to_string();
                if let Err(cut) = restored {
                    self.fail(format!(
                        "{message}; cutting the partial write also failed ({cut}), so no further record is appended"
                    ));
                }
                Err(message)
            }
        }
    }

    /// Catches up, under the lock, with what other processes did since this
    /// writer last held it: records appended to the live file, a torn record
    /// left by one that died mid-write, a rotation.
    fn catch_up(&mut self) -> Result<()> {
        use std::os::unix::fs::MetadataExt as _;
        let ours = self
            .file
            .metadata()
            .map_err(|e| Error::io("stat", &self.log, e))?;
        if ours.len() != self.len {
            self.absorb_to(ours.len())?;
        }
        let current = match std::fs::metadata(&self.log) {
            Ok(meta) => Some((meta.dev(), meta.ino())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(Error::io("stat", &self.log, err)),
        };
        if current != Some((ours.dev(), ours.ino())) {
            self.follow_rotation()?;
        }
        Ok(())
    }

    /// Reads the records between `self.len` and `end` of the open file into the chain.
    fn absorb_to(&mut self, end: u64) -> Result<()> {
        let absorbed = absorb(
            &self.file,
            &self.log,
            self.len,
            end,
            &self.hasher,
            &mut self.tail,
            Some(&mut self.digest_lines),
        )?;
        self.len = absorbed.end;
        if absorbed.torn > 0 {
            // A writer died mid-write while holding the lock: its partial
            // record was never acknowledged. Cut it and say so in the chain.
            lift_core::fs::truncate(&self.file, &self.log, absorbed.end)?;
            lift_core::fs::sync_data(&self.file, &self.log)?;
            tracing::warn!(
                path = %self.log.display(),
                cut_bytes = absorbed.torn,
                "cut a torn record another writer left at the end of the audit log"
            );
            let event = repair_event(
                &self.log,
                absorbed.torn,
                self.tail.seq,
                &self.tail.head_file,
            );
            self.stage_system_event(&event)?;
        }
        Ok(())
    }

    /// Another process rotated the log: this writer's file is now a sealed
    /// segment. Makes what it wrote there durable, then continues in the new live file.
    fn follow_rotation(&mut self) -> Result<()> {
        lift_core::fs::sync_data(&self.file, &self.log)?;
        let sealed: Vec<String> = Manifest::load(&self.log)?
            .map(|m| m.files)
            .unwrap_or_default()
            .into_iter()
            .filter(|f| *f != file_name(&self.log))
            .collect();
        let existed = self.log.exists();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(&self.log)
            .map_err(|e| Error::io("open audit log", &self.log, e))?;
        if !existed {
            sync_parent(&self.log)?;
        }
        if self.tail.head_file == file_name(&self.log) {
            if let Some(newest) = sealed.last() {
                self.tail.head_file.clone_from(newest);
            }
        }
        self.tail.segments = sealed
            .iter()
            .filter_map(|s| s.rsplit('.').next()?.parse::<usize>().ok())
            .max()
            .unwrap_or(0)
            .max(sealed.len());
        self.tail.sealed = sealed;
        let handle = file
            .try_clone()
            .map_err(|e| Error::io("open a second handle on", &self.log, e))?;
        self.file = file;
        self.len = 0;
        let lines = std::mem::take(&mut self.digest_lines);
        self.syncing.reopened(handle, self.head(), lines);
        let end = self
            .file
            .metadata()
            .map_err(|e| Error::io("stat", &self.log, e))?
            .len();
        if end > 0 {
            self.absorb_to(end)?;
        }
        tracing::info!(path = %self.log.display(), "followed a rotation by another writer");
        Ok(())
    }

    fn rotate_if_due(&mut self) {
        if self.max_file_bytes.is_some_and(|max| self.len >= max) && !self.failed() {
            if let Err(err) = self.rotate() {
                self.fail(format!("rotation failed: {err}"));
            }
        }
    }

    /// Seals the live file as the next segment and starts a new live file.
    ///
    /// Order matters for crash safety: everything written is made durable and
    /// checkpointed first, the manifest naming the new segment is written
    /// before the rename, and recovery completes a missing rename.
    fn rotate(&mut self) -> Result<()> {
        self.lock.lock(LockMode::Exclusive)?;
        let result = self.rotate_locked();
        if let Err(err) = self.lock.unlock() {
            tracing::warn!(path = %self.log.display(), error = %err, "cannot unlock the audit log");
        }
        result
    }

    fn rotate_locked(&mut self) -> Result<()> {
        self.catch_up()?;
        if self.max_file_bytes.is_none_or(|max| self.len < max) {
            // Another writer rotated first.
            return Ok(());
        }
        // Everything in the file is durable before it is sealed. The writer
        // fsyncs itself rather than waiting for the syncer, which may need
        // the lock this writer holds to sign a checkpoint.
        lift_core::fs::sync_data(&self.file, &self.log)?;
        let n = self.tail.segments + 1;
        let sealed_path = segment_path(&self.log, n);
        let sealed_name = file_name(&sealed_path);
        let mut files = self.tail.sealed.clone();
        files.push(sealed_name.clone());
        files.push(file_name(&self.log));
        Manifest { version: 1, files }.store(&self.log)?;
        lift_core::fs::rename(&self.log, &sealed_path)?;
        sync_parent(&self.log)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            // Audit logs are read-restricted (PCI DSS 10.3.1): new files are owner-only.
            .mode(0o600)
            .open(&self.log)
            .map_err(|e| Error::io("open audit log", &self.log, e))?;
        sync_parent(&self.log)?;
        let handle = file
            .try_clone()
            .map_err(|e| Error::io("open a second handle on", &self.log, e))?;
        self.file = file;
        self.len = 0;
        self.tail.segments = n;
        self.tail.sealed.push(sealed_name.clone());
        if self.tail.head_file == file_name(&self.log) {
            self.tail.head_file = sealed_name;
        }
        let lines = std::mem::take(&mut self.digest_lines);
        self.syncing.reopened(handle, self.head(), lines);
        tracing::info!(path = %self.log.display(), segment = n, "rotated the audit log");
        Ok(())
    }
}

/// Abandons the staging buffer when the writer thread ends, however it ends.
struct AbandonOnExit(Arc<Staging>);

impl Drop for AbandonOnExit {
    fn drop(&mut self) {
        // Dropping the entries drops their replies: each caller gets `Closed`.
        drop(self.0.abandon());
    }
}

fn head_of(tail: &ChainTail) -> Head {
    Head {
        seq: tail.seq,
        hash: tail.head,
        file: tail.head_file.clone(),
        offset: tail.head_offset,
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Refuses to open a log that ends before its checkpoint or was written under another key.
fn check_against_checkpoint(
    checkpoint: Option<&Checkpoint>,
    path: &Path,
    hasher: &Hasher,
    tail: &ChainTail,
    log: &Path,
) -> Result<Option<u64>> {
    let Some(checkpoint) = checkpoint else {
        return Ok(None);
    };
    if checkpoint.key_id.as_deref() != hasher.kid() {
        return Err(Error::Integrity(format!(
            "refusing to append to {}: checkpoint {} was made with audit key {} but the sink has key {}; configure the same key",
            log.display(),
            path.display(),
            checkpoint.key_id.as_deref().unwrap_or("-"),
            hasher.kid().unwrap_or("-")
        )));
    }
    if tail.seq < checkpoint.size
        || (tail.seq == checkpoint.size
            && checkpoint.head_bytes() != Some(tail.head)
            && checkpoint.size > 0)
    {
        return Err(Error::Integrity(format!(
            "refusing to append to {}: it ends at record {} but checkpoint {} covers {} records; the log was truncated or rolled back: run `lift audit verify {} --checkpoint {}` to see where, and restore the log from a backup",
            log.display(),
            tail.seq,
            path.display(),
            checkpoint.size,
            log.display(),
            path.display()
        )));
    }
    Ok(Some(checkpoint.size))
}
