//! `previewDigest`, the document `pulumi preview --json` prints.

use std::collections::BTreeMap;

use serde_json::Value;

/// `previewDigest`, what `pulumi preview --json` prints.
#[derive(serde::Serialize)]
pub(super) struct PreviewDigest {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) config: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) steps: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) diagnostics: Vec<PreviewDiagnostic>,
    /// Nanoseconds, like Go's `time.Duration`.
    pub(super) duration: u64,
    #[serde(rename = "changeSummary", skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) change_summary: BTreeMap<String, i64>,
}

/// `previewDiagnostic` of `pulumi preview --json`.
#[derive(serde::Serialize)]
pub(super) struct PreviewDiagnostic {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(super) urn: String,
    pub(super) prefix: String,
    pub(super) message: String,
    pub(super) severity: String,
}
