//! Signed checkpoints: `{origin, size, head, time}` under Ed25519.
//!
//! A checkpoint commits to the first `size` records of a chain through the
//! hash of record `size`. Kept on separate storage, it lets a verifier detect
//! tail truncation and rollback, which a bare hash chain cannot.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, VerifyingKey};

use crate::error::{Error, Result};
use crate::key::CheckpointSigner;
use crate::record::format_time;

/// The first line of a version 1 checkpoint's signed message (no digest).
pub(crate) const CHECKPOINT_DOMAIN: &str = "lift-audit/v1 checkpoint";

/// The first line of a version 2 checkpoint's signed message (with the content digest).
pub(crate) const CHECKPOINT_DOMAIN_V2: &str = "lift-audit/v2 checkpoint";

/// A signed checkpoint, as stored in the checkpoint file (one JSON document).
///
/// The signature covers [`Checkpoint::signed_message`]; `file` and `offset` are
/// unsigned hints that let the health check start from the checkpointed record.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Checkpoint {
    /// Which log this is: by default `<host>:<absolute log path>`.
    pub origin: String,
    /// How many records the checkpoint covers: the seq of the head record.
    pub size: u64,
    /// The hash of record `size` (64 hex digits; zeros when `size` is 0).
    pub head: String,
    /// The public content digest of records 1 to `size` (64 hex digits; zeros
    /// when `size` is 0), checkable without the chain key. Absent in
    /// checkpoints written before format version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// When the checkpoint was made (RFC 3339, UTC, microseconds).
    pub time: String,
    /// The audit key id of a keyed chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The Ed25519 public key that signed it (64 hex digits).
    pub public_key: String,
    /// The Ed25519 signature over the signed message (128 hex digits).
    pub signature: String,
    /// Unsigned hint: the file holding record `size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Unsigned hint: the byte offset of record `size` in `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl Checkpoint {
    /// Builds and signs a (version 2) checkpoint of a chain whose record
    /// `size` has hash `head` and whose content digest there is `digest`.
    pub fn sign(
        signer: &CheckpointSigner,
        origin: &str,
        size: u64,
        head: &[u8; 32],
        digest: &[u8; 32],
        time: DateTime<Utc>,
        key_id: Option<&str>,
    ) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            // A newline would let one origin pose as another line of the message.
            origin: origin.replace(['\n', '\r'], " "),
            size,
            head: hex::encode(head),
            digest: Some(hex::encode(digest)),
            time: format_time(time),
            key_id: key_id.map(str::to_owned),
            public_key: signer.public_key_hex(),
            signature: String::new(),
            file: None,
            offset: None,
        };
        checkpoint.signature = hex::encode(signer.sign(checkpoint.signed_message().as_bytes()));
        checkpoint
    }

    /// The exact bytes the signature covers, each line ending in `\n`:
    ///
    /// ```text
    /// lift-audit/v2 checkpoint
    /// <origin>
    /// <size in decimal>
    /// <head, 64 hex digits>
    /// <digest, 64 hex digits>
    /// <time>
    /// <key id, or "-">
    /// ```
    ///
    /// A version 1 checkpoint (no `digest`) signs the same lines without the
    /// digest, under `lift-audit/v1 checkpoint`.
    pub fn signed_message(&self) -> String {
        match &self.digest {
            Some(digest) => format!(
                "{CHECKPOINT_DOMAIN_V2}\n{}\n{}\n{}\n{digest}\n{}\n{}\n",
                self.origin,
                self.size,
                self.head,
                self.time,
                self.key_id.as_deref().unwrap_or("-")
            ),
            None => format!(
                "{CHECKPOINT_DOMAIN}\n{}\n{}\n{}\n{}\n{}\n",
                self.origin,
                self.size,
                self.head,
                self.time,
                self.key_id.as_deref().unwrap_or("-")
            ),
        }
    }

    /// The content digest as bytes, if present and well-formed.
    pub fn digest_bytes(&self) -> Option<[u8; 32]> {
        let digest = self.digest.as_ref()?;
        hex::decode(digest)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .filter(|_| digest.bytes().all(|c| !c.is_ascii_uppercase()))
    }

    /// The embedded public key, if well-formed.
    pub fn public_key_bytes(&self) -> Option<[u8; 32]> {
        hex::decode(&self.public_key)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
    }

    /// Checks the signature against `key`, or against the embedded public key when `key` is `None`.
    pub fn verify_signature(&self, key: Option<&VerifyingKey>) -> bool {
        let embedded = hex::decode(&self.public_key)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .and_then(|b| VerifyingKey::from_bytes(&b).ok());
        let Some(key) = key.copied().or(embedded) else {
            return false;
        };
        let Some(signature) = hex::decode(&self.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b))
        else {
            return false;
        };
        self.origin.find(['\n', '\r']).is_none()
            && key
                .verify_strict(self.signed_message().as_bytes(), &signature)
                .is_ok()
    }

    /// The head hash as bytes, if well-formed.
    pub fn head_bytes(&self) -> Option<[u8; 32]> {
        hex::decode(&self.head)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .filter(|_| self.head.bytes().all(|c| !c.is_ascii_uppercase()))
    }

    /// Reads a checkpoint file.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read checkpoint", path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Checkpoint {
            path: path.to_owned(),
            message: format!("not a lift-audit checkpoint ({e}); restore it from its backup"),
        })
    }

    /// Reads a checkpoint file if it exists.
    pub fn load_if_exists(path: &Path) -> Result<Option<Checkpoint>> {
        match std::fs::metadata(path) {
            Ok(_) => Self::load(path).map(Some),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(Error::io("read checkpoint", path, err)),
        }
    }

    /// Replaces the checkpoint file atomically and durably: temp file, fsync, rename, fsync dir.
    pub fn store(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(self).map_err(|e| Error::Checkpoint {
            path: path.to_owned(),
            message: format!("cannot serialize: {e}"),
        })?;
        text.push(b'\n');
        write_atomically(path, &text)
    }
}

/// The default checkpoint path of a log: `<log>.checkpoint`.
pub fn default_checkpoint_path(log: &Path) -> PathBuf {
    append_suffix(log, ".checkpoint")
}

pub(crate) fn append_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut os = path.as_os_str().to_owned();
    os.push(suffix);
    PathBuf::from(os)
}

/// The mode of checkpoints and manifests: owner-only, like the log itself.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Replaces `path` with `bytes` through `lift_core::fs::write_atomic`: a
/// unique temporary file created with `O_EXCL|O_NOFOLLOW`, fsync, rename,
/// directory fsync.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    lift_core::fs::write_atomic(path, bytes, FILE_MODE).map_err(Error::from)
}

/// Fsyncs the directory holding `path`, so that a create or rename survives a crash.
pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    lift_core::fs::sync_parent(path).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::AuditKey;

    #[test]
    fn checkpoints_sign_verify_and_detect_edits() {
        let key = AuditKey::from_bytes(&[3u8; 32]).unwrap();
        let signer = key.signer();
        let cp = Checkpoint::sign(
            &signer,
            "host:/log",
            10,
            &[9u8; 32],
            &[8u8; 32],
            Utc::now(),
            Some(key.id()),
        );
        assert!(cp.verify_signature(Some(&signer.verifying_key())));
        assert!(cp.verify_signature(None));
        let mut edited = cp.clone();
        edited.size = 9;
        assert!(!edited.verify_signature(None));
        let other = AuditKey::from_bytes(&[4u8; 32]).unwrap().signer();
        assert!(!cp.verify_signature(Some(&other.verifying_key())));
        assert!(
            cp.signed_message()
                .starts_with("lift-audit/v2 checkpoint\nhost:/log\n10\n")
        );
        // Stripping the digest does not turn it into a valid version 1 checkpoint.
        let mut stripped = cp.clone();
        stripped.digest = None;
        assert!(!stripped.verify_signature(None));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.checkpoint");
        cp.store(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), cp);
        assert!(
            Checkpoint::load_if_exists(&dir.path().join("none"))
                .unwrap()
                .is_none()
        );
    }
}
