//! The health check of a file store: readable, writable, and keyed.

use std::time::Instant;

use lift_core::{CheckOutcome, HealthCheck, HealthStatus};

use crate::file::FileSecretsProvider;
use crate::key::Protection;
use crate::private_files;

/// Checks that a [`FileSecretsProvider`]'s directory can be read (every secret
/// file opens and verifies), can be written (a probe file is written atomically
/// and removed), and that an encryption key is present.
///
/// Plaintext stores are degraded; stores without a key, or with a file that
/// fails its integrity check, are unhealthy.
#[derive(Debug, Clone)]
pub struct StoreHealthCheck {
    store: FileSecretsProvider,
}

impl StoreHealthCheck {
    /// A check of `store`.
    pub fn new(store: FileSecretsProvider) -> Self {
        StoreHealthCheck { store }
    }

    fn run(&self) -> CheckOutcome {
        let root = self.store.root().display().to_string();
        let names = match self.store.names() {
            Ok(names) => names,
            Err(e) => {
                return CheckOutcome::unhealthy(format!(
                    "secret store {root} is not readable: {e}"
                ));
            }
        };
        let mut unreadable = Vec::new();
        for name in &names {
            // Verify (checksum, generation against the manifest, structure) and decrypt
            // every value, as a read of each would.
            let verified = self.store.verify(name);
            if let Err(e) = verified {
                unreadable.push(e.to_string());
            }
        }
        let probe = self.store.root().join(".health-probe");
        let writable = private_files::write_atomic(&probe, b"probe")
            .and_then(|()| private_files::remove_durably(&probe));
        let base = |status: HealthStatus, message: String| {
            CheckOutcome::new(status, message)
                .observe("secrets", names.len() as f64, "count")
                .observe("unreadable_secrets", unreadable.len() as f64, "count")
        };
        if let Err(e) = writable {
            return base(
                HealthStatus::Unhealthy,
                format!("secret store {root} is not writable: {e}"),
            );
        }
        if let Some(first) = unreadable.first() {
            return base(
                HealthStatus::Unhealthy,
                format!(
                    "{} of {} secrets in {root} cannot be read; first: {first}",
                    unreadable.len(),
                    names.len()
                ),
            );
        }
        match self.store.protection() {
            Protection::Encrypted(_) => base(
                HealthStatus::Healthy,
                format!("secret store {root} is readable, writable and encrypted"),
            ),
            Protection::Plaintext => base(
                HealthStatus::Degraded,
                format!(
                    "secret store {root} keeps values in plaintext; configure a key file (LIFT_SECRETS_KEY_FILE) outside development"
                ),
            ),
            Protection::Unconfigured => base(
                HealthStatus::Unhealthy,
                format!(
                    "secret store {root} has no encryption key, so writes fail; set LIFT_SECRETS_KEY_FILE or pass --key-file"
                ),
            ),
        }
    }
}

#[async_trait::async_trait]
impl HealthCheck for StoreHealthCheck {
    fn name(&self) -> &str {
        "secrets:store"
    }

    async fn check(&self) -> CheckOutcome {
        let started = Instant::now();
        let this = self.clone();
        let outcome = tokio::task::spawn_blocking(move || this.run())
            .await
            .unwrap_or_else(|e| {
                CheckOutcome::unhealthy(format!("the secret store check did not finish: {e}"))
            });
        outcome.took(started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreKey;
    use lift_core::{PutOptions, SecretValue, SecretsProvider};
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn reports_key_readability_and_writability() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        let store =
            FileSecretsProvider::open(&root, Protection::Encrypted(StoreKey::generate())).unwrap();
        store
            .put(
                &"a".parse().unwrap(),
                &SecretValue::from("x"),
                &PutOptions::default(),
            )
            .await
            .unwrap();
        let check = StoreHealthCheck::new(store.clone());
        let ok = check.check().await;
        assert_eq!(ok.status, HealthStatus::Healthy, "{}", ok.message);
        assert_eq!(ok.observations[0].value, 1.0);

        let plain = StoreHealthCheck::new(
            FileSecretsProvider::open(dir.path().join("p"), Protection::Plaintext).unwrap(),
        );
        assert_eq!(plain.check().await.status, HealthStatus::Degraded);
        let nokey = StoreHealthCheck::new(
            FileSecretsProvider::open(dir.path().join("n"), Protection::Unconfigured).unwrap(),
        );
        assert_eq!(nokey.check().await.status, HealthStatus::Unhealthy);

        // A store opened with another key cannot read the secret.
        let wrong = StoreHealthCheck::new(
            FileSecretsProvider::open(&root, Protection::Encrypted(StoreKey::generate())).unwrap(),
        );
        let bad = wrong.check().await;
        assert_eq!(bad.status, HealthStatus::Unhealthy);
        assert!(bad.message.contains("cannot be read"), "{}", bad.message);

        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o500)).unwrap();
        let ro = check.check().await;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
        // Root ignores permission bits, so only assert when the probe really could not be written.
        if !nix::unistd::Uid::effective().is_root() {
            assert_eq!(ro.status, HealthStatus::Unhealthy);
        }
    }
}
