//! What the sink does on open: reconcile rotation, scan the tail, cut a torn line.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::manifest::{Manifest, segment_name};
use crate::record::{GENESIS, Hasher, parse_line};

/// The state of a chain found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainTail {
    /// The seq of the last record, 0 for an empty chain.
    pub(crate) seq: u64,
    /// The hash of the last record, [`GENESIS`] for an empty chain.
    pub(crate) head: [u8; 32],
    /// The file name holding the last record (for checkpoint hints).
    pub(crate) head_file: String,
    /// The byte offset of the last record in `head_file`.
    pub(crate) head_offset: u64,
    /// How many torn bytes were cut from the live file's end.
    pub(crate) cut_bytes: u64,
    /// How many sealed segments precede the live file.
    pub(crate) segments: usize,
    /// The sealed segment names, oldest first.
    pub(crate) sealed: Vec<String>,
}

/// The last complete line of a file and where it ends.
struct LastLine {
    /// Offset of the line's first byte.
    offset: u64,
    /// The line, without its newline.
    bytes: Vec<u8>,
}

/// Finds the file's valid length (after its last newline) and its last complete line.
fn scan(file: &File, path: &Path, len: u64) -> Result<(u64, Option<LastLine>)> {
    let mut window: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        let mut buf = vec![0u8; usize::try_from(len - start).unwrap_or(usize::MAX)];
        file.read_exact_at(&mut buf, start)
            .map_err(|e| Error::io("read the tail of", path, e))?;
        let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else {
            if start == 0 {
                return Ok((0, None));
            }
            window = window.saturating_mul(4);
            continue;
        };
        let good_len = start + last_nl as u64 + 1;
        match buf[..last_nl].iter().rposition(|&b| b == b'\n') {
            Some(prev_nl) => {
                return Ok((
                    good_len,
                    Some(LastLine {
                        offset: start + prev_nl as u64 + 1,
                        bytes: buf[prev_nl + 1..last_nl].to_vec(),
                    }),
                ));
            }
            None if start == 0 => {
                return Ok((
                    good_len,
                    Some(LastLine {
                        offset: 0,
                        bytes: buf[..last_nl].to_vec(),
                    }),
                ));
            }
            None => window = window.saturating_mul(4),
        }
    }
}

fn check_last(hasher: &Hasher, path: &Path, last: &LastLine) -> Result<(u64, [u8; 32])> {
    let raw = parse_line(&last.bytes).map_err(|why| {
        Error::Integrity(format!(
            "refusing to append to {}: its last record (offset {}) is not a valid record ({why}); run `lift audit verify {}`",
            path.display(),
            last.offset,
            path.display()
        ))
    })?;
    if raw.kid != hasher.kid() {
        return Err(Error::Integrity(format!(
            "refusing to append to {}: it was written with audit key {} but the sink has key {}; configure the same key",
            path.display(),
            raw.kid.unwrap_or("-"),
            hasher.kid().unwrap_or("-")
        )));
    }
    if !hasher.check(&raw) {
        return Err(Error::Integrity(format!(
            "refusing to append to {}: its last record (seq {}) does not match its hash; run `lift audit verify {}`",
            path.display(),
            raw.seq,
            path.display()
        )));
    }
    Ok((raw.seq, raw.hash))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Finishes an interrupted rotation, then scans and repairs the live file.
///
/// The live file (`log`, already open for appending) ends, on return, just
/// after its last complete and valid record. A torn last line is cut; any
/// other damage is an [`Error::Integrity`]: the sink never appends after garbage.
pub(crate) fn recover(log: &Path, hasher: &Hasher) -> Result<(File, ChainTail)> {
    let manifest = Manifest::load(log)?;
    let dir = log.parent().map(Path::to_owned).unwrap_or_default();
    let mut sealed: Vec<String> = manifest
        .map(|m| m.files)
        .unwrap_or_default()
        .into_iter()
        .filter(|f| *f != file_name(log))
        .collect();
    // The manifest is written before the rename; a crash between them leaves
    // the newest sealed segment missing and its content still in `log`.
    if let Some(newest) = sealed.last() {
        let newest_path = dir.join(newest);
        if !newest_path.exists() && log.exists() {
            std::fs::rename(log, &newest_path)
                .map_err(|e| Error::io("finish rotating", &newest_path, e))?;
            crate::checkpoint::sync_parent(log)?;
        }
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        // Audit logs are read-restricted (PCI DSS 10.3.1): new files are owner-only.
        .mode(0o600)
        .open(log)
        .map_err(|e| Error::io("open audit log", log, e))?;
    crate::checkpoint::sync_parent(log)?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", log, e))?
        .len();
    let mut tail = ChainTail {
        seq: 0,
        head: GENESIS,
        head_file: file_name(log),
        head_offset: 0,
        cut_bytes: 0,
        segments: sealed.len(),
        sealed: Vec::new(),
    };
    let (good_len, last) = scan(&file, log, len)?;
    if good_len < len {
        file.set_len(good_len)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("cut the torn tail of", log, e))?;
        tail.cut_bytes = len - good_len;
    }
    if let Some(last) = last {
        let (seq, head) = check_last(hasher, log, &last)?;
        tail.seq = seq;
        tail.head = head;
        tail.head_offset = last.offset;
    } else if let Some(newest) = sealed.last() {
        let path = dir.join(newest);
        let sealed_file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        let sealed_len = sealed_file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        let (good, last) = scan(&sealed_file, &path, sealed_len)?;
        let Some(last) = last.filter(|_| good == sealed_len) else {
            return Err(Error::Integrity(format!(
                "sealed audit segment {} is empty or torn; run `lift audit verify {}`",
                path.display(),
                log.display()
            )));
        };
        let (seq, head) = check_last(hasher, &path, &last)?;
        tail.seq = seq;
        tail.head = head;
        tail.head_file = newest.clone();
        tail.head_offset = last.offset;
    }
    // Segment numbers continue after the highest existing one.
    tail.segments = sealed
        .iter()
        .filter_map(|s| s.rsplit('.').next()?.parse::<usize>().ok())
        .max()
        .unwrap_or(0)
        .max(sealed.len());
    sealed.retain(|s| !s.is_empty());
    tail.sealed = sealed;
    Ok((file, tail))
}

/// The path of sealed segment `n` of `log`.
pub(crate) fn segment_path(log: &Path, n: usize) -> PathBuf {
    log.parent()
        .map(Path::to_owned)
        .unwrap_or_default()
        .join(segment_name(log, n))
}
