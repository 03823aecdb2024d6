//! Cross-crate integration tests for lift live in `tests/tests/`; this
//! library holds what they share (the moto harness, the crash-state model).
//!
//! This library also doc-tests the guides in `docs/`, so that every Rust
//! example a newcomer copies from them compiles and runs.

/// `docs/lift-core.md`.
#[cfg(doctest)]
#[doc = include_str!("../../docs/lift-core.md")]
mod lift_core_guide {}

/// `docs/lift-pulumi.md`.
#[cfg(doctest)]
#[doc = include_str!("../../docs/lift-pulumi.md")]
mod lift_pulumi_guide {}

/// `docs/lift-monitor.md`.
#[cfg(doctest)]
#[doc = include_str!("../../docs/lift-monitor.md")]
mod lift_monitor_guide {}

/// `docs/lift-secrets.md`.
#[cfg(doctest)]
#[doc = include_str!("../../docs/lift-secrets.md")]
mod lift_secrets_guide {}

/// `docs/lift-audit.md`.
#[cfg(doctest)]
#[doc = include_str!("../../docs/lift-audit.md")]
mod lift_audit_guide {}

/// `README.md`.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}

pub mod crash_states;
pub mod moto;
pub mod scenario;
