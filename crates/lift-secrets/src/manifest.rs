//! The store manifest: the generation of every secret, authenticated with the store key.
//!
//! Each secret file carries a generation that grows by one with every write. The
//! manifest, `<root>/manifest`, records the generation last written for each
//! secret, under an HMAC keyed with a subkey of the store key. A secret file
//! whose generation is lower than the manifest's is a rolled-back copy (an older
//! file put back in place of the current one) and is refused.
//!
//! The file is written before the manifest, so a crash between the two leaves a
//! file one generation ahead of the manifest, which is accepted: only the key
//! holder can write a file with a higher generation. A force delete leaves a
//! tombstone one generation above the deleted file's, so that putting any old
//! copy back is caught too. Rolling back every file of the store at once,
//! manifest included, cannot be told from an old backup without state kept
//! outside the store; that is what backups and the audit trail are for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lift_core::SecretName;

use crate::key::{MacPurpose, Protection, ct_eq};
use crate::private_files;
use crate::{Error, Result};

const MAGIC: &str = "lift-manifest/1";
const FILE_NAME: &str = "manifest";
const LOCK_NAME: &str = "manifest.lock";

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    /// Secret name to the generation last written (or the tombstone of a force delete).
    generations: BTreeMap<SecretName, u64>,
    /// The environment the store was created for (or first opened for, when it was
    /// created before stores recorded one). Under the manifest's MAC, so it cannot be
    /// changed without the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
}

/// The manifest of the store at a root.
#[derive(Debug, Clone)]
pub(crate) struct Manifest {
    path: PathBuf,
    lock: PathBuf,
}

impl Manifest {
    pub(crate) fn new(root: &Path) -> Self {
        Manifest {
            path: root.join(FILE_NAME),
            lock: root.join(LOCK_NAME),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the manifest file exists.
    pub(crate) fn exists(&self) -> Result<bool> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("inspect", &self.path, e)),
        }
    }

    /// Writes an empty manifest, unless one exists.
    pub(crate) fn create_empty(&self, protection: &Protection) -> Result<()> {
        let _lock = private_files::lock_exclusive(&self.lock)?;
        if self.exists()? {
            return Ok(());
        }
        self.write(&Body::default(), protection)
    }

    /// The generation recorded for `name`; 0 when none is.
    pub(crate) fn generation(&self, name: &SecretName, protection: &Protection) -> Result<u64> {
        Ok(self
            .read(protection)?
            .generations
            .get(name)
            .copied()
            .unwrap_or(0))
    }

    /// Records that `name` is at `generation` (never lowering what is recorded).
    pub(crate) fn record(
        &self,
        name: &SecretName,
        generation: u64,
        protection: &Protection,
    ) -> Result<()> {
        let _lock = private_files::lock_exclusive(&self.lock)?;
        let mut body = self.read(protection)?;
        let entry = body.generations.entry(name.clone()).or_insert(0);
        if *entry >= generation {
            return Ok(());
        }
        *entry = generation;
        self.write(&body, protection)
    }

    /// Checks that the store belongs to `expected`, recording it when the store records
    /// no environment yet (a store created before stores recorded one, or just now).
    ///
    /// A store opened without a key ([`Protection::Unconfigured`]) cannot write, so
    /// it only checks, and a store without a manifest has nothing to check.
    pub(crate) fn bind_environment(&self, expected: &str, protection: &Protection) -> Result<()> {
        if matches!(protection, Protection::Unconfigured) {
            if !self.exists()? {
                return Ok(());
            }
            return match self.read(protection)?.environment {
                Some(recorded) if recorded != expected => Err(self.mismatch(recorded, expected)),
                _ => Ok(()),
            };
        }
        let _lock = private_files::lock_exclusive(&self.lock)?;
        let mut body = self.read(protection)?;
        match body.environment.take() {
            Some(recorded) if recorded == expected => Ok(()),
            Some(recorded) => Err(self.mismatch(recorded, expected)),
            None => {
                tracing::info!(manifest = %self.path.display(), environment = expected, "secret store records its environment");
                body.environment = Some(expected.to_owned());
                self.write(&body, protection)
            }
        }
    }

    /// The environment the store records, if any.
    pub(crate) fn environment(&self, protection: &Protection) -> Result<Option<String>> {
        Ok(self.read(protection)?.environment)
    }

    fn mismatch(&self, recorded: String, expected: &str) -> Error {
        Error::EnvironmentMismatch {
            root: self
                .path
                .parent()
                .map_or_else(|| self.path.clone(), Path::to_path_buf),
            recorded,
            expected: expected.to_owned(),
        }
    }

    fn read(&self, protection: &Protection) -> Result<Body> {
        let Some(bytes) = private_files::read_private(&self.path)? else {
            return Err(Error::integrity(
                &self.path,
                "the store manifest is missing, so rolled-back secret files could not be detected; restore it from the backup the store came from",
            ));
        };
        let bad = |reason: &str| Error::integrity(&self.path, reason);
        let newline = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| bad("it has no header line (is it truncated?)"))?;
        let header =
            std::str::from_utf8(&bytes[..newline]).map_err(|_| bad("its header is not text"))?;
        let body = &bytes[newline + 1..];
        let fields: Vec<&str> = header.split(' ').collect();
        let [MAGIC, key_id, mac] = fields.as_slice() else {
            return Err(bad("its header is malformed"));
        };
        let given_key = protection.key_id();
        if *key_id != given_key {
            return Err(Error::WrongKey {
                path: self.path.clone(),
                file_key: (*key_id).to_owned(),
                given_key,
            });
        }
        let prefix = format!("{MAGIC} {key_id}");
        let expected =
            hex::encode(protection.mac(MacPurpose::Manifest, &[prefix.as_bytes(), b"\n", body]));
        if !ct_eq(expected.as_bytes(), mac.as_bytes()) {
            return Err(bad(
                "its checksum does not match (it was modified or truncated)",
            ));
        }
        serde_json::from_slice(body).map_err(|e| {
            Error::integrity(
                &self.path,
                format!(
                    "its body is malformed at line {} column {}",
                    e.line(),
                    e.column()
                ),
            )
        })
    }

    fn write(&self, body: &Body, protection: &Protection) -> Result<()> {
        let json = serde_json::to_vec(body)
            .map_err(|e| Error::InvalidInput(format!("cannot serialize the manifest: {e}")))?;
        let prefix = format!("{MAGIC} {}", protection.key_id());
        let mac = protection.mac(MacPurpose::Manifest, &[prefix.as_bytes(), b"\n", &json]);
        let mut bytes = format!("{prefix} {}\n", hex::encode(mac)).into_bytes();
        bytes.extend_from_slice(&json);
        private_files::write_atomic(&self.path, &bytes)
    }
}
