//! A counting global allocator wrapper: the Rust answer to Go's `runtime.MemStats`.
//!
//! Counting costs a few plain loads and stores per allocation. Each thread gets an
//! exclusive slot of counters that only it writes (so no locked instruction is needed);
//! readers sum the slots with relaxed loads. Peak live bytes need a global view, so each
//! thread folds its live-byte delta into a shared counter once it exceeds
//! [`PEAK_GRANULARITY`] bytes: the peak is exact to within that much per thread.

// This module implements `GlobalAlloc`, which is an unsafe trait: the workspace denies
// unsafe code everywhere else.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};

/// How many bytes of live-heap change a thread accumulates before it updates the shared
/// live counter and the peak. The peak is exact to within this many bytes per thread.
pub const PEAK_GRANULARITY: i64 = 64 * 1024;

/// Threads beyond this many alive at once share one slot updated with atomic
/// read-modify-write operations: still correct, a little slower. A thread's slot is
/// recycled when the thread exits (tokio's blocking pool retires idle threads after 10 s,
/// so a long-running service goes through far more threads than it ever has at once).
const SLOTS: usize = 256;

/// The counters of one thread. Only the owning thread writes the exclusive slots.
#[repr(align(64))]
struct Slot {
    allocs: AtomicU64,
    frees: AtomicU64,
    reallocs: AtomicU64,
    bytes_allocated: AtomicU64,
    bytes_freed: AtomicU64,
    /// Live-byte change not yet folded into [`LIVE`].
    pending: AtomicI64,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            reallocs: AtomicU64::new(0),
            bytes_allocated: AtomicU64::new(0),
            bytes_freed: AtomicU64::new(0),
            pending: AtomicI64::new(0),
        }
    }
}

static SLOTS_ARRAY: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];
/// The slot shared by threads that found no free exclusive slot.
static SHARED: Slot = Slot::new();
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
/// Slots released by exited threads, one bit per slot.
static FREE: [AtomicU64; SLOTS / 64] = [const { AtomicU64::new(0) }; SLOTS / 64];
/// Live bytes folded in by the threads (lags the exact figure by the pending deltas).
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// `usize::MAX` until the thread first allocates; then its slot index, or `SLOTS` for the shared slot.
const UNASSIGNED: usize = usize::MAX;

thread_local! {
    // A const-initialised `Cell<usize>` has no destructor, so touching it never allocates:
    // that makes it safe to use from inside the global allocator.
    static SLOT_INDEX: Cell<usize> = const { Cell::new(UNASSIGNED) };
}

/// Adds `n` to a counter that only this thread writes, without a locked instruction.
#[inline(always)]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Gives back the exiting thread's slot. Runs as a thread-local destructor.
struct SlotRelease;

impl Drop for SlotRelease {
    fn drop(&mut self) {
        let Ok(index) = SLOT_INDEX.try_with(|cell| {
            let index = cell.get();
            // Allocations made later in this thread's teardown go to the shared slot: the
            // released slot may already belong to another thread.
            cell.set(SLOTS);
            index
        }) else {
            return;
        };
        if let Some(slot) = SLOTS_ARRAY.get(index) {
            let pending = slot.pending.swap(0, Relaxed);
            if pending != 0 {
                fold_into_live(pending);
            }
            // Release: the next owner sees every count this thread stored.
            FREE[index / 64].fetch_or(1 << (index % 64), Release);
        }
    }
}

thread_local! {
    static RELEASE: SlotRelease = const { SlotRelease };
}

/// A free slot: a never-used one while any is left, else one an exited thread released;
/// `SLOTS` (the shared slot) when none is free.
fn claim_slot() -> usize {
    let next = NEXT_SLOT.load(Relaxed);
    if next < SLOTS {
        let next = NEXT_SLOT.fetch_add(1, Relaxed);
        if next < SLOTS {
            return next;
        }
    }
    for (word_index, word) in FREE.iter().enumerate() {
        let mut bits = word.load(Relaxed);
        while bits != 0 {
            let bit = bits.trailing_zeros() as usize;
            // Acquire: pairs with the Release of the thread that gave the slot back.
            match word.compare_exchange_weak(bits, bits & !(1 << bit), Acquire, Relaxed) {
                Ok(_) => return word_index * 64 + bit,
                Err(now) => bits = now,
            }
        }
    }
    SLOTS
}

#[inline(always)]
fn with_slot<R>(f: impl FnOnce(&'static Slot, bool) -> R) -> R {
    let index = SLOT_INDEX
        .try_with(|cell| {
            let index = cell.get();
            if index != UNASSIGNED {
                return index;
            }
            let index = claim_slot();
            // Set before registering the release: registering may allocate, and that
            // allocation must find the slot assigned rather than claim another.
            cell.set(index);
            if index < SLOTS && RELEASE.try_with(|_| ()).is_err() {
                // The thread is already tearing down: give the slot straight back.
                cell.set(SLOTS);
                FREE[index / 64].fetch_or(1 << (index % 64), Release);
                return SLOTS;
            }
            cell.get()
        })
        .unwrap_or(SLOTS);
    match SLOTS_ARRAY.get(index) {
        Some(slot) => f(slot, true),
        None => f(&SHARED, false),
    }
}

fn fold_into_live(delta: i64) {
    let live = LIVE.fetch_add(delta, Relaxed) + delta;
    if live > PEAK.load(Relaxed) {
        PEAK.fetch_max(live, Relaxed);
    }
}

/// Folds `delta` into the slot's pending live-byte change, and into the shared live
/// counter and the peak once it passes [`PEAK_GRANULARITY`].
#[inline(always)]
fn add_pending(slot: &Slot, delta: i64) {
    let pending = slot.pending.load(Relaxed) + delta;
    if pending.abs() >= PEAK_GRANULARITY {
        slot.pending.store(0, Relaxed);
        fold_into_live(pending);
    } else {
        slot.pending.store(pending, Relaxed);
    }
}

#[inline(always)]
fn mark_active() {
    if !ACTIVE.load(Relaxed) {
        ACTIVE.store(true, Relaxed);
    }
}

#[inline(always)]
fn record_alloc(size: usize) {
    mark_active();
    with_slot(|slot, exclusive| {
        if exclusive {
            bump(&slot.allocs, 1);
            bump(&slot.bytes_allocated, size as u64);
            add_pending(slot, size as i64);
        } else {
            slot.allocs.fetch_add(1, Relaxed);
            slot.bytes_allocated.fetch_add(size as u64, Relaxed);
            fold_into_live(size as i64);
        }
    });
}

#[inline(always)]
fn record_free(size: usize) {
    with_slot(|slot, exclusive| {
        if exclusive {
            bump(&slot.frees, 1);
            bump(&slot.bytes_freed, size as u64);
            add_pending(slot, -(size as i64));
        } else {
            slot.frees.fetch_add(1, Relaxed);
            slot.bytes_freed.fetch_add(size as u64, Relaxed);
            fold_into_live(-(size as i64));
        }
    });
}

#[inline(always)]
fn record_realloc(old: usize, new: usize) {
    mark_active();
    with_slot(|slot, exclusive| {
        if exclusive {
            bump(&slot.reallocs, 1);
            bump(&slot.bytes_allocated, new as u64);
            bump(&slot.bytes_freed, old as u64);
            add_pending(slot, new as i64 - old as i64);
        } else {
            slot.reallocs.fetch_add(1, Relaxed);
            slot.bytes_allocated.fetch_add(new as u64, Relaxed);
            slot.bytes_freed.fetch_add(old as u64, Relaxed);
            fold_into_live(new as i64 - old as i64);
        }
    });
}

/// A global allocator that counts what passes through it to the inner allocator `A`.
///
/// Opt in with `#[global_allocator]`; then [`allocator_stats`] returns the counts and
/// the monitor's snapshots include them, with an allocation rate.
///
/// ```
/// use lift_monitor::CountingAlloc;
/// use std::alloc::System;
///
/// #[global_allocator]
/// static GLOBAL: CountingAlloc<System> = CountingAlloc::new(System);
///
/// let v = vec![0u8; 1 << 20];
/// let stats = lift_monitor::allocator_stats().unwrap();
/// assert!(stats.live_bytes >= 1 << 20);
/// drop(v);
/// ```
///
/// Invariant: the counters are process-wide statics (a process has one global
/// allocator), so every `CountingAlloc` value updates the same counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc<A = System> {
    inner: A,
}

impl<A> CountingAlloc<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> Self {
        CountingAlloc { inner }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

// SAFETY: every method forwards to the inner allocator with the caller's arguments
// unchanged and returns its result unchanged, so the inner allocator's guarantees hold.
// The bookkeeping only touches atomics and a const-initialised thread-local without a
// destructor, so it never allocates and cannot re-enter the allocator.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract; we pass it on.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            record_alloc(layout.size());
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract; we pass it on.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            record_alloc(layout.size());
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator (hence by `inner`) with `layout`.
        unsafe { self.inner.dealloc(ptr, layout) };
        record_free(layout.size());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract; we pass it on.
        let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            record_realloc(layout.size(), new_size);
        }
        new
    }
}

/// Counts of the [`CountingAlloc`] global allocator since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, schemars::JsonSchema)]
pub struct AllocStats {
    /// Bytes currently allocated.
    pub live_bytes: u64,
    /// Allocations not yet freed (Go's `HeapObjects`).
    pub live_allocations: u64,
    /// Allocations made, `alloc` and `alloc_zeroed` (reallocations not included).
    pub total_allocations: u64,
    /// Deallocations made.
    pub total_frees: u64,
    /// Reallocations made.
    pub total_reallocations: u64,
    /// Bytes handed out in total, including the new size of each reallocation.
    pub total_bytes_allocated: u64,
    /// The highest live byte count seen, exact to within [`PEAK_GRANULARITY`] bytes per thread.
    pub peak_live_bytes: u64,
}

/// The counts of the [`CountingAlloc`] global allocator, or `None` when no allocation has
/// gone through one (it is not installed as the global allocator).
///
/// Costs one relaxed load per used thread slot; no lock, no system call.
pub fn allocator_stats() -> Option<AllocStats> {
    if !ACTIVE.load(Relaxed) {
        return None;
    }
    let used = NEXT_SLOT.load(Relaxed).min(SLOTS);
    let mut allocs = 0u64;
    let mut frees = 0u64;
    let mut reallocs = 0u64;
    let mut allocated = 0u64;
    let mut freed = 0u64;
    for slot in SLOTS_ARRAY[..used].iter().chain(std::iter::once(&SHARED)) {
        allocs = allocs.wrapping_add(slot.allocs.load(Relaxed));
        frees = frees.wrapping_add(slot.frees.load(Relaxed));
        reallocs = reallocs.wrapping_add(slot.reallocs.load(Relaxed));
        allocated = allocated.wrapping_add(slot.bytes_allocated.load(Relaxed));
        freed = freed.wrapping_add(slot.bytes_freed.load(Relaxed));
    }
    // Relaxed loads of different slots are not one instant: clamp rather than wrap.
    let live_bytes = allocated.saturating_sub(freed);
    let peak = u64::try_from(PEAK.load(Relaxed))
        .unwrap_or(0)
        .max(live_bytes);
    Some(AllocStats {
        live_bytes,
        live_allocations: allocs.saturating_sub(frees),
        total_allocations: allocs,
        total_frees: frees,
        total_reallocations: reallocs,
        total_bytes_allocated: allocated,
        peak_live_bytes: peak,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The unit tests run without `CountingAlloc` installed globally, so they drive an
    // instance directly; it updates the same process-wide counters.
    static COUNTING: CountingAlloc<System> = CountingAlloc::new(System);
    /// The counters are process-wide: the tests that move them take turns.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn counts_allocations_frees_and_peak() {
        let _turn = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let layout = Layout::from_size_align(1 << 20, 8).unwrap();
        let before = allocator_stats().unwrap_or_default();
        // SAFETY: the layout has a non-zero size; the pointer is freed with the same layout.
        let ptr = unsafe { COUNTING.alloc(layout) };
        assert!(!ptr.is_null());
        let during = allocator_stats().unwrap();
        assert_eq!(during.total_allocations, before.total_allocations + 1);
        assert!(during.total_bytes_allocated >= before.total_bytes_allocated + (1 << 20));
        assert!(during.peak_live_bytes >= 1 << 20);
        // SAFETY: `ptr` came from `COUNTING.alloc(layout)`.
        let grown = unsafe { COUNTING.realloc(ptr, layout, 2 << 20) };
        assert!(!grown.is_null());
        let new_layout = Layout::from_size_align(2 << 20, 8).unwrap();
        // SAFETY: `grown` came from `COUNTING.realloc` with the new size.
        unsafe { COUNTING.dealloc(grown, new_layout) };
        let after = allocator_stats().unwrap();
        assert_eq!(after.total_frees, during.total_frees + 1);
        assert_eq!(after.total_reallocations, during.total_reallocations + 1);
        assert!(after.peak_live_bytes >= 2 << 20);
    }

    /// Far more threads than slots, one after another (as tokio's blocking pool retires
    /// and spawns them): each gets an exclusive slot, and no count is lost.
    #[test]
    fn slots_of_exited_threads_are_recycled() {
        let _turn = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let layout = Layout::from_size_align(64, 8).unwrap();
        let before = allocator_stats().unwrap_or_default();
        let threads = 3 * SLOTS;
        let mut exclusive = 0;
        for _ in 0..threads {
            let got = std::thread::spawn(move || {
                // SAFETY: non-zero layout, freed with the same layout.
                let ptr = unsafe { COUNTING.alloc(layout) };
                assert!(!ptr.is_null());
                // SAFETY: `ptr` came from `COUNTING.alloc(layout)`.
                unsafe { COUNTING.dealloc(ptr, layout) };
                with_slot(|_, exclusive| exclusive)
            })
            .join()
            .unwrap();
            exclusive += usize::from(got);
        }
        assert_eq!(exclusive, threads, "every thread had a slot of its own");
        let after = allocator_stats().unwrap();
        assert!(after.total_allocations >= before.total_allocations + threads as u64);
        assert!(after.total_frees >= before.total_frees + threads as u64);
    }

    #[test]
    fn threads_beyond_the_first_get_their_own_counts() {
        let _turn = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let layout = Layout::from_size_align(4096, 8).unwrap();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        // SAFETY: non-zero layout, freed with the same layout.
                        let ptr = unsafe { COUNTING.alloc(layout) };
                        assert!(!ptr.is_null());
                        // SAFETY: `ptr` came from `COUNTING.alloc(layout)`.
                        unsafe { COUNTING.dealloc(ptr, layout) };
                    }
                })
            })
            .collect();
        let before = allocator_stats().unwrap_or_default();
        for handle in handles {
            handle.join().unwrap();
        }
        let after = allocator_stats().unwrap();
        assert!(after.total_allocations >= before.total_allocations);
        assert!(after.total_frees >= 4000);
        assert!(after.total_allocations >= 4000);
    }
}
