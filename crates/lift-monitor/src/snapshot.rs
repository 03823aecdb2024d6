//! The immutable picture of the process and its environment that the sampler publishes.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::alloc::AllocStats;
use crate::units::format_bytes;

/// One sample of the process and its environment.
///
/// Invariant: every figure is either measured or absent (`None`); a figure this system
/// cannot provide is never replaced by a guess or a default.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Snapshot {
    /// When the sample was taken.
    pub taken_at: DateTime<Utc>,
    /// Counts samples taken by this sampler, from 1.
    pub sequence: u64,
    /// Seconds since the process started.
    pub uptime_seconds: Option<f64>,
    /// When the process started (Prometheus' `process_start_time_seconds`).
    pub started_at: Option<DateTime<Utc>>,
    /// OS threads of the process.
    pub threads: Option<u64>,
    /// The tokio runtime the sampler ran in, when it ran in one.
    pub tokio: Option<TokioStats>,
    /// Resident and virtual memory.
    pub memory: MemoryStats,
    /// Open file descriptors and their limits.
    pub fds: FdStats,
    /// CPU time and use.
    pub cpu: CpuStats,
    /// Space on the configured paths.
    pub disks: Vec<DiskStats>,
    /// cgroup memory accounting, when the process is in a memory cgroup (v2, or v1's memory controller).
    pub cgroup: Option<CgroupMemory>,
    /// The Lambda environment, when running in AWS Lambda.
    pub lambda: Option<LambdaEnv>,
    /// Runtime stalls measured by the heartbeat task, when one runs.
    pub stall: Option<StallStats>,
    /// Heap counts, when [`crate::CountingAlloc`] is the global allocator.
    pub alloc: Option<HeapStats>,
    /// jemalloc's own statistics, with the `jemalloc` feature when jemalloc is the allocator.
    pub jemalloc: Option<JemallocStats>,
}

impl Snapshot {
    /// A snapshot with nothing measured yet, `sequence` 0.
    pub fn empty() -> Self {
        Snapshot {
            taken_at: DateTime::<Utc>::UNIX_EPOCH,
            sequence: 0,
            uptime_seconds: None,
            started_at: None,
            threads: None,
            tokio: None,
            memory: MemoryStats::default(),
            fds: FdStats::default(),
            cpu: CpuStats::default(),
            disks: Vec::new(),
            cgroup: None,
            lambda: None,
            stall: None,
            alloc: None,
            jemalloc: None,
        }
    }

    /// The memory limit that applies to this process and where it comes from:
    /// the Lambda function's memory size, else the cgroup's limit, else `configured`.
    pub fn memory_limit(&self, configured: Option<u64>) -> Option<(u64, LimitSource)> {
        if let Some(limit) = self.lambda.as_ref().and_then(|l| l.memory_limit_bytes) {
            return Some((limit, LimitSource::Lambda));
        }
        if let Some(limit) = self.cgroup.as_ref().and_then(|c| c.max_bytes) {
            return Some((limit, LimitSource::Cgroup));
        }
        configured.map(|limit| (limit, LimitSource::Configured))
    }
}

/// Where a memory limit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitSource {
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    Lambda,
    /// The cgroup's limit: v2 `memory.max` or v1 `memory.limit_in_bytes`.
    Cgroup,
    /// The monitor's configuration.
    Configured,
}

impl LimitSource {
    /// A short name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitSource::Lambda => "lambda memory size",
            LimitSource::Cgroup => "cgroup memory limit",
            LimitSource::Configured => "configured limit",
        }
    }
}

/// Figures of the tokio runtime (stable metrics only).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct TokioStats {
    /// Worker threads.
    pub workers: u64,
    /// Tasks spawned and not yet finished.
    pub alive_tasks: u64,
    /// Tasks waiting in the global (injection) queue.
    pub global_queue_depth: u64,
    /// Workers stuck in one poll since the previous sample: active (not parked), and
    /// neither their park count nor their busy time moved, which a worker polling tasks
    /// normally updates every few dozen polls. A blocked worker the heartbeat misses
    /// when the heartbeat runs on another worker. `None` on the first sample and on a
    /// current-thread runtime.
    pub blocked_workers: Option<u64>,
    /// The workers' busy time since the previous sample, in percent of their wall time.
    pub busy_percent: Option<f64>,
}

/// Resident and virtual memory of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, schemars::JsonSchema)]
pub struct MemoryStats {
    /// Resident set size.
    pub rss_bytes: Option<u64>,
    /// Virtual memory size.
    pub virtual_bytes: Option<u64>,
    /// The highest resident set size since the process started (`ru_maxrss`, the
    /// kernel's `VmHWM`): what Lambda reports as "Max Memory Used", which samples miss.
    pub peak_rss_bytes: Option<u64>,
}

/// Open file descriptors and `RLIMIT_NOFILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, schemars::JsonSchema)]
pub struct FdStats {
    /// Open descriptors.
    pub open: Option<u64>,
    /// The soft limit; `None` when unlimited or unavailable (see `unlimited`).
    pub soft_limit: Option<u64>,
    /// The hard limit; `None` when unlimited or unavailable.
    pub hard_limit: Option<u64>,
    /// Whether getrlimit reported the soft limit as unlimited.
    pub unlimited: bool,
}

/// CPU time of the process.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, schemars::JsonSchema)]
pub struct CpuStats {
    /// User-mode CPU seconds since the process started (`getrusage`, microseconds).
    pub user_seconds: Option<f64>,
    /// Kernel-mode CPU seconds since the process started (`getrusage`, microseconds).
    pub system_seconds: Option<f64>,
    /// CPU use in percent of one core (can exceed 100), over at least the sampler's
    /// minimum CPU window (1 s by default): between samples closer than that, the figure
    /// keeps the last full window. `None` until one window has passed.
    pub percent: Option<f64>,
    /// The length of the window `percent` was measured over, in seconds.
    pub window_seconds: Option<f64>,
    /// The cores this process may run on (`available_parallelism`).
    pub cores: Option<u32>,
}

impl CpuStats {
    /// CPU use in percent of the available cores (0 to 100), when both are known.
    pub fn percent_of_capacity(&self) -> Option<f64> {
        match (self.percent, self.cores) {
            (Some(p), Some(c)) if c > 0 => Some(p / f64::from(c)),
            _ => None,
        }
    }
}

/// Space on one file system, as `statvfs` reports it (the figures `df` prints).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct DiskStats {
    /// The path asked about.
    #[schemars(with = "String")]
    pub path: Arc<str>,
    /// Size of the file system (`df`'s "Size").
    pub total_bytes: Option<u64>,
    /// Space available to unprivileged users (`df`'s "Avail").
    pub available_bytes: Option<u64>,
    /// Free space including the part reserved for root.
    pub free_bytes: Option<u64>,
}

impl DiskStats {
    /// Percent of the file system not available to unprivileged users, the way `df` computes "Use%":
    /// used / (used + available).
    pub fn used_percent(&self) -> Option<f64> {
        let (total, free, avail) = (self.total_bytes?, self.free_bytes?, self.available_bytes?);
        let used = total.saturating_sub(free);
        let denominator = used + avail;
        (denominator > 0).then(|| used as f64 * 100.0 / denominator as f64)
    }
}

/// cgroup memory accounting, from the unified hierarchy (v2) or v1's memory controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, schemars::JsonSchema)]
pub struct CgroupMemory {
    /// 2 for the unified hierarchy, 1 for v1's memory controller.
    pub version: u8,
    /// v2 `memory.current`, v1 `memory.usage_in_bytes`.
    pub current_bytes: Option<u64>,
    /// The limit that binds: the tightest of this cgroup's and its ancestors' (v2
    /// `memory.max` up the tree, v1 `memory.limit_in_bytes` up the tree); `None` when there is
    /// no limit (`max`, or v1's huge default) or it is unreadable.
    pub max_bytes: Option<u64>,
    /// This cgroup's own limit (v2 `memory.max`, v1 `memory.limit_in_bytes`).
    pub own_max_bytes: Option<u64>,
    /// `inactive_file` of `memory.stat` (v1 `total_inactive_file`): page cache the
    /// kernel reclaims before it OOM-kills.
    pub inactive_file_bytes: Option<u64>,
    /// `oom` from v2 `memory.events`: times the limit was hit and reclaim
    /// failed. v1 does not count these.
    pub oom_events: Option<u64>,
    /// `oom_kill` from v2 `memory.events` or v1 `memory.oom_control`:
    /// processes killed by the OOM killer.
    pub oom_kill_events: Option<u64>,
}

impl CgroupMemory {
    /// The working set: usage less the inactive page cache, what the OOM killer (and
    /// Kubernetes' eviction) measures against the limit. `None` without usage figures.
    pub fn working_set_bytes(&self) -> Option<u64> {
        let current = self.current_bytes?;
        Some(current.saturating_sub(self.inactive_file_bytes.unwrap_or(0)))
    }
}

/// Whether this process runs in AWS Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set), which
/// selects the Lambda defaults of the sampler, the heartbeat and the thresholds.
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// What the Lambda environment says about this function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct LambdaEnv {
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in bytes.
    pub memory_limit_bytes: Option<u64>,
    /// `AWS_LAMBDA_INITIALIZATION_TYPE`: `on-demand`, `provisioned-concurrency` or `snap-start`.
    #[schemars(with = "Option<String>")]
    pub initialization_type: Option<Arc<str>>,
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    #[schemars(with = "Option<String>")]
    pub function_name: Option<Arc<str>>,
}

/// Runtime stalls: how late the heartbeat task was woken.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct StallStats {
    /// Lag of the latest heartbeat, in seconds.
    pub latest_seconds: f64,
    /// Largest lag in the window, in seconds.
    pub max_seconds: f64,
    /// 99th percentile lag in the window, in seconds.
    pub p99_seconds: f64,
    /// Heartbeats in the window.
    pub samples: u64,
    /// Gaps longer than the freeze threshold, skipped as suspensions (a frozen Lambda
    /// environment) rather than counted as stalls.
    pub suspensions: u64,
}

/// Heap counts from [`crate::CountingAlloc`], with rates between samples.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct HeapStats {
    /// The allocator's counts.
    #[serde(flatten)]
    pub counts: AllocStats,
    /// Allocations per second since the previous sample; `None` on the first.
    pub allocations_per_second: Option<f64>,
    /// Bytes allocated per second since the previous sample; `None` on the first.
    pub bytes_per_second: Option<f64>,
    /// Live-heap growth over the trend window, in bytes per second (least squares);
    /// `None` until the window holds enough samples.
    pub growth_bytes_per_second: Option<f64>,
    /// How well a straight line fits the live heap over the window (R², 0 to 1).
    pub growth_fit: Option<f64>,
    /// Growth of the live allocation count over the trend window, per second.
    pub objects_growth_per_second: Option<f64>,
    /// How well a straight line fits the live allocation count (R², 0 to 1).
    pub objects_growth_fit: Option<f64>,
}

/// jemalloc's statistics (`stats.*` mallctls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct JemallocStats {
    /// Bytes allocated by the application.
    pub allocated_bytes: u64,
    /// Bytes in active pages (a multiple of the page size, at least `allocated_bytes`).
    pub active_bytes: u64,
    /// Bytes in physically resident data pages mapped by jemalloc.
    pub resident_bytes: u64,
    /// Bytes in active extents mapped by jemalloc.
    pub mapped_bytes: u64,
    /// Bytes in virtual memory mappings retained rather than returned to the system.
    pub retained_bytes: u64,
    /// Bytes dedicated to jemalloc's metadata.
    pub metadata_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limit_prefers_lambda_then_cgroup_then_configured() {
        let mut snap = Snapshot::empty();
        assert_eq!(snap.memory_limit(None), None);
        assert_eq!(
            snap.memory_limit(Some(5)),
            Some((5, LimitSource::Configured))
        );
        snap.cgroup = Some(CgroupMemory {
            max_bytes: Some(10),
            ..Default::default()
        });
        assert_eq!(snap.memory_limit(Some(5)), Some((10, LimitSource::Cgroup)));
        snap.lambda = Some(LambdaEnv {
            memory_limit_bytes: Some(128 << 20),
            initialization_type: None,
            function_name: None,
        });
        assert_eq!(
            snap.memory_limit(Some(5)),
            Some((128 << 20, LimitSource::Lambda))
        );
    }

    #[test]
    fn used_percent_matches_df() {
        // df: used = size - free; use% = used / (used + avail), rounded up.
        let disk = DiskStats {
            path: Arc::from("/"),
            total_bytes: Some(1000),
            free_bytes: Some(300),
            available_bytes: Some(250),
        };
        let pct = disk.used_percent().unwrap();
        assert!((pct - 700.0 * 100.0 / 950.0).abs() < 1e-9);
    }
}

/// A sample of another process.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct ProcessSnapshot {
    /// The process id.
    pub pid: u32,
    /// The command name, when readable.
    pub name: Option<String>,
    /// Its figures, in the shape of a monitor's snapshot.
    pub snapshot: Snapshot,
}

impl ProcessSnapshot {
    /// A short description for a report's target line.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("process {} ({name})", self.pid),
            None => format!("process {}", self.pid),
        }
    }
}

/// What the host looks like: memory, load, disks and the memory cgroup of the caller
/// (the container's, when run inside one).
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct HostSnapshot {
    /// When the figures were read.
    pub taken_at: DateTime<Utc>,
    /// The host name, when known.
    pub hostname: Option<String>,
    /// Logical CPUs.
    pub cores: Option<u32>,
    /// Physical memory.
    pub memory_total_bytes: Option<u64>,
    /// Memory available for new work without swapping (`MemAvailable`).
    pub memory_available_bytes: Option<u64>,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: Option<[f64; 3]>,
    /// Space on the configured paths.
    pub disks: Vec<DiskStats>,
    /// The caller's memory cgroup.
    pub cgroup: Option<CgroupMemory>,
}

impl HostSnapshot {
    /// A short description for a report's target line.
    pub fn describe(&self) -> String {
        let mut text = match &self.hostname {
            Some(name) => format!("host {name}"),
            None => "this host".to_owned(),
        };
        if let Some(cores) = self.cores {
            text.push_str(&format!(", {cores} cores"));
        }
        if let Some(total) = self.memory_total_bytes {
            text.push_str(&format!(", {} memory", format_bytes(total as f64)));
        }
        text
    }
}
