//! What the sink does on open: reconcile rotation, scan the tail, cut a torn line.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, segment_name};
use crate::record::{GENESIS, Hasher, MAX_RECORD_LEN, next_digest, parse_line};

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
    /// Whether the bytes cut held a hole (zeros where unsynced writes that
    /// reached the disk out of order left a gap), rather than one torn line.
    pub(crate) hole: bool,
    /// How many sealed segments precede the live file.
    pub(crate) segments: usize,
    /// The sealed segment names, oldest first.
    pub(crate) sealed: Vec<String>,
    /// The public content digest after the last record (zeros for an empty chain).
    pub(crate) digest: [u8; 32],
}

/// The last complete line of a file and where it ends.
struct LastLine {
    /// Offset of the line's first byte.
    offset: u64,
    /// The line, without its newline.
    bytes: Vec<u8>,
}

/// How much the backward and forward scans read at a time.
const CHUNK: usize = 256 * 1024;

/// The offset of the last `\n` in `[floor, end)`, reading backwards in fixed chunks.
fn rfind_newline(file: &File, path: &Path, floor: u64, end: u64) -> Result<Option<u64>> {
    let mut buf = vec![0u8; CHUNK];
    let mut hi = end;
    while hi > floor {
        let lo = hi.saturating_sub(CHUNK as u64).max(floor);
        let n = usize::try_from(hi - lo).unwrap_or(CHUNK);
        file.read_exact_at(&mut buf[..n], lo)
            .map_err(|e| Error::io("read the tail of", path, e))?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return Ok(Some(lo + i as u64));
        }
        hi = lo;
    }
    Ok(None)
}

/// Finds the file's valid length (after its last newline) and its last complete line.
///
/// Memory stays bounded (one chunk and one record of at most
/// [`MAX_RECORD_LEN`] bytes) and time is linear in the bytes after the last
/// complete record, whatever the file holds: a torn tail of a gigabyte
/// without a newline is scanned once, never loaded.
fn scan(file: &File, path: &Path, len: u64) -> Result<(u64, Option<LastLine>)> {
    let Some(last_nl) = rfind_newline(file, path, 0, len)? else {
        return Ok((0, None));
    };
    let floor = last_nl.saturating_sub(MAX_RECORD_LEN as u64 + 1);
    let start = match rfind_newline(file, path, floor, last_nl)? {
        Some(prev_nl) => prev_nl + 1,
        None if floor == 0 => 0,
        None => {
            return Err(Error::Integrity(format!(
                "refusing to append to {}: its last line (ending at offset {last_nl}) is longer than {MAX_RECORD_LEN} bytes, so it is not a record; run `lift audit verify {}` to find where the log went wrong",
                path.display(),
                path.display()
            )));
        }
    };
    let mut bytes = vec![0u8; usize::try_from(last_nl - start).unwrap_or(0)];
    file.read_exact_at(&mut bytes, start)
        .map_err(|e| Error::io("read the tail of", path, e))?;
    Ok((
        last_nl + 1,
        Some(LastLine {
            offset: start,
            bytes,
        }),
    ))
}

/// What [`absorb`] found after the records it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Absorbed {
    /// The offset just after the last complete record read.
    pub(crate) end: u64,
    /// How many bytes follow it without a newline (a write torn by a crash).
    pub(crate) torn: u64,
}

/// Reads the records in `[start, end)` of `file`, which must continue the
/// chain at `tail`, and advances `tail` past each of them.
///
/// This is how a writer catches up, under the log's lock, with records that
/// other processes appended since it last wrote. Every record is checked
/// (canonical layout, key id, sequence number, link to its predecessor, hash)
/// before the chain moves on, so a writer never links to garbage. Memory
/// stays at one chunk plus one record of at most [`MAX_RECORD_LEN`] bytes;
/// time is linear in `end - start`.
///
/// With `lines`, each record line read (with its newline) is appended to it
/// and `tail.digest` is left alone, for the caller to digest elsewhere;
/// without, `tail.digest` advances too.
pub(crate) fn absorb(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    hasher: &Hasher,
    tail: &mut ChainTail,
    lines: Option<&mut Vec<u8>>,
) -> Result<Absorbed> {
    match absorb_until_bad(file, path, start, end, hasher, tail, lines)? {
        (absorbed, None) => Ok(absorbed),
        (_, Some(bad)) => Err(bad),
    }
}

/// Like [`absorb`], but a line that does not continue the chain ends the
/// read rather than failing it: returns where that line starts (as
/// `Absorbed::end`, with `torn` the bytes from there to where reading
/// stopped) and why it is not a record; `tail` stays at the last good record.
#[allow(
    clippy::too_many_lines,
    reason = "one streaming loop over chunks and the lines in them"
)]
fn absorb_until_bad(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    hasher: &Hasher,
    tail: &mut ChainTail,
    mut lines: Option<&mut Vec<u8>>,
) -> Result<(Absorbed, Option<Error>)> {
    let name = file_name(path);
    let mut buf = vec![0u8; CHUNK];
    // The start of a line that began in an earlier chunk, and its bytes so far.
    let mut line = Vec::new();
    let mut line_start = start;
    let mut overlong = false;
    let mut pos = start;
    while pos < end {
        let mut chunk =
            read_chunk(file, &mut buf, pos, end).map_err(|e| Error::io("read", path, e))?;
        let n = chunk.len();
        if n == 0 {
            break;
        }
        let chunk_start = pos;
        pos += n as u64;
        while let Some(nl) = memchr::memchr(b'\n', chunk) {
            let consumed = chunk_start + (n - chunk.len()) as u64 + nl as u64 + 1;
            if overlong || line.len() + nl > MAX_RECORD_LEN {
                let bad = not_a_continuation(
                    path,
                    line_start,
                    tail,
                    "the line is too long to be a record",
                );
                return Ok((stopped(line_start, pos), Some(bad)));
            }
            let whole: &[u8] = if line.is_empty() {
                &chunk[..nl]
            } else {
                line.extend_from_slice(&chunk[..nl]);
                &line
            };
            if let Err(bad) = continue_chain(
                hasher,
                path,
                &name,
                whole,
                line_start,
                tail,
                lines.is_none(),
            ) {
                return Ok((stopped(line_start, pos), Some(bad)));
            }
            if let Some(out) = lines.as_deref_mut() {
                out.extend_from_slice(whole);
                out.push(b'\n');
            }
            line.clear();
            line_start = consumed;
            chunk = &chunk[nl + 1..];
        }
        if !overlong {
            if line.len() + chunk.len() > MAX_RECORD_LEN {
                overlong = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
    }
    Ok((stopped(line_start, pos), None))
}

fn stopped(end: u64, pos: u64) -> Absorbed {
    Absorbed {
        end,
        torn: pos - end,
    }
}

fn not_a_continuation(path: &Path, offset: u64, tail: &ChainTail, why: &str) -> Error {
    Error::Integrity(format!(
        "refusing to append to {}: the record at offset {offset} does not continue the chain after record {} ({why}); run `lift audit verify {}` to find the first bad record",
        path.display(),
        tail.seq,
        path.display()
    ))
}

/// Checks that `line` is the record after `tail` and moves `tail` to it.
fn continue_chain(
    hasher: &Hasher,
    path: &Path,
    name: &str,
    line: &[u8],
    offset: u64,
    tail: &mut ChainTail,
    digest: bool,
) -> Result<()> {
    let raw = parse_line(line).map_err(|why| not_a_continuation(path, offset, tail, why))?;
    if raw.kid != hasher.kid() {
        return Err(not_a_continuation(
            path,
            offset,
            tail,
            "it was written under another audit key",
        ));
    }
    if raw.seq != tail.seq + 1 || raw.prev != tail.head {
        return Err(not_a_continuation(
            path,
            offset,
            tail,
            "its sequence number or previous hash does not follow",
        ));
    }
    if !hasher.check(&raw) {
        return Err(not_a_continuation(
            path,
            offset,
            tail,
            "it does not match its hash",
        ));
    }
    tail.seq = raw.seq;
    tail.head = raw.hash;
    if digest {
        tail.digest = next_digest(&tail.digest, line);
    }
    tail.head_offset = offset;
    if tail.head_file != name {
        name.clone_into(&mut tail.head_file);
    }
    Ok(())
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

/// Opens the live file `log` for appending and reading, creating it when missing.
///
/// Audit logs are read-restricted (PCI DSS 10.3.1): a new file is owner-only.
/// It is created through `lift_core::fs::create_new`, so that a crash test
/// recording the durable operations sees it; when that fails (the file
/// exists, or cannot be created), the open says why.
pub(crate) fn open_live(log: &Path) -> Result<File> {
    // Best effort: the open below creates the file if this did not, and reports any error.
    let _created = lift_core::fs::create_new(log, 0o600);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(log)
        .map_err(|e| Error::io("open audit log", log, e))
}

/// Finishes an interrupted rotation, then scans and repairs the live file.
///
/// The live file (`log`, already open for appending) ends, on return, just
/// after its last complete and valid record. A torn last line is cut; any
/// other damage is an [`Error::Integrity`]: the sink never appends after garbage.
pub(crate) fn recover(
    log: &Path,
    hasher: &Hasher,
    checkpoint: Option<&Checkpoint>,
) -> Result<(File, ChainTail)> {
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
            lift_core::fs::rename(log, &newest_path)?;
            crate::checkpoint::sync_parent(log)?;
        }
    }
    let file = open_live(log)?;
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
        hole: false,
        segments: sealed.len(),
        sealed: Vec::new(),
        digest: GENESIS,
    };
    // Segment numbers continue after the highest existing one.
    let segments = sealed
        .iter()
        .filter_map(|s| s.rsplit('.').next()?.parse::<usize>().ok())
        .max()
        .unwrap_or(0)
        .max(sealed.len());
    let newest = sealed.last().cloned();
    sealed.retain(|s| !s.is_empty());
    let mut files: Vec<PathBuf> = sealed.iter().map(|s| dir.join(s)).collect();
    files.push(log.to_owned());
    let found = read_tail(
        &file,
        log,
        len,
        &dir,
        newest.as_deref(),
        &files,
        hasher,
        checkpoint,
        &mut tail,
    );
    match found {
        Ok(()) => {}
        Err(err @ Error::Integrity(_)) => {
            // Unsynced appends that reached the disk out of order leave a
            // hole (zeros) before a later record: cut it like a torn line,
            // but only when that is all it can be.
            if !cut_hole(&file, log, len, &files, hasher, checkpoint, &mut tail)? {
                return Err(err);
            }
        }
        Err(err) => return Err(err),
    }
    tail.segments = segments;
    tail.sealed = sealed;
    Ok((file, tail))
}

/// The chain's end as the files show it: cuts a torn last line of the live
/// file, checks its last record (or, with an empty live file, the newest
/// sealed segment's) and walks the chain up to it for the content digest.
#[allow(
    clippy::too_many_arguments,
    reason = "the state recovery has gathered, passed along rather than bundled for one call"
)]
fn read_tail(
    file: &File,
    log: &Path,
    len: u64,
    dir: &Path,
    newest: Option<&str>,
    files: &[PathBuf],
    hasher: &Hasher,
    checkpoint: Option<&Checkpoint>,
    tail: &mut ChainTail,
) -> Result<()> {
    let (good_len, last) = scan(file, log, len)?;
    if good_len < len {
        lift_core::fs::truncate(file, log, good_len)?;
        lift_core::fs::sync_all(file, log)?;
        tail.cut_bytes = len - good_len;
    }
    if let Some(last) = last {
        let (seq, head) = check_last(hasher, log, &last)?;
        tail.seq = seq;
        tail.head = head;
        tail.head_offset = last.offset;
    } else if let Some(newest) = newest {
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
        newest.clone_into(&mut tail.head_file);
        tail.head_offset = last.offset;
    }
    tail.digest = digest_to_tail(files, hasher, checkpoint, tail)?;
    Ok(())
}

/// Cuts a hole from the live file's end, if that is what follows its last good record.
///
/// When unsynced appends reach the disk out of order (a later one written,
/// an earlier one lost or torn), the file's unsynced end reads as zeros,
/// perhaps after part of a record, then a complete later record. A record
/// line never holds a raw NUL byte (JSON escapes it), and a hole always
/// reads as zeros, so: walking the chain (from the checkpoint when it
/// anchors, strictly through the sealed segments), if the bytes after the
/// last record of the live file that continues the chain hold a NUL byte
/// and no checkpoint covers a record past it, those bytes are cut (and
/// fsynced) and `tail` set to that record, with `cut_bytes` counting from
/// `len`, the live file's length before recovery. Returns whether it cut;
/// anything else (no NUL: an edited or foreign record; damage a checkpoint
/// covers; damage in a sealed segment) is left for the caller to refuse.
/// Memory stays at one chunk plus one record; time is linear in the walk.
fn cut_hole(
    file: &File,
    log: &Path,
    len: u64,
    files: &[PathBuf],
    hasher: &Hasher,
    checkpoint: Option<&Checkpoint>,
    tail: &mut ChainTail,
) -> Result<bool> {
    let (first, mut offset, mut walk) = walk_start(files, hasher, checkpoint);
    let Some((_, sealed)) = files.split_last() else {
        return Ok(false);
    };
    for path in sealed.iter().skip(first) {
        let sealed_file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let sealed_len = sealed_file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        match absorb(
            &sealed_file,
            path,
            offset,
            sealed_len,
            hasher,
            &mut walk,
            None,
        ) {
            Ok(absorbed) if absorbed.torn == 0 => {}
            Ok(_) | Err(Error::Integrity(_)) => return Ok(false),
            Err(err) => return Err(err),
        }
        offset = 0;
    }
    let now = file
        .metadata()
        .map_err(|e| Error::io("stat", log, e))?
        .len();
    let (absorbed, bad) = absorb_until_bad(file, log, offset, now, hasher, &mut walk, None)?;
    if bad.is_none() {
        return Ok(false);
    }
    if checkpoint.is_some_and(|cp| cp.size > walk.seq) {
        return Ok(false);
    }
    let good_end = absorbed.end;
    if !first_line_is_hole(file, log, good_end, now)? {
        return Ok(false);
    }
    lift_core::fs::truncate(file, log, good_end)?;
    lift_core::fs::sync_all(file, log)?;
    tail.seq = walk.seq;
    tail.head = walk.head;
    tail.head_file = if walk.head_file.is_empty() {
        file_name(log)
    } else {
        walk.head_file
    };
    tail.head_offset = walk.head_offset;
    tail.digest = walk.digest;
    tail.cut_bytes = len.saturating_sub(good_end);
    tail.hole = true;
    Ok(true)
}

/// Reads the next piece of `[pos, end)` into `buf`: at most `buf.len()` bytes, and an
/// empty slice at the end of the range or of the file.
fn read_chunk<'b>(file: &File, buf: &'b mut [u8], pos: u64, end: u64) -> std::io::Result<&'b [u8]> {
    let want = usize::try_from(end.saturating_sub(pos))
        .unwrap_or(usize::MAX)
        .min(buf.len());
    let n = file.read_at(&mut buf[..want], pos)?;
    Ok(&buf[..n])
}

/// Whether the line starting at `from` (ending before `to`) is a hole
/// before a later record ([`is_hole_line`]): it holds a NUL byte (no record
/// line does; a hole reads as zeros), what precedes its first NUL can begin
/// a record, and what follows its last NUL, up to the newline, is a
/// complete record. Reads in fixed chunks, never the line whole, and then
/// that last record alone (at most [`MAX_RECORD_LEN`] bytes).
fn first_line_is_hole(file: &File, path: &Path, from: u64, to: u64) -> Result<bool> {
    let mut buf = vec![0u8; CHUNK];
    let mut pos = from;
    let mut head = Vec::new();
    let mut first_nul = None;
    let mut last_nul = None;
    let mut newline = None;
    while pos < to {
        let chunk = read_chunk(file, &mut buf, pos, to)
            .map_err(|e| Error::io("read the tail of", path, e))?;
        let n = chunk.len();
        if n == 0 {
            break;
        }
        let line = match memchr::memchr(b'\n', chunk) {
            Some(nl) => {
                newline = Some(pos + nl as u64);
                &chunk[..nl]
            }
            None => chunk,
        };
        if first_nul.is_none() {
            let nul = memchr::memchr(0, line);
            let take = nul
                .unwrap_or(line.len())
                .min(8usize.saturating_sub(head.len()));
            head.extend_from_slice(&line[..take]);
            first_nul = nul.map(|at| pos + at as u64);
        }
        if let Some(at) = memchr::memrchr(0, line) {
            last_nul = Some(pos + at as u64);
        }
        if newline.is_some() {
            break;
        }
        pos += n as u64;
    }
    let (Some(_), Some(last), Some(end)) = (first_nul, last_nul, newline) else {
        return Ok(false);
    };
    let record_len = usize::try_from(end - last - 1).unwrap_or(usize::MAX);
    if !crate::record::hole_bounds_ok(&head) || record_len > MAX_RECORD_LEN {
        return Ok(false);
    }
    let mut record = vec![0u8; record_len];
    file.read_exact_at(&mut record, last + 1)
        .map_err(|e| Error::io("read the tail of", path, e))?;
    Ok(parse_line(&record).is_ok())
}

/// Where a checkpoint says its last record is, checked: the file index, the
/// offset after the record, and the chain state there.
fn anchor_at(
    files: &[PathBuf],
    hasher: &Hasher,
    cp: &Checkpoint,
) -> Option<(usize, u64, ChainTail)> {
    let digest = cp.digest_bytes()?;
    let head = cp.head_bytes()?;
    let start = ChainTail {
        seq: cp.size,
        head,
        head_file: cp.file.clone().unwrap_or_default(),
        head_offset: cp.offset.unwrap_or(0),
        cut_bytes: 0,
        hole: false,
        segments: 0,
        sealed: Vec::new(),
        digest,
    };
    if cp.size == 0 {
        return Some((0, 0, start));
    }
    let name = cp.file.as_ref()?;
    let offset = cp.offset?;
    let index = files
        .iter()
        .position(|f| f.file_name().is_some_and(|n| n.to_string_lossy() == *name))?;
    let file = File::open(&files[index]).ok()?;
    let mut buf = vec![0u8; MAX_RECORD_LEN + 1];
    let n = file.read_at(&mut buf, offset).ok()?;
    let nl = memchr::memchr(b'\n', &buf[..n])?;
    let raw = parse_line(&buf[..nl]).ok()?;
    (raw.seq == cp.size && raw.hash == head && hasher.check(&raw)).then_some((
        index,
        offset + nl as u64 + 1,
        start,
    ))
}

/// Where a walk of the chain starts: at the checkpoint's last record when
/// it anchors there (file index, offset after it, chain state), else at genesis.
fn walk_start(
    files: &[PathBuf],
    hasher: &Hasher,
    checkpoint: Option<&Checkpoint>,
) -> (usize, u64, ChainTail) {
    checkpoint
        .and_then(|cp| anchor_at(files, hasher, cp))
        .unwrap_or_else(|| {
            (
                0,
                0,
                ChainTail {
                    seq: 0,
                    head: GENESIS,
                    head_file: String::new(),
                    head_offset: 0,
                    cut_bytes: 0,
                    hole: false,
                    segments: 0,
                    sealed: Vec::new(),
                    digest: GENESIS,
                },
            )
        })
}

/// The public content digest at the end of the chain: walks the records
/// from the checkpoint's (or, without a usable one, from the first record),
/// checking that each continues the chain, and that the walk ends where
/// `tail` says the chain ends.
fn digest_to_tail(
    files: &[PathBuf],
    hasher: &Hasher,
    checkpoint: Option<&Checkpoint>,
    tail: &ChainTail,
) -> Result<[u8; 32]> {
    let (first, mut offset, mut walk) = walk_start(files, hasher, checkpoint);
    for path in files.iter().skip(first) {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        let absorbed = absorb(&file, path, offset, len, hasher, &mut walk, None)?;
        if absorbed.torn > 0 {
            return Err(Error::Integrity(format!(
                "audit file {} ends in a partial record; run `lift audit verify` on the log to find the first bad record",
                path.display()
            )));
        }
        offset = 0;
    }
    if walk.seq != tail.seq || walk.head != tail.head {
        return Err(Error::Integrity(format!(
            "the records of {} do not form one chain up to record {}; run `lift audit verify` on it to find the first bad record",
            files
                .last()
                .map_or_else(String::new, |f| f.display().to_string()),
            tail.seq
        )));
    }
    Ok(walk.digest)
}

/// The path of sealed segment `n` of `log`.
pub(crate) fn segment_path(log: &Path, n: usize) -> PathBuf {
    log.parent()
        .map(Path::to_owned)
        .unwrap_or_default()
        .join(segment_name(log, n))
}
