//! A read cache in front of any provider, like the AWS Secrets Manager caching client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use lift_core::{
    Clock, DeleteMode, PutOptions, PutOutcome, SecretDescription, SecretName, SecretSummary,
    SecretValue, SecretVersion, SecretsProvider, StageMove, SystemClock, VersionSelector,
};

/// The cache's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, schemars::JsonSchema)]
pub struct CacheMetrics {
    /// Reads answered from a fresh entry.
    pub hits: u64,
    /// Reads with no entry, fetched from the provider.
    pub misses: u64,
    /// Reads of an expired entry, revalidated or refetched.
    pub refreshes: u64,
    /// Refreshes that found the cached version still current and fetched no value.
    pub revalidations: u64,
    /// Reads answered with an expired entry because the provider failed transiently.
    pub stale_served: u64,
}

#[derive(Debug)]
struct Entry {
    version: SecretVersion,
    fetched_at: DateTime<Utc>,
}

/// Wraps a provider with a TTL cache of reads.
///
/// After the TTL, an entry is revalidated: the cache describes the secret and,
/// when the cached version still holds the requested label, keeps the value
/// without fetching it again. Writes through the cache invalidate the
/// secret's entries. With `serve_stale`, a transient provider error
/// (unavailable, timeout, conflict) returns the expired entry instead.
///
/// ```
/// use std::sync::Arc;
/// use lift_core::{ManualClock, PutOptions, SecretsProvider, SecretValue, VersionSelector};
/// use lift_secrets::{CachingProvider, MemorySecretsProvider};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lift_core::Result<()> {
/// let clock = ManualClock::at_epoch();
/// let cache = CachingProvider::new(MemorySecretsProvider::default(), chrono::Duration::minutes(5))
///     .with_clock(Arc::new(clock.clone()));
/// let name = "db".parse()?;
/// cache.put(&name, &SecretValue::from("x"), &PutOptions::default()).await?;
/// cache.get(&name, &VersionSelector::default()).await?;
/// cache.get(&name, &VersionSelector::default()).await?;
/// assert_eq!((cache.metrics().misses, cache.metrics().hits), (1, 1));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CachingProvider<P> {
    inner: P,
    ttl: Duration,
    serve_stale: bool,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<SecretName, HashMap<VersionSelector, Entry>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    refreshes: AtomicU64,
    revalidations: AtomicU64,
    stale_served: AtomicU64,
}

impl<P: SecretsProvider> CachingProvider<P> {
    /// Caches `inner`'s reads for `ttl`.
    pub fn new(inner: P, ttl: Duration) -> Self {
        CachingProvider {
            inner,
            ttl,
            serve_stale: false,
            clock: Arc::new(SystemClock),
            entries: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            revalidations: AtomicU64::new(0),
            stale_served: AtomicU64::new(0),
        }
    }

    /// Uses `clock` for expiry.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Serves an expired entry when the provider fails transiently.
    #[must_use]
    pub fn serve_stale(mut self, enabled: bool) -> Self {
        self.serve_stale = enabled;
        self
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The counters so far.
    pub fn metrics(&self) -> CacheMetrics {
        CacheMetrics {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            refreshes: self.refreshes.load(Ordering::Relaxed),
            revalidations: self.revalidations.load(Ordering::Relaxed),
            stale_served: self.stale_served.load(Ordering::Relaxed),
        }
    }

    /// Drops the entries of one secret.
    pub fn invalidate(&self, name: &SecretName) {
        self.lock().remove(name);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<SecretName, HashMap<VersionSelector, Entry>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn store(
        &self,
        name: &SecretName,
        selector: &VersionSelector,
        version: &SecretVersion,
        now: DateTime<Utc>,
    ) {
        self.lock().entry(name.clone()).or_default().insert(
            selector.clone(),
            Entry {
                version: version.clone(),
                fetched_at: now,
            },
        );
    }

    /// Checks whether the cached version still answers `selector`, without fetching a value.
    async fn still_valid(
        &self,
        name: &SecretName,
        selector: &VersionSelector,
        cached: &SecretVersion,
    ) -> lift_core::Result<Option<SecretVersion>> {
        let description = self.inner.describe(name).await?;
        if let Some(date) = description.deletion_date {
            // A deleted secret may have been revoked: never serve it, stale or not.
            return Err(crate::Error::MarkedForDeletion {
                name: name.to_string(),
                date: date.to_rfc3339(),
            }
            .into());
        }
        let Some(info) = description
            .versions
            .iter()
            .find(|v| v.version_id == cached.version_id)
        else {
            return Ok(None);
        };
        let valid = match selector {
            VersionSelector::Version(_) => true,
            VersionSelector::Stage(label) => info.stages.contains(label),
        } && description.deletion_date.is_none();
        Ok(valid.then(|| SecretVersion {
            name: cached.name.clone(),
            version_id: cached.version_id.clone(),
            stages: info.stages.clone(),
            created_at: cached.created_at,
            value: cached.value.clone(),
        }))
    }
}

#[async_trait::async_trait]
impl<P: SecretsProvider> SecretsProvider for CachingProvider<P> {
    async fn get(
        &self,
        name: &SecretName,
        selector: &VersionSelector,
    ) -> lift_core::Result<SecretVersion> {
        let now = self.clock.now();
        let stale = {
            let entries = self.lock();
            match entries.get(name).and_then(|m| m.get(selector)) {
                Some(entry) if now - entry.fetched_at < self.ttl => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(entry.version.clone());
                }
                Some(entry) => Some(entry.version.clone()),
                None => None,
            }
        };
        let Some(stale) = stale else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            let version = self.inner.get(name, selector).await?;
            self.store(name, selector, &version, now);
            return Ok(version);
        };
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let refreshed = match self.still_valid(name, selector, &stale).await {
            Ok(Some(version)) => {
                self.revalidations.fetch_add(1, Ordering::Relaxed);
                Ok(version)
            }
            Ok(None) => self.inner.get(name, selector).await,
            Err(e) => Err(e),
        };
        match refreshed {
            Ok(version) => {
                self.store(name, selector, &version, now);
                Ok(version)
            }
            Err(e) if self.serve_stale && e.kind().is_transient() => {
                self.stale_served.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(secret = %name, error = %e, "serving a stale cached secret after a transient error");
                Ok(stale)
            }
            Err(e) => {
                self.invalidate(name);
                Err(e)
            }
        }
    }

    async fn put(
        &self,
        name: &SecretName,
        value: &SecretValue,
        options: &PutOptions,
    ) -> lift_core::Result<PutOutcome> {
        let result = self.inner.put(name, value, options).await;
        self.invalidate(name);
        result
    }

    async fn list(&self) -> lift_core::Result<Vec<SecretSummary>> {
        self.inner.list().await
    }

    async fn describe(&self, name: &SecretName) -> lift_core::Result<SecretDescription> {
        self.inner.describe(name).await
    }

    async fn delete(
        &self,
        name: &SecretName,
        mode: DeleteMode,
    ) -> lift_core::Result<SecretDescription> {
        let result = self.inner.delete(name, mode).await;
        self.invalidate(name);
        result
    }

    async fn move_stage(&self, name: &SecretName, stage_move: &StageMove) -> lift_core::Result<()> {
        let result = self.inner.move_stage(name, stage_move).await;
        self.invalidate(name);
        result
    }

    async fn restore(&self, name: &SecretName) -> lift_core::Result<()> {
        let result = self.inner.restore(name).await;
        self.invalidate(name);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemorySecretsProvider;
    use lift_core::{ErrorKind, ManualClock, MockSecretsProvider, StageLabel, VersionId};

    fn name() -> SecretName {
        "db".parse().unwrap()
    }

    #[tokio::test]
    async fn revalidates_after_ttl_and_refetches_when_the_stage_moved() {
        let clock = ManualClock::at_epoch();
        let memory = MemorySecretsProvider::default();
        let cache = CachingProvider::new(memory.clone(), Duration::seconds(60))
            .with_clock(Arc::new(clock.clone()));
        memory
            .put(&name(), &SecretValue::from("one"), &PutOptions::default())
            .await
            .unwrap();
        assert_eq!(
            cache
                .get(&name(), &VersionSelector::default())
                .await
                .unwrap()
                .value
                .expose(),
            b"one"
        );
        clock.advance(Duration::seconds(61));
        assert_eq!(
            cache
                .get(&name(), &VersionSelector::default())
                .await
                .unwrap()
                .value
                .expose(),
            b"one"
        );
        assert_eq!(cache.metrics().revalidations, 1);
        // A write that bypasses the cache is seen after the TTL.
        memory
            .put(&name(), &SecretValue::from("two"), &PutOptions::default())
            .await
            .unwrap();
        assert_eq!(
            cache
                .get(&name(), &VersionSelector::default())
                .await
                .unwrap()
                .value
                .expose(),
            b"one",
            "fresh entry"
        );
        clock.advance(Duration::seconds(61));
        assert_eq!(
            cache
                .get(&name(), &VersionSelector::default())
                .await
                .unwrap()
                .value
                .expose(),
            b"two"
        );
        let m = cache.metrics();
        assert_eq!(
            (m.misses, m.hits, m.refreshes, m.revalidations),
            (1, 1, 2, 1)
        );
        // Writes through the cache invalidate at once.
        cache
            .put(&name(), &SecretValue::from("three"), &PutOptions::default())
            .await
            .unwrap();
        assert_eq!(
            cache
                .get(&name(), &VersionSelector::default())
                .await
                .unwrap()
                .value
                .expose(),
            b"three"
        );
    }

    #[tokio::test]
    async fn a_deleted_secret_is_never_served_stale() {
        let clock = ManualClock::at_epoch();
        let memory = MemorySecretsProvider::default().with_clock(Arc::new(clock.clone()));
        let cache = CachingProvider::new(memory.clone(), Duration::seconds(60))
            .with_clock(Arc::new(clock.clone()))
            .serve_stale(true);
        memory
            .put(
                &name(),
                &SecretValue::from("revoked"),
                &PutOptions::default(),
            )
            .await
            .unwrap();
        cache
            .get(&name(), &VersionSelector::default())
            .await
            .unwrap();
        memory.delete(&name(), DeleteMode::default()).await.unwrap();
        clock.advance(Duration::seconds(61));
        let err = cache
            .get(&name(), &VersionSelector::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
        assert!(!err.kind().is_transient());
        assert_eq!(cache.metrics().stale_served, 0);
        // And the memory store's own error for a deleted secret is the same kind.
        let direct = memory
            .get(&name(), &VersionSelector::default())
            .await
            .unwrap_err();
        assert_eq!(direct.kind(), ErrorKind::FailedPrecondition);
    }

    #[tokio::test]
    async fn serves_stale_only_on_transient_errors_when_asked() {
        let clock = ManualClock::at_epoch();
        let mut mock = MockSecretsProvider::new();
        let version = SecretVersion {
            name: name(),
            version_id: VersionId::new("v1").unwrap(),
            stages: vec![StageLabel::current()],
            created_at: clock.now(),
            value: SecretValue::from("cached"),
        };
        let first = version.clone();
        mock.expect_get()
            .times(1)
            .returning(move |_, _| Ok(first.clone()));
        mock.expect_describe().returning(|_| {
            Err(lift_core::Error::new(
                ErrorKind::Unavailable,
                "service down",
            ))
        });
        let cache = CachingProvider::new(mock, Duration::seconds(10))
            .with_clock(Arc::new(clock.clone()))
            .serve_stale(true);
        cache
            .get(&name(), &VersionSelector::default())
            .await
            .unwrap();
        clock.advance(Duration::seconds(11));
        let stale = cache
            .get(&name(), &VersionSelector::default())
            .await
            .unwrap();
        assert_eq!(stale.value.expose(), b"cached");
        assert_eq!(cache.metrics().stale_served, 1);

        let mut strict_mock = MockSecretsProvider::new();
        let second = version.clone();
        strict_mock
            .expect_get()
            .times(1)
            .returning(move |_, _| Ok(second.clone()));
        strict_mock.expect_describe().returning(|_| {
            Err(lift_core::Error::new(
                ErrorKind::Unavailable,
                "service down",
            ))
        });
        let strict = CachingProvider::new(strict_mock, Duration::seconds(10))
            .with_clock(Arc::new(clock.clone()));
        strict
            .get(&name(), &VersionSelector::default())
            .await
            .unwrap();
        clock.advance(Duration::seconds(11));
        assert_eq!(
            strict
                .get(&name(), &VersionSelector::default())
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Unavailable
        );
    }
}
