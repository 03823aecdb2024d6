//! Reading the engine's event log while pulumi appends to it: each event is
//! decoded as it is written, applied to the ledger and sent to the
//! subscribers.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::decoder::{DecodeIssue, EventDecoder};
use crate::events::{EngineEvent, EventPayload, RawState, SummaryEvent};
use crate::ledger::Ledger;
use crate::outputs;

/// Reads the event log as pulumi appends to it.
pub(crate) struct EventLogTail {
    path: PathBuf,
    file: Option<std::fs::File>,
    decoder: EventDecoder,
    ledger: Ledger,
    summary: Option<SummaryEvent>,
    root_state: Option<RawState>,
    subscribers: Vec<mpsc::UnboundedSender<Arc<EngineEvent>>>,
    /// Set after the `cancelEvent`, which ends the stream.
    ended: bool,
}

/// What the tail read, once the process is gone.
pub(crate) struct TailRead {
    /// Parts of the log that could not be decoded.
    pub(crate) issues: Vec<DecodeIssue>,
    /// One entry per resource, still open.
    pub(crate) ledger: Ledger,
    /// The engine's `summaryEvent`.
    pub(crate) summary: Option<SummaryEvent>,
    /// The root stack resource's state in its last `resOutputsEvent` outside
    /// a preview: the stack's outputs as the engine reported them.
    pub(crate) root_state: Option<RawState>,
}

impl EventLogTail {
    /// A tail of the log at `path`, which need not exist yet.
    pub(crate) fn new(
        path: PathBuf,
        subscribers: Vec<mpsc::UnboundedSender<Arc<EngineEvent>>>,
    ) -> Self {
        EventLogTail {
            path,
            file: None,
            decoder: EventDecoder::new(),
            ledger: Ledger::default(),
            summary: None,
            root_state: None,
            subscribers,
            ended: false,
        }
    }

    /// Reads what was appended since the last call and handles each complete
    /// event. The log is a local file, so the read does not wait.
    pub(crate) fn poll(&mut self) {
        if self.ended {
            return;
        }
        if self.file.is_none() {
            // Pulumi creates the file once the engine starts.
            match std::fs::File::open(&self.path) {
                Ok(file) => self.file = Some(file),
                Err(_) => return,
            }
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut chunk = Vec::new();
        if let Err(err) = file.read_to_end(&mut chunk) {
            tracing::warn!(%err, "reading the pulumi event log failed");
            return;
        }
        if chunk.is_empty() {
            return;
        }
        let now = Instant::now();
        let EventLogTail {
            decoder,
            ledger,
            summary,
            root_state,
            subscribers,
            ended,
            ..
        } = self;
        decoder.push(&chunk, &mut |event| {
            if *ended {
                return;
            }
            ledger.apply_at(&event, now);
            match &event.payload {
                EventPayload::Summary(s) => *summary = Some(s.clone()),
                EventPayload::ResOutputs(e)
                    if e.planning != Some(true) && outputs::is_root(&e.metadata.resource_type) =>
                {
                    root_state.clone_from(&e.metadata.new);
                }
                _ => {}
            }
            let is_cancel = event.is_cancel();
            let event = Arc::new(event);
            subscribers.retain(|tx| tx.send(Arc::clone(&event)).is_ok());
            if is_cancel {
                *ended = true;
                subscribers.clear();
            }
        });
    }

    /// Ends the tail: the subscribers' streams end, and what was read is returned.
    pub(crate) fn finish(self) -> TailRead {
        let EventLogTail {
            decoder,
            ledger,
            summary,
            root_state,
            subscribers,
            ..
        } = self;
        drop(subscribers);
        TailRead {
            issues: decoder.finish(),
            ledger,
            summary,
            root_state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_watch::LogWatch;
    use std::io::Write;
    use std::time::Duration;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_write_to_the_log_wakes_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let watch = LogWatch::start(dir.path()).expect("inotify on Linux");
        let wakeups = watch.wakeups();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut tail = EventLogTail::new(dir.path().join("events.jsonl"), vec![tx]);
        tail.poll(); // no file yet
        let mut file = std::fs::File::create(dir.path().join("events.jsonl")).unwrap();
        file.write_all(b"{\"sequence\":0,\"timestamp\":0,\"cancelEvent\":{}}\n")
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), wakeups.notified())
            .await
            .expect("a wake-up for the write");
        tail.poll();
        let event = rx.recv().await.unwrap();
        assert!(event.is_cancel());
        // The cancel event ends the stream.
        assert!(rx.recv().await.is_none());
        drop(watch);
        let read = tail.finish();
        assert!(read.issues.is_empty());
    }

    #[test]
    fn the_root_stack_state_of_an_update_is_kept_and_a_preview_is_not() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let root = |seq: u32, planning: bool, greeting: &str| {
            format!(
                r#"{{"sequence":{seq},"timestamp":0,"resOutputsEvent":{{"metadata":{{"op":"same","urn":"urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev","type":"pulumi:pulumi:Stack","old":null,"new":{{"type":"pulumi:pulumi:Stack","urn":"urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev","id":"","parent":"","inputs":{{}},"outputs":{{"greeting":"{greeting}"}},"provider":""}},"provider":""}}{}}}}}"#,
                if planning { r#","planning":true"# } else { "" }
            ) + "\n"
        };
        std::fs::write(
            &path,
            root(0, false, "first") + &root(1, false, "last") + &root(2, true, "planned"),
        )
        .unwrap();
        let mut tail = EventLogTail::new(path, vec![tx]);
        tail.poll();
        let read = tail.finish();
        let state = read.root_state.unwrap();
        let outputs = crate::outputs::from_root_state(&state).unwrap();
        assert_eq!(
            outputs["greeting"],
            lift_core::OutputValue::Plain("last".into())
        );
    }
}
