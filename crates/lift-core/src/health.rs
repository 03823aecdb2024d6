//! Health statuses, check outcomes and the health-check contract.

use std::fmt;
use std::time::Duration;

/// The health of a component, ordered from best to worst:
/// `Healthy < Unknown < Degraded < Unhealthy`.
///
/// Aggregation takes the worst status; see [`HealthStatus::aggregate`].
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Everything measured is within its thresholds.
    Healthy,
    /// The check could not tell (not configured, not available on this system).
    Unknown,
    /// A warn threshold was crossed; the component still works.
    Degraded,
    /// A fail threshold was crossed, or the component does not work.
    Unhealthy,
}

impl HealthStatus {
    /// The worst of `statuses`, or [`HealthStatus::Unknown`] when there are none.
    ///
    /// ```
    /// use lift_core::HealthStatus::*;
    /// assert_eq!(lift_core::HealthStatus::aggregate([Healthy, Degraded]), Degraded);
    /// assert_eq!(lift_core::HealthStatus::aggregate([]), Unknown);
    /// ```
    pub fn aggregate(statuses: impl IntoIterator<Item = HealthStatus>) -> HealthStatus {
        statuses.into_iter().max().unwrap_or(HealthStatus::Unknown)
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unknown => "unknown",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// The `application/health+json` status: `pass`, `warn` or `fail`.
    ///
    /// `Unknown` maps to `warn`: the draft has no "unknown", and a check that
    /// cannot tell must not read as a pass.
    pub fn as_health_json(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "pass",
            HealthStatus::Unknown | HealthStatus::Degraded => "warn",
            HealthStatus::Unhealthy => "fail",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One measured value, with its unit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Observation {
    /// What was measured: `rss`, `open_fds`, `free_bytes`, ...
    pub measurement: String,
    /// The value.
    pub value: f64,
    /// The unit: `bytes`, `percent`, `count`, `seconds`, ...
    pub unit: String,
}

/// The result of one health check.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct CheckOutcome {
    /// The status.
    pub status: HealthStatus,
    /// A human sentence: what was found and, when not healthy, what to do.
    pub message: String,
    /// The values the status was derived from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observations: Vec<Observation>,
    /// How long the check took.
    #[serde(with = "duration_seconds")]
    #[schemars(with = "f64")]
    pub duration: Duration,
}

impl CheckOutcome {
    /// An outcome with `status` and `message`, no observations and zero duration.
    pub fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        CheckOutcome {
            status,
            message: message.into(),
            observations: Vec::new(),
            duration: Duration::ZERO,
        }
    }

    /// A healthy outcome.
    pub fn healthy(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Healthy, message)
    }

    /// A degraded outcome.
    pub fn degraded(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Degraded, message)
    }

    /// An unhealthy outcome.
    pub fn unhealthy(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Unhealthy, message)
    }

    /// An unknown outcome.
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Unknown, message)
    }

    /// Adds an observation.
    #[must_use]
    pub fn observe(
        mut self,
        measurement: impl Into<String>,
        value: f64,
        unit: impl Into<String>,
    ) -> Self {
        self.observations.push(Observation {
            measurement: measurement.into(),
            value,
            unit: unit.into(),
        });
        self
    }

    /// Sets the duration.
    #[must_use]
    pub fn took(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }
}

mod duration_seconds {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Duration, D::Error> {
        let secs = <f64 as serde::Deserialize>::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// A health check of one component.
///
/// Each crate exposes one for its own component (the Pulumi CLI, the secret
/// store, the audit log); `lift-monitor` aggregates them without knowing what
/// they check. A check should not panic, but a health manager must survive
/// one that does.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait::async_trait]
pub trait HealthCheck: Send + Sync {
    /// A stable name, `component` or `component:measurement`.
    fn name(&self) -> &str;

    /// Runs the check.
    async fn check(&self) -> CheckOutcome;
}

#[async_trait::async_trait]
impl<T: HealthCheck + ?Sized> HealthCheck for std::sync::Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn check(&self) -> CheckOutcome {
        (**self).check().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthStatus::*;

    #[test]
    fn ordering_is_unhealthy_degraded_unknown_healthy() {
        assert!(Unhealthy > Degraded);
        assert!(Degraded > Unknown);
        assert!(Unknown > Healthy);
        assert_eq!(HealthStatus::aggregate([Healthy, Unknown]), Unknown);
        assert_eq!(
            HealthStatus::aggregate([Degraded, Unhealthy, Healthy]),
            Unhealthy
        );
        assert_eq!(HealthStatus::aggregate([Healthy]), Healthy);
        assert_eq!(HealthStatus::aggregate(Vec::new()), Unknown);
    }

    #[test]
    fn health_json_never_turns_unknown_into_pass() {
        assert_eq!(Unknown.as_health_json(), "warn");
        assert_eq!(Healthy.as_health_json(), "pass");
        assert_eq!(Unhealthy.as_health_json(), "fail");
    }

    #[test]
    fn outcomes_serialize_duration_in_seconds() {
        let outcome = CheckOutcome::degraded("fds at 85% of limit")
            .observe("open_fds", 870.0, "count")
            .took(Duration::from_millis(1500));
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["duration"], 1.5);
        assert_eq!(json["status"], "degraded");
        let back: CheckOutcome = serde_json::from_value(json).unwrap();
        assert_eq!(back, outcome);
    }

    #[tokio::test]
    async fn mock_checks_work_behind_arc() {
        let mut mock = MockHealthCheck::new();
        mock.expect_name().return_const("store".to_owned());
        mock.expect_check()
            .returning(|| CheckOutcome::healthy("ok"));
        let check: std::sync::Arc<dyn HealthCheck> = std::sync::Arc::new(mock);
        assert_eq!(check.name(), "store");
        assert_eq!(check.check().await.status, Healthy);
    }
}
