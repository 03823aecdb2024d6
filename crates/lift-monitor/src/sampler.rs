//! The sampler: reads /proc, statvfs, rlimits, the cgroup, tokio and allocator counters.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::alloc::allocator_stats;
use crate::backend::SelfSource;
use crate::error::{Error, Result};
use crate::snapshot::{
    CpuStats, DiskStats, FdStats, HeapStats, LambdaEnv, MemoryStats, Snapshot, TokioStats,
    in_lambda,
};
use crate::stall::StallState;

/// What the sampler measures beyond the process itself.
///
/// Fields are private and set through setters named after them.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerOptions {
    pub(crate) disk_paths: Vec<PathBuf>,
    pub(crate) trend_window: Duration,
    pub(crate) trend_points: usize,
    pub(crate) cpu_window: Duration,
}

/// The name [`SamplerOptions`] had before lift's options structs were named alike.
#[deprecated(note = "renamed to SamplerOptions")]
pub type SamplerConfig = SamplerOptions;

impl SamplerOptions {
    /// Paths whose file systems' space is reported. Default: the working directory and
    /// `/tmp` (in Lambda only `/tmp`).
    #[must_use]
    pub fn disk_paths(mut self, disk_paths: Vec<PathBuf>) -> Self {
        self.disk_paths = disk_paths;
        self
    }

    /// The window over which the live-heap growth trend is fitted. Default: 10 minutes.
    #[must_use]
    pub fn trend_window(mut self, trend_window: Duration) -> Self {
        self.trend_window = trend_window;
        self
    }

    /// Points kept in the trend window. Default: 60 (one every 10 s with the default window).
    #[must_use]
    pub fn trend_points(mut self, trend_points: usize) -> Self {
        self.trend_points = trend_points;
        self
    }

    /// The shortest window CPU use is measured over. Between samples closer than this,
    /// `cpu.percent` keeps the last full window's figure: a 10 ms window says more about
    /// the scheduler than about the process. Default: 1 s.
    #[must_use]
    pub fn cpu_window(mut self, cpu_window: Duration) -> Self {
        self.cpu_window = cpu_window;
        self
    }
}

impl Default for SamplerOptions {
    /// In Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) only `/tmp`: the working directory is
    /// the read-only `/var/task`, which never fills up.
    fn default() -> Self {
        let cwd = if in_lambda() {
            None
        } else {
            std::env::current_dir().ok()
        };
        SamplerOptions {
            disk_paths: default_disk_paths(cwd),
            trend_window: Duration::from_secs(600),
            trend_points: 60,
            cpu_window: Duration::from_secs(1),
        }
    }
}

/// The disks a sampler watches by default: the working directory when it is given (not in
/// Lambda, where it is the read-only `/var/task`), and `/tmp`.
fn default_disk_paths(cwd: Option<PathBuf>) -> Vec<PathBuf> {
    let tmp = PathBuf::from("/tmp");
    // Run from /tmp, the working directory is /tmp: one entry, not two.
    let mut disk_paths: Vec<PathBuf> = cwd.into_iter().filter(|cwd| *cwd != tmp).collect();
    disk_paths.push(tmp);
    disk_paths
}

/// Takes [`Snapshot`]s of the process.
///
/// The files it reads are opened once, in [`Sampler::new`], and re-read with `pread`;
/// [`Sampler::sample_into`] allocates nothing once the snapshot's disk list has its capacity.
#[derive(Debug)]
pub struct Sampler {
    /// Threads, RSS, virtual memory, descriptors and uptime of this process.
    source: SelfSource,
    disks: Vec<(Arc<str>, Option<File>)>,
    #[cfg(target_os = "linux")]
    cgroup: Option<crate::cgroup::CgroupFiles>,
    lambda: Option<LambdaEnv>,
    cores: Option<u32>,
    /// Whether the cgroup and the cores were looked for ([`Sampler::install`]).
    discovered: bool,
    /// When the current CPU window started and the CPU seconds then.
    cpu_window_start: Option<(Instant, f64)>,
    cpu_window: Duration,
    /// The last full window's CPU percent and length.
    last_cpu: Option<(f64, f64)>,
    /// When the process started, in wall-clock time.
    started_at: Option<chrono::DateTime<chrono::Utc>>,
    previous_alloc: Option<(Instant, u64, u64)>,
    trend: HeapTrend,
    objects_trend: HeapTrend,
    stall: Option<Arc<StallState>>,
    /// Per worker: the park/unpark count and busy time at the previous sample.
    workers: Vec<(u64, Duration)>,
    workers_at: Option<Instant>,
    sequence: u64,
    #[cfg(target_os = "linux")]
    buf: [u8; 4096],
}

/// What [`Sampler::new`] finds once and [`crate::Monitor::start`] can leave to its
/// background task ([`crate::MonitorOptions::background_discovery`]): the memory cgroup's
/// files (parsing `/proc/self/cgroup` and `/proc/self/mountinfo`, opening a dozen files)
/// and the available cores (which the standard library reads from the CPU cgroup).
#[derive(Debug)]
pub(crate) struct Discovery {
    #[cfg(target_os = "linux")]
    cgroup: Option<crate::cgroup::CgroupFiles>,
    cores: Option<u32>,
}

impl Discovery {
    /// Finds the cgroup (its limit files watched with inotify) and the cores.
    pub(crate) fn run() -> Self {
        Discovery {
            #[cfg(target_os = "linux")]
            cgroup: crate::cgroup::CgroupFiles::discover().map(|mut files| {
                files.watch_limits();
                files
            }),
            cores: std::thread::available_parallelism()
                .ok()
                .and_then(|n| u32::try_from(n.get()).ok()),
        }
    }
}

impl Sampler {
    /// Opens what the sampler reads. Files this system lacks leave their figures `None`.
    ///
    /// Fails when an `AWS_LAMBDA_*` variable holds a value that cannot be parsed.
    pub fn new(config: &SamplerOptions) -> Result<Self> {
        let mut sampler = Self::undiscovered(config)?;
        sampler.install(Discovery::run());
        Ok(sampler)
    }

    /// Like [`Sampler::new`] without the [`Discovery`]: its samples have no cgroup figures
    /// and no core count until [`Sampler::install`] gives them.
    pub(crate) fn undiscovered(config: &SamplerOptions) -> Result<Self> {
        let lambda = LambdaEnv::from_env()?;
        let source = SelfSource::open();
        let started_at = source.uptime().and_then(|uptime| {
            let uptime = chrono::Duration::from_std(Duration::from_secs_f64(uptime)).ok()?;
            chrono::Utc::now().checked_sub_signed(uptime)
        });
        Ok(Sampler {
            source,
            disks: config
                .disk_paths
                .iter()
                .map(|path| (Arc::from(path.to_string_lossy()), File::open(path).ok()))
                .collect(),
            #[cfg(target_os = "linux")]
            cgroup: None,
            lambda,
            cores: None,
            discovered: false,
            cpu_window_start: None,
            cpu_window: config.cpu_window,
            last_cpu: None,
            started_at,
            previous_alloc: None,
            trend: HeapTrend::new(config.trend_window, config.trend_points),
            objects_trend: HeapTrend::new(config.trend_window, config.trend_points),
            stall: None,
            workers: Vec::new(),
            workers_at: None,
            sequence: 0,
            #[cfg(target_os = "linux")]
            buf: [0; 4096],
        })
    }

    /// Takes the cgroup and the cores that `discovery` found.
    pub(crate) fn install(&mut self, discovery: Discovery) {
        #[cfg(target_os = "linux")]
        {
            self.cgroup = discovery.cgroup;
        }
        self.cores = discovery.cores;
        self.discovered = true;
    }

    /// Whether [`Sampler::install`] ran (always, for a sampler from [`Sampler::new`]).
    pub(crate) fn discovered(&self) -> bool {
        self.discovered
    }

    pub(crate) fn attach_stall(&mut self, state: Arc<StallState>) {
        self.stall = Some(state);
    }

    /// Takes a new snapshot.
    pub fn sample(&mut self) -> Snapshot {
        let mut snapshot = Snapshot::empty();
        self.sample_into(&mut snapshot);
        snapshot
    }

    /// Overwrites `snapshot` with a new sample, reusing its allocations.
    pub fn sample_into(&mut self, snapshot: &mut Snapshot) {
        let now = Instant::now();
        self.sequence += 1;
        snapshot.sequence = self.sequence;
        snapshot.taken_at = chrono::Utc::now();

        let figures = self.source.read();
        let usage = crate::backend::rusage();
        snapshot.threads = figures.threads;
        snapshot.memory = MemoryStats {
            peak_rss_bytes: usage.peak_rss_bytes,
            ..figures.memory
        };
        // getrusage counts in microseconds; /proc/self/stat in 10 ms clock ticks.
        let (user, system) = (usage.user_seconds, usage.system_seconds);
        if let (Some(u), Some(s)) = (user, system) {
            let total = u + s;
            match self.cpu_window_start {
                Some((then, before)) => {
                    let wall = now.duration_since(then);
                    if wall >= self.cpu_window && !wall.is_zero() {
                        let wall = wall.as_secs_f64();
                        self.last_cpu = Some(((total - before).max(0.0) * 100.0 / wall, wall));
                        self.cpu_window_start = Some((now, total));
                    }
                }
                None => self.cpu_window_start = Some((now, total)),
            }
        }
        snapshot.cpu = CpuStats {
            user_seconds: user,
            system_seconds: system,
            percent: self.last_cpu.map(|(p, _)| p),
            window_seconds: self.last_cpu.map(|(_, w)| w),
            cores: self.cores,
        };

        snapshot.uptime_seconds = figures.uptime_seconds;
        snapshot.started_at = self.started_at;

        let (soft_limit, hard_limit, unlimited) = crate::backend::nofile_limits();
        snapshot.fds = FdStats {
            open: figures.open_fds,
            soft_limit,
            hard_limit,
            unlimited,
        };

        // A snapshot this sampler filled before has the same paths: overwrite its figures
        // in place, without touching the paths' reference counts.
        let same_paths = snapshot.disks.len() == self.disks.len()
            && snapshot
                .disks
                .iter()
                .zip(&self.disks)
                .all(|(disk, (path, _))| Arc::ptr_eq(&disk.path, path));
        if !same_paths {
            snapshot.disks.clear();
            snapshot
                .disks
                .extend(self.disks.iter().map(|(path, _)| DiskStats {
                    path: path.clone(),
                    total_bytes: None,
                    available_bytes: None,
                    free_bytes: None,
                }));
        }
        // The statvfs field types differ between platforms (u32 on some 32-bit targets).
        #[allow(clippy::unnecessary_cast)]
        for (disk, (_, file)) in snapshot.disks.iter_mut().zip(&self.disks) {
            let stats = file
                .as_ref()
                .and_then(|f| nix::sys::statvfs::fstatvfs(f).ok());
            let frsize = stats.as_ref().map(|s| s.fragment_size() as u64);
            let bytes = |blocks: Option<u64>| Some(blocks?.saturating_mul(frsize?));
            disk.total_bytes = bytes(stats.as_ref().map(|s| s.blocks() as u64));
            disk.available_bytes = bytes(stats.as_ref().map(|s| s.blocks_available() as u64));
            disk.free_bytes = bytes(stats.as_ref().map(|s| s.blocks_free() as u64));
        }

        #[cfg(target_os = "linux")]
        {
            snapshot.cgroup = self.cgroup.as_mut().map(|c| c.read(&mut self.buf));
        }
        snapshot.lambda.clone_from(&self.lambda);

        snapshot.tokio = tokio::runtime::Handle::try_current()
            .ok()
            .map(|handle| self.tokio_stats(&handle, now));
        snapshot.stall = self.stall.as_ref().and_then(|s| s.stats());

        #[cfg(feature = "jemalloc")]
        {
            snapshot.jemalloc = crate::jemalloc::jemalloc_stats();
        }
        snapshot.alloc = allocator_stats().map(|counts| {
            let (allocations_per_second, bytes_per_second) = match self.previous_alloc {
                Some((then, allocs, bytes)) => {
                    let wall = now.duration_since(then).as_secs_f64();
                    if wall > 0.0 {
                        (
                            Some(counts.total_allocations.saturating_sub(allocs) as f64 / wall),
                            Some(counts.total_bytes_allocated.saturating_sub(bytes) as f64 / wall),
                        )
                    } else {
                        (None, None)
                    }
                }
                None => (None, None),
            };
            self.previous_alloc =
                Some((now, counts.total_allocations, counts.total_bytes_allocated));
            self.trend.push(now, counts.live_bytes as f64);
            self.objects_trend.push(now, counts.live_allocations as f64);
            HeapStats {
                counts,
                allocations_per_second,
                bytes_per_second,
                growth_bytes_per_second: self.trend.slope,
                growth_fit: self.trend.fit,
                objects_growth_per_second: self.objects_trend.slope,
                objects_growth_fit: self.objects_trend.fit,
            }
        });
    }

    /// Resident, virtual and peak memory now: the cheap part of a sample.
    pub fn memory(&mut self) -> MemoryStats {
        MemoryStats {
            peak_rss_bytes: crate::backend::peak_rss_bytes(),
            ..self.source.memory()
        }
    }

    fn tokio_stats(&mut self, handle: &tokio::runtime::Handle, now: Instant) -> TokioStats {
        let metrics = handle.metrics();
        let workers = metrics.num_workers();
        let mut stats = TokioStats {
            workers: workers as u64,
            alive_tasks: metrics.num_alive_tasks() as u64,
            global_queue_depth: metrics.global_queue_depth() as u64,
            blocked_workers: None,
            busy_percent: None,
        };
        #[cfg(target_has_atomic = "64")]
        {
            let multi_thread = matches!(
                handle.runtime_flavor(),
                tokio::runtime::RuntimeFlavor::MultiThread
            );
            let comparable = self.workers_at.is_some() && self.workers.len() == workers;
            if !comparable {
                // First sample, or the runtime changed: start over (allocates once).
                self.workers.clear();
                self.workers.resize(workers, (0, Duration::ZERO));
            }
            let mut blocked = 0;
            let mut busy = Duration::ZERO;
            // Compared and updated in place: no allocation per sample.
            for (w, (park_before, busy_before)) in self.workers.iter_mut().enumerate() {
                let park_now = metrics.worker_park_unpark_count(w);
                let busy_now = metrics.worker_total_busy_duration(w);
                busy += busy_now.saturating_sub(*busy_before);
                let active = park_now % 2 == 0;
                if active && park_now == *park_before && busy_now == *busy_before {
                    blocked += 1;
                }
                *park_before = park_now;
                *busy_before = busy_now;
            }
            if let Some(then) = self.workers_at
                && comparable
                && multi_thread
            {
                let wall = now.duration_since(then);
                stats.blocked_workers = Some(blocked);
                if !wall.is_zero() && workers > 0 {
                    stats.busy_percent =
                        Some(busy.as_secs_f64() * 100.0 / (wall.as_secs_f64() * workers as f64));
                }
            }
            self.workers_at = Some(now);
        }
        stats
    }
}

impl LambdaEnv {
    /// Reads the Lambda environment variables; `None` outside Lambda.
    pub fn from_env() -> Result<Option<LambdaEnv>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`LambdaEnv::from_env`], reading variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<LambdaEnv>> {
        let memory = var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
        let init = var("AWS_LAMBDA_INITIALIZATION_TYPE");
        let name = var("AWS_LAMBDA_FUNCTION_NAME");
        if memory.is_none() && init.is_none() && name.is_none() {
            return Ok(None);
        }
        let memory_limit_bytes = match memory {
            None => None,
            Some(text) => match text.trim().parse::<u64>() {
                // Lambda's memory sizes go up to 10,240 MB.
                Ok(mb) if (1..=10_240).contains(&mb) => Some(mb * 1024 * 1024),
                _ => {
                    return Err(Error::InvalidEnv {
                        name: "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                        value: text,
                        expected: "a whole number of megabytes from 1 to 10240, such as 512",
                    });
                }
            },
        };
        Ok(Some(LambdaEnv {
            memory_limit_bytes,
            initialization_type: init.map(Arc::from),
            function_name: name.map(Arc::from),
        }))
    }
}

/// A least-squares fit of the live heap over a sliding window.
#[derive(Debug)]
struct HeapTrend {
    points: Vec<(Instant, f64)>,
    capacity: usize,
    spacing: Duration,
    slope: Option<f64>,
    fit: Option<f64>,
}

/// Fewer points than this give no trend.
const MIN_TREND_POINTS: usize = 5;

impl HeapTrend {
    fn new(window: Duration, capacity: usize) -> Self {
        let capacity = capacity.max(MIN_TREND_POINTS);
        HeapTrend {
            points: Vec::with_capacity(capacity),
            capacity,
            spacing: window / capacity as u32,
            slope: None,
            fit: None,
        }
    }

    fn push(&mut self, at: Instant, live: f64) {
        if let Some(&(last, _)) = self.points.last()
            && at.duration_since(last) < self.spacing
        {
            return;
        }
        if self.points.len() == self.capacity {
            self.points.remove(0);
        }
        self.points.push((at, live));
        if self.points.len() < MIN_TREND_POINTS {
            return;
        }
        let origin = self.points[0].0;
        let n = self.points.len() as f64;
        let xs = self
            .points
            .iter()
            .map(|(t, _)| t.duration_since(origin).as_secs_f64());
        let mean_x = xs.clone().sum::<f64>() / n;
        let mean_y = self.points.iter().map(|(_, y)| y).sum::<f64>() / n;
        let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
        for (x, (_, y)) in xs.zip(&self.points) {
            sxy += (x - mean_x) * (y - mean_y);
            sxx += (x - mean_x) * (x - mean_x);
            syy += (y - mean_y) * (y - mean_y);
        }
        if sxx > 0.0 {
            self.slope = Some(sxy / sxx);
            self.fit = Some(if syy > 0.0 {
                (sxy * sxy) / (sxx * syy)
            } else {
                1.0
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let mut sampler = Sampler::new(&SamplerOptions {
            cpu_window: Duration::from_millis(100),
            ..SamplerOptions::default()
        })
        .unwrap();
        let first = sampler.sample();
        assert_eq!(first.sequence, 1);
        assert!(first.threads.unwrap() >= 1);
        assert!(first.memory.rss_bytes.unwrap() > 1 << 20);
        assert!(first.memory.virtual_bytes.unwrap() >= first.memory.rss_bytes.unwrap());
        assert!(first.fds.open.unwrap() >= 3);
        assert!(first.fds.soft_limit.unwrap_or(u64::MAX) >= 1);
        assert!(first.uptime_seconds.unwrap() >= 0.0);
        assert!(first.uptime_seconds.unwrap() < 3600.0);
        assert_eq!(first.cpu.percent, None);
        assert_eq!(first.disks.len(), 2);
        assert!(first.disks.iter().all(|d| d.total_bytes.unwrap() > 0));
        // Burn some CPU so that the second sample measures use.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let second = sampler.sample();
        assert_eq!(second.sequence, 2);
        assert!(second.cpu.percent.unwrap() > 0.0);
        assert!(second.cpu.user_seconds.unwrap() + second.cpu.system_seconds.unwrap() > 0.0);
        assert_eq!(second.tokio, None);
        let window = second.cpu.window_seconds.unwrap();
        assert!(window >= 0.1, "window {window}");
        // The peak is at least the current RSS, and both are real.
        assert!(second.memory.peak_rss_bytes.unwrap() >= second.memory.rss_bytes.unwrap() / 2);
        let started = second.started_at.unwrap();
        let age = (chrono::Utc::now() - started).num_seconds();
        assert!((0..3600).contains(&age), "started {started}");
    }

    /// Samples closer than the CPU window keep the last full window's figure instead of
    /// a jumpy 10 ms measurement.
    #[test]
    fn cpu_percent_needs_a_full_window() {
        let mut sampler = Sampler::new(&SamplerOptions {
            disk_paths: vec![],
            cpu_window: Duration::from_millis(300),
            ..SamplerOptions::default()
        })
        .unwrap();
        assert_eq!(sampler.sample().cpu.percent, None);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(sampler.sample().cpu.percent, None, "50 ms is no window");
        std::thread::sleep(Duration::from_millis(300));
        let full = sampler.sample().cpu;
        let percent = full.percent.unwrap();
        assert!((0.0..=100.0 * 64.0).contains(&percent), "{percent}");
        assert!(full.window_seconds.unwrap() >= 0.3);
        let again = sampler.sample().cpu;
        assert_eq!(again.percent, full.percent);
    }

    /// The CPU figures come from `getrusage`, which counts in microseconds, not from
    /// `/proc/self/stat`, which counts in 10 ms clock ticks: with a few milliseconds of CPU
    /// burnt between samples, some figure is no whole number of ticks. The chance that
    /// microsecond figures all fall on a tick by accident is about 10^-4 per figure.
    /// `RUSAGE_SELF` sums every thread, so tests running in parallel only add time.
    #[test]
    fn cpu_seconds_have_microsecond_resolution() {
        let mut sampler = Sampler::new(&SamplerOptions {
            disk_paths: vec![],
            ..SamplerOptions::default()
        })
        .unwrap();
        let micros = |seconds: Option<f64>| (seconds.unwrap() * 1e6).round() as u64;
        let mut seen = Vec::new();
        for _ in 0..8 {
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed() < Duration::from_micros(3_300) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            let cpu = sampler.sample().cpu;
            seen.push((micros(cpu.user_seconds), micros(cpu.system_seconds)));
        }
        let total = |(user, system): (u64, u64)| user + system;
        assert!(
            total(seen[seen.len() - 1]) > total(seen[0]),
            "the CPU time grew while the test burnt some: {seen:?}"
        );
        assert!(
            seen.iter()
                .any(|&(user, system)| user % 10_000 != 0 || system % 10_000 != 0),
            "every CPU figure (user, system, in microseconds) is a whole number of 10 ms ticks: {seen:?}"
        );
    }

    #[test]
    fn peak_rss_follows_a_large_touched_allocation() {
        let mut sampler = Sampler::new(&SamplerOptions {
            disk_paths: vec![],
            ..SamplerOptions::default()
        })
        .unwrap();
        let before = sampler.sample().memory.peak_rss_bytes.unwrap();
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        drop(big);
        let after = sampler.sample().memory;
        assert!(
            after.peak_rss_bytes.unwrap() >= before.max(60 << 20),
            "peak {:?} before {before}",
            after.peak_rss_bytes
        );
    }

    #[test]
    fn open_fds_follow_opened_files() {
        let mut sampler = Sampler::new(&SamplerOptions {
            disk_paths: vec![],
            ..Default::default()
        })
        .unwrap();
        let before = sampler.sample().fds.open.unwrap();
        let files: Vec<_> = (0..20)
            .map(|_| File::open("/proc/self/stat").unwrap())
            .collect();
        let during = sampler.sample().fds.open.unwrap();
        drop(files);
        // Other tests run in parallel threads and open files too: allow some slack.
        assert!(during >= before + 15, "before {before}, during {during}");
    }

    #[test]
    fn rlimit_agrees_with_getrlimit() {
        use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
        let mut sampler = Sampler::new(&SamplerOptions {
            disk_paths: vec![],
            ..Default::default()
        })
        .unwrap();
        let fds = sampler.sample().fds;
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        if soft == RLIM_INFINITY {
            assert!(fds.unlimited);
        } else {
            assert_eq!(fds.soft_limit, Some(soft));
        }
    }

    #[test]
    fn disk_figures_agree_with_df() {
        for path in ["/tmp", "."] {
            let mut sampler = Sampler::new(&SamplerOptions {
                disk_paths: vec![PathBuf::from(path)],
                ..Default::default()
            })
            .unwrap();
            let disk = sampler.sample().disks.remove(0);
            let output = std::process::Command::new("df")
                .args(["-B1", "--output=size,avail", path])
                .output()
                .unwrap();
            assert!(output.status.success());
            let text = String::from_utf8(output.stdout).unwrap();
            let numbers: Vec<u64> = text
                .lines()
                .nth(1)
                .unwrap()
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(disk.total_bytes, Some(numbers[0]), "size of {path}");
            // Other processes write meanwhile: the free space may move a little.
            let avail = disk.available_bytes.unwrap() as i128;
            assert!(
                (avail - numbers[1] as i128).abs() <= 256 << 20,
                "avail of {path}: {avail} vs {}",
                numbers[1]
            );
        }
    }

    /// In Lambda the working directory (`/var/task`, read-only) is not a default disk.
    #[test]
    fn default_disks_leave_out_lambdas_working_directory() {
        let default = SamplerOptions::default();
        assert_eq!(default.disk_paths.last(), Some(&PathBuf::from("/tmp")));
        if !in_lambda() {
            let cwd = std::env::current_dir().unwrap();
            assert!(default.disk_paths.contains(&cwd), "{default:?}");
        }
        // What `default` does in Lambda, where it passes no working directory.
        assert_eq!(default_disk_paths(None), vec![PathBuf::from("/tmp")]);
        assert_eq!(
            default_disk_paths(Some("/srv/app".into())),
            vec![PathBuf::from("/srv/app"), PathBuf::from("/tmp")]
        );
        assert_eq!(
            default_disk_paths(Some("/tmp".into())),
            vec![PathBuf::from("/tmp")]
        );
    }

    #[test]
    fn lambda_env_is_parsed_and_validated() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(LambdaEnv::from_vars(vars(&[])).unwrap(), None);
        let env = LambdaEnv::from_vars(vars(&[
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(env.memory_limit_bytes, Some(512 << 20));
        assert_eq!(env.initialization_type.as_deref(), Some("on-demand"));
        let err =
            LambdaEnv::from_vars(vars(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots")])).unwrap_err();
        assert!(err.to_string().contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"));
    }

    #[test]
    fn heap_trend_fits_steady_growth() {
        let mut trend = HeapTrend::new(Duration::from_secs(60), 10);
        let start = Instant::now();
        for i in 0..10u64 {
            trend.push(
                start + Duration::from_secs(6 * i),
                1000.0 + 500.0 * (6 * i) as f64,
            );
        }
        let slope = trend.slope.unwrap();
        assert!((slope - 500.0).abs() < 1e-6, "slope {slope}");
        assert!(trend.fit.unwrap() > 0.999);
        // Points closer than the spacing are skipped.
        let len = trend.points.len();
        trend.push(start + Duration::from_secs(55), 0.0);
        assert_eq!(trend.points.len(), len);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reports_tokio_metrics_inside_a_runtime() {
        let mut sampler = Sampler::new(&SamplerOptions {
            disk_paths: vec![],
            ..Default::default()
        })
        .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move { rx.await.ok() });
        let tokio = sampler.sample().tokio.unwrap();
        assert_eq!(tokio.workers, 2);
        assert!(tokio.alive_tasks >= 1);
        assert_eq!(tokio.blocked_workers, None, "no previous sample");
        tx.send(()).unwrap();
        task.await.unwrap();
    }

    /// A task that blocks its worker in one poll shows up in the worker metrics.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blocked_worker_is_counted() {
        let mut sampler = Sampler::new(&SamplerOptions {
            disk_paths: vec![],
            ..Default::default()
        })
        .unwrap();
        // Idle workers park: nothing is blocked.
        sampler.sample();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let idle = sampler.sample().tokio.unwrap();
        assert_eq!(idle.blocked_workers, Some(0), "{idle:?}");
        let blocker = tokio::spawn(async {
            std::thread::sleep(Duration::from_millis(1500));
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        sampler.sample();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let blocked = sampler.sample().tokio.unwrap();
        assert_eq!(blocked.blocked_workers, Some(1), "{blocked:?}");
        blocker.await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        sampler.sample();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(sampler.sample().tokio.unwrap().blocked_workers, Some(0));
    }
}
