//! Finding a process's memory cgroup (v2, or v1's memory controller) and reading its
//! accounting.
//!
//! Discovery is a cold path, done once: `/proc/<pid>/cgroup` and `/proc/<pid>/mountinfo`
//! are parsed with the `procfs` crate, and the octal escapes the kernel writes for
//! spaces, tabs, newlines and backslashes in paths (`\040`) are decoded. The files found
//! are kept open and re-read with `pread` on every sample, except the limits of a
//! sampler's cgroup and its ancestors, which are re-read only after inotify reports a
//! write to one of their files (or [`LIMIT_REFRESH`] after they were read).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use procfs::FromBufRead;
use procfs::ProcessCGroups;
use procfs::process::{MountInfo, MountInfos};

use crate::procfile::{ProcFile, keyed_value, parse_limit, parse_u64};
use crate::snapshot::CgroupMemory;

/// The memory files of one cgroup directory, kept open.
#[derive(Debug)]
pub(crate) struct CgroupFiles {
    /// 2 for the unified hierarchy, 1 for v1's memory controller.
    version: u8,
    /// v2 `memory.current`, v1 `memory.usage_in_bytes`.
    current: Option<ProcFile>,
    /// v2 `memory.max`, v1 `memory.limit_in_bytes`.
    max: Option<ProcFile>,
    /// v2 `memory.events`, v1 `memory.oom_control`.
    events: Option<ProcFile>,
    /// `memory.stat`, for `inactive_file` (v1 `total_inactive_file`). The kernel formats
    /// some forty counters for it, so it is read only when there is a limit to judge
    /// the working set against.
    stat: Option<ProcFile>,
    /// The limits of the ancestors up to the mount's root (v2 `memory.max`, v1
    /// `memory.limit_in_bytes`): a parent's limit binds too.
    ancestors: Vec<ProcFile>,
    /// The paths of the limit files (own first, then the ancestors'), for [`CgroupFiles::watch_limits`].
    limit_paths: Vec<PathBuf>,
    /// The limits as last read, re-read after a write to one of their files; `None`
    /// re-reads them on every [`CgroupFiles::read`].
    watch: Option<LimitCache>,
    /// How often the limit files were read, for the tests of the cache.
    #[cfg(test)]
    limit_reads: usize,
}

/// The longest the limits are kept without a re-read when inotify reported no write to
/// their files: a backstop for a write inotify could miss (its queue overflowing is
/// reported and handled; a limit changed through another mount of a different
/// superblock would not be).
pub(crate) const LIMIT_REFRESH: Duration = Duration::from_secs(10);

/// The process's inotify instance watching cgroup limit files for writes.
///
/// A cgroup's limit changes only when something writes its file (`memory.max`,
/// `memory.limit_in_bytes`), and the kernel reports every write to an inotify watch on
/// that file (`IN_MODIFY`), whichever process writes it. So one non-blocking `read` of
/// this descriptor per sample, which finds nothing when no limit moved, replaces one
/// `pread` per limit file (three on a host with two ancestors).
///
/// There is one for the whole process, never closed: closing an inotify instance waits
/// until the kernel has reaped its watches (an RCU grace period: 16 to 19 ms measured on
/// the CI machine), which every dropped [`crate::Sampler`] would otherwise pay. Adding a
/// watch on a file watched already returns the same watch, so samplers of the same
/// cgroup add none.
struct LimitWatcher {
    inotify: Inotify,
    /// Counts the reads that found events: it moves whenever a watched file was written.
    /// A sampler re-reads its limits when it moved since its last look (a write to
    /// another sampler's cgroup only costs it one needless re-read). Locked around the
    /// drain, so that a sampler never sees the count before another's drain is counted.
    writes: Mutex<u64>,
}

static WATCHER: OnceLock<Option<LimitWatcher>> = OnceLock::new();

impl LimitWatcher {
    /// The process's watcher; `None` when inotify is unavailable.
    fn get() -> Option<&'static LimitWatcher> {
        WATCHER
            .get_or_init(|| {
                Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
                    .ok()
                    .map(|inotify| LimitWatcher {
                        inotify,
                        writes: Mutex::new(0),
                    })
            })
            .as_ref()
    }

    /// Drains the pending events and returns the count of writes seen so far.
    fn writes(&self, buf: &mut [u8]) -> u64 {
        let mut writes = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match nix::unistd::read(&self.inotify, buf) {
                // One read returns as many whole events as fit: read until none is left.
                Ok(n) if n > 0 => *writes += 1,
                Err(Errno::EAGAIN) => return *writes,
                Err(Errno::EINTR) => {}
                // Unexpected: count it as a write, so that the limits are read again.
                Ok(_) | Err(_) => {
                    *writes += 1;
                    return *writes;
                }
            }
        }
    }
}

/// A sampler's limits, kept between writes to their files.
#[derive(Debug)]
struct LimitCache {
    /// The watcher's count of writes when the limits were read.
    writes: u64,
    /// The own limit and the tightest ancestor limit, and when they were read.
    read: Option<(Option<u64>, Option<u64>, Instant)>,
}

/// v1 reports "no limit" as the largest page-aligned counter, about 2^63;
/// anything from 2^62 up is no real limit.
const V1_UNLIMITED: u64 = 1 << 62;

impl CgroupFiles {
    /// Opens the memory files of this process's cgroup: v2 when the memory
    /// controller is there, else v1's memory hierarchy; `None` when neither is readable.
    pub(crate) fn discover() -> Option<Self> {
        Self::discover_in(Path::new("/proc/self"))
    }

    /// Like [`CgroupFiles::discover`], for the process whose /proc directory is `proc`.
    ///
    /// Its cgroup (`proc/cgroup`) is looked for under this process's mounts
    /// (`/proc/self/mountinfo`), not under its own: the files are opened here, and another
    /// process's mountinfo names mount points in its mount namespace (a container's
    /// `/sys/fs/cgroup` is not the host's, and its mount root is its own cgroup). The
    /// kernel writes the paths of both files relative to the reader's cgroup namespace,
    /// so they fit together.
    pub(crate) fn discover_in(proc: &Path) -> Option<Self> {
        let cgroup = std::fs::read_to_string(proc.join("cgroup")).ok()?;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        if let Some((dir, mount_point)) = cgroup_v2(&cgroup, &mountinfo)
            && let Some(files) = Self::open_dir_under(&dir, &mount_point)
        {
            return Some(files);
        }
        let (dir, mount_point) = cgroup_v1_memory_dir_and_mount(&cgroup, &mountinfo)?;
        Self::open_v1_dir_under(&dir, &mount_point)
    }

    /// Opens the v2 memory files in `dir`, or `None` when it has none of them.
    #[cfg(test)]
    pub(crate) fn open_dir(dir: &Path) -> Option<Self> {
        Self::open_dir_under(dir, dir)
    }

    /// Opens the v2 memory files in `dir` and the limits of its ancestors up to `root`.
    fn open_dir_under(dir: &Path, root: &Path) -> Option<Self> {
        Self::open_files(
            2,
            dir,
            root,
            [
                "memory.current",
                "memory.max",
                "memory.events",
                "memory.stat",
            ],
        )
    }

    /// Opens `names` (usage, limit, events, stat) in `dir`, and the limit file of each
    /// ancestor up to `root`; `None` when `dir` has none of the first three.
    fn open_files(version: u8, dir: &Path, root: &Path, names: [&str; 4]) -> Option<Self> {
        let [current, max, events, stat] = names;
        let mut limit_paths = Vec::new();
        let mut open_limit = |path: PathBuf| {
            let file = ProcFile::open(&path)?;
            limit_paths.push(path);
            Some(file)
        };
        let max = open_limit(dir.join(max));
        let ancestors = dir
            .ancestors()
            .skip(1)
            .take_while(|a| a.starts_with(root))
            .filter_map(|a| open_limit(a.join(names[1])))
            .collect();
        CgroupFiles {
            version,
            current: ProcFile::open(&dir.join(current)),
            max,
            events: ProcFile::open(&dir.join(events)),
            stat: ProcFile::open(&dir.join(stat)),
            ancestors,
            limit_paths,
            watch: None,
            #[cfg(test)]
            limit_reads: 0,
        }
        .if_any()
    }

    /// Opens the v1 memory controller's files in `dir`, or `None` when it has none of them.
    #[cfg(test)]
    pub(crate) fn open_v1_dir(dir: &Path) -> Option<Self> {
        Self::open_v1_dir_under(dir, dir)
    }

    /// Opens the v1 memory controller's files in `dir` and the limits of its ancestors
    /// up to `root`.
    fn open_v1_dir_under(dir: &Path, root: &Path) -> Option<Self> {
        Self::open_files(
            1,
            dir,
            root,
            [
                "memory.usage_in_bytes",
                "memory.limit_in_bytes",
                "memory.oom_control",
                "memory.stat",
            ],
        )
    }

    fn if_any(self) -> Option<Self> {
        (self.current.is_some() || self.max.is_some() || self.events.is_some()).then_some(self)
    }

    /// Watches the limit files with inotify, so that [`CgroupFiles::read`] re-reads the
    /// limits only after a write to one of them (or [`LIMIT_REFRESH`] after the last
    /// read). Without inotify, or when a watch cannot be added, the limits stay re-read
    /// on every call. For a sampler that reads the same cgroup again and again; a one-off
    /// read gains nothing from it.
    pub(crate) fn watch_limits(&mut self) {
        let Some(watcher) = LimitWatcher::get() else {
            return;
        };
        if self.limit_paths.is_empty() {
            return;
        }
        for path in &self.limit_paths {
            if watcher
                .inotify
                .add_watch(path.as_path(), AddWatchFlags::IN_MODIFY)
                .is_err()
            {
                return;
            }
        }
        self.watch = Some(LimitCache {
            writes: 0,
            read: None,
        });
    }

    /// The own limit and the tightest of the ancestors' limits, read now.
    fn read_limits(&self, buf: &mut [u8]) -> (Option<u64>, Option<u64>) {
        let v1 = self.version == 1;
        let real = |max: &u64| !v1 || *max < V1_UNLIMITED;
        let own = self
            .max
            .as_ref()
            .and_then(|f| f.read(buf).and_then(parse_limit))
            .flatten()
            .filter(real);
        let ancestors = self
            .ancestors
            .iter()
            .filter_map(|f| f.read(buf).and_then(parse_limit).flatten())
            .filter(real)
            .min();
        (own, ancestors)
    }

    /// The limits: the cached ones when they are watched and no write was reported since
    /// they were read less than [`LIMIT_REFRESH`] ago, else read now.
    fn limits(&mut self, buf: &mut [u8]) -> (Option<u64>, Option<u64>) {
        let now = Instant::now();
        // The events are drained before the files are read, so that a write after the
        // drain shows up at the next call.
        let writes = match (&self.watch, LimitWatcher::get()) {
            (Some(cache), Some(watcher)) => {
                let writes = watcher.writes(buf);
                if let Some((own, ancestors, read_at)) = cache.read
                    && writes == cache.writes
                    && now.duration_since(read_at) < LIMIT_REFRESH
                {
                    return (own, ancestors);
                }
                writes
            }
            _ => 0,
        };
        let (own, ancestors) = self.read_limits(buf);
        #[cfg(test)]
        {
            self.limit_reads += 1;
        }
        if let Some(cache) = &mut self.watch {
            *cache = LimitCache {
                writes,
                read: Some((own, ancestors, now)),
            };
        }
        (own, ancestors)
    }

    /// Reads the files with `buf` as scratch space (4 KiB holds the `memory.stat` keys
    /// read). The limits come from the cache of [`CgroupFiles::watch_limits`] when they
    /// are watched.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> CgroupMemory {
        let v1 = self.version == 1;
        let current = self
            .current
            .as_ref()
            .and_then(|f| f.read(buf).and_then(parse_u64));
        let (own_max, ancestors_max) = self.limits(buf);
        let (oom, oom_kill) = match self.events.as_ref().and_then(|f| f.read(buf)) {
            // v1 counts no failed reclaims, only kills (`oom_kill`, Linux 4.13 and later).
            Some(text) if v1 => (None, keyed_value(text, b"oom_kill")),
            Some(text) => (keyed_value(text, b"oom"), keyed_value(text, b"oom_kill")),
            None => (None, None),
        };
        let max = ancestors_max.into_iter().chain(own_max).min();
        // The working set only matters against a limit.
        let inactive_file = match max.and(self.stat.as_ref()).and_then(|f| f.read(buf)) {
            Some(text) if v1 => keyed_value(text, b"total_inactive_file"),
            Some(text) => keyed_value(text, b"inactive_file"),
            None => None,
        };
        CgroupMemory {
            version: self.version,
            current_bytes: current,
            max_bytes: max,
            own_max_bytes: own_max,
            inactive_file_bytes: inactive_file,
            oom_events: oom,
            oom_kill_events: oom_kill,
        }
    }
}

/// Decodes the octal escapes (`\040` for a space) the kernel writes in mountinfo paths.
pub(crate) fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(digits) = bytes.get(i + 1..i + 4)
            && digits.iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let value = digits
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mounts(mountinfo: &str) -> Vec<MountInfo> {
    // Lines procfs cannot parse are skipped rather than failing the whole table.
    mountinfo
        .lines()
        .filter_map(|line| MountInfos::from_buf_read(line.as_bytes()).ok())
        .flat_map(|m| m.0)
        .collect()
}

fn cgroups(cgroup: &str) -> Vec<procfs::ProcessCGroup> {
    cgroup
        .lines()
        .filter_map(|line| ProcessCGroups::from_buf_read(line.as_bytes()).ok())
        .flat_map(|c| c.0)
        .collect()
}

/// The directory of v1's memory hierarchy for this process, from the
/// `N:...memory...:/path` line of `/proc/self/cgroup` and the `cgroup` mount
/// whose options name `memory` in `/proc/self/mountinfo`.
#[cfg(test)]
pub(crate) fn cgroup_v1_memory_dir(cgroup: &str, mountinfo: &str) -> Option<PathBuf> {
    cgroup_v1_memory_dir_and_mount(cgroup, mountinfo).map(|(dir, _)| dir)
}

/// The directory of v1's memory hierarchy for this process and its mount point.
fn cgroup_v1_memory_dir_and_mount(cgroup: &str, mountinfo: &str) -> Option<(PathBuf, PathBuf)> {
    let path = cgroups(cgroup)
        .into_iter()
        .find(|c| c.controllers.iter().any(|c| c == "memory"))?
        .pathname;
    let mount = mounts(mountinfo)
        .into_iter()
        .find(|m| m.fs_type == "cgroup" && m.super_options.contains_key("memory"))?;
    let mount_point = unescape_octal(&mount.mount_point.to_string_lossy());
    let dir = join_under_mount(&mount_point, &unescape_octal(&mount.root), &path);
    Some((dir, PathBuf::from(mount_point)))
}

/// `path` (a cgroup path) under `mount_point`, whose root in the hierarchy is `root`.
fn join_under_mount(mount_point: &str, root: &str, path: &str) -> PathBuf {
    // Inside a cgroup namespace the mount root can be a prefix of the path.
    let relative = path
        .strip_prefix(root)
        .unwrap_or(path)
        .trim_start_matches('/');
    Path::new(mount_point).join(relative)
}

/// The directory of this process's cgroup v2 and the mount point of the hierarchy, from
/// `/proc/self/cgroup` (`0::/path`) and the cgroup2 mount in `/proc/self/mountinfo`.
pub(crate) fn cgroup_v2(cgroup: &str, mountinfo: &str) -> Option<(PathBuf, PathBuf)> {
    let path = cgroups(cgroup)
        .into_iter()
        .find(|c| c.hierarchy == 0 && c.controllers.iter().all(String::is_empty))?
        .pathname;
    let mount = mounts(mountinfo)
        .into_iter()
        .find(|m| m.fs_type == "cgroup2")?;
    let mount_point = unescape_octal(&mount.mount_point.to_string_lossy());
    let dir = join_under_mount(&mount_point, &unescape_octal(&mount.root), &path);
    Some((dir, PathBuf::from(mount_point)))
}

/// The directory of this process's cgroup v2.
#[cfg(test)]
pub(crate) fn cgroup_v2_dir(cgroup: &str, mountinfo: &str) -> Option<PathBuf> {
    cgroup_v2(cgroup, mountinfo).map(|(dir, _)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "24 30 0:22 / /sys rw,nosuid - sysfs sysfs rw\n\
        41 31 0:38 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n";

    #[test]
    fn finds_the_cgroup_directory() {
        let dir = cgroup_v2_dir("0::/system.slice/app.service\n", MOUNTINFO).unwrap();
        assert_eq!(dir, Path::new("/sys/fs/cgroup/system.slice/app.service"));
        let root = cgroup_v2_dir("0::/\n", MOUNTINFO).unwrap();
        assert_eq!(root, Path::new("/sys/fs/cgroup"));
        assert_eq!(cgroup_v2_dir("4:memory:/x\n", MOUNTINFO), None);
        assert_eq!(
            cgroup_v2_dir("0::/x\n", "24 30 0:22 / /sys rw - sysfs sysfs rw\n"),
            None
        );
    }

    #[test]
    fn decodes_octal_escapes_in_mount_points() {
        assert_eq!(unescape_octal(r"/mnt/my\040disk"), "/mnt/my disk");
        assert_eq!(unescape_octal(r"a\011b\134c"), "a\tb\\c");
        assert_eq!(unescape_octal(r"trailing\04"), r"trailing\04");
        let mountinfo = "41 31 0:38 / /sys/fs/my\\040cgroup rw,relatime - cgroup2 cgroup2 rw\n";
        let dir = cgroup_v2_dir("0::/app\n", mountinfo).unwrap();
        assert_eq!(dir, Path::new("/sys/fs/my cgroup/app"));
    }

    /// The working set is what the OOM killer counts, and a parent's tighter limit binds.
    #[test]
    fn reads_inactive_file_and_the_tightest_ancestor_limit() {
        let root = tempfile_dir();
        let parent = root.join("kubepods");
        let dir = parent.join("pod1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(root.join("memory.max"), "max\n").unwrap();
        std::fs::write(parent.join("memory.max"), "536870912\n").unwrap();
        std::fs::write(dir.join("memory.max"), "1073741824\n").unwrap();
        std::fs::write(dir.join("memory.current"), "400000000\n").unwrap();
        std::fs::write(
            dir.join("memory.stat"),
            "anon 200000000\nfile 200000000\nkernel 1000\nactive_file 50000000\ninactive_file 150000000\n",
        )
        .unwrap();
        let mut files = CgroupFiles::open_dir_under(&dir, &root).unwrap();
        let mem = files.read(&mut [0u8; 4096]);
        assert_eq!(mem.own_max_bytes, Some(1 << 30));
        assert_eq!(
            mem.max_bytes,
            Some(512 << 20),
            "the parent's limit is tighter"
        );
        assert_eq!(mem.inactive_file_bytes, Some(150_000_000));
        assert_eq!(mem.working_set_bytes(), Some(250_000_000));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn reads_memory_files_from_a_directory() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("memory.current"), "1048576\n").unwrap();
        std::fs::write(dir.join("memory.max"), "max\n").unwrap();
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n",
        )
        .unwrap();
        let mut files = CgroupFiles::open_dir(&dir).unwrap();
        let mut buf = [0u8; 512];
        let mem = files.read(&mut buf);
        assert_eq!(mem.current_bytes, Some(1048576));
        assert_eq!(mem.max_bytes, None);
        assert_eq!(mem.oom_events, Some(2));
        assert_eq!(mem.oom_kill_events, Some(1));
        // The files stay open and are re-read: a new limit shows up.
        std::fs::write(dir.join("memory.max"), "268435456\n").unwrap();
        assert_eq!(files.read(&mut buf).max_bytes, Some(268435456));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(CgroupFiles::open_dir(&dir).is_none());
    }

    /// Watched limits are read once, then again only after a write to one of their
    /// files, which shows up at the very next read; the usage is read every time.
    #[test]
    fn watched_limits_are_read_again_only_after_a_write() {
        let root = tempfile_dir();
        let dir = root.join("app");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(root.join("memory.max"), "max\n").unwrap();
        std::fs::write(dir.join("memory.max"), "1073741824\n").unwrap();
        std::fs::write(dir.join("memory.current"), "1000\n").unwrap();
        let mut files = CgroupFiles::open_dir_under(&dir, &root).unwrap();
        files.watch_limits();
        assert!(files.watch.is_some(), "inotify is available on Linux");
        let mut buf = [0u8; 4096];
        assert_eq!(files.read(&mut buf).max_bytes, Some(1 << 30));
        std::fs::write(dir.join("memory.current"), "2000\n").unwrap();
        for _ in 0..3 {
            let mem = files.read(&mut buf);
            assert_eq!(mem.current_bytes, Some(2000), "the usage is always read");
            assert_eq!(mem.max_bytes, Some(1 << 30));
        }
        assert_eq!(files.limit_reads, 1, "no write, no read of the limits");
        // A parent's new limit binds at once.
        std::fs::write(root.join("memory.max"), "536870912\n").unwrap();
        assert_eq!(files.read(&mut buf).max_bytes, Some(512 << 20));
        assert_eq!(files.limit_reads, 2);
        std::fs::write(dir.join("memory.max"), "268435456\n").unwrap();
        let mem = files.read(&mut buf);
        assert_eq!(mem.own_max_bytes, Some(256 << 20));
        assert_eq!(mem.max_bytes, Some(256 << 20));
        assert_eq!(files.read(&mut buf).max_bytes, Some(256 << 20));
        assert_eq!(files.limit_reads, 3);

        // A write inotify missed (simulated: its event drained and counted as seen) shows
        // up once the limits are older than the refresh period.
        std::fs::write(dir.join("memory.max"), "134217728\n").unwrap();
        let writes = LimitWatcher::get().unwrap().writes(&mut buf);
        let cache = files.watch.as_mut().unwrap();
        cache.writes = writes;
        assert_eq!(files.read(&mut buf).max_bytes, Some(256 << 20), "cached");
        let cache = files.watch.as_mut().unwrap();
        let (own, ancestors, _) = cache.read.unwrap();
        let Some(long_ago) = Instant::now().checked_sub(LIMIT_REFRESH) else {
            return;
        };
        cache.read = Some((own, ancestors, long_ago));
        assert_eq!(files.read(&mut buf).max_bytes, Some(128 << 20), "refreshed");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn finds_the_v1_memory_hierarchy() {
        let cgroup =
            "9:name=systemd:/\n5:devices:/\n4:memory:/process_api/abc\n3:cpu,cpuacct:/\n0::/\n";
        let mountinfo = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n\
            32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup_v1_memory_dir(cgroup, mountinfo).unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/abc")
        );
        // Co-mounted controllers (`memory,blkio`) count too.
        let co = "4:blkio,memory:/app\n";
        let co_mount = "35 31 0:32 / /cg/mem rw - cgroup cgroup rw,blkio,memory\n";
        assert_eq!(
            cgroup_v1_memory_dir(co, co_mount).unwrap(),
            Path::new("/cg/mem/app")
        );
        assert_eq!(cgroup_v1_memory_dir("0::/\n", mountinfo), None);
    }

    #[test]
    fn reads_v1_memory_files_and_treats_the_huge_default_as_no_limit() {
        let dir = tempfile_dir().join("v1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.usage_in_bytes"), "5242880\n").unwrap();
        std::fs::write(dir.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(
            dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        let mut files = CgroupFiles::open_v1_dir(&dir).unwrap();
        let mut buf = [0u8; 512];
        let mem = files.read(&mut buf);
        assert_eq!(mem.version, 1);
        assert_eq!(mem.current_bytes, Some(5242880));
        assert_eq!(mem.max_bytes, None, "the v1 default is no limit");
        assert_eq!(mem.oom_events, None);
        assert_eq!(mem.oom_kill_events, Some(3));
        std::fs::write(dir.join("memory.limit_in_bytes"), "536870912\n").unwrap();
        assert_eq!(files.read(&mut buf).max_bytes, Some(536870912));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_v1_parent_limit_binds() {
        let root = tempfile_dir();
        let dir = root.join("docker").join("app");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(root.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(
            root.join("docker").join("memory.limit_in_bytes"),
            "268435456\n",
        )
        .unwrap();
        std::fs::write(dir.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(dir.join("memory.usage_in_bytes"), "104857600\n").unwrap();
        std::fs::write(
            dir.join("memory.stat"),
            "cache 0\nrss 0\ntotal_active_file 10\ntotal_inactive_file 4857600\n",
        )
        .unwrap();
        let mut files = CgroupFiles::open_v1_dir_under(&dir, &root).unwrap();
        let mem = files.read(&mut [0u8; 4096]);
        assert_eq!(mem.own_max_bytes, None);
        assert_eq!(mem.max_bytes, Some(256 << 20));
        assert_eq!(mem.working_set_bytes(), Some(100_000_000));
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// On a machine whose memory controller is v1, the real files are found and read.
    #[test]
    fn this_process_memory_cgroup_is_read_when_there_is_one() {
        let Some(mut files) = CgroupFiles::discover() else {
            return;
        };
        let mut buf = [0u8; 512];
        let mem = files.read(&mut buf);
        assert!(mem.version == 1 || mem.version == 2);
        if let Some(current) = mem.current_bytes {
            assert!(current > 0, "a running process uses memory");
        }
    }

    /// Another process's cgroup is looked for under this process's mounts, where its files
    /// are opened: its own mountinfo names mount points in its mount namespace. Here the
    /// other process's mountinfo (in a fake /proc directory) has every cgroup hierarchy
    /// mounted at a path that does not exist in this one, as in a container.
    #[test]
    fn another_process_cgroup_is_found_under_this_process_mounts() {
        let proc = tempfile_dir();
        std::fs::copy("/proc/self/cgroup", proc.join("cgroup")).unwrap();
        let mountinfo: String = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .map(|line| {
                let mut fields: Vec<String> = line.split(' ').map(str::to_owned).collect();
                if line.contains(" - cgroup") {
                    fields[4] = format!("/nonexistent/container{}", fields[4]);
                }
                fields.join(" ") + "\n"
            })
            .collect();
        std::fs::write(proc.join("mountinfo"), mountinfo).unwrap();
        let theirs = CgroupFiles::discover_in(&proc).map(|mut f| f.read(&mut [0u8; 4096]));
        let ours = CgroupFiles::discover().map(|mut f| f.read(&mut [0u8; 4096]));
        let stable = |m: Option<CgroupMemory>| m.map(|m| (m.version, m.max_bytes, m.own_max_bytes));
        assert_eq!(stable(theirs), stable(ours));
        assert_eq!(
            theirs.is_some_and(|m| m.current_bytes.is_some()),
            ours.is_some_and(|m| m.current_bytes.is_some())
        );
        std::fs::remove_dir_all(&proc).unwrap();
    }

    /// A fresh directory per call: the tests run in parallel and remove their directories.
    fn tempfile_dir() -> PathBuf {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("lift-monitor-cgroup-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
