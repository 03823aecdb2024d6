//! A secrets provider that keeps everything in memory, for tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use lift_core::{
    Clock, DeleteMode, PutOptions, PutOutcome, SecretDescription, SecretName, SecretSummary,
    SecretValue, SecretVersion, SecretsProvider, StageMove, SystemClock, VersionSelector,
};

use crate::secret_state::{self, Deleted, SecretState, StoreLimits};
use crate::{Error, Result};

/// An in-memory [`SecretsProvider`] with the same semantics as the file store.
///
/// Clones share the same secrets.
///
/// ```
/// use lift_core::{PutOptions, SecretsProvider, SecretValue, VersionSelector};
/// use lift_secrets::MemorySecretsProvider;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lift_core::Result<()> {
/// let store = MemorySecretsProvider::default();
/// let name = "db".parse()?;
/// store.put(&name, &SecretValue::from("s3cr3t"), &PutOptions::default()).await?;
/// let current = store.get(&name, &VersionSelector::default()).await?;
/// assert_eq!(current.value.expose(), b"s3cr3t");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MemorySecretsProvider {
    secrets: Arc<Mutex<BTreeMap<SecretName, SecretState>>>,
    clock: Arc<dyn Clock>,
    limits: StoreLimits,
}

impl Default for MemorySecretsProvider {
    fn default() -> Self {
        MemorySecretsProvider {
            secrets: Arc::default(),
            clock: Arc::new(SystemClock),
            limits: StoreLimits::default(),
        }
    }
}

impl MemorySecretsProvider {
    /// Uses `clock` for version dates and recovery windows.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the retention and size limits.
    #[must_use]
    pub fn with_limits(mut self, limits: StoreLimits) -> Self {
        self.limits = limits;
        self
    }

    fn with_state<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<SecretName, SecretState>) -> Result<T>,
    ) -> lift_core::Result<T> {
        let mut secrets = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now();
        // Soft-deleted secrets whose window has passed are purged lazily, on the next access.
        secrets.retain(|_, s| !s.is_purged(now));
        f(&mut secrets).map_err(Into::into)
    }
}

fn not_found(name: &SecretName) -> Error {
    Error::SecretNotFound {
        name: name.to_string(),
    }
}

#[async_trait::async_trait]
impl SecretsProvider for MemorySecretsProvider {
    async fn get(
        &self,
        name: &SecretName,
        selector: &VersionSelector,
    ) -> lift_core::Result<SecretVersion> {
        self.with_state(|s| {
            s.get(name)
                .ok_or_else(|| not_found(name))?
                .get(selector, &secret_state::no_sealed_values)
        })
    }

    async fn put(
        &self,
        name: &SecretName,
        value: &SecretValue,
        options: &PutOptions,
    ) -> lift_core::Result<PutOutcome> {
        let now = self.clock.now();
        self.with_state(|secrets| {
            // The model gets a copy: a rejected put (a token reused with another
            // value, a value too large) must leave the stored secret as it was.
            let (state, outcome, _) = secret_state::put(
                secrets.get(name).cloned(),
                name,
                value,
                options,
                now,
                &self.limits,
                &secret_state::no_sealed_values,
            )?;
            secrets.insert(name.clone(), state);
            Ok(outcome)
        })
    }

    async fn list(&self) -> lift_core::Result<Vec<SecretSummary>> {
        self.with_state(|s| Ok(s.values().map(SecretState::summary).collect()))
    }

    async fn describe(&self, name: &SecretName) -> lift_core::Result<SecretDescription> {
        self.with_state(|s| Ok(s.get(name).ok_or_else(|| not_found(name))?.describe()))
    }

    async fn delete(
        &self,
        name: &SecretName,
        mode: DeleteMode,
    ) -> lift_core::Result<SecretDescription> {
        let now = self.clock.now();
        self.with_state(|secrets| {
            let state = secrets.get(name).ok_or_else(|| not_found(name))?.clone();
            match secret_state::delete(state, mode, now)? {
                Deleted::Soft(state) => {
                    let description = state.describe();
                    secrets.insert(name.clone(), state);
                    Ok(description)
                }
                Deleted::Gone(description) => {
                    secrets.remove(name);
                    Ok(description)
                }
            }
        })
    }

    async fn move_stage(&self, name: &SecretName, stage_move: &StageMove) -> lift_core::Result<()> {
        let now = self.clock.now();
        self.with_state(|secrets| {
            let state = secrets.get_mut(name).ok_or_else(|| not_found(name))?;
            // Work on a copy so that a refused move leaves the secret as it was.
            let mut next = state.clone();
            secret_state::move_stage(&mut next, stage_move, now, &self.limits)?;
            *state = next;
            Ok(())
        })
    }

    async fn restore(&self, name: &SecretName) -> lift_core::Result<()> {
        let now = self.clock.now();
        self.with_state(|secrets| {
            let state = secrets.get_mut(name).ok_or_else(|| not_found(name))?;
            secret_state::restore(state, now);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lift_core::{ErrorKind, ManualClock, StageLabel};

    #[tokio::test]
    async fn purges_after_the_recovery_window() {
        let clock = ManualClock::at_epoch();
        let store = MemorySecretsProvider::default().with_clock(Arc::new(clock.clone()));
        let name: SecretName = "a".parse().unwrap();
        store
            .put(&name, &SecretValue::from("x"), &PutOptions::default())
            .await
            .unwrap();
        let d = store
            .delete(
                &name,
                DeleteMode::Recoverable {
                    recovery_window_days: 7,
                },
            )
            .await
            .unwrap();
        assert!(d.deletion_date.is_some());
        assert_eq!(store.list().await.unwrap().len(), 1);
        store.restore(&name).await.unwrap();
        assert!(store.get(&name, &VersionSelector::default()).await.is_ok());
        store
            .delete(
                &name,
                DeleteMode::Recoverable {
                    recovery_window_days: 7,
                },
            )
            .await
            .unwrap();
        clock.advance(chrono::Duration::days(7));
        assert!(store.list().await.unwrap().is_empty());
        let err = store.describe(&name).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn refused_moves_change_nothing() {
        let store = MemorySecretsProvider::default();
        let name: SecretName = "a".parse().unwrap();
        let v1 = store
            .put(&name, &SecretValue::from("x"), &PutOptions::default())
            .await
            .unwrap();
        let bad = StageMove {
            stage: StageLabel::pending(),
            to: Some(v1.version_id.clone()),
            from: Some(v1.version_id.clone()),
        };
        assert_eq!(
            store.move_stage(&name, &bad).await.unwrap_err().kind(),
            ErrorKind::Conflict
        );
        let d = store.describe(&name).await.unwrap();
        assert!(d.version_with("AWSPENDING").is_none());
    }
}
