//! Health of something other than this process: another process (by pid) or the host.
//!
//! `lift health` uses these so that its report describes a service or a machine rather
//! than the short-lived CLI itself. Both are cold paths, read once per report: on Linux
//! through the `procfs` crate, elsewhere (or with the `sysinfo` feature) through `sysinfo`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lift_core::{CheckOutcome, HealthStatus};

use crate::checks::{
    CpuCheck, DiskCheck, Findings, FnCheck, MemoryCheck, MemoryThresholds, ResourceCheck,
    ResourceThresholds, physical_memory_bytes,
};
use crate::error::Result;
use crate::manager::{CheckOptions, HealthManager};
use crate::monitor::Monitor;
use crate::snapshot::{HostSnapshot, ProcessSnapshot, Snapshot};
use crate::threshold::Threshold;
use crate::units::format_bytes;

/// How another process is sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessOptions {
    cpu_window: Duration,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        ProcessOptions {
            cpu_window: Duration::from_secs(1),
        }
    }
}

impl ProcessOptions {
    /// How long CPU time is measured over. The kernel counts another process's CPU time
    /// in 10 ms ticks, so one second gives a figure to about 1 %. Default: 1 s.
    #[must_use]
    pub fn cpu_window(mut self, cpu_window: Duration) -> Self {
        self.cpu_window = cpu_window;
        self
    }
}

/// Samples process `pid`: threads, memory and peak RSS, open descriptors against its own
/// `RLIMIT_NOFILE`, CPU use over [`ProcessOptions::cpu_window`], its memory cgroup.
///
/// Fails with [`crate::Error::NoSuchProcess`] when there is no such process, with
/// [`crate::Error::ThreadOfProcess`] when `pid` is a thread of another process (on Linux),
/// with [`crate::Error::Zombie`] when it has exited and its parent has not reaped it, and
/// with [`crate::Error::ProcessExited`] when it exits during the CPU window. Figures the
/// caller may not read (another user's descriptors) are `None`.
pub async fn sample_process(pid: u32, options: &ProcessOptions) -> Result<ProcessSnapshot> {
    crate::backend::sample_process(pid, options.cpu_window).await
}

/// A health manager with the checks that apply to another process's `snapshot`:
/// `memory` (against its cgroup's limit, else the machine's memory), `resources`
/// (threads, descriptors) and `cpu`.
pub fn process_checks(snapshot: Snapshot) -> Result<HealthManager> {
    let monitor = Monitor::fixed(snapshot);
    let manager = HealthManager::builder().ttl(Duration::ZERO).build();
    let lambda = false;
    manager.register_with(
        MemoryCheck::new(
            monitor.clone(),
            MemoryThresholds::for_environment(lambda).limit_bytes(physical_memory_bytes()),
        ),
        CheckOptions::live_and_ready(),
    )?;
    manager.register(ResourceCheck::new(
        monitor.clone(),
        ResourceThresholds::for_environment(lambda),
    ))?;
    manager.register(CpuCheck::new(monitor, CpuCheck::DEFAULT))?;
    Ok(manager)
}

/// How the host is sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOptions {
    disk_paths: Vec<PathBuf>,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            disk_paths: vec![PathBuf::from("/"), PathBuf::from("/tmp")],
        }
    }
}

impl HostOptions {
    /// The paths whose file systems are checked. Default: `/` and `/tmp`.
    #[must_use]
    pub fn disk_paths(mut self, disk_paths: Vec<PathBuf>) -> Self {
        self.disk_paths = disk_paths;
        self
    }
}

/// Reads the host's figures.
pub fn sample_host(options: &HostOptions) -> HostSnapshot {
    let mut host = crate::backend::sample_host();
    host.disks = options
        .disk_paths
        .iter()
        .map(|path| crate::backend::disk_stats(Arc::from(path.to_string_lossy())))
        .collect();
    host
}

/// The thresholds of the host checks.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct HostThresholds {
    /// Memory in use (total less available) in percent of the total: warn 85, fail 95.
    pub memory_percent: Threshold,
    /// The 5-minute load average per core, in percent: warn 100, fail 200.
    pub load_percent: Threshold,
    /// Percent used per disk path: warn 80, fail 95.
    pub disk_percent: Threshold,
    /// The cgroup's working set in percent of its limit: warn 80, fail 95.
    pub cgroup_percent: Threshold,
}

impl Default for HostThresholds {
    fn default() -> Self {
        HostThresholds {
            memory_percent: Threshold::above(85.0, 95.0),
            load_percent: Threshold::above(100.0, 200.0),
            disk_percent: DiskCheck::DEFAULT,
            cgroup_percent: Threshold::above(80.0, 95.0),
        }
    }
}

/// A health manager with the host checks of `host`: `memory`, `load`, `disk` and, when
/// the caller is in a memory cgroup, `cgroup`.
pub fn host_checks(host: HostSnapshot, thresholds: HostThresholds) -> Result<HealthManager> {
    let host = Arc::new(host);
    let manager = HealthManager::builder().ttl(Duration::ZERO).build();
    let h = host.clone();
    manager.register(FnCheck::new("memory", move || {
        host_memory(&h, &thresholds.memory_percent)
    }))?;
    let h = host.clone();
    manager.register(FnCheck::new("load", move || {
        host_load(&h, &thresholds.load_percent)
    }))?;
    let mut snapshot = Snapshot::empty();
    snapshot.sequence = 1;
    snapshot.taken_at = host.taken_at;
    snapshot.disks = host.disks.clone();
    manager.register(DiskCheck::new(
        Monitor::fixed(snapshot),
        thresholds.disk_percent,
    ))?;
    if host.cgroup.is_some() {
        let h = host.clone();
        manager.register(FnCheck::new("cgroup", move || {
            host_cgroup(&h, &thresholds.cgroup_percent)
        }))?;
    }
    Ok(manager)
}

fn host_memory(host: &HostSnapshot, threshold: &Threshold) -> CheckOutcome {
    let mut f = Findings::at(host.taken_at);
    match (host.memory_total_bytes, host.memory_available_bytes) {
        (Some(total), Some(available)) if total > 0 => {
            let used = total.saturating_sub(available);
            let percent = used as f64 * 100.0 / total as f64;
            f.observe("available", available as f64, "bytes");
            f.observe("total", total as f64, "bytes");
            f.observe("utilization", percent, "percent");
            f.judge(threshold, percent, || {
                format!(
                    "{percent:.1}% of {} in use, {} available",
                    format_bytes(total as f64),
                    format_bytes(available as f64)
                )
            });
        }
        _ => f.add(
            HealthStatus::Unknown,
            "the host's memory figures are unavailable",
        ),
    }
    f.finish("")
}

fn host_load(host: &HostSnapshot, threshold: &Threshold) -> CheckOutcome {
    let mut f = Findings::at(host.taken_at);
    match (host.load, host.cores) {
        (Some([one, five, fifteen]), Some(cores)) if cores > 0 => {
            let percent = five * 100.0 / f64::from(cores);
            f.observe("load1", one, "load");
            f.observe("load5", five, "load");
            f.observe("load15", fifteen, "load");
            f.observe("load5_per_core", percent, "percent");
            f.judge(threshold, percent, || {
                format!(
                    "load {one:.2} {five:.2} {fifteen:.2} on {cores} cores: {percent:.0}% per core over 5 minutes"
                )
            });
        }
        _ => f.add(HealthStatus::Unknown, "the load average is unavailable"),
    }
    f.finish("")
}

fn host_cgroup(host: &HostSnapshot, threshold: &Threshold) -> CheckOutcome {
    let mut f = Findings::at(host.taken_at);
    let Some(cgroup) = host.cgroup else {
        return CheckOutcome::unknown("not in a memory cgroup");
    };
    if let Some(kills) = cgroup.oom_kill_events {
        f.observe("oom_kills", kills as f64, "count");
    }
    match (cgroup.working_set_bytes(), cgroup.max_bytes) {
        (Some(ws), Some(limit)) if limit > 0 => {
            let percent = ws as f64 * 100.0 / limit as f64;
            f.observe("working_set", ws as f64, "bytes");
            f.observe("limit", limit as f64, "bytes");
            f.observe("utilization", percent, "percent");
            f.judge(threshold, percent, || {
                format!(
                    "working set {} is {percent:.1}% of the cgroup limit {}",
                    format_bytes(ws as f64),
                    format_bytes(limit as f64)
                )
            });
        }
        (Some(ws), None) => {
            f.observe("working_set", ws as f64, "bytes");
            f.add(
                HealthStatus::Healthy,
                format!("working set {}, no memory limit", format_bytes(ws as f64)),
            );
        }
        _ => f.add(HealthStatus::Unknown, "the cgroup's usage is unreadable"),
    }
    f.finish("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::Group;
    use crate::snapshot::CgroupMemory;
    use chrono::Utc;

    /// A real child process that allocates, opens files and burns CPU: the figures are
    /// its own, not the test's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn samples_another_process() {
        // `sh` runs a busy loop; its RSS is small and its CPU use near one core.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let pid = child.id();
        // Let it run first: sysinfo computes no CPU use for a process with no CPU time yet.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let snapshot = sample_process(
            pid,
            &ProcessOptions::default().cpu_window(Duration::from_millis(500)),
        )
        .await;
        child.kill().unwrap();
        child.wait().unwrap();
        let sample = snapshot.unwrap();
        assert_eq!(sample.pid, pid);
        assert_eq!(sample.describe(), format!("process {pid} (sh)"));
        let snapshot = sample.snapshot;
        assert_eq!(snapshot.threads, Some(1), "sh is single-threaded");
        let rss = snapshot.memory.rss_bytes.unwrap();
        assert!(rss > 0 && rss < 64 << 20, "rss {rss}");
        // sysinfo does not read another process's peak; procfs reads VmHWM.
        if cfg!(all(target_os = "linux", not(feature = "sysinfo"))) {
            assert!(snapshot.memory.peak_rss_bytes.unwrap() >= rss);
        }
        let cpu = snapshot.cpu.percent.unwrap();
        // A busy loop uses a core when it gets one; on a loaded test machine it may get
        // far less, but never none, and an idle process would show about zero.
        assert!(
            cpu > 5.0 && cpu <= 100.0 * 64.0,
            "a busy loop's CPU use: {cpu}"
        );
        assert!(snapshot.cpu.window_seconds.unwrap() >= 0.5);
        assert!(snapshot.fds.open.unwrap() >= 3);
        assert!(snapshot.uptime_seconds.unwrap() < 60.0);
        let manager = process_checks(snapshot).unwrap();
        let report = manager.check(Group::All).await;
        let names: Vec<_> = report.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["memory", "resources", "cpu"]);
    }

    #[tokio::test]
    async fn a_missing_process_is_bad_input() {
        // Pids are below 2^22 on Linux.
        let err = sample_process(u32::MAX - 1, &ProcessOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, crate::Error::NoSuchProcess { .. }), "{err}");
        assert_eq!(
            lift_core::Classify::kind(&err),
            lift_core::ErrorKind::InvalidInput
        );
    }

    #[tokio::test]
    async fn checks_the_host() {
        let host = sample_host(&HostOptions::default());
        assert!(host.memory_total_bytes.unwrap() > 64 << 20);
        assert!(host.memory_available_bytes.unwrap() <= host.memory_total_bytes.unwrap());
        assert!(host.load.is_some());
        assert_eq!(host.disks.len(), 2);
        assert!(host.disks[0].total_bytes.unwrap() > 0);
        assert!(host.describe().contains("cores"));
        let manager = host_checks(host, HostThresholds::default()).unwrap();
        let report = manager.check(Group::All).await;
        let names: Vec<_> = report.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(&names[..3], ["memory", "load", "disk"]);
        let memory = &report.checks[0].outcome;
        assert_ne!(memory.status, HealthStatus::Unknown, "{}", memory.message);
    }

    #[test]
    fn judges_host_figures() {
        let host = HostSnapshot {
            taken_at: Utc::now(),
            hostname: Some("web-1".into()),
            cores: Some(2),
            memory_total_bytes: Some(1000),
            memory_available_bytes: Some(100),
            load: Some([5.0, 4.5, 1.0]),
            disks: Vec::new(),
            cgroup: Some(CgroupMemory {
                version: 2,
                current_bytes: Some(900),
                max_bytes: Some(1000),
                inactive_file_bytes: Some(50),
                ..Default::default()
            }),
        };
        let t = HostThresholds::default();
        let memory = host_memory(&host, &t.memory_percent);
        assert_eq!(memory.status, HealthStatus::Degraded, "{}", memory.message);
        let load = host_load(&host, &t.load_percent);
        assert_eq!(load.status, HealthStatus::Unhealthy, "{}", load.message);
        assert!(load.message.contains("225% per core"), "{}", load.message);
        let cgroup = host_cgroup(&host, &t.cgroup_percent);
        assert_eq!(cgroup.status, HealthStatus::Degraded, "{}", cgroup.message);
        assert_eq!(host.describe(), "host web-1, 2 cores, 1000 B memory");
    }
}
