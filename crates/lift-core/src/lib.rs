//! The contracts shared by the lift crates.
//!
//! `lift-core` is to lift what `tracing-core` is to tracing: small, stable,
//! and the only lift crate that the feature crates (`lift-pulumi`,
//! `lift-monitor`, `lift-secrets`, `lift-audit`) depend on. Cross-crate
//! behaviour goes through the traits defined here:
//!
//! - [`Error`] and [`ErrorKind`]: the shared error vocabulary, with [`Classify`]
//!   implemented by every crate's own error type;
//! - [`SecretValue`] and [`SecretName`]: secret hygiene in types;
//! - [`SecretsProvider`]: versioned, staged secret storage with AWS Secrets Manager's semantics;
//! - [`AuditEvent`] and [`AuditSink`]: the audit trail contract;
//! - [`HealthStatus`], [`CheckOutcome`] and [`HealthCheck`]: health checks;
//! - [`Deployer`]: deployments that user code can mock;
//! - [`Clock`]: time as a dependency;
//! - [`fs`]: durable-file primitives (atomic writes, locks, key files,
//!   random bytes), lift-core's one I/O exception.
//!
//! With the `mock` feature, every trait has a `mockall` mock (`MockSecretsProvider`, ...).
//!
//! ```
//! use lift_core::{AuditEvent, AuditSink, MemoryAuditSink, Resource, SecretName, SecretValue};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lift_core::Result<()> {
//! let name: SecretName = "prod/db/password".parse()?;
//! let value = SecretValue::from("s3cr3t");
//! assert_eq!(value.to_string(), "[REDACTED]");
//!
//! let sink = MemoryAuditSink::new();
//! sink.record(AuditEvent::new("secrets", "put", Resource::new("secret", name.as_str()))).await?;
//! assert_eq!(sink.actions(), ["put"]);
//! # Ok(()) }
//! ```

mod audit;
mod clock;
mod deploy;
mod error;
pub mod fs;
mod health;
mod key_page;
mod rfc3339;
mod secret_value;
mod secrets_provider;

pub use audit::{
    Actor, ActorKind, AuditEvent, AuditSink, MemoryAuditSink, NoopAuditSink, Origin, Outcome,
    Resource,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use deploy::{DeployResult, DeploySummary, Deployer, OutputValue};
pub use error::{Classify, Error, ErrorKind, Result};
pub use health::{CheckOutcome, HealthCheck, HealthStatus, Observation};
pub use key_page::{KeyPage, PageProtection};
pub use secret_value::{MAX_SECRET_NAME_LEN, REDACTED, SecretName, SecretValue};
pub use secrets_provider::{
    DeleteMode, PutOptions, PutOutcome, SecretDescription, SecretSummary, SecretVersion,
    SecretsProvider, StageLabel, StageMove, VersionId, VersionInfo, VersionSelector,
};

#[cfg(any(test, feature = "mock"))]
pub use audit::MockAuditSink;
#[cfg(any(test, feature = "mock"))]
pub use deploy::MockDeployer;
#[cfg(any(test, feature = "mock"))]
pub use health::MockHealthCheck;
#[cfg(any(test, feature = "mock"))]
pub use secrets_provider::MockSecretsProvider;
