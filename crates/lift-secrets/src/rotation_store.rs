//! Where the rotation engine keeps each secret's [`RotationState`]: the
//! [`RotationStore`] trait with its per-secret lock, and its two stores,
//! [`MemoryRotationStore`] and [`FileRotationStore`] (files beside the secret
//! store, authenticated with the store key, with the same atomic-write discipline).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use lift_core::{ErrorKind, SecretName};
use sha2::Digest;

use crate::key::{MacPurpose, Protection, ct_eq};
use crate::layout::{STATE_LOCK_SUFFIX, STATE_SUFFIX, check_layout};
use crate::private_files::{self, FileLock};
use crate::rotation_state::RotationState;
use crate::{Error, Result};

/// Proof that the caller holds a secret's rotation lock; released on drop.
pub struct RotationGuard {
    _inner: Box<dyn Send + Sync>,
}

impl fmt::Debug for RotationGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RotationGuard")
    }
}

/// Where the engine keeps [`RotationState`]s.
#[async_trait::async_trait]
pub trait RotationStore: Send + Sync + fmt::Debug {
    /// Takes the secret's rotation lock, or returns `None` when someone else holds it.
    async fn try_lock(&self, name: &SecretName) -> Result<Option<RotationGuard>>;
    /// The secret's state (the default when none was saved).
    async fn load(&self, name: &SecretName) -> Result<RotationState>;
    /// Saves the secret's state durably.
    async fn save(&self, name: &SecretName, state: &RotationState) -> Result<()>;
    /// The secrets that have saved state.
    async fn names(&self) -> Result<Vec<SecretName>>;
    /// Forgets the secret's state (after the secret was deleted for good).
    async fn remove(&self, name: &SecretName) -> Result<()> {
        self.save(name, &RotationState::default()).await
    }
}

/// Rotation state in memory, for tests and for the memory provider. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct MemoryRotationStore {
    states: Arc<Mutex<BTreeMap<SecretName, RotationState>>>,
    locks: Arc<Mutex<BTreeSet<SecretName>>>,
}

struct MemoryGuard {
    locks: Arc<Mutex<BTreeSet<SecretName>>>,
    name: SecretName,
}

impl Drop for MemoryGuard {
    fn drop(&mut self) {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.name);
    }
}

#[async_trait::async_trait]
impl RotationStore for MemoryRotationStore {
    async fn try_lock(&self, name: &SecretName) -> Result<Option<RotationGuard>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if !locks.insert(name.clone()) {
            return Ok(None);
        }
        Ok(Some(RotationGuard {
            _inner: Box::new(MemoryGuard {
                locks: self.locks.clone(),
                name: name.clone(),
            }),
        }))
    }

    async fn load(&self, name: &SecretName) -> Result<RotationState> {
        Ok(self
            .states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .unwrap_or_default())
    }

    async fn save(&self, name: &SecretName, state: &RotationState) -> Result<()> {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone(), state.clone());
        Ok(())
    }

    async fn remove(&self, name: &SecretName) -> Result<()> {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        Ok(())
    }

    async fn names(&self) -> Result<Vec<SecretName>> {
        Ok(self
            .states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect())
    }
}

/// Version 1: `lift-rotation/1 sha256 <hex>`, a checksum anyone can recompute.
const STATE_MAGIC_V1: &str = "lift-rotation/1";
/// Version 2: `lift-rotation/2 <key-id> <mac>`, HMAC-SHA256 under a subkey of the store key.
const STATE_MAGIC: &str = "lift-rotation/2";

/// Rotation state in files beside a file store: `<root>/rotation/<name>.rotation`,
/// written atomically (temp file, fsync, rename, fsync directory) with mode 0600.
///
/// With [`FileRotationStore::with_protection`] (or [`crate::FileSecretsProvider::rotation_store`])
/// each file is authenticated with HMAC-SHA256 under a subkey of the store key, so an
/// edited or forged file reads as an integrity error. Without a key the file carries a
/// plain SHA-256, which catches a torn file but not a forged one; the engine then still
/// refuses a checkpoint that does not match the secret's labels (see [`crate::RotationEngine`]).
#[derive(Debug, Clone)]
pub struct FileRotationStore {
    root: PathBuf,
    dir: PathBuf,
    protection: Protection,
}

impl FileRotationStore {
    /// The rotation state of the store at `root` (the same root as the [`crate::FileSecretsProvider`]),
    /// without a key. Prefer [`crate::FileSecretsProvider::rotation_store`], which authenticates it.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        let dir = root.join("rotation");
        FileRotationStore {
            root,
            dir,
            protection: Protection::Plaintext,
        }
    }

    /// Authenticates the state files with the store's key.
    #[must_use]
    pub fn with_protection(mut self, protection: Protection) -> Self {
        self.protection = match protection {
            Protection::Unconfigured => Protection::Plaintext,
            other => other,
        };
        self
    }

    fn path(&self, name: &SecretName, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}{suffix}", name.as_str()))
    }

    fn ensure_parent(&self, path: &std::path::Path) -> Result<()> {
        match path.parent() {
            Some(parent) => private_files::ensure_dir(&self.root, parent),
            None => Ok(()),
        }
    }

    fn load_blocking(&self, name: &SecretName) -> Result<RotationState> {
        check_layout(name)?;
        let path = self.path(name, STATE_SUFFIX);
        let Some(bytes) = private_files::read_private(&path)? else {
            return Ok(RotationState::default());
        };
        let bad = |reason: &str| Error::integrity(&path, reason);
        let newline = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| bad("it has no header line (is it truncated?)"))?;
        let header =
            std::str::from_utf8(&bytes[..newline]).map_err(|_| bad("its header is not text"))?;
        let body = &bytes[newline + 1..];
        let fields: Vec<&str> = header.split(' ').collect();
        match fields.as_slice() {
            [STATE_MAGIC, key_id, mac] => {
                let given_key = self.protection.key_id();
                if *key_id != given_key {
                    return Err(Error::WrongKey {
                        path: path.clone(),
                        file_key: (*key_id).to_owned(),
                        given_key,
                    });
                }
                let prefix = format!("{STATE_MAGIC} {key_id}");
                let expected = hex::encode(
                    self.protection
                        .mac(MacPurpose::RotationState, &[prefix.as_bytes(), b"\n", body]),
                );
                if !ct_eq(expected.as_bytes(), mac.as_bytes()) {
                    return Err(bad(
                        "its checksum does not match (it was modified, forged or truncated); delete it to forget the rotation state, then check the secret's labels with `lift secrets describe`",
                    ));
                }
            }
            [STATE_MAGIC_V1, "sha256", digest] => {
                if matches!(self.protection, Protection::Encrypted(_)) {
                    return Err(bad(
                        "it was written by an older lift without the store key, so it could have been forged; delete it to start afresh (its history is lost)",
                    ));
                }
                let expected = hex::encode(sha2::Sha256::digest(body));
                if !ct_eq(expected.as_bytes(), digest.as_bytes()) {
                    return Err(bad(
                        "its checksum does not match (it was modified or truncated)",
                    ));
                }
            }
            _ => return Err(bad("its header is malformed")),
        }
        serde_json::from_slice(body).map_err(|e| {
            Error::integrity(
                &path,
                format!(
                    "its body is malformed at line {} column {}",
                    e.line(),
                    e.column()
                ),
            )
        })
    }

    fn save_blocking(&self, name: &SecretName, state: &RotationState) -> Result<()> {
        check_layout(name)?;
        let path = self.path(name, STATE_SUFFIX);
        self.ensure_parent(&path)?;
        let body = serde_json::to_vec(state).map_err(|e| {
            Error::InvalidInput(format!("cannot serialize rotation state of {name}: {e}"))
        })?;
        let prefix = format!("{STATE_MAGIC} {}", self.protection.key_id());
        let mac = self.protection.mac(
            MacPurpose::RotationState,
            &[prefix.as_bytes(), b"\n", &body],
        );
        let mut bytes = format!("{prefix} {}\n", hex::encode(mac)).into_bytes();
        bytes.extend_from_slice(&body);
        private_files::write_atomic(&path, &bytes)
    }

    fn remove_blocking(&self, name: &SecretName) -> Result<()> {
        check_layout(name)?;
        private_files::remove_durably(&self.path(name, STATE_SUFFIX))?;
        // The caller holds the rotation lock (see `private_files::lock_exclusive`).
        private_files::remove_lock_file(&self.path(name, STATE_LOCK_SUFFIX))
    }

    fn names_blocking(&self) -> Result<Vec<SecretName>> {
        let mut names = Vec::new();
        if !self.dir.exists() {
            return Ok(names);
        }
        let mut stack = vec![self.dir.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))? {
                let path = entry.map_err(|e| Error::io("list", &dir, e))?.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let relative = path.strip_prefix(&self.dir).ok().and_then(|p| p.to_str());
                if let Some(name) = relative.and_then(|r| r.strip_suffix(STATE_SUFFIX)) {
                    if let Ok(name) = SecretName::new(name) {
                        names.push(name);
                    }
                }
            }
        }
        names.sort();
        Ok(names)
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|join| {
        Error::Core(lift_core::Error::new(
            ErrorKind::Unavailable,
            format!("a rotation state task did not finish: {join}"),
        ))
    })?
}

#[async_trait::async_trait]
impl RotationStore for FileRotationStore {
    async fn try_lock(&self, name: &SecretName) -> Result<Option<RotationGuard>> {
        let this = self.clone();
        let name = name.clone();
        blocking(move || {
            check_layout(&name)?;
            let path = this.path(&name, STATE_LOCK_SUFFIX);
            this.ensure_parent(&path)?;
            Ok(
                private_files::try_lock_exclusive(&path)?.map(|lock: FileLock| RotationGuard {
                    _inner: Box::new(lock),
                }),
            )
        })
        .await
    }

    async fn load(&self, name: &SecretName) -> Result<RotationState> {
        let this = self.clone();
        let name = name.clone();
        blocking(move || this.load_blocking(&name)).await
    }

    async fn save(&self, name: &SecretName, state: &RotationState) -> Result<()> {
        let this = self.clone();
        let (name, state) = (name.clone(), state.clone());
        blocking(move || this.save_blocking(&name, &state)).await
    }

    async fn names(&self) -> Result<Vec<SecretName>> {
        let this = self.clone();
        blocking(move || this.names_blocking()).await
    }

    async fn remove(&self, name: &SecretName) -> Result<()> {
        let this = self.clone();
        let name = name.clone();
        blocking(move || this.remove_blocking(&name)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotation_state::{RotationOutcome, RotationRecord, RotationSchedule, RotationStep};
    use chrono::Utc;

    #[tokio::test]
    async fn file_state_round_trips_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        private_files::ensure_dir(&root, &root).unwrap();
        let store = FileRotationStore::new(&root);
        let name: SecretName = "a/b".parse().unwrap();
        assert_eq!(store.load(&name).await.unwrap(), RotationState::default());
        let mut state = RotationState {
            schedule: Some(RotationSchedule { every_days: 30 }),
            ..Default::default()
        };
        state.enabled = false;
        store.save(&name, &state).await.unwrap();
        assert_eq!(store.load(&name).await.unwrap(), state);
        assert_eq!(store.names().await.unwrap(), vec![name.clone()]);
        let path = root.join("rotation/a/b.rotation");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = store.load(&name).await.unwrap_err();
        assert!(err.to_string().contains("b.rotation"), "{err}");
        let guard = store.try_lock(&name).await.unwrap();
        assert!(guard.is_some());
        assert!(store.try_lock(&name).await.unwrap().is_none());
        drop(guard);
        assert!(store.try_lock(&name).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn keyed_state_cannot_be_forged_without_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        private_files::ensure_dir(&root, &root).unwrap();
        let key = crate::StoreKey::generate();
        let store =
            FileRotationStore::new(&root).with_protection(Protection::Encrypted(key.clone()));
        let name: SecretName = "db".parse().unwrap();
        store.save(&name, &RotationState::default()).await.unwrap();
        let path = root.join("rotation/db.rotation");
        let text = std::fs::read_to_string(&path).unwrap();
        let (_, body) = text.split_once('\n').unwrap();
        // Whoever can write the directory can recompute a SHA-256, but not the MAC.
        let forged_body = body.replace("\"enabled\":true", "\"enabled\":false");
        assert_ne!(forged_body, body);
        for header in [
            format!(
                "lift-rotation/1 sha256 {}",
                hex::encode(sha2::Sha256::digest(forged_body.as_bytes()))
            ),
            format!(
                "lift-rotation/2 {} {}",
                key.id(),
                hex::encode(sha2::Sha256::digest(forged_body.as_bytes()))
            ),
        ] {
            std::fs::write(&path, format!("{header}\n{forged_body}")).unwrap();
            let err = store.load(&name).await.unwrap_err();
            assert!(matches!(err, Error::Integrity { .. }), "{err}");
        }
        // Another key's store reports a wrong key, not damage.
        store.save(&name, &RotationState::default()).await.unwrap();
        let other = FileRotationStore::new(&root)
            .with_protection(Protection::Encrypted(crate::StoreKey::generate()));
        assert!(matches!(
            other.load(&name).await.unwrap_err(),
            Error::WrongKey { .. }
        ));
        store.remove(&name).await.unwrap();
        assert_eq!(store.load(&name).await.unwrap(), RotationState::default());
    }

    #[test]
    fn history_is_bounded() {
        let mut state = RotationState::default();
        for i in 0..15 {
            state.push_history(
                RotationRecord {
                    rotation_id: i.to_string(),
                    started_at: Utc::now(),
                    finished_at: Utc::now(),
                    step_reached: None,
                    outcome: RotationOutcome::Succeeded,
                    failed_step: None,
                    error: None,
                    error_kind: None,
                    injected: false,
                    resumable: false,
                    old_version: None,
                    new_version: None,
                },
                10,
            );
        }
        assert_eq!(state.history.len(), 10);
        assert_eq!(state.history[0].rotation_id, "5");
        assert_eq!(
            RotationStep::parse("setSecret"),
            Some(RotationStep::SetSecret)
        );
        assert_eq!(
            RotationStep::parse("test_secret"),
            Some(RotationStep::TestSecret)
        );
    }
}
