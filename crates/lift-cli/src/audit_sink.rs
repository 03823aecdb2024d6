//! The file audit sink behind the global `--audit-log FILE`, opened by the
//! command context (the S3 trail behind `--audit-s3` is in `s3_audit`).

use std::path::Path;
use std::sync::Arc;

use lift::audit::{AuditKey, FileAuditSink, SinkOptions};

/// The files beside an audit log that the global options name.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SinkFiles<'a> {
    /// `--audit-key-file`: the chain key.
    pub(crate) key: Option<&'a Path>,
    /// `--audit-checkpoint`: where checkpoints go.
    pub(crate) checkpoint: Option<&'a Path>,
    /// `--audit-signing-key`: the checkpoint signing key.
    pub(crate) signing_key: Option<&'a Path>,
}

/// Opens the sink behind the global `--audit-log FILE`.
///
/// `ctx.close()` flushes it, which fsyncs and writes a signed checkpoint;
/// dropping the last handle then stops its writer thread cleanly. Any number
/// of `lift` processes may share one log: each appends under its lock.
pub(crate) async fn open_sink(
    path: &Path,
    files: &SinkFiles<'_>,
) -> lift::Result<Arc<dyn lift::AuditSink>> {
    let key = files.key.map(AuditKey::load).transpose()?;
    let mut options = SinkOptions::new(path).key(key);
    if let Some(checkpoint) = files.checkpoint {
        options = options.checkpoint_path(checkpoint);
    }
    if let Some(signing_key) = files.signing_key {
        options = options.signing_key_path(signing_key);
    }
    match FileAuditSink::open(options).await {
        Ok(sink) => Ok(Arc::new(sink)),
        Err(err @ lift::audit::Error::Integrity(_)) => Err(lift::Error::new(
            lift::ErrorKind::Integrity,
            format!(
                "{err}\n(the audit log is not written while it is damaged; `lift audit verify` runs without --audit-log and LIFT_AUDIT_LOG pointing at it)"
            ),
        )),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lift::{AuditEvent, Resource};

    #[tokio::test]
    async fn open_sink_writes_a_checkpoint_on_flush() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("cli.jsonl");
        let sink = open_sink(&log, &SinkFiles::default()).await.unwrap();
        sink.record(AuditEvent::new(
            "deploy",
            "up",
            Resource::new("stack", "a/b"),
        ))
        .await
        .unwrap();
        sink.flush().await.unwrap();
        let checkpoint =
            lift::audit::Checkpoint::load(&dir.path().join("cli.jsonl.checkpoint")).unwrap();
        assert_eq!(checkpoint.size, 1);
        drop(sink);
        let report = lift::audit::verify(&[log], None, None).unwrap();
        assert!(report.intact);
    }
}
