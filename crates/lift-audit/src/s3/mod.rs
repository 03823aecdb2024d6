//! Audit trails in S3 for fleets: [`S3AuditSink`] and [`verify_s3`].
//!
//! Object layout under a prefix, one folder per writer:
//!
//! - `<prefix><writer>/segment-<n>.jsonl`: records `first_seq..=last_seq`,
//!   in the file log's record format (`docs/audit-format.md`), `n` from 1, ten digits;
//! - `<prefix><writer>/digest-<n>.json`: an [`S3Digest`].

mod digest;
mod sink;
mod verify;

pub use digest::{S3Digest, SegmentEntry};
pub use sink::{RetentionMode, S3AuditSink, S3SinkOptions};
pub use verify::{
    S3Finding, S3FindingKind, S3VerifyOptions, S3VerifyReport, S3WriterSummary, verify_s3,
};

/// Builds an S3 client from the environment (credentials, region, and
/// `AWS_ENDPOINT_URL`/`AWS_ENDPOINT_URL_S3`), as the AWS CLI does.
///
/// With an endpoint override, requests use path-style addressing
/// (`http://host/bucket/key`), which S3 stand-ins such as moto and MinIO expect.
pub async fn client_from_env() -> aws_sdk_s3::Client {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let overridden = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()));
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(overridden)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

pub(crate) fn writer_prefix(prefix: &str, writer: &str) -> String {
    format!("{prefix}{writer}/")
}

pub(crate) fn segment_key(prefix: &str, writer: &str, n: u64) -> String {
    format!("{prefix}{writer}/segment-{n:010}.jsonl")
}

pub(crate) fn digest_key(prefix: &str, writer: &str, n: u64) -> String {
    format!("{prefix}{writer}/digest-{n:010}.json")
}

/// The error for a failed S3 request, with the SDK's full message.
pub(crate) fn remote<E>(operation: &'static str, bucket: &str, key: &str, err: &E) -> crate::Error
where
    E: std::error::Error,
{
    crate::Error::Remote {
        operation,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message: aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
    }
}
