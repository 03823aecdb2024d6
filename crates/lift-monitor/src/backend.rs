//! What differs between the sampling backends: the Linux /proc hot path, and the
//! `sysinfo` crate (the only backend off Linux; selected on Linux by the `sysinfo` feature).

/// The machine's physical memory.
#[cfg(all(target_os = "linux", not(feature = "sysinfo")))]
pub(crate) fn physical_memory_bytes() -> Option<u64> {
    nix::sys::sysinfo::sysinfo()
        .ok()
        .map(|info| info.ram_total())
}

/// The machine's physical memory.
#[cfg(any(not(target_os = "linux"), feature = "sysinfo"))]
pub(crate) fn physical_memory_bytes() -> Option<u64> {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    Some(system.total_memory()).filter(|&total| total > 0)
}
