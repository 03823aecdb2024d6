//! Following a live log, as `tail -f` does, across rotations.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::record::Record;

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

/// Follows a live log file and yields each record as it is appended.
///
/// It polls; when the path starts naming another file (the sink rotated it),
/// the follower finishes the old file and continues with the new one. A
/// partial line waits until its newline arrives.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    file: Option<(File, u64)>,
    pending: Vec<u8>,
    ready: std::collections::VecDeque<Record>,
    poll: Duration,
    discard_partial: bool,
}

impl Follower {
    /// Starts following `path`.
    pub fn new(path: &Path, from: FollowFrom) -> Result<Self> {
        let mut follower = Follower {
            path: path.to_owned(),
            file: None,
            pending: Vec::new(),
            ready: std::collections::VecDeque::new(),
            poll: Duration::from_millis(200),
            discard_partial: false,
        };
        follower.open()?;
        match from {
            FollowFrom::Start => {}
            FollowFrom::End => {
                let end = follower.seek_back(0)?;
                follower.skip_to(end)?;
            }
            FollowFrom::Last(n) => {
                // Read only the end of a big file: records are well under 4 KiB.
                let window = (n as u64).saturating_mul(4096).max(4 << 20);
                let start = follower.seek_back(window)?;
                follower.skip_to(start)?;
                if start > 0 {
                    // The first line read from the middle is a partial record.
                    follower.discard_partial = true;
                }
                follower.read_available()?;
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
        Ok(())
    }

    /// The offset `window` bytes before the end of the file (0 at most).
    fn seek_back(&mut self, window: u64) -> Result<u64> {
        let len = match &self.file {
            Some((file, _)) => file
                .metadata()
                .map_err(|e| Error::io("stat", &self.path, e))?
                .len(),
            None => 0,
        };
        Ok(len.saturating_sub(window))
    }

    fn skip_to(&mut self, offset: u64) -> Result<()> {
        if let Some((file, _)) = self.file.as_mut() {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| Error::io("seek in", &self.path, e))?;
        }
        Ok(())
    }

    fn read_available(&mut self) -> Result<()> {
        let Some((file, _)) = self.file.as_mut() else {
            return Ok(());
        };
        let mut chunk = Vec::new();
        file.read_to_end(&mut chunk)
            .map_err(|e| Error::io("read audit log", &self.path, e))?;
        self.pending.extend_from_slice(&chunk);
        while let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            if std::mem::take(&mut self.discard_partial) {
                continue;
            }
            let record = Record::parse(&line).map_err(|e| Error::Parse {
                path: self.path.clone(),
                line: 0,
                message: format!("not an audit record: {e}"),
            })?;
            self.ready.push_back(record);
        }
        Ok(())
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
            self.read_available()?;
            if !self.ready.is_empty() {
                continue;
            }
            if self.rotated() {
                self.read_available()?;
                if self.ready.is_empty() {
                    self.open()?;
                    if let Some((file, _)) = self.file.as_mut() {
                        file.seek(SeekFrom::Start(0))
                            .map_err(|e| Error::io("seek in", &self.path, e))?;
                    }
                }
                continue;
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}
