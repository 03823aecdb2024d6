//! The writer thread: takes staged records, hashes them into the chain and
//! writes them under the log's lock, catches up with other writers, rotates,
//! and hands written records to the syncer (`syncer.rs`) to be made durable.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use lift_core::fs::{FileLock, LockFile, LockMode};
use lift_core::{Actor, AuditEvent, Clock, Resource};

use crate::checkpoint::{Checkpoint, default_checkpoint_path, sync_parent};
use crate::durability::{Durability, Receipt};
use crate::error::{Error, Result};
use crate::event_json::encode_event;
use crate::key::CheckpointSigner;
use crate::manifest::Manifest;
use crate::options::SinkOptions;
use crate::paths::{default_signing_key_path, lock_path};
use crate::record::{Hasher, encode_line, format_time};
use crate::recovery::{ChainTail, absorb, open_live, recover, segment_path};
use crate::staging::{Entry, Reply, Staging};
use crate::syncer::{Durable, Failure, Head, Syncing, Then, Waiter, acknowledged, closed_error};

/// The event recording that a torn tail was cut: `cause` is `"torn"` for a
/// partial last line, `"hole"` for a tail with a hole (zeros left by unsynced
/// writes that reached the disk out of order) before later bytes.
fn repair_event(
    log: &Path,
    cut_bytes: u64,
    last_good_seq: u64,
    file: &str,
    cause: &'static str,
) -> AuditEvent {
    AuditEvent::new(
        "audit",
        "repair.torn_tail",
        Resource::new("audit_log", log.display().to_string()),
    )
    .actor(Actor::system())
    .detail("cut_bytes", cut_bytes)
    .detail("last_good_seq", last_good_seq)
    .detail("file", file.to_owned())
    .detail("cause", cause)
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

/// One caller's records: their bytes in the batch taken from the staging buffer.
enum Unit {
    Record(Range<usize>, Reply<Receipt>),
    Group(Vec<Range<usize>>, Reply<Vec<Receipt>>),
}

/// The writer's state. It lives on its own thread, so that blocking file
/// I/O never stalls the caller's runtime and a final flush survives it.
pub(crate) struct Writer {
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
    /// Where the reason the writer stopped is kept, shared with the sink's handles.
    pub(crate) fn failure(&self) -> Failure {
        Arc::clone(&self.failure)
    }

    pub(crate) fn open(options: SinkOptions) -> Result<Writer> {
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
            let cause = if writer.tail.hole { "hole" } else { "torn" };
            if writer.tail.hole {
                tracing::warn!(
                    path = %writer.log.display(),
                    cut_bytes = writer.tail.cut_bytes,
                    last_good_seq = writer.tail.seq,
                    "cut a tail with a hole (unsynced writes that reached the disk out of order) from the end of the audit log"
                );
            } else {
                tracing::warn!(
                    path = %writer.log.display(),
                    cut_bytes = writer.tail.cut_bytes,
                    "cut a torn record from the end of the audit log"
                );
            }
            let event = repair_event(
                &writer.log,
                writer.tail.cut_bytes,
                writer.tail.seq,
                &writer.tail.head_file,
                cause,
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

    pub(crate) fn run_thread(mut self, staging: &Arc<Staging>) {
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
                    let through = self.tail.seq;
                    self.syncing.barrier(
                        Then::Checkpoint,
                        Box::new(move |result| {
                            if result.is_ok() && through > 0 {
                                acknowledged("barrier", 1, through);
                            }
                            drop(reply.send(result));
                        }),
                    );
                }
                Entry::Close(reply) => {
                    self.write_units(bytes, std::mem::take(&mut units));
                    records = 0;
                    let through = self.tail.seq;
                    self.syncing.barrier(
                        Then::Checkpoint,
                        Box::new(move |result| {
                            if result.is_ok() && through > 0 {
                                acknowledged("barrier", 1, through);
                            }
                            drop(reply.send(result));
                        }),
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
                    acknowledged("append", receipt.seq, receipt.seq);
                    drop(reply.send(Ok(receipt)));
                }
            }
            (Err(reply), None) => {
                if let (Some(first), Some(last)) = (receipts.first(), receipts.last()) {
                    acknowledged("append", first.seq, last.seq);
                }
                drop(reply.send(Ok(receipts)));
            }
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
                "torn",
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
        let file = open_live(&self.log)?;
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
        let file = open_live(&self.log)?;
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
