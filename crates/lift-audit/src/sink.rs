//! `FileAuditSink`: the public face of the hash-chained, group-committed,
//! checkpointed file sink. Callers stage records (`staging.rs`); the writer
//! thread (`writer.rs`) writes them; the syncer (`syncer.rs`) makes them durable.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use lift_core::{AuditEvent, AuditSink};
use tokio::sync::oneshot;

use crate::durability::Receipt;
use crate::error::{Error, Result};
use crate::event_json::encode_event;
use crate::options::SinkOptions;
use crate::staging::{Entry, Staging};
use crate::syncer::{Failure, closed_error};
use crate::writer::Writer;

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
/// record is durable under the [`Durability`](crate::Durability) policy; nothing is dropped
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
        let staging = Arc::new(Staging::new(options.staging_capacity));
        let writer = tokio::task::spawn_blocking(move || Writer::open(options))
            .await
            .map_err(|e| Error::Closed {
                path: path.clone(),
                reason: format!(": the opening task failed: {e}"),
            })??;
        let failure = writer.failure();
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
    /// serializable). Under [`Durability::EveryRecord`](crate::Durability::EveryRecord) each is made durable
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
