//! A secrets provider over a directory: one encrypted file per secret.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use lift_core::{
    Clock, DeleteMode, PutOptions, PutOutcome, SecretDescription, SecretName, SecretSummary,
    SecretValue, SecretVersion, SecretsProvider, StageMove, SystemClock, VersionId,
    VersionSelector,
};

use crate::format;
use crate::key::Protection;
use crate::layout::{LOCK_SUFFIX, SECRET_SUFFIX, check_layout};
use crate::manifest::Manifest;
use crate::private_files;
use crate::secret_state::{self, Change, Deleted, SecretState, StoreLimits};
use crate::{Error, Result};

static PLAINTEXT_WARNING: Once = Once::new();

/// A [`SecretsProvider`] over a real directory, with AWS Secrets Manager's semantics.
///
/// Layout: `<root>/secrets/<name>.secret`, one file per secret holding all its
/// versions and labels, `<name>.lock` beside it, and `<root>/manifest`, the
/// generation of every secret under the store key, which detects a file rolled
/// back to an older copy. Directories are 0700 and files 0600; wider permissions
/// anywhere in the store are refused. Every change takes an exclusive `flock` on
/// the secret's lock file, reads the file, applies the change and replaces the
/// file atomically ([`lift_core::fs::write_atomic`]), then records its generation
/// in the manifest, so two processes changing one secret never lose an update.
/// Reads take no lock: they read the manifest, then the file, and a rename is
/// atomic, so they see the old file or the new one. Names whose files would
/// collide with another's are refused.
///
/// ```
/// use lift_core::{PutOptions, SecretsProvider, SecretValue, VersionSelector};
/// use lift_secrets::{FileSecretsProvider, Protection, StoreKey};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lift_core::Result<()> {
/// let dir = tempfile::tempdir()?;
/// let store = FileSecretsProvider::open(dir.path().join("store"), Protection::Encrypted(StoreKey::generate()))?;
/// let name = "prod/db/password".parse()?;
/// store.put(&name, &SecretValue::from("s3cr3t"), &PutOptions::default()).await?;
/// assert_eq!(store.get(&name, &VersionSelector::default()).await?.value.expose(), b"s3cr3t");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FileSecretsProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    secrets_dir: PathBuf,
    protection: Protection,
    manifest: Manifest,
    clock: Arc<dyn Clock>,
    limits: StoreLimits,
}

/// What a change does to the file.
enum Mutation {
    Keep,
    Write(SecretState),
    Remove,
}

/// Options of [`FileSecretsProvider::open_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileStoreOptions {
    environment: Option<String>,
}

impl FileStoreOptions {
    /// The environment the store belongs to (`dev`, `prod`, ...).
    ///
    /// A new store records it in its manifest, under the store key's MAC. A store that
    /// records another environment is refused ([`Error::EnvironmentMismatch`], kind
    /// [`lift_core::ErrorKind::InvalidInput`]), so a development key and command line
    /// cannot be pointed at a production store by mistake. A store that records none
    /// (created before stores recorded their environment) gets this one recorded.
    /// Without an environment, the store opens whatever it records.
    #[must_use]
    pub fn environment(mut self, name: impl Into<String>) -> Self {
        self.environment = Some(name.into());
        self
    }
}

/// An environment name: 1 to 64 ASCII letters, digits, `-`, `_` or `.`.
fn check_environment(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "environment name {name:?} is not valid: use 1 to 64 ASCII letters, digits, '-', '_' or '.'"
        )))
    }
}

impl FileSecretsProvider {
    /// Opens (creating when absent) the store at `root`.
    ///
    /// Fails when the directory is accessible to group or others.
    /// [`Protection::Plaintext`] is logged at warn level, once per process.
    pub fn open(root: impl Into<PathBuf>, protection: Protection) -> Result<Self> {
        Self::open_with(root, protection, &FileStoreOptions::default())
    }

    /// Opens (creating when absent) the store at `root` with `options`: as
    /// [`open`](Self::open), and refused when the store belongs to another
    /// environment than [`FileStoreOptions::environment`].
    pub fn open_with(
        root: impl Into<PathBuf>,
        protection: Protection,
        options: &FileStoreOptions,
    ) -> Result<Self> {
        if let Some(environment) = &options.environment {
            check_environment(environment)?;
        }
        let root = root.into();
        // An absolute root keeps error messages unambiguous and every parent directory non-empty.
        let root = std::path::absolute(&root).map_err(|e| Error::io("resolve", &root, e))?;
        let secrets_dir = root.join("secrets");
        // The root's parent is the user's; only the store's own directories must be private.
        if !root.exists() {
            private_files::ensure_dir(&root, &root)?;
        }
        private_files::ensure_dir(&root, &secrets_dir)?;
        let meta = std::fs::metadata(&root).map_err(|e| Error::io("inspect", &root, e))?;
        private_files::check_private(&root, &meta)?;
        let manifest = Manifest::new(&root);
        if !manifest.exists()? && !matches!(protection, Protection::Unconfigured) {
            // A store written by this version always has a manifest; a missing one next
            // to such files was removed, and re-creating it would forget every generation.
            if let Some(path) = first_manifested_file(&secrets_dir)? {
                return Err(Error::integrity(
                    manifest.path(),
                    format!(
                        "the store manifest is missing although {} was written by a store that keeps one; restore the manifest from the backup the store came from",
                        path.display()
                    ),
                ));
            }
            manifest.create_empty(&protection)?;
        }
        if let Some(environment) = &options.environment {
            manifest.bind_environment(environment, &protection)?;
        }
        if matches!(protection, Protection::Plaintext) {
            PLAINTEXT_WARNING.call_once(|| {
                tracing::warn!(
                    store = %root.display(),
                    "secret store keeps values in plaintext; use a key file (--key-file or LIFT_SECRETS_KEY_FILE) outside development"
                );
            });
        }
        Ok(Self::from_parts(root, secrets_dir, protection, manifest))
    }

    /// The provider of an opened store, with the system clock and default limits.
    fn from_parts(
        root: PathBuf,
        secrets_dir: PathBuf,
        protection: Protection,
        manifest: Manifest,
    ) -> Self {
        FileSecretsProvider {
            inner: Arc::new(Inner {
                root,
                secrets_dir,
                protection,
                manifest,
                clock: Arc::new(SystemClock),
                limits: StoreLimits::default(),
            }),
        }
    }

    /// Opens the store at `root` only if it exists, creating nothing: no
    /// directory, no manifest, no lock file. For callers that only look at a
    /// store, such as a health check.
    ///
    /// Fails with [`Error::Io`] (kind not found) when `root` or its `secrets`
    /// directory does not exist, and like [`open`](Self::open) when a directory
    /// is accessible to group or others. A missing manifest is left missing:
    /// reads then fail their integrity check and say so.
    pub fn open_existing(root: impl Into<PathBuf>, protection: Protection) -> Result<Self> {
        let root = root.into();
        let root = std::path::absolute(&root).map_err(|e| Error::io("resolve", &root, e))?;
        let secrets_dir = root.join("secrets");
        for dir in [&root, &secrets_dir] {
            let meta = std::fs::metadata(dir).map_err(|e| Error::io("open", dir, e))?;
            if !meta.is_dir() {
                return Err(Error::InvalidInput(format!(
                    "secret store {} is not a store: {} is not a directory",
                    root.display(),
                    dir.display()
                )));
            }
            private_files::check_private(dir, &meta)?;
        }
        let manifest = Manifest::new(&root);
        Ok(Self::from_parts(root, secrets_dir, protection, manifest))
    }

    /// Uses `clock` for version dates and recovery windows.
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        self.rebuild(|inner| inner.clock = clock)
    }

    /// Sets the retention and size limits.
    #[must_use]
    pub fn with_limits(self, limits: StoreLimits) -> Self {
        self.rebuild(|inner| inner.limits = limits)
    }

    fn rebuild(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            root: self.inner.root.clone(),
            secrets_dir: self.inner.secrets_dir.clone(),
            protection: self.inner.protection.clone(),
            manifest: self.inner.manifest.clone(),
            clock: self.inner.clock.clone(),
            limits: self.inner.limits,
        };
        change(&mut inner);
        FileSecretsProvider {
            inner: Arc::new(inner),
        }
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The environment the store records, if any (see [`FileStoreOptions::environment`]).
    pub fn environment(&self) -> Result<Option<String>> {
        if matches!(self.inner.protection, Protection::Unconfigured)
            && !self.inner.manifest.exists()?
        {
            return Ok(None);
        }
        self.inner.manifest.environment(&self.inner.protection)
    }

    /// How values are protected.
    pub fn protection(&self) -> &Protection {
        &self.inner.protection
    }

    /// The rotation state store beside this store, authenticated with the same key.
    pub fn rotation_store(&self) -> crate::FileRotationStore {
        crate::FileRotationStore::new(&self.inner.root)
            .with_protection(self.inner.protection.clone())
    }

    /// The file that holds `name`.
    pub fn secret_path(&self, name: &SecretName) -> PathBuf {
        self.inner
            .secrets_dir
            .join(format!("{}{SECRET_SUFFIX}", name.as_str()))
    }

    /// The names of all secret files, including soft-deleted secrets.
    pub(crate) fn names(&self) -> Result<Vec<SecretName>> {
        let mut names = Vec::new();
        let mut stack = vec![self.inner.secrets_dir.clone()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("list", &dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
                let path = entry.path();
                let file_type = entry
                    .file_type()
                    .map_err(|e| Error::io("inspect", &path, e))?;
                if file_type.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(relative) = path.strip_prefix(&self.inner.secrets_dir) else {
                    continue;
                };
                let Some(relative) = relative.to_str() else {
                    continue;
                };
                if let Some(raw) = relative.strip_suffix(SECRET_SUFFIX) {
                    match SecretName::new(raw) {
                        Ok(name) => names.push(name),
                        Err(_) => {
                            tracing::warn!(file = %path.display(), "ignoring a file whose name is not a valid secret name")
                        }
                    }
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Refuses names whose files would collide with another name's in this layout.
    fn check_layout(&self, name: &SecretName) -> Result<()> {
        check_layout(name)
    }

    /// Refuses a new secret whose name differs from an existing one's only in letter case:
    /// on a case-insensitive file system the two would share one file.
    fn check_case_collision(&self, name: &SecretName) -> Result<()> {
        let components: Vec<&str> = name.as_str().split('/').collect();
        let mut dir = self.inner.secrets_dir.clone();
        for (i, component) in components.iter().enumerate() {
            let last = i + 1 == components.len();
            let wanted = if last {
                format!("{component}{SECRET_SUFFIX}")
            } else {
                (*component).to_owned()
            };
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io("list", &dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
                let file_name = entry.file_name();
                let Some(existing) = file_name.to_str() else {
                    continue;
                };
                if existing != wanted && existing.eq_ignore_ascii_case(&wanted) {
                    let prefix = components[..i].join("/");
                    let clash = existing
                        .strip_suffix(SECRET_SUFFIX)
                        .filter(|_| last)
                        .unwrap_or(existing);
                    let other = if prefix.is_empty() {
                        clash.to_owned()
                    } else {
                        format!("{prefix}/{clash}")
                    };
                    return Err(Error::InvalidInput(format!(
                        "secret name {name} differs from the existing {other} only in letter case; on a case-insensitive file system they would share a file, so choose another name"
                    )));
                }
            }
            dir.push(component);
        }
        Ok(())
    }

    fn load(&self, name: &SecretName) -> Result<Option<SecretState>> {
        self.check_layout(name)?;
        let path = self.secret_path(name);
        if let Some(dir) = path.parent() {
            private_files::check_dir_chain(&self.inner.root, dir)?;
        }
        // The manifest before the file: writers write the file before the manifest, so
        // a reader without the lock that sees generation n in the manifest then sees a
        // file of generation n or later, never a false rollback.
        let (expected, verified) = self.manifest_entry(name)?;
        let Some(bytes) = private_files::read_private(&path)? else {
            return Ok(None);
        };
        let decoded = format::decode(
            &path,
            &self.inner.root,
            name,
            &bytes,
            &self.inner.protection,
        );
        let state = match decoded {
            // The manifest just verified under the key given, so the key is the store's:
            // a file that names another key was damaged or copied in from another store.
            Err(Error::WrongKey {
                file_key,
                given_key,
                ..
            }) if verified => {
                return Err(Error::integrity(
                    &path,
                    format!(
                        "it names key {file_key}, but the store's manifest verifies with the key given ({given_key}): the file was damaged or copied from another store; restore it from a backup or move it away"
                    ),
                ));
            }
            other => other?,
        };
        if state.generation < expected {
            return Err(Error::RolledBack {
                path,
                found: state.generation,
                expected,
            });
        }
        Ok(Some(state))
    }

    /// The generation the manifest records for `name`. A store opened without a key
    /// only reads plaintext files; it skips the check when it finds no manifest.
    fn manifest_generation(&self, name: &SecretName) -> Result<u64> {
        self.manifest_entry(name).map(|(generation, _)| generation)
    }

    /// The manifest's generation for `name`, and whether a manifest verified it.
    fn manifest_entry(&self, name: &SecretName) -> Result<(u64, bool)> {
        let manifest = &self.inner.manifest;
        if matches!(self.inner.protection, Protection::Unconfigured) && !manifest.exists()? {
            return Ok((0, false));
        }
        Ok((manifest.generation(name, &self.inner.protection)?, true))
    }

    /// Reads, verifies and decrypts every version of `name`, as the health check does.
    pub(crate) fn verify(&self, name: &SecretName) -> Result<()> {
        if let Some(state) = self.load(name)? {
            for v in &state.versions {
                if let crate::secret_state::StoredValue::Sealed { nonce, bytes } = &v.value {
                    self.open_value(name, &v.id, nonce, bytes)?;
                }
            }
        }
        Ok(())
    }

    /// Decrypts one version's value; only reads pay for decryption.
    pub(crate) fn open_value(
        &self,
        name: &SecretName,
        id: &VersionId,
        nonce: &[u8],
        bytes: &[u8],
    ) -> Result<SecretValue> {
        format::open_value(
            &self.secret_path(name),
            name,
            id,
            nonce,
            bytes,
            &self.inner.protection,
        )
    }

    fn load_live(&self, name: &SecretName) -> Result<SecretState> {
        let now = self.inner.clock.now();
        self.load(name)?
            .filter(|s| !s.is_purged(now))
            .ok_or_else(|| Error::SecretNotFound {
                name: name.to_string(),
            })
    }

    /// Runs `change` on the secret under its exclusive lock and persists the result.
    ///
    /// `creates` says whether the change can create the secret (a put). A change that
    /// cannot, on a secret that has no file, runs without creating any directory or
    /// lock file, so that a typo leaves nothing behind.
    fn mutate<T>(
        &self,
        name: &SecretName,
        creates: bool,
        change: impl FnOnce(Option<SecretState>) -> Result<(Mutation, T)>,
    ) -> Result<T> {
        if matches!(self.inner.protection, Protection::Unconfigured) {
            return Err(Error::NoKey {
                root: self.inner.root.clone(),
            });
        }
        self.check_layout(name)?;
        let path = self.secret_path(name);
        let exists = match std::fs::symlink_metadata(&path) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io("inspect", &path, e)),
        };
        if !exists {
            if !creates {
                return change(None).map(|(_, result)| result);
            }
            self.check_case_collision(name)?;
        }
        if let Some(dir) = path.parent() {
            private_files::ensure_dir(&self.inner.root, dir)?;
            private_files::check_dir_chain(&self.inner.root, dir)?;
        }
        let _lock = private_files::lock_exclusive(&self.lock_path(name))?;
        private_files::remove_stale_temporaries(&path);
        let now = self.inner.clock.now();
        let current = self.load(name)?;
        // Generations only grow, across deletes too: the next write is above both the
        // file's generation and the manifest's (which holds a force delete's tombstone).
        let last = current
            .as_ref()
            .map_or(0, |s| s.generation)
            .max(self.manifest_generation(name)?);
        let next = last
            .checked_add(1)
            .ok_or_else(|| Error::integrity(&path, "its generation counter is exhausted"))?;
        let purged = current.as_ref().is_some_and(|s| s.is_purged(now));
        let (mutation, result) = change(current.filter(|s| !s.is_purged(now)))?;
        let protection = &self.inner.protection;
        match mutation {
            Mutation::Write(mut state) => {
                state.generation = next;
                let bytes = format::encode(&state, protection)?;
                // The file first, then the manifest: a crash between the two leaves the
                // file one generation ahead, which reads fine; never the other way round.
                private_files::write_atomic(&path, &bytes)?;
                self.inner.manifest.record(name, next, protection)?;
            }
            Mutation::Remove => self.remove(name, &path, next)?,
            Mutation::Keep if purged => self.remove(name, &path, next)?,
            Mutation::Keep => {}
        }
        Ok(result)
    }

    /// Removes the secret's file and leaves a tombstone generation in the manifest, so
    /// that no old copy of the file can be put back; then its lock file, which the
    /// caller holds, so that a deleted name leaves nothing behind.
    fn remove(&self, name: &SecretName, path: &Path, tombstone: u64) -> Result<()> {
        private_files::remove_durably(path)?;
        self.inner
            .manifest
            .record(name, tombstone, &self.inner.protection)?;
        private_files::remove_lock_file(&self.lock_path(name))
    }

    fn lock_path(&self, name: &SecretName) -> PathBuf {
        self.inner
            .secrets_dir
            .join(format!("{}{LOCK_SUFFIX}", name.as_str()))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(FileSecretsProvider) -> Result<T> + Send + 'static,
    ) -> lift_core::Result<T> {
        let this = self.clone();
        match tokio::task::spawn_blocking(move || work(this)).await {
            Ok(result) => result.map_err(Into::into),
            Err(join) => Err(lift_core::Error::new(
                lift_core::ErrorKind::Unavailable,
                format!("a secret store task did not finish: {join}"),
            )),
        }
    }
}

/// The first secret file below `dir` written by a store that keeps a manifest.
fn first_manifested_file(dir: &Path) -> Result<Option<PathBuf>> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("list", &dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
            let path = entry.path();
            let file_type = entry
                .file_type()
                .map_err(|e| Error::io("inspect", &path, e))?;
            if file_type.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(SECRET_SUFFIX) {
                use std::io::Read;
                let mut head = [0u8; 32];
                let read = std::fs::File::open(&path)
                    .and_then(|mut f| f.read(&mut head))
                    .map_err(|e| Error::io("read", &path, e))?;
                if format::claims_manifest(&head[..read]) {
                    return Ok(Some(path));
                }
            }
        }
    }
    Ok(None)
}

fn not_found(name: &SecretName) -> Error {
    Error::SecretNotFound {
        name: name.to_string(),
    }
}

#[async_trait::async_trait]
impl SecretsProvider for FileSecretsProvider {
    #[tracing::instrument(level = "debug", skip(self), fields(secret = %name, selector = %selector))]
    async fn get(
        &self,
        name: &SecretName,
        selector: &VersionSelector,
    ) -> lift_core::Result<SecretVersion> {
        let (name, selector) = (name.clone(), selector.clone());
        self.blocking(move |this| {
            let state = this.load_live(&name)?;
            state.get(&selector, &|id, nonce, bytes| {
                this.open_value(&name, id, nonce, bytes)
            })
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self, value), fields(secret = %name, bytes = value.len()))]
    async fn put(
        &self,
        name: &SecretName,
        value: &SecretValue,
        options: &PutOptions,
    ) -> lift_core::Result<PutOutcome> {
        let (name, value, options) = (name.clone(), value.clone(), options.clone());
        self.blocking(move |this| {
            let now = this.inner.clock.now();
            let limits = this.inner.limits;
            this.mutate(&name, true, |state| {
                let opener = |id: &VersionId, nonce: &[u8], bytes: &[u8]| {
                    this.open_value(&name, id, nonce, bytes)
                };
                let (state, outcome, change) =
                    secret_state::put(state, &name, &value, &options, now, &limits, &opener)?;
                let mutation = match change {
                    Change::Changed => Mutation::Write(state),
                    Change::Unchanged => Mutation::Keep,
                };
                Ok((mutation, outcome))
            })
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list(&self) -> lift_core::Result<Vec<SecretSummary>> {
        self.blocking(|this| {
            let now = this.inner.clock.now();
            let mut out = Vec::new();
            for name in this.names()? {
                if let Some(state) = this.load(&name)? {
                    if !state.is_purged(now) {
                        out.push(state.summary());
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(secret = %name))]
    async fn describe(&self, name: &SecretName) -> lift_core::Result<SecretDescription> {
        let name = name.clone();
        self.blocking(move |this| Ok(this.load_live(&name)?.describe()))
            .await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(secret = %name))]
    async fn delete(
        &self,
        name: &SecretName,
        mode: DeleteMode,
    ) -> lift_core::Result<SecretDescription> {
        let name = name.clone();
        self.blocking(move |this| {
            let now = this.inner.clock.now();
            this.mutate(&name, false, |state| {
                let state = state.ok_or_else(|| not_found(&name))?;
                match secret_state::delete(state, mode, now)? {
                    Deleted::Soft(state) => {
                        let description = state.describe();
                        Ok((Mutation::Write(state), description))
                    }
                    Deleted::Gone(description) => Ok((Mutation::Remove, description)),
                }
            })
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(secret = %name, stage = %stage_move.stage))]
    async fn move_stage(&self, name: &SecretName, stage_move: &StageMove) -> lift_core::Result<()> {
        let (name, stage_move) = (name.clone(), stage_move.clone());
        self.blocking(move |this| {
            let now = this.inner.clock.now();
            let limits = this.inner.limits;
            this.mutate(&name, false, |state| {
                let mut state = state.ok_or_else(|| not_found(&name))?;
                match secret_state::move_stage(&mut state, &stage_move, now, &limits)? {
                    Change::Changed => Ok((Mutation::Write(state), ())),
                    Change::Unchanged => Ok((Mutation::Keep, ())),
                }
            })
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(secret = %name))]
    async fn restore(&self, name: &SecretName) -> lift_core::Result<()> {
        let name = name.clone();
        self.blocking(move |this| {
            let now = this.inner.clock.now();
            this.mutate(&name, false, |state| {
                let mut state = state.ok_or_else(|| not_found(&name))?;
                match secret_state::restore(&mut state, now) {
                    Change::Changed => Ok((Mutation::Write(state), ())),
                    Change::Unchanged => Ok((Mutation::Keep, ())),
                }
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::StoreKey;
    use lift_core::{Classify, ErrorKind};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn open_existing_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("absent");
        let err = FileSecretsProvider::open_existing(&root, Protection::Plaintext).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("absent"), "{err}");
        assert!(!root.exists());
        // A root without its secrets directory is not a store, and stays as it was.
        private_files::ensure_dir(&root, &root).unwrap();
        let err = FileSecretsProvider::open_existing(&root, Protection::Plaintext).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
        // An existing store opens, and its files are read, not rewritten.
        let key = StoreKey::generate();
        let created = dir.path().join("store");
        drop(FileSecretsProvider::open(&created, Protection::Encrypted(key.clone())).unwrap());
        let before: Vec<_> = std::fs::read_dir(&created)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let store =
            FileSecretsProvider::open_existing(&created, Protection::Encrypted(key)).unwrap();
        assert!(store.names().unwrap().is_empty());
        let after: Vec<_> = std::fs::read_dir(&created)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(before, after);
    }

    fn store() -> (tempfile::TempDir, FileSecretsProvider) {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecretsProvider::open(
            dir.path().join("s"),
            Protection::Encrypted(StoreKey::generate()),
        )
        .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_store_belongs_to_the_environment_it_was_created_for() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        let key = StoreKey::generate();
        let open = |env: Option<&str>| {
            let mut options = FileStoreOptions::default();
            if let Some(env) = env {
                options = options.environment(env);
            }
            FileSecretsProvider::open_with(&root, Protection::Encrypted(key.clone()), &options)
        };
        let dev = open(Some("dev")).unwrap();
        assert_eq!(dev.environment().unwrap().as_deref(), Some("dev"));
        let name: SecretName = "db".parse().unwrap();
        dev.put(&name, &SecretValue::from("x"), &PutOptions::default())
            .await
            .unwrap();
        let err = open(Some("prod")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let message = err.to_string();
        assert!(
            message.contains("environment dev") && message.contains("environment prod"),
            "{message}"
        );
        assert!(open(Some("dev")).is_ok());
        // No expected environment: opens as before, whatever the store records.
        assert_eq!(
            open(None).unwrap().environment().unwrap().as_deref(),
            Some("dev")
        );
        assert!(open(Some("")).is_err(), "empty names are refused");
        assert!(open(Some("a b")).is_err());
    }

    #[tokio::test]
    async fn a_store_without_an_environment_gets_the_first_one_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        let key = StoreKey::generate();
        let old = FileSecretsProvider::open(&root, Protection::Encrypted(key.clone())).unwrap();
        assert_eq!(old.environment().unwrap(), None);
        let name: SecretName = "db".parse().unwrap();
        old.put(&name, &SecretValue::from("x"), &PutOptions::default())
            .await
            .unwrap();
        let prod = FileSecretsProvider::open_with(
            &root,
            Protection::Encrypted(key.clone()),
            &FileStoreOptions::default().environment("prod"),
        )
        .unwrap();
        assert_eq!(prod.environment().unwrap().as_deref(), Some("prod"));
        assert_eq!(
            prod.get(&name, &VersionSelector::default())
                .await
                .unwrap()
                .value
                .expose(),
            b"x",
            "recording the environment keeps every generation"
        );
        let dev = FileSecretsProvider::open_with(
            &root,
            Protection::Encrypted(key.clone()),
            &FileStoreOptions::default().environment("dev"),
        );
        assert!(dev.is_err());
        // The record is under the manifest's MAC: editing it is an integrity error.
        let manifest = root.join("manifest");
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(&manifest, text.replace("\"prod\"", "\"dev_\"")).unwrap();
        let edited = FileSecretsProvider::open_with(
            &root,
            Protection::Encrypted(key),
            &FileStoreOptions::default().environment("dev_"),
        );
        assert_eq!(edited.unwrap_err().kind(), ErrorKind::Integrity);
    }

    #[tokio::test]
    async fn files_are_private_and_nested_names_work() {
        let (_dir, store) = store();
        let name: SecretName = "prod/db/password".parse().unwrap();
        store
            .put(&name, &SecretValue::from("x"), &PutOptions::default())
            .await
            .unwrap();
        let path = store.secret_path(&name);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let other: SecretName = "prod".parse().unwrap();
        store
            .put(&other, &SecretValue::from("y"), &PutOptions::default())
            .await
            .unwrap();
        let names: Vec<String> = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name.to_string())
            .collect();
        assert_eq!(names, ["prod", "prod/db/password"]);
    }

    #[tokio::test]
    async fn unconfigured_stores_refuse_writes_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            FileSecretsProvider::open(dir.path().join("s"), Protection::Unconfigured).unwrap();
        let err = store
            .put(
                &"a".parse().unwrap(),
                &SecretValue::from("x"),
                &PutOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("LIFT_SECRETS_KEY_FILE"), "{err}");
    }

    #[tokio::test]
    async fn force_delete_removes_the_file() {
        let (_dir, store) = store();
        let name: SecretName = "a".parse().unwrap();
        store
            .put(&name, &SecretValue::from("x"), &PutOptions::default())
            .await
            .unwrap();
        store.delete(&name, DeleteMode::Force).await.unwrap();
        assert!(!store.secret_path(&name).exists());
        assert_eq!(
            store.describe(&name).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
