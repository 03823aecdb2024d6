//! `--audit-s3 s3://BUCKET/PREFIX`: a command's audit events as one writer of
//! an S3 audit trail (lift-audit's `S3AuditSink`).
//!
//! Each `lift` process is its own writer (`<host>-<pid>-<random>`): writers
//! never coordinate, so parallel jobs need no lock. The writer starts on the
//! first event, so a command that records nothing writes nothing, and it is
//! closed (a final signed digest) when the command ends.

use std::path::Path;
use std::sync::Arc;

use lift::{AuditEvent, AuditSink, Error};

/// `s3://BUCKET/PREFIX` as (bucket, prefix); `None` when `url` is not an s3:// URL.
pub(crate) fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    Some((bucket.to_owned(), prefix.to_owned()))
}

/// An S3 audit trail's writer, opened on the first event.
pub(crate) struct LazyS3Sink {
    #[cfg(feature = "aws")]
    options: lift::audit::S3SinkOptions,
    #[cfg(feature = "aws")]
    sink: tokio::sync::OnceCell<lift::audit::S3AuditSink>,
}

/// What `Context::close` calls to end the trail's chain.
#[async_trait::async_trait]
pub(crate) trait CloseAudit: Send + Sync {
    /// Writes what waits and closes the chain with a final signed digest.
    async fn close(&self) -> lift::Result<()>;
}

impl LazyS3Sink {
    /// Checks the URL and loads the keys now, so that a mistake is bad input
    /// before the command runs; the bucket is first touched by the first event.
    pub(crate) fn new(
        url: &str,
        key_file: Option<&Path>,
        signing_key: Option<&Path>,
    ) -> lift::Result<Arc<Self>> {
        let Some((bucket, prefix)) = parse_url(url).filter(|(bucket, _)| !bucket.is_empty()) else {
            return Err(Error::invalid_input(format!(
                "--audit-s3 {url:?} is not an S3 location; give s3://BUCKET/PREFIX"
            )));
        };
        let Some(signing_key) = signing_key else {
            return Err(Error::invalid_input(
                "an S3 audit trail signs its digests: give --audit-signing-key FILE (or LIFT_AUDIT_SIGNING_KEY_FILE, or audit.signing_key in lift.toml); `openssl rand 32 > FILE && chmod 600 FILE` makes one",
            ));
        };
        Self::build(&bucket, &prefix, key_file, signing_key)
    }

    #[cfg(feature = "aws")]
    fn build(
        bucket: &str,
        prefix: &str,
        key_file: Option<&Path>,
        signing_key: &Path,
    ) -> lift::Result<Arc<Self>> {
        let signer = lift::audit::CheckpointSigner::load(signing_key)
            .map_err(|err| crate::output::user_input(err.into()))?;
        let key = key_file
            .map(lift::audit::AuditKey::load)
            .transpose()
            .map_err(|err| crate::output::user_input(err.into()))?;
        let options = lift::audit::S3SinkOptions::new(bucket, prefix, signer).key(key);
        Ok(Arc::new(LazyS3Sink {
            options,
            sink: tokio::sync::OnceCell::new(),
        }))
    }

    #[cfg(not(feature = "aws"))]
    fn build(
        _bucket: &str,
        _prefix: &str,
        _key_file: Option<&Path>,
        _signing_key: &Path,
    ) -> lift::Result<Arc<Self>> {
        Err(Error::invalid_input(
            "this lift was built without the aws feature, so it cannot write an S3 audit trail (--audit-s3)",
        ))
    }

    #[cfg(feature = "aws")]
    async fn sink(&self) -> lift::Result<&lift::audit::S3AuditSink> {
        self.sink
            .get_or_try_init(|| async {
                let client = lift::audit::client_from_env().await;
                lift::audit::S3AuditSink::open(client, self.options.clone())
                    .await
                    .map_err(Error::from)
            })
            .await
    }
}

#[async_trait::async_trait]
impl AuditSink for LazyS3Sink {
    #[cfg(feature = "aws")]
    async fn record(&self, event: AuditEvent) -> lift::Result<()> {
        self.sink().await?.record(event).await
    }

    #[cfg(not(feature = "aws"))]
    async fn record(&self, _event: AuditEvent) -> lift::Result<()> {
        Err(Error::invalid_input(
            "this lift was built without the aws feature",
        ))
    }

    async fn flush(&self) -> lift::Result<()> {
        #[cfg(feature = "aws")]
        if let Some(sink) = self.sink.get() {
            return AuditSink::flush(sink).await;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl CloseAudit for LazyS3Sink {
    async fn close(&self) -> lift::Result<()> {
        #[cfg(feature = "aws")]
        if let Some(sink) = self.sink.get() {
            return sink.close().await.map_err(Error::from);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_bucket_and_prefix() {
        assert_eq!(
            parse_url("s3://trail/fleet/prod"),
            Some(("trail".to_owned(), "fleet/prod".to_owned()))
        );
        assert_eq!(
            parse_url("s3://trail"),
            Some(("trail".to_owned(), String::new()))
        );
        assert_eq!(parse_url("/var/log/audit.jsonl"), None);
    }

    #[test]
    fn a_bad_url_or_a_missing_signing_key_is_bad_input() {
        let err = LazyS3Sink::new("trail/prod", None, Some(Path::new("k"))).err();
        assert_eq!(err.map(|e| e.kind()), Some(lift::ErrorKind::InvalidInput));
        let err = LazyS3Sink::new("s3:///prod", None, Some(Path::new("k"))).err();
        assert_eq!(err.map(|e| e.kind()), Some(lift::ErrorKind::InvalidInput));
        let err = LazyS3Sink::new("s3://trail/prod", None, None).err();
        assert_eq!(err.map(|e| e.kind()), Some(lift::ErrorKind::InvalidInput));
    }
}
