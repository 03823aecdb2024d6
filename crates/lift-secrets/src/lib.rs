//! Versioned, staged secret storage and crash-safe rotation, with AWS Secrets Manager's semantics.
//!
//! A workflow tested against these stores behaves the same against AWS Secrets Manager:
//!
//! - [`FileSecretsProvider`] keeps one encrypted file per secret (XChaCha20-Poly1305,
//!   atomic writes, `flock` across processes); [`MemorySecretsProvider`] is for tests.
//!   Both implement [`lift_core::SecretsProvider`] over one shared state machine:
//!   versions, idempotency tokens, staging labels, soft delete and restore.
//! - [`CachingProvider`] caches reads with a TTL and version-aware revalidation.
//! - [`RotationEngine`] runs the four-step rotation (createSecret, setSecret,
//!   testSecret, finishSecret) with a user [`Rotator`], persisting each step so
//!   that [`RotationEngine::resume`] continues after a crash. It keeps bounded
//!   history (ids and outcomes, never values), schedules, and fault injection.
//! - [`ValueKind`] and [`generate_password`] generate new values from a CSPRNG
//!   without bias, of the kind declared for the secret (never guessed from the old
//!   value); a JSON key/value secret keeps every field but the one rotated.
//! - [`AuditedProvider`] and the engine emit [`lift_core::AuditEvent`]s without values;
//!   [`StoreHealthCheck`] is the store's [`lift_core::HealthCheck`].
//!
//! ```
//! use std::sync::Arc;
//! use lift_core::{PutOptions, SecretsProvider, SecretValue, VersionSelector};
//! use lift_secrets::{FileRotationStore, FileSecretsProvider, Protection, RotateOptions, RotationEngine, StoreKey, StoreOnlyRotator};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lift_secrets::Result<()> {
//! let dir = tempfile::tempdir().map_err(|e| lift_secrets::Error::InvalidInput(e.to_string()))?;
//! let root = dir.path().join("store");
//! let store = Arc::new(FileSecretsProvider::open(&root, Protection::Encrypted(StoreKey::generate()))?);
//! let name = "prod/api-key".parse()?;
//! store.put(&name, &SecretValue::from("sk_live_0123456789abcdef01234567"), &PutOptions::default()).await?;
//!
//! let engine = RotationEngine::new(store.clone(), Arc::new(FileRotationStore::new(&root)));
//! let report = engine.rotate(&name, &StoreOnlyRotator, &RotateOptions::default()).await?;
//! let current = store.get(&name, &VersionSelector::default()).await?;
//! assert_eq!(current.version_id, report.new_version);
//! assert_eq!(current.value.len(), 32, "a password, unless another kind is declared");
//! assert_eq!(engine.history(&name).await?.len(), 1);
//! # Ok(()) }
//! ```

mod audited;
#[cfg(feature = "aws")]
mod aws;
mod cache;
mod error;
mod faults;
mod file;
mod format;
mod generate;
mod health;
mod input;
mod json_secret;
mod key;
mod layout;
mod manifest;
mod memory;
mod private_files;
mod rotation;
mod rotation_state;
mod rotation_store;
mod secret_state;
mod settings;

pub use audited::AuditedProvider;
#[cfg(feature = "aws")]
pub use aws::{
    AwsError, AwsSecretsManagerProvider, AwsSecretsManagerProviderBuilder, ROTATION_ACTIONS,
};
pub use cache::{CacheMetrics, CachingProvider};
pub use error::{Error, Result};
pub use faults::{FaultInjector, FaultPlan, FaultTrigger};
pub use file::{FileSecretsProvider, FileStoreOptions};
pub use generate::{Encoding, PUNCTUATION, PasswordPolicy, ValueKind, generate_password};
pub use health::StoreHealthCheck;
pub use input::{harden_process, read_value};
pub use json_secret::DEFAULT_JSON_FIELD;
pub use key::{KEY_FILE_ENV, KEY_LEN, Protection, StoreKey};
pub use memory::MemorySecretsProvider;
pub use private_files::{SyncCounters, sync_counters};
pub use rotation::{
    NativeRotation, OnFailure, RotateOptions, RotationEngine, RotationPolicy, RotationPreflight,
    RotationReport, Rotator, StepContext, StoreOnlyRotator,
};
pub use rotation_state::{
    RotationCheckpoint, RotationOutcome, RotationRecord, RotationSchedule, RotationState,
    RotationStep,
};
pub use rotation_store::{FileRotationStore, MemoryRotationStore, RotationGuard, RotationStore};
pub use secret_state::StoreLimits;
pub use settings::{AwsStoreSettings, StoreSettings};
