//! Deployment infrastructure for Rust services, above all on AWS Lambda.
//!
//! `lift` is a thin facade. Each feature re-exports one crate as a module,
//! and the shared contracts of [`lift_core`] sit at the root:
//!
//! | feature   | module            | crate          | what it does |
//! |-----------|-------------------|----------------|--------------|
//! | `pulumi`  | [`lift::pulumi`]  | `lift-pulumi`  | drives the real `pulumi` CLI: stacks, config, preview/up/refresh/destroy, live events |
//! | `monitor` | [`lift::monitor`] | `lift-monitor` | samples the process, runs health checks, emits Lambda metrics as CloudWatch EMF |
//! | `secrets` | [`lift::secrets`] | `lift-secrets` | versioned, staged secret storage and crash-safe rotation |
//! | `audit`   | [`lift::audit`]   | `lift-audit`   | a tamper-evident, hash-chained audit trail and its verifier |
//!
//! All features are on by default. To depend on one part only, turn the
//! defaults off (`default-features = false, features = ["secrets"]`) or
//! depend on the sub-crate directly.
//!
//! ```
//! use lift::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lift::Result<()> {
//! let sink = MemoryAuditSink::new();
//! let name: SecretName = "prod/db/password".parse()?;
//! sink.record(AuditEvent::new("secrets", "put", Resource::new("secret", name.as_str()))).await?;
//! assert_eq!(HealthStatus::aggregate([HealthStatus::Healthy, HealthStatus::Degraded]), HealthStatus::Degraded);
//! # Ok(()) }
//! ```
//!
//! [`lift::pulumi`]: crate#features
//! [`lift::monitor`]: crate#features
//! [`lift::secrets`]: crate#features
//! [`lift::audit`]: crate#features

pub use lift_core::*;

#[cfg(feature = "audit")]
pub use lift_audit as audit;
#[cfg(feature = "monitor")]
pub use lift_monitor as monitor;
#[cfg(feature = "pulumi")]
pub use lift_pulumi as pulumi;
#[cfg(feature = "secrets")]
pub use lift_secrets as secrets;

/// The types most programs need, for a glob import.
pub mod prelude {
    pub use lift_core::{
        AuditEvent, AuditSink, CheckOutcome, Classify, Clock, Error, ErrorKind, HealthCheck,
        HealthStatus, MemoryAuditSink, Outcome, Resource, SecretName, SecretValue, SecretsProvider,
        StageLabel, SystemClock, VersionSelector,
    };
}
