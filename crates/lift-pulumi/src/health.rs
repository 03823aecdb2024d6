//! A health check of the pulumi CLI: present and new enough.

use std::path::PathBuf;
use std::time::Instant;

use lift_core::{CheckOutcome, HealthCheck};

use crate::cli::{MINIMUM_VERSION, PulumiCli};
use crate::error::Error;

/// Checks that the pulumi CLI is installed and at least the minimum version.
///
/// It is unhealthy when the binary is missing, too old or unreadable; the
/// message says how to fix it. The observation is the version as a number
/// (`major * 1_000_000 + minor * 1_000 + patch`, capped per part), so that
/// monitors can graph upgrades.
#[derive(Debug, Clone)]
pub struct CliHealthCheck {
    path: Option<PathBuf>,
    minimum_version: semver::Version,
}

impl Default for CliHealthCheck {
    fn default() -> Self {
        CliHealthCheck {
            path: None,
            minimum_version: MINIMUM_VERSION,
        }
    }
}

impl CliHealthCheck {
    /// A check of the binary found through `LIFT_PULUMI` or `PATH`.
    pub fn new() -> Self {
        Self::default()
    }

    /// A check of this binary.
    pub fn with_path(path: impl Into<PathBuf>) -> Self {
        CliHealthCheck {
            path: Some(path.into()),
            ..Self::default()
        }
    }

    /// Requires this minimum version instead of [`MINIMUM_VERSION`].
    #[must_use]
    pub fn minimum_version(mut self, minimum: semver::Version) -> Self {
        self.minimum_version = minimum;
        self
    }
}

#[async_trait::async_trait]
impl HealthCheck for CliHealthCheck {
    fn name(&self) -> &str {
        "pulumi:cli"
    }

    async fn check(&self) -> CheckOutcome {
        let started = Instant::now();
        let outcome =
            match PulumiCli::discover_with_minimum(self.path.as_deref(), &self.minimum_version)
                .await
            {
                Ok(cli) => {
                    let v = cli.version();
                    CheckOutcome::healthy(format!(
                        "pulumi {} at {} (minimum {})",
                        v,
                        cli.path().display(),
                        self.minimum_version
                    ))
                    .observe("version", version_number(v), "version")
                }
                Err(err @ Error::TooOld { .. }) => {
                    let found = match &err {
                        Error::TooOld { found, .. } => version_number(found),
                        _ => 0.0,
                    };
                    CheckOutcome::unhealthy(err.to_string()).observe("version", found, "version")
                }
                Err(err) => CheckOutcome::unhealthy(err.to_string()),
            };
        outcome.took(started.elapsed())
    }
}

fn version_number(v: &semver::Version) -> f64 {
    (v.major.min(9999) * 1_000_000 + v.minor.min(999) * 1000 + v.patch.min(999)) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use lift_core::HealthStatus;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn reports_present_missing_and_old() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("pulumi");
        std::fs::write(&bin, "#!/bin/sh\necho v3.140.2\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let ok = CliHealthCheck::with_path(&bin).check().await;
        assert_eq!(ok.status, HealthStatus::Healthy, "{}", ok.message);
        assert_eq!(ok.observations[0].value, 3_140_002.0);
        let old = CliHealthCheck::with_path(&bin)
            .minimum_version(semver::Version::new(4, 0, 0))
            .check()
            .await;
        assert_eq!(old.status, HealthStatus::Unhealthy);
        assert!(old.message.contains("older than the minimum"));
        let missing = CliHealthCheck::with_path(dir.path().join("nope"))
            .check()
            .await;
        assert_eq!(missing.status, HealthStatus::Unhealthy);
        assert!(missing.message.contains("install"));
        assert_eq!(CliHealthCheck::new().name(), "pulumi:cli");
    }
}
