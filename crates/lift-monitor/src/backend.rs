//! What differs between the sampling backends: the Linux /proc hot path, and the
//! `sysinfo` crate (the only backend off Linux; selected on Linux by the `sysinfo` feature).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::snapshot::{
    CpuStats, DiskStats, FdStats, HostSnapshot, MemoryStats, ProcessSnapshot, Snapshot,
};

/// What the backend reads of this process on each sample.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SelfFigures {
    pub(crate) threads: Option<u64>,
    /// RSS and virtual size; the peak comes from `getrusage`.
    pub(crate) memory: MemoryStats,
    pub(crate) open_fds: Option<u64>,
    pub(crate) uptime_seconds: Option<f64>,
}

/// The Linux hot path: `/proc/self/statm` kept open and re-read with `pread` (one system
/// call, no path lookup) for memory, one `fstat` of `/proc/self/task` for the thread count
/// and one of `/proc/self/fd` for the descriptor count, and the boot clock for uptime.
/// About a hundred times cheaper than going through sysinfo, which lists `/proc` on each
/// refresh (see docs/lift-monitor.md).
///
/// `/proc/self/stat` is read only when one of these cannot be: for its thread count and
/// memory the kernel also sums the CPU times and page faults of every thread and formats
/// 52 fields, which cost more than the rest of the snapshot together.
#[cfg(all(target_os = "linux", not(feature = "sysinfo")))]
#[derive(Debug)]
pub(crate) struct SelfSource {
    stat: Option<crate::procfile::ProcFile>,
    /// `/proc/self/statm`: memory alone, without the CPU-time walk over every thread
    /// that `/proc/self/stat` costs the kernel. Read for [`SelfSource::memory`].
    statm: Option<crate::procfile::ProcFile>,
    fd_dir: Option<std::fs::File>,
    /// `/proc/self/task`, whose link count is two plus the number of threads.
    task_dir: Option<std::fs::File>,
    page_size: Option<u64>,
    /// When the process started, on the CLOCK_BOOTTIME scale.
    started_at_boot: Option<Duration>,
    buf: [u8; 1024],
}

#[cfg(all(target_os = "linux", not(feature = "sysinfo")))]
impl SelfSource {
    pub(crate) fn open() -> Self {
        let sysconf = |var| {
            nix::unistd::sysconf(var)
                .ok()
                .flatten()
                .and_then(|v| u64::try_from(v).ok())
        };
        let mut source = SelfSource {
            stat: crate::procfile::ProcFile::open("/proc/self/stat".as_ref()),
            statm: crate::procfile::ProcFile::open("/proc/self/statm".as_ref()),
            fd_dir: std::fs::File::open("/proc/self/fd").ok(),
            task_dir: std::fs::File::open("/proc/self/task").ok(),
            page_size: sysconf(nix::unistd::SysconfVar::PAGE_SIZE),
            started_at_boot: None,
            buf: [0; 1024],
        };
        let ticks = sysconf(nix::unistd::SysconfVar::CLK_TCK).filter(|&t| t > 0);
        source.started_at_boot = source.read_stat().and_then(|stat| {
            Some(Duration::from_secs_f64(
                stat.starttime_ticks as f64 / ticks? as f64,
            ))
        });
        source
    }

    fn read_stat(&mut self) -> Option<crate::procfile::ProcStat> {
        let file = self.stat.as_ref()?;
        crate::procfile::parse_proc_stat(file.read(&mut self.buf)?)
    }

    /// Seconds since the process started, on the boot clock (which counts suspend).
    pub(crate) fn uptime(&self) -> Option<f64> {
        use nix::time::{ClockId, clock_gettime};
        let start = self.started_at_boot?;
        let boot = clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?;
        let boot = Duration::new(
            u64::try_from(boot.tv_sec()).ok()?,
            u32::try_from(boot.tv_nsec()).ok()?,
        );
        Some(boot.checked_sub(start)?.as_secs_f64())
    }

    pub(crate) fn memory(&mut self) -> MemoryStats {
        match self.statm_memory() {
            Some(memory) => memory,
            None => {
                let stat = self.read_stat();
                self.memory_of(stat)
            }
        }
    }

    /// RSS and virtual size from `/proc/self/statm` (size and resident, in pages).
    fn statm_memory(&mut self) -> Option<MemoryStats> {
        let page = self.page_size?;
        let mut fields = self
            .statm
            .as_ref()?
            .read(&mut self.buf)?
            .split(|&b| b == b' ');
        let size = crate::procfile::parse_u64(fields.next()?)?;
        let resident = crate::procfile::parse_u64(fields.next()?)?;
        Some(MemoryStats {
            rss_bytes: Some(resident.saturating_mul(page)),
            virtual_bytes: Some(size.saturating_mul(page)),
            peak_rss_bytes: None,
        })
    }

    /// The thread count from the link count of `/proc/self/task`: the kernel adds one
    /// link per thread to the directory's two.
    // `st_nlink` is a u64 on x86-64 and a u32 on other targets (aarch64).
    #[allow(clippy::useless_conversion)]
    fn threads(&self) -> Option<u64> {
        let links = nix::sys::stat::fstat(self.task_dir.as_ref()?)
            .ok()?
            .st_nlink;
        u64::from(links).checked_sub(2).filter(|&n| n > 0)
    }

    fn memory_of(&self, stat: Option<crate::procfile::ProcStat>) -> MemoryStats {
        MemoryStats {
            rss_bytes: stat.and_then(|s| Some(s.rss_pages.saturating_mul(self.page_size?))),
            virtual_bytes: stat.map(|s| s.vsize_bytes),
            peak_rss_bytes: None,
        }
    }

    pub(crate) fn read(&mut self) -> SelfFigures {
        let (threads, memory) = match (self.threads(), self.statm_memory()) {
            (Some(threads), Some(memory)) => (Some(threads), memory),
            // Either cheap read failed: /proc/self/stat has both.
            _ => {
                let stat = self.read_stat();
                (stat.map(|s| s.num_threads), self.memory_of(stat))
            }
        };
        SelfFigures {
            threads,
            memory,
            open_fds: self.open_fds(),
            uptime_seconds: self.uptime(),
        }
    }

    fn open_fds(&self) -> Option<u64> {
        // Since Linux 6.2, the size of /proc/self/fd is the number of open descriptors:
        // one fstat instead of a directory listing. Older kernels report 0.
        let dir = self.fd_dir.as_ref()?;
        let size = nix::sys::stat::fstat(dir).ok()?.st_size;
        match u64::try_from(size) {
            Ok(n) if n > 0 => Some(n),
            // The listing opens one descriptor of its own, which it also lists.
            _ => std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| (entries.count() as u64).saturating_sub(1)),
        }
    }
}

/// The portable path: sysinfo refreshes this process's memory, tasks and descriptors.
#[cfg(any(not(target_os = "linux"), feature = "sysinfo"))]
#[derive(Debug)]
pub(crate) struct SelfSource {
    system: sysinfo::System,
    pid: Option<sysinfo::Pid>,
}

#[cfg(any(not(target_os = "linux"), feature = "sysinfo"))]
impl SelfSource {
    pub(crate) fn open() -> Self {
        let mut source = SelfSource {
            system: sysinfo::System::new(),
            pid: sysinfo::get_current_pid().ok(),
        };
        source.refresh(false);
        source
    }

    fn refresh(&mut self, tasks: bool) -> Option<&sysinfo::Process> {
        let pid = self.pid?;
        let mut kind = sysinfo::ProcessRefreshKind::nothing().with_memory();
        if tasks {
            kind = kind.with_tasks();
        }
        self.system.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&[pid]),
            true,
            kind,
        );
        self.system.process(pid)
    }

    pub(crate) fn uptime(&self) -> Option<f64> {
        self.system.process(self.pid?).map(|p| p.run_time() as f64)
    }

    pub(crate) fn memory(&mut self) -> MemoryStats {
        let process = self.refresh(false);
        MemoryStats {
            rss_bytes: process.map(sysinfo::Process::memory),
            virtual_bytes: process.map(sysinfo::Process::virtual_memory),
            peak_rss_bytes: None,
        }
    }

    pub(crate) fn read(&mut self) -> SelfFigures {
        let Some(process) = self.refresh(true) else {
            return SelfFigures::default();
        };
        SelfFigures {
            // sysinfo lists the threads on Linux only, and leaves the main thread out of
            // the list.
            threads: process.tasks().map(|tasks| tasks.len() as u64 + 1),
            memory: MemoryStats {
                rss_bytes: Some(process.memory()),
                virtual_bytes: Some(process.virtual_memory()),
                peak_rss_bytes: None,
            },
            open_fds: process.open_files().map(|n| n as u64),
            uptime_seconds: Some(process.run_time() as f64),
        }
    }
}

/// CPU time and peak RSS of this process, from `getrusage`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rusage {
    pub(crate) user_seconds: Option<f64>,
    pub(crate) system_seconds: Option<f64>,
    pub(crate) peak_rss_bytes: Option<u64>,
}

/// `getrusage(RUSAGE_SELF)`: CPU time in microseconds and the peak RSS.
#[cfg(unix)]
pub(crate) fn rusage() -> Rusage {
    use nix::sys::resource::{UsageWho, getrusage};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
        return Rusage::default();
    };
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    // ru_maxrss is in KiB on Linux and the BSDs, in bytes on macOS.
    let unit = if cfg!(target_vendor = "apple") {
        1
    } else {
        1024
    };
    Rusage {
        user_seconds: Some(seconds(usage.user_time())),
        system_seconds: Some(seconds(usage.system_time())),
        peak_rss_bytes: u64::try_from(usage.max_rss())
            .ok()
            .map(|v| v.saturating_mul(unit)),
    }
}

/// The peak RSS of this process, without the CPU times [`rusage`] also sums over every
/// thread: on Linux `getrusage(RUSAGE_THREAD)`, whose `ru_maxrss` is the process's
/// (the high-water mark of the memory map the threads share); elsewhere
/// `getrusage(RUSAGE_SELF)`.
#[cfg(unix)]
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    use nix::sys::resource::{UsageWho, getrusage};
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let who = UsageWho::RUSAGE_THREAD;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let who = UsageWho::RUSAGE_SELF;
    let usage = getrusage(who).ok()?;
    // ru_maxrss is in KiB on Linux and the BSDs, in bytes on macOS.
    let unit = if cfg!(target_vendor = "apple") {
        1
    } else {
        1024
    };
    u64::try_from(usage.max_rss())
        .ok()
        .map(|v| v.saturating_mul(unit))
}

/// The soft and hard `RLIMIT_NOFILE`, and whether the soft one is unlimited.
#[cfg(unix)]
pub(crate) fn nofile_limits() -> (Option<u64>, Option<u64>, bool) {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            let limit = |v: u64| (v != RLIM_INFINITY).then_some(v);
            (limit(soft), limit(hard), soft == RLIM_INFINITY)
        }
        Err(_) => (None, None, false),
    }
}

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

/// Space on the file system of `path`, as `df` computes it.
#[cfg(unix)]
pub(crate) fn disk_stats(path: std::sync::Arc<str>) -> DiskStats {
    // The statvfs field types differ between platforms (u32 on some 32-bit targets).
    #[allow(clippy::unnecessary_cast)]
    let figures = nix::sys::statvfs::statvfs(path.as_ref()).ok().map(|s| {
        let frsize = s.fragment_size() as u64;
        (
            (s.blocks() as u64).saturating_mul(frsize),
            (s.blocks_available() as u64).saturating_mul(frsize),
            (s.blocks_free() as u64).saturating_mul(frsize),
        )
    });
    DiskStats {
        path,
        total_bytes: figures.map(|f| f.0),
        available_bytes: figures.map(|f| f.1),
        free_bytes: figures.map(|f| f.2),
    }
}

fn cores() -> Option<u32> {
    std::thread::available_parallelism()
        .ok()
        .and_then(|n| u32::try_from(n.get()).ok())
}

fn hostname() -> Option<String> {
    #[cfg(unix)]
    {
        nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok())
    }
    #[cfg(not(unix))]
    {
        sysinfo::System::host_name()
    }
}

/// Another process, through procfs: `/proc/<pid>/stat`, `status`, `limits`, `fd`, and
/// its cgroup.
#[cfg(all(target_os = "linux", not(feature = "sysinfo")))]
pub(crate) async fn sample_process(pid: u32, window: Duration) -> Result<ProcessSnapshot> {
    let id = i32::try_from(pid).map_err(|_| Error::NoSuchProcess { pid })?;
    let process = procfs::process::Process::new(id).map_err(|_| Error::NoSuchProcess { pid })?;
    let ticks = procfs::ticks_per_second().max(1) as f64;
    let first = process.stat().map_err(|_| Error::NoSuchProcess { pid })?;
    // /proc/TID exists for every thread, though listings of /proc hide it: a thread's
    // stat has its own CPU time only.
    if let Some(process) = thread_group_of(pid).filter(|&tgid| tgid != pid) {
        return Err(Error::ThreadOfProcess { tid: pid, process });
    }
    match first.state {
        'Z' => {
            return Err(Error::Zombie {
                pid,
                parent: u32::try_from(first.ppid).unwrap_or(0),
            });
        }
        'X' => return Err(Error::NoSuchProcess { pid }),
        _ => {}
    }
    let started = std::time::Instant::now();
    tokio::time::sleep(window).await;
    // `process` holds /proc/PID open: once the process is reaped, its files fail even if
    // the pid is reused. Until then it is a zombie.
    let exited = || Error::ProcessExited { pid };
    let stat = process.stat().map_err(|_| exited())?;
    if matches!(stat.state, 'Z' | 'X') || stat.starttime != first.starttime {
        return Err(exited());
    }
    let wall = started.elapsed().as_secs_f64();
    let status = process.status().ok();
    let limits = process.limits().ok();
    let page = procfs::page_size();
    let mut snapshot = Snapshot::empty();
    snapshot.sequence = 1;
    snapshot.taken_at = chrono::Utc::now();
    snapshot.threads = u64::try_from(stat.num_threads).ok();
    snapshot.memory = MemoryStats {
        rss_bytes: Some(stat.rss.saturating_mul(page)),
        virtual_bytes: Some(stat.vsize),
        peak_rss_bytes: status
            .as_ref()
            .and_then(|s| s.vmhwm)
            .map(|kib| kib.saturating_mul(1024)),
    };
    let cpu = |s: &procfs::process::Stat| (s.utime + s.stime) as f64 / ticks;
    snapshot.cpu = CpuStats {
        user_seconds: Some(stat.utime as f64 / ticks),
        system_seconds: Some(stat.stime as f64 / ticks),
        percent: (wall > 0.0).then(|| (cpu(&stat) - cpu(&first)).max(0.0) * 100.0 / wall),
        window_seconds: Some(wall),
        cores: cores(),
    };
    let limit = |v: procfs::process::LimitValue| match v {
        procfs::process::LimitValue::Value(v) => Some(v),
        procfs::process::LimitValue::Unlimited => None,
    };
    snapshot.fds = FdStats {
        open: fd_count(pid),
        soft_limit: limits
            .as_ref()
            .and_then(|l| limit(l.max_open_files.soft_limit)),
        hard_limit: limits
            .as_ref()
            .and_then(|l| limit(l.max_open_files.hard_limit)),
        unlimited: limits.as_ref().is_some_and(|l| {
            matches!(
                l.max_open_files.soft_limit,
                procfs::process::LimitValue::Unlimited
            )
        }),
    };
    if let Ok(boot) = procfs::boot_time_secs() {
        let start = boot as f64 + stat.starttime as f64 / ticks;
        let now = snapshot.taken_at.timestamp_micros() as f64 / 1e6;
        snapshot.uptime_seconds = Some((now - start).max(0.0));
        snapshot.started_at = chrono::DateTime::from_timestamp_micros((start * 1e6) as i64);
    }
    snapshot.cgroup =
        crate::cgroup::CgroupFiles::discover_in(std::path::Path::new(&format!("/proc/{pid}")))
            .map(|mut files| files.read(&mut [0u8; 4096]));
    Ok(ProcessSnapshot {
        pid,
        name: Some(stat.comm),
        snapshot,
    })
}

/// The number of descriptors process `pid` has open; `None` when its `fd` directory
/// cannot be read (another user's process).
///
/// Since Linux 6.2 the size of `/proc/PID/fd` is the count; older kernels, and a process
/// with no descriptor table (a zombie, a kernel thread), report 0 and the directory is
/// listed. (`procfs`'s `fd_count` counts `.` and `..` in that listing: 2 for an empty
/// directory.)
#[cfg(all(target_os = "linux", not(feature = "sysinfo")))]
fn fd_count(pid: u32) -> Option<u64> {
    let dir = format!("/proc/{pid}/fd");
    match std::fs::metadata(&dir).ok()?.len() {
        0 => std::fs::read_dir(&dir)
            .ok()
            .map(|entries| entries.count() as u64),
        n => Some(n),
    }
}

/// The thread group (process) that task `pid` belongs to, from the `Tgid` line of
/// `/proc/PID/status`; `None` when that cannot be read.
#[cfg(target_os = "linux")]
fn thread_group_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Tgid:"))?
        .trim()
        .parse()
        .ok()
}

/// The host through procfs: `/proc/meminfo`, `/proc/loadavg`, and this process's cgroup.
#[cfg(all(target_os = "linux", not(feature = "sysinfo")))]
pub(crate) fn sample_host() -> HostSnapshot {
    use procfs::Current as _;
    let meminfo = procfs::Meminfo::current().ok();
    let load = procfs::LoadAverage::current().ok();
    HostSnapshot {
        taken_at: chrono::Utc::now(),
        hostname: hostname(),
        cores: cores(),
        memory_total_bytes: meminfo.as_ref().map(|m| m.mem_total),
        memory_available_bytes: meminfo.as_ref().and_then(|m| m.mem_available),
        load: load.map(|l| [f64::from(l.one), f64::from(l.five), f64::from(l.fifteen)]),
        disks: Vec::new(),
        cgroup: crate::cgroup::CgroupFiles::discover().map(|mut f| f.read(&mut [0u8; 4096])),
    }
}

/// Another process, through sysinfo.
#[cfg(any(not(target_os = "linux"), feature = "sysinfo"))]
pub(crate) async fn sample_process(pid: u32, window: Duration) -> Result<ProcessSnapshot> {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
    let id = Pid::from_u32(pid);
    let kind = ProcessRefreshKind::nothing()
        .with_memory()
        .with_cpu()
        .with_tasks();
    let mut system = System::new();
    let refresh = |system: &mut System| {
        // sysinfo measures a process's CPU use against the machine's CPU time.
        system.refresh_cpu_usage();
        system.refresh_processes_specifics(ProcessesToUpdate::Some(&[id]), true, kind)
    };
    #[cfg(target_os = "linux")]
    if let Some(process) = thread_group_of(pid).filter(|&tgid| tgid != pid) {
        return Err(Error::ThreadOfProcess { tid: pid, process });
    }
    if refresh(&mut system) == 0 {
        return Err(Error::NoSuchProcess { pid });
    }
    let first = system.process(id).ok_or(Error::NoSuchProcess { pid })?;
    if first.status() == sysinfo::ProcessStatus::Zombie {
        return Err(Error::Zombie {
            pid,
            parent: first.parent().map_or(0, Pid::as_u32),
        });
    }
    let start_time = first.start_time();
    let started = std::time::Instant::now();
    tokio::time::sleep(window.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL)).await;
    refresh(&mut system);
    let wall = started.elapsed().as_secs_f64();
    let process = system
        .process(id)
        .filter(|p| p.status() != sysinfo::ProcessStatus::Zombie && p.start_time() == start_time)
        .ok_or(Error::ProcessExited { pid })?;
    let mut snapshot = Snapshot::empty();
    snapshot.sequence = 1;
    snapshot.taken_at = chrono::Utc::now();
    snapshot.threads = process.tasks().map(|tasks| tasks.len() as u64 + 1);
    snapshot.memory = MemoryStats {
        rss_bytes: Some(process.memory()),
        virtual_bytes: Some(process.virtual_memory()),
        // sysinfo does not read another process's peak.
        peak_rss_bytes: None,
    };
    snapshot.cpu = CpuStats {
        user_seconds: None,
        system_seconds: None,
        percent: Some(f64::from(process.cpu_usage())),
        window_seconds: Some(wall),
        cores: cores(),
    };
    snapshot.fds = FdStats {
        open: process.open_files().map(|n| n as u64),
        soft_limit: process.open_files_limit().map(|n| n as u64),
        hard_limit: None,
        unlimited: false,
    };
    snapshot.uptime_seconds = Some(process.run_time() as f64);
    snapshot.started_at = i64::try_from(process.start_time())
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0));
    #[cfg(target_os = "linux")]
    {
        snapshot.cgroup =
            crate::cgroup::CgroupFiles::discover_in(std::path::Path::new(&format!("/proc/{pid}")))
                .map(|mut files| files.read(&mut [0u8; 4096]));
    }
    Ok(ProcessSnapshot {
        pid,
        name: Some(process.name().to_string_lossy().into_owned()),
        snapshot,
    })
}

/// The host through sysinfo.
#[cfg(any(not(target_os = "linux"), feature = "sysinfo"))]
pub(crate) fn sample_host() -> HostSnapshot {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let load = sysinfo::System::load_average();
    HostSnapshot {
        taken_at: chrono::Utc::now(),
        hostname: hostname(),
        cores: cores(),
        memory_total_bytes: Some(system.total_memory()).filter(|&t| t > 0),
        memory_available_bytes: Some(system.available_memory())
            .filter(|_| system.total_memory() > 0),
        load: Some([load.one, load.five, load.fifteen]),
        disks: Vec::new(),
        #[cfg(target_os = "linux")]
        cgroup: crate::cgroup::CgroupFiles::discover().map(|mut f| f.read(&mut [0u8; 4096])),
        #[cfg(not(target_os = "linux"))]
        cgroup: None,
    }
}

/// Runs `f` while three more threads of this process are parked; returns what it returned.
#[cfg(all(test, target_os = "linux"))]
fn with_three_parked_threads<T>(f: impl FnOnce() -> T) -> T {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                barrier.wait();
            })
        })
        .collect();
    barrier.wait();
    let result = f();
    barrier.wait();
    for worker in workers {
        worker
            .join()
            .unwrap_or_else(|_| panic!("a parked thread panicked"));
    }
    result
}

#[cfg(all(test, target_os = "linux", not(feature = "sysinfo")))]
mod tests {
    use super::*;

    /// The thread's `ru_maxrss` is the process's peak: it follows memory that another
    /// thread touched, and agrees with `RUSAGE_SELF`.
    #[test]
    fn the_peak_from_one_thread_is_the_process_peak() {
        let before = peak_rss_bytes().unwrap();
        std::thread::spawn(|| {
            let big = vec![1u8; 96 << 20];
            std::hint::black_box(&big);
        })
        .join()
        .unwrap();
        let thread = peak_rss_bytes().unwrap();
        let process = rusage().peak_rss_bytes.unwrap();
        assert!(
            thread >= before.max(90 << 20),
            "thread {thread}, before {before}"
        );
        // Other tests allocate meanwhile: the later reading may only be higher.
        assert!(process >= thread, "process {process}, thread {thread}");
        assert!(peak_rss_bytes().unwrap() >= process);
    }

    /// The link count of `/proc/self/task` is the thread count: it agrees with a listing
    /// of the directory and with `/proc/self/stat`, and follows threads that start.
    #[test]
    fn the_thread_count_from_one_fstat_is_the_real_one() {
        let mut source = SelfSource::open();
        // Other tests start and stop threads meanwhile: retry until a quiet moment.
        let agreed = with_three_parked_threads(|| {
            (0..50).any(|_| {
                let threads = source.threads();
                let listed = std::fs::read_dir("/proc/self/task").map(Iterator::count);
                let stat = source.read_stat().map(|s| s.num_threads);
                threads.is_some_and(|n| n >= 4)
                    && threads == listed.ok().map(|n| n as u64)
                    && threads == stat
            })
        });
        assert!(
            agreed,
            "fstat, the listing and /proc/self/stat never agreed"
        );
        let figures = source.read();
        assert!(figures.threads.is_some_and(|n| n >= 1));
        assert!(figures.memory.rss_bytes.is_some_and(|n| n > 0));
        assert!(figures.memory.virtual_bytes >= figures.memory.rss_bytes);
    }
}

#[cfg(all(test, target_os = "linux", feature = "sysinfo"))]
mod sysinfo_tests {
    use super::*;

    /// Through sysinfo, this process's thread count is the real one: it agrees with a
    /// listing of `/proc/self/task` (sysinfo's task list leaves out the main thread).
    #[test]
    fn the_thread_count_through_sysinfo_is_the_real_one() {
        let mut source = SelfSource::open();
        // Other tests start and stop threads meanwhile: retry until a quiet moment.
        let mut seen = Vec::new();
        let agreed = with_three_parked_threads(|| {
            (0..50).any(|_| {
                let threads = source.read().threads;
                let listed = std::fs::read_dir("/proc/self/task").map(Iterator::count);
                seen.push((threads, listed.as_ref().ok().copied()));
                threads.is_some_and(|n| n >= 4) && threads == listed.ok().map(|n| n as u64)
            })
        });
        assert!(agreed, "sysinfo and the listing never agreed: {seen:?}");
    }
}

#[cfg(all(test, target_os = "linux", not(feature = "sysinfo")))]
mod procfs_tests {
    use super::*;

    /// An exited child that is not yet reaped has no descriptor table: its `fd` directory
    /// is empty, and the count is 0, not the 2 of `.` and `..`.
    #[test]
    fn a_zombie_has_no_descriptors() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .unwrap_or_else(|e| panic!("spawn true: {e}"));
        let pid = child.id();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while procfs::process::Process::new(pid as i32)
            .and_then(|p| p.stat())
            .map(|s| s.state)
            .ok()
            != Some('Z')
        {
            assert!(std::time::Instant::now() < deadline, "never a zombie");
            std::thread::sleep(Duration::from_millis(10));
        }
        let count = fd_count(pid);
        let _ = child.wait();
        assert_eq!(count, Some(0));
        assert_eq!(fd_count(u32::MAX - 1), None, "no such process");
        // Kernel threads have no descriptor table either, when this namespace shows them.
        if std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c == "kthreadd\n") {
            assert_eq!(fd_count(2), Some(0));
        }
    }

    #[test]
    fn a_thread_belongs_to_its_process() {
        let me = std::process::id();
        assert_eq!(thread_group_of(me), Some(me));
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let _ = tx.send(nix::unistd::gettid().as_raw());
            let _ = done_rx.recv();
        });
        let tid = rx.recv().map(|t| t as u32);
        let group = tid.as_ref().ok().and_then(|&tid| thread_group_of(tid));
        let _ = done_tx.send(());
        let _ = thread.join();
        assert_ne!(tid, Ok(me));
        assert_eq!(group, Some(me));
    }
}
