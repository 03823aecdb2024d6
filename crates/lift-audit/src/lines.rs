//! Streaming line reading across the files of a chain, with positions.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::record::MAX_RECORD_LEN;

const BUFFER: usize = 1 << 20;

/// Where a line sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    /// Index into the file list.
    pub(crate) file: usize,
    /// 1-based line number within that file.
    pub(crate) line: u64,
    /// Byte offset of the line's start within that file.
    pub(crate) offset: u64,
}

/// Reads lines from a list of files in order, reusing one buffer.
///
/// Memory stays at one buffer plus one line of at most [`MAX_RECORD_LEN`] + 1
/// bytes, whatever the files hold; longer lines are cut to that length (and
/// are never records), their last byte replaced by the line's real last byte.
#[derive(Debug)]
pub(crate) struct Lines {
    files: Vec<PathBuf>,
    index: usize,
    reader: Option<BufReader<File>>,
    line: u64,
    offset: u64,
    bytes: u64,
    buf: Vec<u8>,
    /// Bytes of the reader's buffer handed out by the last call, consumed on the next.
    pending: usize,
}

impl Lines {
    pub(crate) fn new(files: Vec<PathBuf>) -> Self {
        Lines {
            files,
            index: 0,
            reader: None,
            line: 0,
            offset: 0,
            bytes: 0,
            buf: Vec::with_capacity(4096),
            pending: 0,
        }
    }

    pub(crate) fn path(&self, index: usize) -> &Path {
        self.files
            .get(index)
            .map_or(Path::new(""), PathBuf::as_path)
    }

    /// The files, and where the next line starts: file index, byte offset
    /// and the number of lines before it in that file, as [`Lines::seek`]
    /// takes them.
    pub(crate) fn resume_point(&self) -> (Vec<PathBuf>, usize, u64, u64) {
        (self.files.clone(), self.index, self.offset, self.line)
    }

    /// How many files the lines are read from.
    pub(crate) fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Bytes read so far, over all files.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next line without its newline, whether it had one, and where it was.
    ///
    /// A line without a newline can only be the last of its file.
    pub(crate) fn next_line(&mut self) -> Result<Option<(&[u8], bool, Position)>> {
        loop {
            if self.reader.is_none() {
                let Some(path) = self.files.get(self.index) else {
                    return Ok(None);
                };
                let opened = File::open(path).map_err(|e| Error::io("open audit log", path, e));
                // Move past a file that cannot be opened, so that a caller who
                // goes on after the error does not get it again forever.
                let file = opened.inspect_err(|_| self.index += 1)?;
                self.reader = Some(BufReader::with_capacity(BUFFER, file));
                self.pending = 0;
                self.line = 0;
                self.offset = 0;
            }
            let found = {
                let Some(reader) = self.reader.as_mut() else {
                    continue;
                };
                reader.consume(std::mem::take(&mut self.pending));
                let available = reader
                    .fill_buf()
                    .map_err(|e| Error::io("read audit log", self.files[self.index].clone(), e))?;
                memchr::memchr(b'\n', available)
            };
            // Fast path: the whole line is in the reader's buffer, so hand out
            // a slice of it instead of copying; it is consumed on the next call.
            if let Some(nl) = found {
                self.pending = nl + 1;
                let position = self.advance(nl as u64 + 1);
                let buffer = self.reader.as_ref().map_or(&[][..], BufReader::buffer);
                return Ok(Some((&buffer[..nl], true, position)));
            }
            let Some(reader) = self.reader.as_mut() else {
                continue;
            };
            // Slow path: the line spans buffer refills. Keep at most
            // MAX_RECORD_LEN + 1 of its bytes (enough for any record, and
            // for the caller to see that a longer line is not one) and
            // skip the rest, so that one huge line cannot fill the memory.
            self.buf.clear();
            let mut n = 0usize;
            let mut terminated = false;
            // The line's real last byte, which a cut line ends with instead
            // of its cut one (how a hole before a later record is told).
            let mut last = None;
            loop {
                let available = reader
                    .fill_buf()
                    .map_err(|e| Error::io("read audit log", self.files[self.index].clone(), e))?;
                if available.is_empty() {
                    break;
                }
                let (take, done) = match memchr::memchr(b'\n', available) {
                    Some(nl) => (nl + 1, true),
                    None => (available.len(), false),
                };
                let room = (MAX_RECORD_LEN + 1).saturating_sub(self.buf.len());
                let keep = if done { take - 1 } else { take };
                self.buf.extend_from_slice(&available[..keep.min(room)]);
                if keep > 0 {
                    last = Some(available[keep - 1]);
                }
                reader.consume(take);
                n += take;
                if done {
                    terminated = true;
                    break;
                }
            }
            if n == 0 {
                self.reader = None;
                self.index += 1;
                continue;
            }
            if self.buf.len() > MAX_RECORD_LEN {
                if let (Some(end), Some(last)) = (self.buf.last_mut(), last) {
                    *end = last;
                }
            }
            let position = self.advance(n as u64);
            return Ok(Some((&self.buf[..], terminated, position)));
        }
    }

    fn advance(&mut self, n: u64) -> Position {
        self.line += 1;
        let position = Position {
            file: self.index,
            line: self.line,
            offset: self.offset,
        };
        self.offset += n;
        self.bytes += n;
        position
    }

    /// Starts reading file `index` at byte `offset` (a line start).
    pub(crate) fn seek(&mut self, index: usize, offset: u64, line: u64) -> Result<()> {
        use std::io::Seek;
        let path = self
            .files
            .get(index)
            .ok_or_else(|| Error::InvalidInput(format!("no file number {index} in the chain")))?
            .clone();
        let mut file = File::open(&path).map_err(|e| Error::io("open audit log", &path, e))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| Error::io("seek in audit log", &path, e))?;
        self.index = index;
        self.reader = Some(BufReader::with_capacity(BUFFER, file));
        self.offset = offset;
        self.line = line;
        self.pending = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_span_files_and_flag_unterminated_tails() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"one\ntwo\n").unwrap();
        std::fs::write(&b, b"three\nfour").unwrap();
        let mut lines = Lines::new(vec![a, b]);
        let mut seen = Vec::new();
        while let Some((line, terminated, pos)) = lines.next_line().unwrap() {
            seen.push((
                String::from_utf8(line.to_vec()).unwrap(),
                terminated,
                pos.file,
                pos.line,
                pos.offset,
            ));
        }
        assert_eq!(
            seen,
            vec![
                ("one".into(), true, 0, 1, 0),
                ("two".into(), true, 0, 2, 4),
                ("three".into(), true, 1, 1, 0),
                ("four".into(), false, 1, 2, 6),
            ]
        );
        assert_eq!(lines.bytes(), 18);
    }
}
