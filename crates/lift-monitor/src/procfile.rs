//! Kernel files kept open and re-read with `pread`, and the parsers of their contents.
//!
//! Re-reading an open /proc or cgroup file at offset 0 costs one system call and no
//! path lookup; parsing works on a caller's buffer and never allocates.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A file opened once and read from the start on every [`ProcFile::read`].
#[derive(Debug)]
pub(crate) struct ProcFile {
    file: File,
}

impl ProcFile {
    /// Opens `path`, or `None` when it does not exist or cannot be opened.
    pub(crate) fn open(path: &Path) -> Option<Self> {
        File::open(path).ok().map(|file| ProcFile { file })
    }

    /// Reads the whole file into `buf` from offset 0 and returns the bytes read.
    /// Content beyond `buf`'s length is cut off.
    pub(crate) fn read<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let mut filled = 0;
        while filled < buf.len() {
            let wanted = buf.len() - filled;
            match self.file.read_at(&mut buf[filled..], filled as u64) {
                Ok(0) => break,
                // A /proc or cgroup file (a seq_file) fills the whole buffer unless it
                // reached its end, so a short read is the end: reading again would have
                // the kernel format the file a second time only to return 0.
                Ok(n) if n < wanted => {
                    filled += n;
                    break;
                }
                Ok(n) => filled += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
        Some(&buf[..filled])
    }
}

/// The fields lift uses from `/proc/<pid>/stat`.
// The hot path's parser: unused (but tested) when the sysinfo feature selects that backend.
#[cfg_attr(feature = "sysinfo", allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub(crate) utime_ticks: u64,
    pub(crate) stime_ticks: u64,
    pub(crate) num_threads: u64,
    pub(crate) starttime_ticks: u64,
    pub(crate) vsize_bytes: u64,
    pub(crate) rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted from the last `)`.
#[cfg_attr(feature = "sysinfo", allow(dead_code))]
pub(crate) fn parse_proc_stat(text: &[u8]) -> Option<ProcStat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = text.get(close + 1..)?;
    let mut fields = rest
        .split(|&b| b == b' ' || b == b'\n')
        .filter(|f| !f.is_empty());
    // `fields` starts at field 3 (state); field n is at index n - 3.
    let mut get = |skip: usize| -> Option<u64> { parse_u64(fields.nth(skip)?) };
    let utime = get(14 - 3)?;
    let stime = get(0)?;
    let num_threads = get(20 - 15 - 1)?;
    let starttime = get(22 - 20 - 1)?;
    let vsize = get(0)?;
    let rss = get(0)?;
    Some(ProcStat {
        utime_ticks: utime,
        stime_ticks: stime,
        num_threads,
        starttime_ticks: starttime,
        vsize_bytes: vsize,
        rss_pages: rss,
    })
}

/// Parses an unsigned decimal, ignoring surrounding whitespace.
pub(crate) fn parse_u64(text: &[u8]) -> Option<u64> {
    let text = text.trim_ascii();
    if text.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &b in text {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

/// Parses a cgroup v2 limit file such as `memory.max`: a number, or `max` for none.
/// Returns `Some(None)` for `max`.
pub(crate) fn parse_limit(text: &[u8]) -> Option<Option<u64>> {
    let text = text.trim_ascii();
    if text == b"max" {
        return Some(None);
    }
    parse_u64(text).map(Some)
}

/// Finds `key`'s value in a flat-keyed file such as `memory.events` (`key value` per line).
pub(crate) fn keyed_value(text: &[u8], key: &[u8]) -> Option<u64> {
    text.split(|&b| b == b'\n').find_map(|line| {
        let mut parts = line.split(|&b| b == b' ');
        (parts.next()? == key).then(|| parts.next().and_then(parse_u64))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STAT: &str = "12345 (my (weird) cmd) S 1 12345 12345 0 -1 4194560 1883 0 0 0 \
        250 75 0 0 20 0 7 0 987654 52428800 2560 18446744073709551615 1 1 0 0 0 0 0 \
        4096 17663 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn parses_proc_stat_with_parentheses_in_the_name() {
        let stat = parse_proc_stat(STAT.as_bytes()).unwrap();
        assert_eq!(
            stat,
            ProcStat {
                utime_ticks: 250,
                stime_ticks: 75,
                num_threads: 7,
                starttime_ticks: 987654,
                vsize_bytes: 52428800,
                rss_pages: 2560,
            }
        );
    }

    #[test]
    fn parses_this_process_stat() {
        let file = ProcFile::open(Path::new("/proc/self/stat")).unwrap();
        let mut buf = [0u8; 1024];
        let stat = parse_proc_stat(file.read(&mut buf).unwrap()).unwrap();
        assert!(stat.num_threads >= 1);
        assert!(stat.rss_pages > 0);
        // Reading again re-reads from the start.
        let again = parse_proc_stat(file.read(&mut buf).unwrap()).unwrap();
        assert!(again.utime_ticks >= stat.utime_ticks);
    }

    #[test]
    fn parses_cgroup_files() {
        assert_eq!(parse_limit(b"max\n"), Some(None));
        assert_eq!(parse_limit(b"134217728\n"), Some(Some(134217728)));
        assert_eq!(parse_limit(b"lots"), None);
        let events = b"low 0\nhigh 2\nmax 5\noom 3\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, b"oom"), Some(3));
        assert_eq!(keyed_value(events, b"oom_kill"), Some(1));
        assert_eq!(keyed_value(events, b"missing"), None);
    }

    proptest! {
        #[test]
        fn proc_stat_fields_survive_any_command_name(
            name in "[ -~]{0,32}",
            utime in any::<u64>(), stime in any::<u64>(), threads in 1u64..100_000,
            start in any::<u64>(), vsize in any::<u64>(), rss in any::<u64>(),
        ) {
            let line = format!(
                "42 ({name}) R 1 2 3 4 5 6 7 8 9 10 {utime} {stime} 0 0 20 0 {threads} 0 {start} {vsize} {rss} 1 2 3\n"
            );
            let stat = parse_proc_stat(line.as_bytes()).unwrap();
            prop_assert_eq!(stat.utime_ticks, utime);
            prop_assert_eq!(stat.stime_ticks, stime);
            prop_assert_eq!(stat.num_threads, threads);
            prop_assert_eq!(stat.starttime_ticks, start);
            prop_assert_eq!(stat.vsize_bytes, vsize);
            prop_assert_eq!(stat.rss_pages, rss);
        }

        #[test]
        fn parse_u64_round_trips(n in any::<u64>()) {
            prop_assert_eq!(parse_u64(n.to_string().as_bytes()), Some(n));
        }
    }
}
