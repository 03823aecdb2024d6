//! The syncer: makes written records durable (fsync), answers the callers
//! waiting for them and signs checkpoints.
//!
//! The writer thread encodes, hashes and writes records; what happens next
//! depends on the [`Durability`] policy:
//!
//! - `EveryRecord`: the writer fsyncs each record itself ([`Syncing::Inline`]).
//! - `GroupCommit`: the writer hands each written batch, with its waiting
//!   callers, to a syncer thread and goes on writing the next batch. The
//!   syncer fsyncs everything handed over so far at once, then answers the
//!   callers. Writing batch N+1 overlaps with the fsync of batch N.
//! - `Interval`: the writer answers callers as soon as their records are
//!   written (not the syncer: an fsync must never hold up an answer this
//!   policy does not wait for); the syncer fsyncs at most once per interval.
//!
//! Checkpoints are signed by whoever fsyncs, right after an fsync, so that
//! **a checkpoint never covers a record that is not yet on disk**: after a
//! machine crash, the log can never end before its own checkpoint.

use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use lift_core::Clock;
use tokio::sync::oneshot;

use crate::checkpoint::Checkpoint;
use crate::durability::{Durability, Receipt};
use crate::error::{Error, Result};
use crate::key::CheckpointSigner;

/// Where the chain ends after a write: what a checkpoint covers.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    /// The last record's sequence number (0 for an empty chain).
    pub(crate) seq: u64,
    /// The last record's hash.
    pub(crate) hash: [u8; 32],
    /// The file holding the last record.
    pub(crate) file: String,
    /// The last record's byte offset in that file.
    pub(crate) offset: u64,
}

/// A caller waiting to hear that its records are durable.
pub(crate) enum Waiter {
    /// One record from `append`.
    Record(oneshot::Sender<Result<Receipt>>, Receipt),
    /// A group from `append_all`.
    Group(oneshot::Sender<Result<Vec<Receipt>>>, Vec<Receipt>),
}

/// Says, as a trace event with target `lift_audit::ack`, that callers are
/// being answered: records `first` to `last` acknowledged, by an append's
/// answer (`kind = "append"`: durable under `EveryRecord` and `GroupCommit`,
/// written under `Interval`) or by `sync` or `close` (`kind = "barrier"`:
/// durable and checkpointed). Emitted just before the answer is sent, on the
/// thread that sends it, so that a crash-state test can place it among the
/// file operations it records.
pub(crate) fn acknowledged(kind: &'static str, first: u64, last: u64) {
    tracing::trace!(target: "lift_audit::ack", kind, first, last, "answering");
}

impl Waiter {
    pub(crate) fn succeed(self) {
        match self {
            Waiter::Record(reply, receipt) => {
                acknowledged("append", receipt.seq, receipt.seq);
                drop(reply.send(Ok(receipt)));
            }
            Waiter::Group(reply, receipts) => {
                if let (Some(first), Some(last)) = (receipts.first(), receipts.last()) {
                    acknowledged("append", first.seq, last.seq);
                }
                drop(reply.send(Ok(receipts)));
            }
        }
    }

    pub(crate) fn fail(self, error: Error) {
        match self {
            Waiter::Record(reply, _) => drop(reply.send(Err(error))),
            Waiter::Group(reply, _) => drop(reply.send(Err(error))),
        }
    }
}

/// Called with the outcome of a barrier: everything before it durable and checkpointed.
pub(crate) type BarrierReply = Box<dyn FnOnce(Result<()>) + Send>;

/// The writer stops for good once this holds a reason.
pub(crate) type Failure = Arc<Mutex<Option<String>>>;

/// Builds the error every caller gets once the writer has stopped.
pub(crate) fn closed_error(log: &std::path::Path, failure: &Failure) -> Error {
    let reason = failure
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    Error::Closed {
        path: log.to_owned(),
        reason,
    }
}

/// Records why the writer stops, unless a reason is already there.
fn set_failure(failure: &Failure, reason: &str) {
    let mut slot = failure.lock().unwrap_or_else(PoisonError::into_inner);
    if slot.is_none() {
        tracing::error!(reason = %reason, "audit writer stopped");
        *slot = Some(reason.to_owned());
    }
}

/// Marks the writer stopped if the syncer thread unwinds.
struct FailOnPanic(Failure);

impl Drop for FailOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            set_failure(&self.0, "the audit syncer thread panicked");
        }
    }
}

/// Fsyncs the live file and signs checkpoints of durable heads.
pub(crate) struct Durable {
    pub(crate) log: PathBuf,
    /// A handle on the live file (the writer holds another on the same file).
    pub(crate) file: File,
    pub(crate) unsynced: bool,
    pub(crate) last_sync: Instant,
    /// The newest head written, durable or not.
    pub(crate) head: Head,
    pub(crate) checkpoint_path: PathBuf,
    /// Sign a checkpoint once this many records follow the last one (0: only at barriers).
    pub(crate) checkpoint_every: u64,
    /// The size the last checkpoint covered.
    pub(crate) checkpointed: Option<u64>,
    pub(crate) origin: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) signer: CheckpointSigner,
    pub(crate) key_id: Option<String>,
    pub(crate) failure: Failure,
    /// `<log>.lock`, held while the checkpoint is read and replaced.
    pub(crate) lock_path: PathBuf,
    /// The public content digest after `head`'s record. Computed here, from
    /// the written lines the writer hands over, rather than on the writer's
    /// thread, which is the sink's bottleneck.
    pub(crate) digest: [u8; 32],
}

impl Durable {
    /// Notes that records up to `head` were written to the file; `lines` are
    /// the record lines (each ending in `\n`) that came after the previous head.
    pub(crate) fn written(&mut self, head: Head, lines: &[u8]) {
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', lines) {
            self.digest = crate::record::next_digest(&self.digest, &lines[start..end]);
            start = end + 1;
        }
        self.head = head;
        self.unsynced = true;
    }

    /// Switches to the new live file after a rotation. The writer fsynced the
    /// old file before sealing it, so what it held is durable.
    pub(crate) fn reopened(&mut self, file: File, head: Head, lines: &[u8]) {
        self.written(head, lines);
        self.file = file;
    }

    /// Fsyncs the live file if anything was written since the last fsync.
    ///
    /// A failed fsync stops the writer for good: the kernel may have dropped
    /// the unwritten pages, so nothing after the last good fsync can be
    /// trusted to be on disk, and only a reopen (which rescans the file) can
    /// tell where the chain really ends.
    pub(crate) fn sync(&mut self) -> Result<()> {
        if !self.unsynced {
            return Ok(());
        }
        let span = tracing::trace_span!("audit_fsync", size = self.head.seq);
        let _entered = span.enter();
        match lift_core::fs::sync_data(&self.file, &self.log) {
            Ok(()) => {
                self.unsynced = false;
                self.last_sync = Instant::now();
                Ok(())
            }
            Err(err) => {
                let error = Error::from(err);
                let reason = format!(
                    "{error}; records after the last successful fsync may not be on disk, and no further record is appended"
                );
                tracing::error!(path = %self.log.display(), reason = %reason, "audit writer stopped");
                *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
                Err(error)
            }
        }
    }

    fn failed(&self) -> bool {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Signs a checkpoint when `checkpoint_every` records followed the last one.
    pub(crate) fn checkpoint_if_due(&mut self) {
        let due = self.checkpoint_every > 0
            && self.head.seq - self.checkpointed.unwrap_or(0) >= self.checkpoint_every;
        if due && !self.failed() {
            if let Err(err) = self.checkpoint() {
                tracing::error!(path = %self.log.display(), error = %err, "audit checkpoint failed");
            }
        }
    }

    /// Fsyncs, then checkpoints if asked.
    pub(crate) fn barrier(&mut self, then: Then) -> Result<()> {
        match then {
            Then::Checkpoint => self.checkpoint(),
            Then::Done if self.failed() => Err(closed_error(&self.log, &self.failure)),
            Then::Done => self.sync(),
        }
    }

    /// Fsyncs the log and writes a signed checkpoint of the current head.
    pub(crate) fn checkpoint(&mut self) -> Result<()> {
        if self.failed() {
            return Err(closed_error(&self.log, &self.failure));
        }
        self.sync()?;
        if self.checkpointed == Some(self.head.seq) && self.checkpoint_path.exists() {
            return Ok(());
        }
        let mut checkpoint = Checkpoint::sign(
            &self.signer,
            &self.origin,
            self.head.seq,
            &self.head.hash,
            &self.digest,
            self.clock.now(),
            self.key_id.as_deref(),
        );
        if self.head.seq > 0 {
            checkpoint.file = Some(self.head.file.clone());
            checkpoint.offset = Some(self.head.offset);
        }
        let span = tracing::debug_span!("audit_checkpoint", size = self.head.seq);
        let _entered = span.enter();
        // Other processes append to the same log and sign checkpoints too:
        // under the lock, a checkpoint only ever moves forward.
        let _lock = lift_core::fs::FileLock::exclusive(&self.lock_path)?;
        if let Some(existing) = Checkpoint::load_if_exists(&self.checkpoint_path)? {
            if existing.size >= self.head.seq {
                self.checkpointed = Some(self.head.seq);
                return Ok(());
            }
        }
        checkpoint.store(&self.checkpoint_path)?;
        self.checkpointed = Some(self.head.seq);
        Ok(())
    }
}

/// What the writer hands to the syncer thread, in write order.
pub(crate) enum SyncJob {
    /// Records up to `Head` were written (these lines since the last job); the
    /// waiters are answered once they are durable.
    Written(Head, Vec<Waiter>, Vec<u8>),
    /// Make everything so far durable (and checkpoint it, if asked), then call back.
    Barrier(BarrierReply, Then),
    /// The writer rotated: later records go to this file, and the chain ends at this head.
    /// The lines are those read or written since the last job, all in the old file.
    Reopened(File, Head, Vec<u8>),
}

/// What a barrier does once everything before it is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    /// Sign a checkpoint of the head (flush, close).
    Checkpoint,
    /// Nothing more (rotation, the repair record at open).
    Done,
}

/// The reason the writer stops when the syncer thread is gone.
const SYNCER_GONE: &str = "the audit syncer thread stopped, so nothing more can be made durable";

/// Who fsyncs: the writer itself, or a syncer thread.
pub(crate) enum Syncing {
    /// The writer fsyncs and checkpoints on its own thread.
    Inline(Box<Durable>),
    /// A syncer thread does, fed through a channel.
    Thread {
        jobs: Sender<SyncJob>,
        thread: std::thread::JoinHandle<()>,
        /// Set when a job cannot be handed over: the writer must stop too.
        failure: Failure,
    },
    /// The syncer could not start; the writer has stopped.
    Stopped,
}

impl Syncing {
    /// Moves fsync and checkpoints to their own thread (all policies but `EveryRecord`).
    pub(crate) fn start_thread(
        durable: Box<Durable>,
        policy: Durability,
    ) -> std::io::Result<Syncing> {
        let (jobs, receiver) = std::sync::mpsc::channel();
        let failure = Arc::clone(&durable.failure);
        let thread = std::thread::Builder::new()
            .name("lift-audit-sync".into())
            .spawn(move || {
                // A panic must stop the writer too, not leave it appending
                // records that nothing will ever fsync.
                let _guard = FailOnPanic(Arc::clone(&durable.failure));
                run_syncer(*durable, &receiver, policy);
            })?;
        Ok(Syncing::Thread {
            jobs,
            thread,
            failure,
        })
    }

    /// Hands on records written up to `head`, with the callers waiting for them.
    ///
    /// Inline, this fsyncs (and checkpoints when due) before answering. Gives
    /// the waiters back when the writer has stopped, to be refused.
    pub(crate) fn written(
        &mut self,
        head: Head,
        waiters: Vec<Waiter>,
        lines: Vec<u8>,
    ) -> std::result::Result<(), Vec<Waiter>> {
        match self {
            Syncing::Inline(durable) => {
                durable.written(head, &lines);
                if durable.sync().is_err() {
                    return Err(waiters);
                }
                waiters.into_iter().for_each(Waiter::succeed);
                durable.checkpoint_if_due();
                Ok(())
            }
            Syncing::Thread { jobs, failure, .. } => jobs
                .send(SyncJob::Written(head, waiters, lines))
                .map_err(|refused| {
                    set_failure(failure, SYNCER_GONE);
                    match refused.0 {
                        SyncJob::Written(_, waiters, _) => waiters,
                        _ => Vec::new(),
                    }
                }),
            Syncing::Stopped => Err(waiters),
        }
    }

    /// The writer rotated: records now go to `file`, and the chain ends at
    /// `head`, after `lines` (the lines since the last hand-over).
    pub(crate) fn reopened(&mut self, file: File, head: Head, lines: Vec<u8>) {
        match self {
            Syncing::Inline(durable) => durable.reopened(file, head, &lines),
            Syncing::Thread { jobs, failure, .. } => {
                if jobs.send(SyncJob::Reopened(file, head, lines)).is_err() {
                    set_failure(failure, SYNCER_GONE);
                }
            }
            Syncing::Stopped => {}
        }
    }

    /// Makes everything handed over so far durable (and checkpointed, with
    /// [`Then::Checkpoint`]), then calls `reply`.
    pub(crate) fn barrier(&mut self, then: Then, reply: BarrierReply) {
        match self {
            Syncing::Inline(durable) => reply(durable.barrier(then)),
            Syncing::Stopped => reply(Err(Error::Integrity("the audit writer has stopped".into()))),
            Syncing::Thread { jobs, failure, .. } => {
                if let Err(refused) = jobs.send(SyncJob::Barrier(reply, then)) {
                    set_failure(failure, SYNCER_GONE);
                    if let SyncJob::Barrier(reply, _) = refused.0 {
                        reply(Err(Error::Integrity(SYNCER_GONE.into())));
                    }
                }
            }
        }
    }

    /// Like [`Syncing::barrier`], waiting on this thread for the outcome.
    pub(crate) fn barrier_and_wait(&mut self, then: Then) -> Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.barrier(then, Box::new(move |result| drop(tx.send(result))));
        rx.recv().unwrap_or_else(|_| {
            Err(Error::Integrity(
                "the audit syncer thread stopped during a barrier".into(),
            ))
        })
    }

    /// Stops: the final fsync and checkpoint, then the syncer thread ends.
    pub(crate) fn finish(self) {
        match self {
            Syncing::Inline(mut durable) => {
                if let Err(err) = durable.checkpoint() {
                    tracing::error!(path = %durable.log.display(), error = %err, "final audit checkpoint failed");
                }
            }
            Syncing::Stopped => {}
            Syncing::Thread { jobs, thread, .. } => {
                // Closing the channel makes the syncer checkpoint and stop.
                drop(jobs);
                let _ = thread.join();
            }
        }
    }
}

/// The syncer thread: batches fsyncs, answers callers, signs checkpoints.
fn run_syncer(mut durable: Durable, jobs: &Receiver<SyncJob>, policy: Durability) {
    let interval = match policy {
        Durability::Interval(interval) => Some(interval),
        _ => None,
    };
    let mut waiting: Vec<Waiter> = Vec::new();
    let mut barriers: Vec<(BarrierReply, Then)> = Vec::new();
    loop {
        // An interval too long to add to a time (`Duration::MAX`) means: never by the clock.
        let deadline = interval.and_then(|interval| durable.last_sync.checked_add(interval));
        let first = match deadline {
            Some(deadline) if durable.unsynced => {
                let wait = deadline.saturating_duration_since(Instant::now());
                match jobs.recv_timeout(wait) {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            _ => match jobs.recv() {
                Ok(job) => Some(job),
                Err(_) => break,
            },
        };
        // Take everything already queued too: one fsync covers all of it.
        for job in first
            .into_iter()
            .chain(std::iter::from_fn(|| jobs.try_recv().ok()))
        {
            match job {
                SyncJob::Written(head, waiters, lines) => {
                    durable.written(head, &lines);
                    waiting.extend(waiters);
                }
                SyncJob::Barrier(reply, then) => barriers.push((reply, then)),
                SyncJob::Reopened(file, head, lines) => durable.reopened(file, head, &lines),
            }
        }
        let due = match interval {
            Some(interval) => durable.last_sync.elapsed() >= interval,
            None => true,
        };
        if !due && barriers.is_empty() {
            continue;
        }
        if let Err(err) = durable.sync() {
            tracing::debug!(error = %err, "fsync failed; answering every waiting caller");
        }
        if durable.failed() {
            refuse_all(
                &durable,
                waiting.drain(..),
                barriers.drain(..).map(|(reply, _)| reply),
            );
            while let Ok(job) = jobs.recv() {
                match job {
                    SyncJob::Written(_, waiters, _) => refuse_all(&durable, waiters, []),
                    SyncJob::Barrier(reply, _) => refuse_all(&durable, [], [reply]),
                    SyncJob::Reopened(..) => {}
                }
            }
            return;
        }
        for waiter in waiting.drain(..) {
            waiter.succeed();
        }
        if barriers.is_empty() {
            durable.checkpoint_if_due();
        }
        for (reply, then) in barriers.drain(..) {
            // The first checkpoint does the work; the others find it current.
            reply(durable.barrier(then));
        }
    }
    // Every sender is gone: make everything durable and checkpoint it.
    if let Err(err) = durable.checkpoint() {
        tracing::error!(path = %durable.log.display(), error = %err, "final audit checkpoint failed");
    }
}

fn refuse_all(
    durable: &Durable,
    waiters: impl IntoIterator<Item = Waiter>,
    barriers: impl IntoIterator<Item = BarrierReply>,
) {
    for waiter in waiters {
        waiter.fail(closed_error(&durable.log, &durable.failure));
    }
    for reply in barriers {
        reply(Err(closed_error(&durable.log, &durable.failure)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditKey;
    use std::os::fd::OwnedFd;

    /// A durable whose "file" is a pipe: fdatasync on a pipe fails (EINVAL),
    /// standing in for a disk that reports a write-back error.
    fn failing_durable(dir: &std::path::Path) -> (Durable, std::io::PipeReader) {
        let (reader, writer) = std::io::pipe().unwrap();
        let key = AuditKey::from_bytes(&[7u8; 32]).unwrap();
        let durable = Durable {
            log: dir.join("audit.jsonl"),
            file: File::from(OwnedFd::from(writer)),
            unsynced: false,
            last_sync: Instant::now(),
            head: Head {
                seq: 0,
                hash: [0; 32],
                file: "audit.jsonl".into(),
                offset: 0,
            },
            checkpoint_path: dir.join("audit.jsonl.checkpoint"),
            checkpoint_every: 1,
            checkpointed: None,
            origin: "test".into(),
            clock: Arc::new(lift_core::SystemClock),
            signer: key.signer(),
            key_id: Some(key.id().to_owned()),
            failure: Failure::default(),
            lock_path: dir.join("audit.jsonl.lock"),
            digest: [0; 32],
        };
        (durable, reader)
    }

    /// A caller waiting for record `seq`, and where its answer arrives.
    fn waiting_for(seq: u64) -> (Waiter, oneshot::Receiver<Result<Receipt>>) {
        let (reply, answer) = oneshot::channel();
        let hash = [u8::try_from(seq).unwrap_or(0); 32];
        (Waiter::Record(reply, Receipt { seq, hash }), answer)
    }

    fn head(seq: u64) -> Head {
        Head {
            seq,
            hash: [1; 32],
            file: "audit.jsonl".into(),
            offset: 0,
        }
    }

    #[tokio::test]
    async fn a_failed_fsync_answers_every_waiter_with_the_reason_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let (durable, _reader) = failing_durable(dir.path());
        let failure = Arc::clone(&durable.failure);
        let mut syncing =
            Syncing::start_thread(Box::new(durable), Durability::GroupCommit).unwrap();
        let (waiter, answer) = waiting_for(1);
        syncing.written(head(1), vec![waiter], Vec::new()).ok();
        let err = answer.await.unwrap().unwrap_err();
        let message = err.to_string();
        assert!(message.contains("cannot fsync"), "{message}");
        assert!(
            message.contains("no further record is appended"),
            "{message}"
        );
        assert!(
            failure.lock().unwrap().is_some(),
            "the writer is marked stopped"
        );
        // Later work is refused rather than left waiting.
        assert!(syncing.barrier_and_wait(Then::Checkpoint).is_err());
        let (waiter, answer) = waiting_for(2);
        syncing.written(head(2), vec![waiter], Vec::new()).ok();
        assert!(answer.await.unwrap().is_err());
        syncing.finish();
        assert!(
            !dir.path().join("audit.jsonl.checkpoint").exists(),
            "no checkpoint covers records that never reached the disk"
        );
    }

    #[test]
    fn inline_syncing_refuses_after_a_failed_fsync_too() {
        let dir = tempfile::tempdir().unwrap();
        let (durable, _reader) = failing_durable(dir.path());
        let mut syncing = Syncing::Inline(Box::new(durable));
        let (waiter, _answer) = waiting_for(1);
        let refused = syncing.written(head(1), vec![waiter], Vec::new());
        assert_eq!(
            refused.err().map(|w| w.len()),
            Some(1),
            "the waiter is handed back to be refused"
        );
        assert!(syncing.barrier_and_wait(Then::Checkpoint).is_err());
    }
}
