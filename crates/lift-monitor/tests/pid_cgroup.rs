//! `lift health --pid`'s cgroup figures: `sample_process` on a real child process reads
//! the child's memory cgroup, checked against the cgroup files found here independently,
//! from the child's `/proc/<pid>/cgroup` and this process's `/proc/self/mountinfo`.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lift_monitor::{ProcessOptions, sample_process};

mod support;

use support::KillOnDrop;

/// A process's memory cgroup as the kernel's files describe it.
#[derive(Debug)]
struct Expected {
    /// 2 for the unified hierarchy, 1 for v1's memory controller.
    version: u8,
    /// The cgroup's directory, in this process's mounts.
    dir: PathBuf,
    /// Where the hierarchy is mounted: the limits of the ancestors up to here bind.
    mount_point: PathBuf,
}

impl Expected {
    /// The usage file: v2 `memory.current`, v1 `memory.usage_in_bytes`.
    fn usage_file(&self) -> &'static str {
        match self.version {
            2 => "memory.current",
            _ => "memory.usage_in_bytes",
        }
    }

    /// The limit file: v2 `memory.max`, v1 `memory.limit_in_bytes`.
    fn limit_file(&self) -> &'static str {
        match self.version {
            2 => "memory.max",
            _ => "memory.limit_in_bytes",
        }
    }

    fn usage(&self) -> u64 {
        let path = self.dir.join(self.usage_file());
        let text = std::fs::read_to_string(&path).unwrap();
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {text:?}: {e}", path.display()))
    }

    /// The limit in `dir`; `None` when it is "no limit" or `dir` has no limit file (v2's
    /// root cgroup).
    fn limit_in(&self, dir: &Path) -> Option<u64> {
        let text = std::fs::read_to_string(dir.join(self.limit_file())).ok()?;
        let text = text.trim();
        if text == "max" {
            return None;
        }
        let value: u64 = text
            .parse()
            .unwrap_or_else(|e| panic!("{}: {text:?}: {e}", dir.display()));
        // v1 writes "no limit" as the largest multiple of the page size up to 2^63 - 1
        // (9223372036854771712 with 4 KiB pages); pages are at most 64 KiB.
        let v1_unlimited = self.version == 1 && value > i64::MAX as u64 - (64 << 10);
        (!v1_unlimited).then_some(value)
    }

    /// `oom_kill` from v2 `memory.events` or v1 `memory.oom_control`, when there.
    fn oom_kills(&self) -> Option<u64> {
        let file = match self.version {
            2 => "memory.events",
            _ => "memory.oom_control",
        };
        let text = std::fs::read_to_string(self.dir.join(file)).ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix("oom_kill "))
            .map(|n| n.trim().parse().unwrap())
    }
}

/// A mount from `/proc/self/mountinfo`.
#[derive(Debug)]
struct Mount {
    /// The directory of the file system mounted (for cgroups, relative to this process's
    /// cgroup namespace).
    root: String,
    mount_point: String,
    fs_type: String,
    super_options: String,
}

/// Decodes the kernel's octal escapes (`\040` for a space) in mountinfo paths.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|digits| bytes[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match octal.and_then(|digits| u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok())
        {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn mounts() -> Vec<Mount> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .map(|line| {
            // id parent major:minor root mount-point options [optional...] - type source super-options
            let (before, after) = line.split_once(" - ").unwrap();
            let before: Vec<_> = before.split(' ').collect();
            let after: Vec<_> = after.split(' ').collect();
            Mount {
                root: unescape(before[3]),
                mount_point: unescape(before[4]),
                fs_type: after[0].to_owned(),
                super_options: after.get(2).copied().unwrap_or_default().to_owned(),
            }
        })
        .collect()
}

/// `path` (from `/proc/<pid>/cgroup`) under `mount`.
fn under(mount: &Mount, path: &str) -> PathBuf {
    let relative = path.strip_prefix(mount.root.as_str()).unwrap_or(path);
    Path::new(&mount.mount_point).join(relative.trim_start_matches('/'))
}

/// The memory cgroup of process `pid`: v2 when its unified cgroup has the memory
/// controller's files (never the root cgroup's, which has no `memory.current`), else v1's
/// memory hierarchy; `None` when there is neither.
fn expected_cgroup(pid: u32) -> Option<Expected> {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mounts = mounts();
    // Lines are `hierarchy-id:controllers:path`; the path may hold colons.
    let lines: Vec<Vec<&str>> = cgroup
        .lines()
        .map(|line| line.splitn(3, ':').collect())
        .collect();
    let v2 = lines
        .iter()
        .find(|fields| fields[0] == "0" && fields[1].is_empty())
        .zip(mounts.iter().find(|m| m.fs_type == "cgroup2"))
        .map(|(fields, mount)| Expected {
            version: 2,
            dir: under(mount, fields[2]),
            mount_point: PathBuf::from(&mount.mount_point),
        })
        .filter(|e| e.dir.join("memory.current").exists());
    if v2.is_some() {
        return v2;
    }
    let path = lines
        .iter()
        .find(|fields| fields[1].split(',').any(|c| c == "memory"))?[2];
    let mount = mounts
        .iter()
        .find(|m| m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == "memory"))?;
    Some(Expected {
        version: 1,
        dir: under(mount, path),
        mount_point: PathBuf::from(&mount.mount_point),
    })
    .filter(|e| e.dir.join("memory.usage_in_bytes").exists())
}

#[tokio::test]
async fn pid_cgroup_figures_are_the_childs_cgroup() {
    let child = KillOnDrop(Command::new("sleep").arg("30").spawn().unwrap());
    let pid = child.0.id();
    let expected = expected_cgroup(pid);

    let before = expected.as_ref().map(Expected::usage);
    let oom_before = expected.as_ref().and_then(Expected::oom_kills);
    let sample = sample_process(
        pid,
        &ProcessOptions::default().cpu_window(Duration::from_millis(50)),
    )
    .await
    .unwrap();
    let after = expected.as_ref().map(Expected::usage);
    let oom_after = expected.as_ref().and_then(Expected::oom_kills);
    assert_eq!(sample.pid, pid);
    assert_eq!(sample.name.as_deref(), Some("sleep"));
    let cgroup = sample.snapshot.cgroup;

    let Some(expected) = expected else {
        // No memory cgroup on this machine: the figures say so rather than inventing one.
        assert_eq!(cgroup, None, "no memory cgroup was found for process {pid}");
        return;
    };
    let cgroup = cgroup.unwrap_or_else(|| panic!("process {pid} is in {expected:?}"));
    assert_eq!(cgroup.version, expected.version, "{expected:?}");

    // The limits: the cgroup's own, and the tightest up the tree to the mount's root.
    let own = expected.limit_in(&expected.dir);
    let tightest = expected
        .dir
        .ancestors()
        .take_while(|dir| dir.starts_with(&expected.mount_point))
        .filter_map(|dir| expected.limit_in(dir))
        .min();
    assert_eq!(cgroup.own_max_bytes, own, "own limit of {expected:?}");
    assert_eq!(cgroup.max_bytes, tightest, "binding limit of {expected:?}");

    // The usage moves with every allocation in the cgroup (this test is in it too): it
    // lies near what the usage file said just before and just after the sample.
    let (before, after) = (before.unwrap(), after.unwrap());
    let current = cgroup.current_bytes.unwrap();
    let (low, high) = (before.min(after), before.max(after));
    let slack = (64 << 20).max(high / 10);
    assert!(
        current > 0 && current + slack >= low && current <= high + slack,
        "current {current}, the usage file {before} before and {after} after, {expected:?}"
    );

    // OOM kills only ever grow: the figure lies between the two readings (and is there
    // when the kernel counts them: v1 since Linux 4.13).
    assert_eq!(
        cgroup.oom_kill_events.is_some(),
        oom_before.is_some(),
        "oom_kill of {expected:?}"
    );
    if let (Some(kills), Some(low), Some(high)) = (cgroup.oom_kill_events, oom_before, oom_after) {
        assert!(
            (low..=high).contains(&kills),
            "oom_kill {kills}, {low}..={high}"
        );
    }
}
