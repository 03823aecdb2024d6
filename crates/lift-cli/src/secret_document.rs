//! What `lift secrets get --json` prints: the one document that carries a value.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use lift::{SecretName, SecretVersion, StageLabel, VersionId};
use zeroize::Zeroize;

/// What `lift secrets get --json` prints: the one document that carries a value.
///
/// Its `Debug` is redacted and the value is zeroized on drop.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(crate) struct SecretValueDocument {
    /// The secret.
    pub name: SecretName,
    /// The version read.
    pub version_id: VersionId,
    /// Its labels.
    pub stages: Vec<StageLabel>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// `utf8` when `value` is the text itself, `base64` when the value is binary.
    pub encoding: String,
    /// The value.
    pub value: String,
}

impl SecretValueDocument {
    /// Exposes `version`'s value into a document. Call it only to print the value on request.
    pub(crate) fn expose(version: &SecretVersion) -> Self {
        let (encoding, value) = match version.value.expose_str() {
            Some(text) => ("utf8", text.to_owned()),
            None => ("base64", B64.encode(version.value.expose())),
        };
        SecretValueDocument {
            name: version.name.clone(),
            version_id: version.version_id.clone(),
            stages: version.stages.clone(),
            created_at: version.created_at,
            encoding: encoding.to_owned(),
            value,
        }
    }
}

impl SecretValueDocument {
    /// Writes the document as pretty JSON and a newline through one buffer that is
    /// sized up front, so that it never reallocates (a reallocation would leave a copy
    /// of the value in freed memory), and is wiped afterwards.
    pub(crate) fn write_json(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        // JSON escapes a byte to at most six; the rest is the names, labels and layout.
        let labels: usize = self.stages.iter().map(|s| s.as_str().len() + 16).sum();
        let capacity = (self.value.len() + self.name.as_str().len()) * 6 + labels + 1024;
        let mut buffer = zeroize::Zeroizing::new(Vec::with_capacity(capacity));
        serde_json::to_writer_pretty(&mut *buffer, self).map_err(std::io::Error::other)?;
        buffer.push(b'\n');
        out.write_all(&buffer)?;
        out.flush()
    }
}

impl std::fmt::Debug for SecretValueDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValueDocument")
            .field("name", &self.name)
            .field("version_id", &self.version_id)
            .field("value", &lift::REDACTED)
            .finish_non_exhaustive()
    }
}

impl Drop for SecretValueDocument {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lift::SecretValue;

    #[test]
    fn binary_values_are_base64_and_debug_is_redacted() {
        let version = SecretVersion {
            name: "a".parse().unwrap(),
            version_id: VersionId::new("v1").unwrap(),
            stages: vec![StageLabel::current()],
            created_at: Utc::now(),
            value: SecretValue::new(vec![0xff, 0x00]),
        };
        let doc = SecretValueDocument::expose(&version);
        assert_eq!(
            (doc.encoding.as_str(), doc.value.as_str()),
            ("base64", "/wA=")
        );
        assert!(!format!("{doc:?}").contains("/wA="));
        let mut out = Vec::new();
        doc.write_json(&mut out).unwrap();
        let back: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(back["value"], "/wA=");
        assert!(out.ends_with(b"}\n"));
    }
}
