//! Finding this process's memory cgroup (v2, or v1's memory controller) and reading its accounting.

use std::path::{Path, PathBuf};

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
}

/// v1 reports "no limit" as the largest page-aligned counter, about 2^63;
/// anything from 2^62 up is no real limit.
const V1_UNLIMITED: u64 = 1 << 62;

impl CgroupFiles {
    /// Opens the memory files of this process's cgroup: v2 when the memory
    /// controller is there, else v1's memory hierarchy; `None` when neither is readable.
    pub(crate) fn discover() -> Option<Self> {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        cgroup_v2_dir(&cgroup, &mountinfo)
            .and_then(|dir| Self::open_dir(&dir))
            .or_else(|| Self::open_v1_dir(&cgroup_v1_memory_dir(&cgroup, &mountinfo)?))
    }

    /// Opens the v2 memory files in `dir`, or `None` when it has none of them.
    pub(crate) fn open_dir(dir: &Path) -> Option<Self> {
        CgroupFiles {
            version: 2,
            current: ProcFile::open(&dir.join("memory.current")),
            max: ProcFile::open(&dir.join("memory.max")),
            events: ProcFile::open(&dir.join("memory.events")),
        }
        .if_any()
    }

    /// Opens the v1 memory controller's files in `dir`, or `None` when it has none of them.
    pub(crate) fn open_v1_dir(dir: &Path) -> Option<Self> {
        CgroupFiles {
            version: 1,
            current: ProcFile::open(&dir.join("memory.usage_in_bytes")),
            max: ProcFile::open(&dir.join("memory.limit_in_bytes")),
            events: ProcFile::open(&dir.join("memory.oom_control")),
        }
        .if_any()
    }

    fn if_any(self) -> Option<Self> {
        (self.current.is_some() || self.max.is_some() || self.events.is_some()).then_some(self)
    }

    /// Reads the files with `buf` as scratch space.
    pub(crate) fn read(&self, buf: &mut [u8]) -> CgroupMemory {
        let current = self
            .current
            .as_ref()
            .and_then(|f| f.read(buf).and_then(parse_u64));
        let max = self
            .max
            .as_ref()
            .and_then(|f| f.read(buf).and_then(parse_limit))
            .flatten()
            .filter(|max| self.version == 2 || *max < V1_UNLIMITED);
        let (oom, oom_kill) = match self.events.as_ref().and_then(|f| f.read(buf)) {
            // v1 counts no failed reclaims, only kills (`oom_kill`, Linux 4.13 and later).
            Some(text) if self.version == 1 => (None, keyed_value(text, b"oom_kill")),
            Some(text) => (keyed_value(text, b"oom"), keyed_value(text, b"oom_kill")),
            None => (None, None),
        };
        CgroupMemory {
            version: self.version,
            current_bytes: current,
            max_bytes: max,
            oom_events: oom,
            oom_kill_events: oom_kill,
        }
    }
}

/// The directory of v1's memory hierarchy for this process, from the
/// `N:...memory...:/path` line of `/proc/self/cgroup` and the `cgroup` mount
/// whose options name `memory` in `/proc/self/mountinfo`.
pub(crate) fn cgroup_v1_memory_dir(cgroup: &str, mountinfo: &str) -> Option<PathBuf> {
    let path = cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    })?;
    let (root, mount_point) = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut after = right.split(' ');
        let (fstype, _source, options) = (after.next()?, after.next()?, after.next()?);
        if fstype != "cgroup" || !options.split(',').any(|o| o == "memory") {
            return None;
        }
        let mut fields = left.split(' ');
        let root = fields.nth(3)?;
        let mount_point = fields.next()?;
        Some((root, mount_point))
    })?;
    Some(join_under_mount(mount_point, root, path))
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

/// The directory of this process's cgroup v2, from `/proc/self/cgroup` (`0::/path`) and
/// the cgroup2 mount in `/proc/self/mountinfo`.
pub(crate) fn cgroup_v2_dir(cgroup: &str, mountinfo: &str) -> Option<PathBuf> {
    let path = cgroup.lines().find_map(|line| line.strip_prefix("0::"))?;
    // mountinfo: id parent major:minor root mount-point options... - fstype source super-options
    let (root, mount_point) = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next()? != "cgroup2" {
            return None;
        }
        let mut fields = left.split(' ');
        let root = fields.nth(3)?;
        let mount_point = fields.next()?;
        Some((root, mount_point))
    })?;
    Some(join_under_mount(mount_point, root, path))
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
    fn reads_memory_files_from_a_directory() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("memory.current"), "1048576\n").unwrap();
        std::fs::write(dir.join("memory.max"), "max\n").unwrap();
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n",
        )
        .unwrap();
        let files = CgroupFiles::open_dir(&dir).unwrap();
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
        let files = CgroupFiles::open_v1_dir(&dir).unwrap();
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

    /// On a machine whose memory controller is v1, the real files are found and read.
    #[test]
    fn this_process_memory_cgroup_is_read_when_there_is_one() {
        let Some(files) = CgroupFiles::discover() else {
            return;
        };
        let mut buf = [0u8; 512];
        let mem = files.read(&mut buf);
        assert!(mem.version == 1 || mem.version == 2);
        if let Some(current) = mem.current_bytes {
            assert!(current > 0, "a running process uses memory");
        }
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
