//! Following a live log, as `tail -f` does, across rotations.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::record::{MAX_RECORD_LEN, Record};

/// Where following starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowFrom {
    /// The first record of the live file.
    Start,
    /// Only records appended from now on.
    End,
    /// The last `n` complete records of the live file, then new ones.
    Last(usize),
}

/// How much the follower reads at a time.
const CHUNK: usize = 64 * 1024;

/// Follows a live log file and yields each record as it is appended.
///
/// It polls; when the path starts naming another file (the sink rotated it),
/// the follower finishes the old file and continues with the new one. A
/// partial line waits until its newline arrives.
///
/// Memory stays at one chunk, one partial line of at most
/// [`MAX_RECORD_LEN`] + 1 bytes and the records not yet taken; time is
/// linear in the bytes read. [`FollowFrom::Last`] finds its start by
/// reading backwards from the end, so `tail -n N` reads only the last `N`
/// records (and any partial line after them).
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    file: Option<(File, u64)>,
    /// The start of a line whose newline has not arrived yet.
    pending: Vec<u8>,
    /// The current line is longer than a record can be: its bytes are dropped until its newline.
    overlong: bool,
    ready: std::collections::VecDeque<Record>,
    poll: Duration,
    chunk: Vec<u8>,
}

impl Follower {
    /// Starts following `path`.
    pub fn new(path: &Path, from: FollowFrom) -> Result<Self> {
        let mut follower = Follower {
            path: path.to_owned(),
            file: None,
            pending: Vec::new(),
            overlong: false,
            ready: std::collections::VecDeque::new(),
            poll: Duration::from_millis(200),
            chunk: vec![0u8; CHUNK],
        };
        follower.open()?;
        match from {
            FollowFrom::Start => {}
            FollowFrom::End => {
                let end = follower.len()?;
                follower.skip_to(end)?;
            }
            FollowFrom::Last(n) => {
                let start = follower.start_of_last(n)?;
                follower.skip_to(start)?;
                // Only what is there now: records appended meanwhile come with `next`.
                let end = follower.len()?;
                let mut read = start;
                while read < end {
                    let got = follower.read_chunk()?;
                    if got == 0 {
                        break;
                    }
                    read += got as u64;
                }
                while follower.ready.len() > n {
                    follower.ready.pop_front();
                }
            }
        }
        Ok(follower)
    }

    /// Sets the polling interval (200 ms by default).
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll = interval;
        self
    }

    fn open(&mut self) -> Result<()> {
        let file =
            File::open(&self.path).map_err(|e| Error::io("open audit log", &self.path, e))?;
        let ino = file
            .metadata()
            .map_err(|e| Error::io("stat", &self.path, e))?
            .ino();
        self.file = Some((file, ino));
        self.pending.clear();
        self.overlong = false;
        Ok(())
    }

    fn len(&self) -> Result<u64> {
        match &self.file {
            Some((file, _)) => Ok(file
                .metadata()
                .map_err(|e| Error::io("stat", &self.path, e))?
                .len()),
            None => Ok(0),
        }
    }

    /// The offset of the first of the last `n` complete lines, found by
    /// reading backwards: linear in the bytes of those lines and of the
    /// partial line after them, whatever the size of the file.
    fn start_of_last(&mut self, n: usize) -> Result<u64> {
        use std::os::unix::fs::FileExt as _;
        let end = self.len()?;
        let Some((file, _)) = self.file.as_ref() else {
            return Ok(end);
        };
        // Newlines to pass: the one ending the last complete line, then one per line before it.
        let mut newlines = 0usize;
        let mut hi = end;
        while hi > 0 {
            let lo = hi.saturating_sub(CHUNK as u64);
            let len = usize::try_from(hi - lo).unwrap_or(CHUNK);
            let buf = &mut self.chunk[..len];
            file.read_exact_at(buf, lo)
                .map_err(|e| Error::io("read audit log", &self.path, e))?;
            for i in memchr::memrchr_iter(b'\n', buf) {
                newlines += 1;
                if newlines > n {
                    return Ok(lo + i as u64 + 1);
                }
            }
            hi = lo;
        }
        Ok(0)
    }

    fn skip_to(&mut self, offset: u64) -> Result<()> {
        if let Some((file, _)) = self.file.as_mut() {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io("seek in", &self.path, e))?;
        }
        Ok(())
    }

    /// Reads one chunk and turns the complete lines in it into records. Returns the bytes read.
    fn read_chunk(&mut self) -> Result<usize> {
        let Some((file, _)) = self.file.as_mut() else {
            return Ok(0);
        };
        let n = file
            .read(&mut self.chunk)
            .map_err(|e| Error::io("read audit log", &self.path, e))?;
        let mut rest = 0;
        while let Some(nl) = memchr::memchr(b'\n', &self.chunk[rest..n]) {
            let end = rest + nl;
            let overlong = std::mem::take(&mut self.overlong)
                || self.pending.len() + (end - rest) > MAX_RECORD_LEN;
            let parsed = if overlong {
                Err("the line is longer than a record can be".to_owned())
            } else if self.pending.is_empty() {
                Record::parse(&self.chunk[rest..end]).map_err(|e| e.to_string())
            } else {
                self.pending.extend_from_slice(&self.chunk[rest..end]);
                Record::parse(&self.pending).map_err(|e| e.to_string())
            };
            self.pending.clear();
            rest = end + 1;
            let record = parsed.map_err(|message| Error::Parse {
                path: self.path.clone(),
                line: 0,
                message: format!("not an audit record: {message}"),
            })?;
            self.ready.push_back(record);
        }
        if !self.overlong {
            if self.pending.len() + (n - rest) > MAX_RECORD_LEN {
                self.overlong = true;
                self.pending = Vec::new();
            } else {
                self.pending.extend_from_slice(&self.chunk[rest..n]);
            }
        }
        Ok(n)
    }

    fn rotated(&self) -> bool {
        let current = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        matches!((&self.file, current), (Some((_, ino)), Some(now)) if *ino != now)
    }

    /// Waits for the next record.
    pub async fn next(&mut self) -> Result<Record> {
        loop {
            if let Some(record) = self.ready.pop_front() {
                return Ok(record);
            }
            if self.read_chunk()? > 0 {
                continue;
            }
            if self.rotated() {
                // Finish the old file, then continue with the new one from its start.
                while self.ready.is_empty() && self.read_chunk()? > 0 {}
                if self.ready.is_empty() {
                    self.open()?;
                }
                continue;
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}
