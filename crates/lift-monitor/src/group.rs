//! The groups a health check belongs to: what the manager runs and a report covers.

/// Which checks a run covers.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Every registered check.
    All,
    /// Checks that tell whether the process should be restarted (`/health/live`).
    Liveness,
    /// Checks that tell whether the process should receive traffic (`/health/ready`).
    Readiness,
}
