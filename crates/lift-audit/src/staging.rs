//! The hand-off between callers and the writer thread.
//!
//! A caller serializes its event on its own task, into a per-thread scratch
//! buffer, then copies the bytes into one shared staging buffer under a short
//! lock. The writer takes everything staged at once by swapping buffers, so a
//! record costs no allocation of its own, no channel node and, unless the
//! writer was asleep, no wake-up.
//!
//! Backpressure: a semaphore holds one permit per record that may wait in the
//! staging buffer. Callers wait for a permit; the writer returns permits as it
//! takes records. Nothing is ever dropped: a caller either stages its record
//! or gets an error.

use std::ops::Range;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Semaphore, oneshot};

use crate::durability::Receipt;
use crate::error::Result;

/// Where the answer to a caller goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

/// One caller's request, in the order callers staged them.
pub(crate) enum Entry {
    /// One record: its bytes in the staged buffer.
    Record(Range<usize>, Reply<Receipt>),
    /// Consecutive records from one `append_all` call.
    Group(Vec<Range<usize>>, Reply<Vec<Receipt>>),
    /// Make everything before this durable and checkpoint it.
    Flush(Reply<()>),
    /// Like `Flush`, then stop.
    Close(Reply<()>),
}

/// Why a caller could not stage its request: the writer has stopped or the sink was closed.
#[derive(Debug)]
pub(crate) struct Shut;

#[derive(Default)]
struct State {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    shut: bool,
    writer_asleep: bool,
}

/// The shared staging buffer.
pub(crate) struct Staging {
    state: Mutex<State>,
    ready: Condvar,
    room: Semaphore,
    capacity: usize,
}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staging")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// How many permits a group of `n` records holds: at most the whole capacity,
/// so that a group larger than the buffer still gets in (alone).
fn permits_for(n: usize, capacity: usize) -> usize {
    n.clamp(1, capacity)
}

impl Staging {
    /// A staging buffer where up to `capacity` records may wait.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        Staging {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            room: Semaphore::new(capacity),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `n` more records fit (the backpressure).
    pub(crate) async fn reserve(&self, n: usize) -> std::result::Result<(), Shut> {
        let permits = u32::try_from(permits_for(n, self.capacity)).unwrap_or(u32::MAX);
        // The common case, with room to spare, needs no waiting future.
        if let Ok(permit) = self.room.try_acquire_many(permits) {
            permit.forget();
            return Ok(());
        }
        self.room
            .acquire_many(permits)
            .await
            .map(tokio::sync::SemaphorePermit::forget)
            .map_err(|_| Shut)
    }

    /// Gives back a reservation that was not used.
    pub(crate) fn unreserve(&self, n: usize) {
        self.room.add_permits(permits_for(n, self.capacity));
    }

    /// Stages a request whose records' bytes are `bytes` (after a [`Staging::reserve`]).
    ///
    /// `make` turns the records' ranges in the shared buffer into the entry.
    /// On `Err`, the reservation was given back.
    pub(crate) fn push(
        &self,
        bytes: &[u8],
        records: usize,
        make: impl FnOnce(Range<usize>) -> Entry,
    ) -> std::result::Result<(), Shut> {
        let mut state = self.lock();
        if state.shut {
            drop(state);
            if records > 0 {
                self.unreserve(records);
            }
            return Err(Shut);
        }
        let start = state.bytes.len();
        state.bytes.extend_from_slice(bytes);
        let end = state.bytes.len();
        state.entries.push(make(start..end));
        if state.writer_asleep {
            state.writer_asleep = false;
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Stages a close: the last request taken; later ones are refused.
    pub(crate) fn push_close(&self, reply: Reply<()>) -> std::result::Result<(), Shut> {
        let mut state = self.lock();
        if state.shut {
            return Err(Shut);
        }
        state.entries.push(Entry::Close(reply));
        state.shut = true;
        state.writer_asleep = false;
        self.ready.notify_one();
        Ok(())
    }

    /// Stops taking requests. Returns true the first time.
    pub(crate) fn shut(&self) -> bool {
        let mut state = self.lock();
        let first = !state.shut;
        state.shut = true;
        state.writer_asleep = false;
        self.ready.notify_one();
        first
    }

    /// The writer: waits for requests and swaps them out into `bytes` and `entries`
    /// (which must be empty). Returns false once shut and drained.
    pub(crate) fn take(&self, bytes: &mut Vec<u8>, entries: &mut Vec<Entry>) -> bool {
        let mut state = self.lock();
        loop {
            if !state.entries.is_empty() {
                std::mem::swap(&mut state.bytes, bytes);
                std::mem::swap(&mut state.entries, entries);
                state.writer_asleep = false;
                drop(state);
                let records = entries
                    .iter()
                    .map(|entry| match entry {
                        Entry::Record(..) => 1,
                        Entry::Group(ranges, _) => permits_for(ranges.len(), self.capacity),
                        Entry::Flush(_) | Entry::Close(_) => 0,
                    })
                    .sum();
                self.room.add_permits(records);
                return true;
            }
            if state.shut {
                return false;
            }
            state.writer_asleep = true;
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The writer is gone: refuse everything still staged, and wake every
    /// caller waiting for room so that it fails instead of waiting forever.
    pub(crate) fn abandon(&self) -> Vec<Entry> {
        let mut state = self.lock();
        state.shut = true;
        state.bytes = Vec::new();
        let left = std::mem::take(&mut state.entries);
        drop(state);
        self.room.close();
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn record(staging: &Staging, bytes: &[u8]) -> oneshot::Receiver<Result<Receipt>> {
        let (reply, answer) = oneshot::channel();
        staging
            .push(bytes, 1, |range| Entry::Record(range, reply))
            .unwrap();
        answer
    }

    #[tokio::test]
    async fn a_full_buffer_makes_callers_wait_until_the_writer_takes() {
        let staging = Arc::new(Staging::new(2));
        staging.reserve(1).await.unwrap();
        let _a = record(&staging, b"a");
        staging.reserve(1).await.unwrap();
        let _b = record(&staging, b"bb");
        let waiting = tokio::spawn({
            let staging = Arc::clone(&staging);
            async move { staging.reserve(1).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a third record waits for room");
        let (mut bytes, mut entries) = (Vec::new(), Vec::new());
        assert!(staging.take(&mut bytes, &mut entries));
        assert_eq!(bytes, b"abb");
        assert!(
            matches!(&entries[..], [Entry::Record(a, _), Entry::Record(b, _)] if *a == (0..1) && *b == (1..3))
        );
        waiting.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_group_larger_than_the_buffer_still_gets_in() {
        let staging = Staging::new(2);
        staging.reserve(5).await.unwrap();
        staging.unreserve(5);
        staging.reserve(1).await.unwrap();
    }

    #[tokio::test]
    async fn after_a_close_nothing_more_is_taken() {
        let staging = Staging::new(4);
        let (reply, _answer) = oneshot::channel();
        staging.push_close(reply).unwrap();
        staging.reserve(1).await.unwrap();
        let (reply, _answer) = oneshot::channel();
        assert!(staging.push(b"x", 1, |r| Entry::Record(r, reply)).is_err());
        let (mut bytes, mut entries) = (Vec::new(), Vec::new());
        assert!(staging.take(&mut bytes, &mut entries));
        assert!(matches!(&entries[..], [Entry::Close(_)]));
        entries.clear();
        assert!(!staging.take(&mut bytes, &mut entries), "shut and drained");
    }

    #[tokio::test]
    async fn an_abandoned_buffer_fails_waiting_and_later_callers() {
        let staging = Arc::new(Staging::new(1));
        staging.reserve(1).await.unwrap();
        let staged = record(&staging, b"a");
        let waiting = tokio::spawn({
            let staging = Arc::clone(&staging);
            async move { staging.reserve(1).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let left = staging.abandon();
        assert_eq!(left.len(), 1);
        drop(left);
        assert!(
            staged.await.is_err(),
            "the staged caller hears its reply was dropped"
        );
        assert!(
            waiting.await.unwrap().is_err(),
            "a caller waiting for room is woken with an error"
        );
        assert!(staging.reserve(1).await.is_err());
    }
}
