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
        serde_json::to_vec(event)
            .map(EventBytes)
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

/// The writer's state. It lives on its own thread, so that blocking file
/// I/O never stalls the caller's runtime and a final flush survives it.
struct Writer {
    log: PathBuf,
    checkpoint_path: PathBuf,
    durability: Durability,
    checkpoint_every: u64,
    max_file_bytes: Option<u64>,
    channel_capacity: usize,
    max_batch: usize,
    origin: String,
    clock: Arc<dyn Clock>,
    hasher: Hasher,
    signer: CheckpointSigner,
    file: File,
    len: u64,
    tail: ChainTail,
    checkpointed: Option<u64>,
    unsynced: bool,
    last_sync: Instant,
    buf: Vec<u8>,
    failure: Arc<Mutex<Option<String>>>,
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
        let mut writer = Writer {
            log,
            checkpoint_path,
            durability: options.durability,
            checkpoint_every: options.checkpoint_every,
            max_file_bytes: options.max_file_bytes,
            channel_capacity: options.channel_capacity.max(1),
            max_batch: options.max_batch.max(1),
            origin,
            clock: options.clock,
            hasher,
            signer,
            file,
            len,
            tail,
            checkpointed,
            unsynced: false,
            last_sync: Instant::now(),
            buf: Vec::with_capacity(1 << 16),
            failure: Arc::new(Mutex::new(None)),
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
        let failed = self.append_batch(vec![(EventBytes::encode(&event)?, tx)]);
        self.sync()?;
        match failed {
            Some(reason) => Err(Error::Integrity(reason)),
            None => Ok(()),
        }
    }

    fn run_thread(self, rx: mpsc::Receiver<Command>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build();
        match runtime {
            Ok(runtime) => runtime.block_on(self.run(rx)),
            Err(err) => {
                let mut rx = rx;
                let reason = format!("cannot start the writer runtime: {err}");
                *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
                rx.close();
            }
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut commands = Vec::with_capacity(self.max_batch);
        loop {
            let received = match self.durability {
                Durability::Interval(interval) if self.unsynced => {
                    let deadline = tokio::time::Instant::from_std(self.last_sync + interval);
                    match tokio::time::timeout_at(
                        deadline,
                        rx.recv_many(&mut commands, self.max_batch),
                    )
                    .await
                    {
                        Ok(n) => n,
                        Err(_) => {
                            let _ = self.sync();
                            continue;
                        }
                    }
                }
                _ => rx.recv_many(&mut commands, self.max_batch).await,
            };
            if received == 0 {
                break;
            }
            if self.process(&mut commands) {
                rx.close();
                while let Ok(command) = rx.try_recv() {
                    self.refuse(command);
                }
                return;
            }
        }
        // Every handle is gone: make everything durable and checkpoint it.
        if let Err(err) = self.checkpoint() {
            tracing::error!(path = %self.log.display(), error = %err, "final audit checkpoint failed");
        }
    }

    fn closed_error(&self) -> Error {
        let reason = self
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        Error::Closed {
            path: self.log.clone(),
            reason,
        }
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
        let mut batch = Vec::new();
        let mut closing = false;
        for command in commands.drain(..) {
            if closing {
                self.refuse(command);
                continue;
            }
            match command {
                Command::Record(event, reply) => batch.push((event, reply)),
                Command::Records(events, reply) => {
                    self.commit(std::mem::take(&mut batch));
                    if self.failed() {
                        drop(reply.send(Err(self.closed_error())));
                    } else if let Some(reason) = self.append_group(events, reply) {
                        self.fail(reason);
                    }
                    self.after_append();
                }
                Command::Flush(reply) => {
                    self.commit(std::mem::take(&mut batch));
                    drop(reply.send(self.checkpoint()));
                }
                Command::Close(reply) => {
                    self.commit(std::mem::take(&mut batch));
                    drop(reply.send(self.checkpoint()));
                    closing = true;
                }
            }
        }
        self.commit(batch);
        closing
    }

    fn failed(&self) -> bool {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    fn fail(&self, reason: String) {
        tracing::error!(path = %self.log.display(), reason = %reason, "audit writer stopped");
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    fn commit(&mut self, batch: Vec<(EventBytes, Reply<Receipt>)>) {
        if batch.is_empty() {
            return;
        }
        if self.failed() {
            for (_, reply) in batch {
                drop(reply.send(Err(self.closed_error())));
            }
            return;
        }
        if self.durability == Durability::EveryRecord {
            for item in batch {
                if self.failed() {
                    drop(item.1.send(Err(self.closed_error())));
                    continue;
                }
                if let Some(reason) = self.append_batch(vec![item]) {
                    self.fail(reason);
                }
            }
        } else if let Some(reason) = self.append_batch(batch) {
            self.fail(reason);
        }
        self.after_append();
    }

    /// Checkpoints and rotates when due.
    fn after_append(&mut self) {
        let due = self.checkpoint_every > 0
            && self.tail.seq - self.checkpointed.unwrap_or(0) >= self.checkpoint_every;
        if due && !self.failed() {
            if let Err(err) = self.checkpoint() {
                tracing::error!(path = %self.log.display(), error = %err, "audit checkpoint failed");
            }
        }
        if self.max_file_bytes.is_some_and(|max| self.len >= max) && !self.failed() {
            if let Err(err) = self.rotate() {
                self.fail(format!("rotation failed: {err}"));
            }
        }
    }

    /// Encodes, writes and (per policy) fsyncs a batch, then answers every caller.
    /// Returns a reason when the writer must stop.
    fn append_batch(&mut self, batch: Vec<(EventBytes, Reply<Receipt>)>) -> Option<String> {
        let (events, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let (result, fatal) = self.write_events(&events);
        match result {
            Ok(receipts) => {
                for (reply, receipt) in replies.into_iter().zip(receipts) {
                    drop(reply.send(Ok(receipt)));
                }
            }
            Err(message) => {
                for reply in replies {
                    drop(reply.send(Err(self.append_error(&message))));
                }
            }
        }
        fatal
    }

    /// Appends a caller's group of records in order, answering once for all.
    fn append_group(
        &mut self,
        events: Vec<EventBytes>,
        reply: Reply<Vec<Receipt>>,
    ) -> Option<String> {
        if self.durability == Durability::EveryRecord {
            let mut receipts = Vec::with_capacity(events.len());
            for event in events {
                match self.write_events(std::slice::from_ref(&event)) {
                    (Ok(mut one), None) => receipts.append(&mut one),
                    (Ok(_), fatal) => return fatal,
                    (Err(message), fatal) => {
                        drop(reply.send(Err(self.append_error(&message))));
                        return fatal;
                    }
                }
            }
            drop(reply.send(Ok(receipts)));
            return None;
        }
        let (result, fatal) = self.write_events(&events);
        drop(reply.send(result.map_err(|message| self.append_error(&message))));
        fatal
    }

    fn append_error(&self, message: &str) -> Error {
        Error::io(
            "append to",
            &self.log,
            std::io::Error::other(message.to_owned()),
        )
    }

    /// Encodes, writes and (per policy) fsyncs records. On failure, returns the
    /// error message, and also a reason when the writer must stop.
    fn write_events(
        &mut self,
        events: &[EventBytes],
    ) -> (std::result::Result<Vec<Receipt>, String>, Option<String>) {
        if events.is_empty() {
            return (Ok(Vec::new()), None);
        }
        self.buf.clear();
        let start = (
            self.len,
            self.tail.seq,
            self.tail.head,
            self.tail.head_offset,
            self.tail.head_file.clone(),
        );
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
        self.tail.head_file = file_name(&self.log);
        let written = self.file.write_all(&self.buf);
        let synced = written.and_then(|()| {
            self.unsynced = true;
            match self.durability {
                Durability::EveryRecord | Durability::GroupCommit => self.sync_io(),
                Durability::Interval(interval) if self.last_sync.elapsed() >= interval => {
                    self.sync_io()
                }
                Durability::Interval(_) => Ok(()),
            }
        });
        match synced {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                (Ok(receipts), None)
            }
            Err(err) => {
                // Put the file and the chain back where they were, so that
                // nothing is ever appended after a partial write.
                let (len, seq, head, offset, head_file) = start;
                let restored = self.file.set_len(len).and_then(|()| self.file.sync_all());
                self.tail.seq = seq;
                self.tail.head = head;
                self.tail.head_offset = offset;
                self.tail.head_file = head_file;
                let message = Error::io("append to", &self.log, err).to_string();
                let fatal = restored.err().map(|cut| {
                    format!(
                        "{message}; cutting the partial write also failed ({cut}), so no further record is appended"
                    )
                });
                (Err(message), fatal)
            }
        }
    }

    fn sync_io(&mut self) -> std::io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.sync_io().map_err(|e| Error::io("fsync", &self.log, e))
    }

    /// Fsyncs the log and writes a signed checkpoint of the current head.
    fn checkpoint(&mut self) -> Result<()> {
        self.sync()?;
        if self.checkpointed == Some(self.tail.seq) && self.checkpoint_path.exists() {
            return Ok(());
        }
        let mut checkpoint = Checkpoint::sign(
            &self.signer,
            &self.origin,
            self.tail.seq,
            &self.tail.head,
            self.clock.now(),
            self.hasher.kid(),
        );
        if self.tail.seq > 0 {
            checkpoint.file = Some(self.tail.head_file.clone());
            checkpoint.offset = Some(self.tail.head_offset);
        }
        let span = tracing::debug_span!("audit_checkpoint", size = self.tail.seq);
        let _entered = span.enter();
        checkpoint.store(&self.checkpoint_path)?;
        self.checkpointed = Some(self.tail.seq);
        Ok(())
    }

    /// Seals the live file as the next segment and starts a new live file.
    ///
    /// Order matters for crash safety: the manifest naming the new segment is
    /// written before the rename, and recovery completes a missing rename.
    fn rotate(&mut self) -> Result<()> {
        self.sync()?;
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
        self.file = file;
        self.len = 0;
        self.tail.segments = n;
        self.tail.sealed.push(sealed_name.clone());
        if self.tail.head_file == file_name(&self.log) {
            self.tail.head_file = sealed_name;
        }
        tracing::info!(path = %self.log.display(), segment = n, "rotated the audit log");
        Ok(())
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
