//! jemalloc's own statistics (feature `jemalloc`), for programs whose global allocator is
//! `tikv-jemallocator`.

use crate::snapshot::JemallocStats;

/// Reads jemalloc's statistics after advancing its epoch, or `None` when jemalloc has
/// nothing allocated (it is linked but not the allocator in use) or cannot be queried.
pub fn jemalloc_stats() -> Option<JemallocStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    // jemalloc caches its statistics; advancing the epoch refreshes them.
    epoch::advance().ok()?;
    let allocated = stats::allocated::read().ok()? as u64;
    if allocated == 0 {
        return None;
    }
    Some(JemallocStats {
        allocated_bytes: allocated,
        active_bytes: stats::active::read().ok()? as u64,
        resident_bytes: stats::resident::read().ok()? as u64,
        mapped_bytes: stats::mapped::read().ok()? as u64,
        retained_bytes: stats::retained::read().ok()? as u64,
        metadata_bytes: stats::metadata::read().ok()? as u64,
    })
}

#[cfg(test)]
mod tests {
    // The test allocates through jemalloc's C API directly, since the test binary's global
    // allocator is the system one.
    #![allow(unsafe_code)]

    use super::*;

    #[test]
    fn reads_statistics_of_memory_jemalloc_handed_out() {
        // SAFETY: a plain malloc of 4 MiB, checked for null and freed below.
        let ptr = unsafe { tikv_jemalloc_sys::malloc(4 << 20) };
        assert!(!ptr.is_null());
        let stats = jemalloc_stats().unwrap();
        assert!(stats.allocated_bytes >= 4 << 20, "{stats:?}");
        assert!(stats.active_bytes >= stats.allocated_bytes);
        assert!(stats.mapped_bytes >= stats.active_bytes);
        // SAFETY: `ptr` came from jemalloc's malloc and is freed once.
        unsafe { tikv_jemalloc_sys::free(ptr) };
    }
}
