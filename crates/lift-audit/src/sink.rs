//! `FileAuditSink`: the hash-chained, group-committed, checkpointed file sink.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lift_core::{Actor, AuditEvent, AuditSink, Clock, Resource, SystemClock};
use tokio::sync::{mpsc, oneshot};

use crate::checkpoint::{Checkpoint, append_suffix, default_checkpoint_path, sync_parent};
use crate::durable::{Durable, Failure, Head, Syncing, Waiter, closed_error};
use crate::error::{Error, Result};
use crate::key::{AuditKey, CheckpointSigner};
use crate::manifest::Manifest;
use crate::record::{Hasher, encode_line, format_time, to_hex};
use crate::recovery::{ChainTail, recover, segment_path};

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
    /// The audit key: keys the chain with HMAC-SHA256 and derives the checkpoint signing key.
    pub key: Option<AuditKey>,
    /// The fsync policy.
    pub durability: Durability,
    /// Write a signed checkpoint every this many records (0: only on flush and close).
    pub checkpoint_every: u64,
    /// The checkpoint file; `<log>.checkpoint` by default.
    pub checkpoint_path: Option<PathBuf>,
    /// The Ed25519 seed file used without an audit key; `<log>.signing-key` by default, created when missing.
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

type Reply<T> = oneshot::Sender<Result<T>>;

/// An event's canonical JSON. Invariant: built only by [`EventBytes::encode`],
/// so it never holds an event with fields marked secret.
struct EventBytes(Vec<u8>);

impl EventBytes {
    fn encode(event: &AuditEvent) -> Result<EventBytes> {
        event
            .check_no_secrets()
            .map_err(|e| Error::SecretRefused(e.message().to_owned()))?;
        // Most events serialize to 300-600 bytes: one allocation instead of
        // growing from serde_json's default through several reallocations.
        let mut bytes = Vec::with_capacity(768);
        serde_json::to_writer(&mut bytes, event)
            .map(|()| EventBytes(bytes))
            .map_err(|e| Error::Serialize {
                action: event.action.clone(),
                message: e.to_string(),
            })
    }
}

enum Command {
    Record(EventBytes, Reply<Receipt>),
    Records(Vec<EventBytes>, Reply<Vec<Receipt>>),
    Flush(Reply<()>),
    Close(Reply<()>),
}

/// An append-only, hash-chained audit log on local files.
///
/// Invariants: records are numbered 1, 2, ... without gaps across rotations;
/// each links to its predecessor's hash; a call returns `Ok` only once its
/// record is durable under the [`Durability`] policy; nothing is dropped
/// silently (a full channel makes callers wait; a failure is returned).
/// Clones share one writer. Dropping the last clone flushes, fsyncs and
/// writes a final checkpoint before returning.
#[derive(Clone, Debug)]
pub struct FileAuditSink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: Option<mpsc::Sender<Command>>,
    path: PathBuf,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel makes the writer drain, fsync and checkpoint; wait
        // for it so that a process exiting right after the drop loses nothing.
        drop(self.tx.take());
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
        let writer = tokio::task::spawn_blocking(move || Writer::open(options))
            .await
            .map_err(|e| Error::Closed {
                path: path.clone(),
                reason: format!(": the opening task failed: {e}"),
            })??;
        let (tx, rx) = mpsc::channel(writer.channel_capacity);
        let failure = Arc::clone(&writer.failure);
        let thread = std::thread::Builder::new()
            .name("lift-audit-writer".into())
            .spawn(move || writer.run_thread(rx))
            .map_err(|e| Error::io("start the writer thread for", &path, e))?;
        Ok(FileAuditSink {
            inner: Arc::new(Inner {
                tx: Some(tx),
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
        let reason = self
            .inner
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        Error::Closed {
            path: self.inner.path.clone(),
            reason,
        }
    }

    async fn send<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let tx = self.inner.tx.as_ref().ok_or_else(|| self.closed())?;
        let (reply, rx) = oneshot::channel();
        // `send` waits while the channel is full: this is the backpressure.
        tx.send(make(reply)).await.map_err(|_| self.closed())?;
        rx.await.map_err(|_| self.closed())?
    }

    /// Appends one event and returns its receipt once durable under the policy.
    ///
    /// Events with fields marked secret are refused before anything is written.
    pub async fn append(&self, event: AuditEvent) -> Result<Receipt> {
        // Serializing here, on the caller's task, spreads the most expensive
        // step over all cores; the writer thread only hashes and writes.
        let bytes = EventBytes::encode(&event)?;
        self.send(|reply| Command::Record(bytes, reply)).await
    }

    /// Appends several events as consecutive records, answering once for all.
    ///
    /// They are committed together, in order, with nothing in between; this
    /// saves the per-call round trip when a caller has many events at once.
    /// Nothing is written when any of them is refused.
    pub async fn append_all(&self, events: &[AuditEvent]) -> Result<Vec<Receipt>> {
        let bytes = events
            .iter()
            .map(EventBytes::encode)
            .collect::<Result<Vec<_>>>()?;
        self.send(|reply| Command::Records(bytes, reply)).await
    }

    /// Makes everything appended so far durable and writes a signed checkpoint.
    pub async fn sync(&self) -> Result<()> {
        self.send(Command::Flush).await
    }

    /// Flushes, fsyncs, writes a final checkpoint and stops the writer.
    ///
    /// Later calls on any clone fail with [`Error::Closed`].
    pub async fn close(&self) -> Result<()> {
        self.send(Command::Close).await
    }
}

#[async_trait::async_trait]
impl AuditSink for FileAuditSink {
    async fn record(&self, event: AuditEvent) -> lift_core::Result<()> {
        self.append(event).await.map(|_| ()).map_err(Into::into)
    }

    async fn flush(&self) -> lift_core::Result<()> {
        self.sync().await.map_err(Into::into)
    }
}

/// One caller's records, as received.
enum Unit {
    Record(EventBytes, Reply<Receipt>),
    Group(Vec<EventBytes>, Reply<Vec<Receipt>>),
}

/// The writer's state. It lives on its own thread, so that blocking file
/// I/O never stalls the caller's runtime and a final flush survives it.
struct Writer {
    log: PathBuf,
    durability: Durability,
    max_file_bytes: Option<u64>,
    channel_capacity: usize,
    max_batch: usize,
    clock: Arc<dyn Clock>,
    hasher: Hasher,
    file: File,
    len: u64,
    tail: ChainTail,
    buf: Vec<u8>,
    failure: Failure,
    syncing: Syncing,
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
        let (file, tail) = recover(&log, &hasher)?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", &log, e))?
            .len();
        let checkpoint_path = options
            .checkpoint_path
            .clone()
            .unwrap_or_else(|| default_checkpoint_path(&log));
        let checkpointed = check_against_checkpoint(&checkpoint_path, &hasher, &tail, &log)?;
        let signer = match &options.key {
            Some(key) => key.signer(),
            None => CheckpointSigner::load_or_create(
                &options
                    .signing_key_path
                    .clone()
                    .unwrap_or_else(|| append_suffix(&log, ".signing-key")),
            )?,
        };
        let origin = options.origin.clone().unwrap_or_else(|| {
            let host = lift_core::Origin::current().host;
            let absolute = std::path::absolute(&log).unwrap_or_else(|_| log.clone());
            format!("{host}:{}", absolute.display())
        });
        let failure = Failure::default();
        let durable = Durable {
            log: log.clone(),
            file: file
                .try_clone()
                .map_err(|e| Error::io("open a second handle on", &log, e))?,
            unsynced: false,
            last_sync: Instant::now(),
            head: head_of(&tail),
            checkpoint_path,
            checkpoint_every: options.checkpoint_every,
            checkpointed,
            origin,
            clock: Arc::clone(&options.clock),
            signer,
            key_id: hasher.kid().map(str::to_owned),
            failure: Arc::clone(&failure),
        };
        let mut writer = Writer {
            log,
            durability: options.durability,
            max_file_bytes: options.max_file_bytes,
            channel_capacity: options.channel_capacity.max(1),
            max_batch: options.max_batch.max(1),
            clock: options.clock,
            hasher,
            file,
            len,
            tail,
            buf: Vec::with_capacity(1 << 16),
            failure,
            syncing: Syncing::Inline(Box::new(durable)),
        };
        if writer.tail.cut_bytes > 0 {
            writer.record_repair()?;
        }
        Ok(writer)
    }

    /// Records the torn-tail repair as an event of the chain itself.
    fn record_repair(&mut self) -> Result<()> {
        let event = AuditEvent::new(
            "audit",
            "repair.torn_tail",
            Resource::new("audit_log", self.log.display().to_string()),
        )
        .actor(Actor::system())
        .detail("cut_bytes", self.tail.cut_bytes)
        .detail("last_good_seq", self.tail.seq)
        .detail("file", self.tail.head_file.clone());
        tracing::warn!(
            path = %self.log.display(),
            cut_bytes = self.tail.cut_bytes,
            "cut a torn record from the end of the audit log"
        );
        let (tx, _rx) = oneshot::channel();
        self.write_units(vec![Unit::Record(EventBytes::encode(&event)?, tx)]);
        // Still on the opening thread, so the fsync happens here.
        self.syncing.barrier_and_wait()
    }

    fn run_thread(mut self, rx: mpsc::Receiver<Command>) {
        let mut rx = rx;
        if self.durability != Durability::EveryRecord {
            let syncing = std::mem::replace(&mut self.syncing, Syncing::Stopped);
            self.syncing = match syncing {
                Syncing::Inline(durable) => match Syncing::start_thread(durable, self.durability) {
                    Ok(started) => started,
                    Err(err) => {
                        self.fail(format!("cannot start the audit syncer thread: {err}"));
                        rx.close();
                        return;
                    }
                },
                other => other,
            };
        }
        let runtime = tokio::runtime::Builder::new_current_thread().build();
        match runtime {
            Ok(runtime) => runtime.block_on(self.run(rx)),
            Err(err) => {
                self.fail(format!("cannot start the writer runtime: {err}"));
                rx.close();
                self.syncing.finish();
            }
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut commands = Vec::with_capacity(self.max_batch);
        loop {
            if rx.recv_many(&mut commands, self.max_batch).await == 0 {
                break;
            }
            if self.process(&mut commands) {
                rx.close();
                while let Ok(command) = rx.try_recv() {
                    self.refuse(command);
                }
                break;
            }
        }
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

    fn refuse(&self, command: Command) {
        match command {
            Command::Record(_, reply) => drop(reply.send(Err(self.closed_error()))),
            Command::Records(_, reply) => drop(reply.send(Err(self.closed_error()))),
            Command::Flush(reply) | Command::Close(reply) => {
                drop(reply.send(Err(self.closed_error())));
            }
        }
    }

    /// Handles received commands in order. Returns true after a close.
    fn process(&mut self, commands: &mut Vec<Command>) -> bool {
        let mut units = Vec::with_capacity(commands.len());
        let mut closing = false;
        for command in commands.drain(..) {
            if closing {
                self.refuse(command);
                continue;
            }
            let is_close = matches!(command, Command::Close(_));
            match command {
                Command::Record(event, reply) => units.push(Unit::Record(event, reply)),
                Command::Records(events, reply) => units.push(Unit::Group(events, reply)),
                Command::Flush(reply) | Command::Close(reply) => {
                    self.write_units(std::mem::take(&mut units));
                    self.syncing
                        .barrier(Box::new(move |result| drop(reply.send(result))));
                    closing = is_close;
                }
            }
        }
        self.write_units(units);
        closing
    }

    /// Writes received records in order and hands them on to be made durable.
    ///
    /// Under `EveryRecord` each record gets its own write and fsync; otherwise
    /// all of them go out in one write.
    fn write_units(&mut self, units: Vec<Unit>) {
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
                self.write_one_by_one(unit);
            }
            return;
        }
        let mut events = Vec::new();
        let mut shape = Vec::with_capacity(units.len());
        for unit in units {
            match unit {
                Unit::Record(event, reply) => {
                    events.push(event);
                    shape.push((1, Ok(reply)));
                }
                Unit::Group(group, reply) => {
                    shape.push((group.len(), Err(reply)));
                    events.extend(group);
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

    /// `EveryRecord`: one write and one fsync per record, a group answered at its end.
    fn write_one_by_one(&mut self, unit: Unit) {
        let (events, mut waiter) = match unit {
            Unit::Record(event, reply) => (vec![event], Ok(reply)),
            Unit::Group(events, reply) => (events, Err((reply, Vec::new()))),
        };
        for event in events {
            if self.failed() {
                break;
            }
            let written = self.write_events(std::slice::from_ref(&event));
            let synced = written.and_then(|receipts| {
                let head = self.head();
                match self.syncing.written(head, Vec::new()) {
                    Ok(()) => Ok(receipts),
                    Err(_) => Err(self.closed_error().to_string()),
                }
            });
            match (synced, waiter) {
                (Ok(mut receipts), Ok(reply)) => {
                    if let Some(receipt) = receipts.pop() {
                        drop(reply.send(Ok(receipt)));
                    }
                    self.rotate_if_due();
                    return;
                }
                (Ok(mut receipts), Err((reply, mut done))) => {
                    done.append(&mut receipts);
                    waiter = Err((reply, done));
                }
                (Err(message), Ok(reply)) => {
                    drop(reply.send(Err(self.append_error(&message))));
                    return;
                }
                (Err(message), Err((reply, _))) => {
                    drop(reply.send(Err(self.append_error(&message))));
                    return;
                }
            }
            self.rotate_if_due();
        }
        match waiter {
            Ok(reply) => drop(reply.send(Err(self.closed_error()))),
            Err((reply, done)) if !self.failed() => drop(reply.send(Ok(done))),
            Err((reply, _)) => drop(reply.send(Err(self.closed_error()))),
        }
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
        let acknowledged = match self.durability {
            // Written to the operating system is what this policy acknowledges.
            Durability::Interval(_) => {
                waiters.into_iter().for_each(Waiter::succeed);
                Vec::new()
            }
            _ => waiters,
        };
        if let Err(waiters) = self.syncing.written(head, acknowledged) {
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
    fn write_events(&mut self, events: &[EventBytes]) -> std::result::Result<Vec<Receipt>, String> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.buf.clear();
        let start = (self.tail.seq, self.tail.head, self.tail.head_offset);
        let mut receipts = Vec::with_capacity(events.len());
        // One clock reading per batch: the records of a batch are written together.
        let time = format_time(self.clock.now());
        for event in events {
            let seq = self.tail.seq + 1;
            let offset = self.len + self.buf.len() as u64;
            let hash = encode_line(
                &mut self.buf,
                &self.hasher,
                seq,
                &time,
                &self.tail.head,
                &event.0,
            );
            self.tail.seq = seq;
            self.tail.head = hash;
            self.tail.head_offset = offset;
            receipts.push(Receipt { seq, hash });
        }
        match self.file.write_all(&self.buf) {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                self.tail.head_file = file_name(&self.log);
                Ok(receipts)
            }
            Err(err) => {
                // Put the file and the chain back where they were, so that
                // nothing is ever appended after a partial write.
                let restored = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_all());
                (self.tail.seq, self.tail.head, self.tail.head_offset) = start;
                let message = Error::io("append to", &self.log, err).to_string();
                if let Err(cut) = restored {
                    self.fail(format!(
                        "{message}; cutting the partial write also failed ({cut}), so no further record is appended"
                    ));
                }
                Err(message)
            }
        }
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
        self.syncing.barrier_and_wait()?;
        let n = self.tail.segments + 1;
        let sealed_path = segment_path(&self.log, n);
        let sealed_name = file_name(&sealed_path);
        let mut files = self.tail.sealed.clone();
        files.push(sealed_name.clone());
        files.push(file_name(&self.log));
        Manifest { version: 1, files }.store(&self.log)?;
        std::fs::rename(&self.log, &sealed_path)
            .map_err(|e| Error::io("rotate audit log to", &sealed_path, e))?;
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
        self.syncing.reopened(handle, self.head());
        tracing::info!(path = %self.log.display(), segment = n, "rotated the audit log");
        Ok(())
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
    path: &Path,
    hasher: &Hasher,
    tail: &ChainTail,
    log: &Path,
) -> Result<Option<u64>> {
    let Some(checkpoint) = Checkpoint::load_if_exists(path)? else {
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
            "refusing to append to {}: it ends at record {} but checkpoint {} covers {} records; the log was truncated or rolled back, run `lift audit verify {}`",
            log.display(),
            tail.seq,
            path.display(),
            checkpoint.size,
            log.display()
        )));
    }
    Ok(Some(checkpoint.size))
}
