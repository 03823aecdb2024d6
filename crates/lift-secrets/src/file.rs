//! A secrets provider over a directory: one encrypted file per secret.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use lift_core::{
    Clock, DeleteMode, PutOptions, PutOutcome, SecretDescription, SecretName, SecretSummary,
    SecretValue, SecretVersion, SecretsProvider, StageMove, SystemClock, VersionId,
    VersionSelector,
};

use crate::durable;
use crate::format;
use crate::key::Protection;
use crate::model::{self, Change, Deleted, SecretState, StoreLimits};
use crate::{Error, Result};

/// The suffix of secret files.
const SECRET_SUFFIX: &str = ".secret";
/// The suffix of the lock file beside each secret file.
const LOCK_SUFFIX: &str = ".lock";

static PLAINTEXT_WARNING: Once = Once::new();

/// A [`SecretsProvider`] over a real directory, with AWS Secrets Manager's semantics.
///
/// Layout: `<root>/secrets/<name>.secret`, one file per secret holding all its
/// versions and labels, and `<name>.lock` beside it. Directories are 0700 and
/// files 0600; wider permissions are refused. Every change takes an exclusive
/// `flock` on the secret's lock file, reads the file, applies the change and
/// replaces the file atomically (temp file, fsync, rename, fsync directory),
/// so two processes changing one secret never lose an update. Reads take no
/// lock: a rename is atomic, so they see the old file or the new one.
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
    clock: Arc<dyn Clock>,
    limits: StoreLimits,
}

/// What a change does to the file.
enum Mutation {
    Keep,
    Write(SecretState),
    Remove,
}

impl FileSecretsProvider {
    /// Opens (creating when absent) the store at `root`.
    ///
    /// Fails when the directory is accessible to group or others.
    /// [`Protection::Plaintext`] is logged at warn level, once per process.
    pub fn open(root: impl Into<PathBuf>, protection: Protection) -> Result<Self> {
        let root = root.into();
        // An absolute root keeps error messages unambiguous and every parent directory non-empty.
        let root = std::path::absolute(&root).map_err(|e| Error::io("resolve", &root, e))?;
        let secrets_dir = root.join("secrets");
        // The root's parent is the user's; only the store's own directories must be private.
        if !root.exists() {
            durable::ensure_dir(&root, &root)?;
        }
        durable::ensure_dir(&root, &secrets_dir)?;
        let meta = std::fs::metadata(&root).map_err(|e| Error::io("inspect", &root, e))?;
        durable::check_private(&root, &meta)?;
        if matches!(protection, Protection::Plaintext) {
            PLAINTEXT_WARNING.call_once(|| {
                tracing::warn!(
                    store = %root.display(),
                    "secret store keeps values in plaintext; use a key file (--key-file or LIFT_SECRETS_KEY_FILE) outside development"
                );
            });
        }
        Ok(FileSecretsProvider {
            inner: Arc::new(Inner {
                root,
                secrets_dir,
                protection,
                clock: Arc::new(SystemClock),
                limits: StoreLimits::default(),
            }),
        })
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

    /// How values are protected.
    pub fn protection(&self) -> &Protection {
        &self.inner.protection
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

    fn load(&self, name: &SecretName) -> Result<Option<SecretState>> {
        let path = self.secret_path(name);
        match durable::read_private(&path)? {
            None => Ok(None),
            Some(bytes) => format::decode(
                &path,
                &self.inner.root,
                name,
                &bytes,
                &self.inner.protection,
            )
            .map(Some),
        }
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
    fn mutate<T>(
        &self,
        name: &SecretName,
        change: impl FnOnce(Option<SecretState>) -> Result<(Mutation, T)>,
    ) -> Result<T> {
        if matches!(self.inner.protection, Protection::Unconfigured) {
            return Err(Error::NoKey {
                root: self.inner.root.clone(),
            });
        }
        let path = self.secret_path(name);
        if let Some(dir) = path.parent() {
            durable::ensure_dir(&self.inner.root, dir)?;
        }
        let lock_path = self
            .inner
            .secrets_dir
            .join(format!("{}{LOCK_SUFFIX}", name.as_str()));
        let _lock = durable::lock_exclusive(&lock_path)?;
        durable::remove_stale_temporaries(&path);
        let now = self.inner.clock.now();
        let current = self.load(name)?;
        let purged = current.as_ref().is_some_and(|s| s.is_purged(now));
        let (mutation, result) = change(current.filter(|s| !s.is_purged(now)))?;
        match mutation {
            Mutation::Write(state) => {
                let bytes = format::encode(&state, &self.inner.protection)?;
                durable::write_atomic(&path, &bytes)?;
            }
            Mutation::Remove => durable::remove_durably(&path)?,
            Mutation::Keep if purged => durable::remove_durably(&path)?,
            Mutation::Keep => {}
        }
        Ok(result)
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
            this.mutate(&name, |state| {
                let opener = |id: &VersionId, nonce: &[u8], bytes: &[u8]| {
                    this.open_value(&name, id, nonce, bytes)
                };
                let (state, outcome, change) =
                    model::put(state, &name, &value, &options, now, &limits, &opener)?;
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
            this.mutate(&name, |state| {
                let state = state.ok_or_else(|| not_found(&name))?;
                match model::delete(state, mode, now)? {
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
            this.mutate(&name, |state| {
                let mut state = state.ok_or_else(|| not_found(&name))?;
                match model::move_stage(&mut state, &stage_move, now, &limits)? {
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
            this.mutate(&name, |state| {
                let mut state = state.ok_or_else(|| not_found(&name))?;
                match model::restore(&mut state, now) {
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
    use lift_core::ErrorKind;
    use std::os::unix::fs::PermissionsExt;

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
