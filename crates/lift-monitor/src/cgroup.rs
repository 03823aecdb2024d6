//! Finding this process's cgroup v2 directory and reading its memory accounting.

use std::path::{Path, PathBuf};

use crate::procfile::{ProcFile, keyed_value, parse_limit, parse_u64};
use crate::snapshot::CgroupMemory;

/// The memory files of one cgroup v2 directory, kept open.
#[derive(Debug)]
pub(crate) struct CgroupFiles {
    current: Option<ProcFile>,
    max: Option<ProcFile>,
    events: Option<ProcFile>,
}

impl CgroupFiles {
    /// Opens the memory files of the cgroup v2 this process belongs to, or `None` when the
    /// process is not in a cgroup v2 with the memory controller.
    pub(crate) fn discover() -> Option<Self> {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        Self::open_dir(&cgroup_v2_dir(&cgroup, &mountinfo)?)
    }

    /// Opens the memory files in `dir`, or `None` when it has none of them.
    pub(crate) fn open_dir(dir: &Path) -> Option<Self> {
        let files = CgroupFiles {
            current: ProcFile::open(&dir.join("memory.current")),
            max: ProcFile::open(&dir.join("memory.max")),
            events: ProcFile::open(&dir.join("memory.events")),
        };
        (files.current.is_some() || files.max.is_some() || files.events.is_some()).then_some(files)
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
            .flatten();
        let (oom, oom_kill) = match self.events.as_ref().and_then(|f| f.read(buf)) {
            Some(text) => (keyed_value(text, b"oom"), keyed_value(text, b"oom_kill")),
            None => (None, None),
        };
        CgroupMemory {
            current_bytes: current,
            max_bytes: max,
            oom_events: oom,
            oom_kill_events: oom_kill,
        }
    }
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
    // Inside a cgroup namespace the mount root can be a prefix of the path.
    let relative = path
        .strip_prefix(root)
        .unwrap_or(path)
        .trim_start_matches('/');
    Some(Path::new(mount_point).join(relative))
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

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lift-monitor-cgroup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
