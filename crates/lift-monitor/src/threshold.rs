//! Warn and fail levels for a measured value.

use lift_core::HealthStatus;

/// A warn level (degraded) and a fail level (unhealthy) for a value where higher is worse,
/// or, built with [`Threshold::below`], where lower is worse.
///
/// Invariant: `warn` is not past `fail` in the bad direction.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Threshold {
    /// At or past this value the status is degraded.
    pub warn: f64,
    /// At or past this value the status is unhealthy.
    pub fail: f64,
    /// Whether lower values are worse.
    pub lower_is_worse: bool,
}

impl Threshold {
    /// Higher is worse: degraded at `warn` or above, unhealthy at `fail` or above.
    /// `warn` greater than `fail` is clamped to `fail`.
    pub const fn above(warn: f64, fail: f64) -> Self {
        Threshold {
            warn: if warn > fail { fail } else { warn },
            fail,
            lower_is_worse: false,
        }
    }

    /// Lower is worse: degraded at `warn` or below, unhealthy at `fail` or below.
    /// `warn` lower than `fail` is clamped to `fail`.
    pub const fn below(warn: f64, fail: f64) -> Self {
        Threshold {
            warn: if warn < fail { fail } else { warn },
            fail,
            lower_is_worse: true,
        }
    }

    /// The status of `value`.
    pub fn status(&self, value: f64) -> HealthStatus {
        let past = |level: f64| {
            if self.lower_is_worse {
                value <= level
            } else {
                value >= level
            }
        };
        if value.is_nan() {
            HealthStatus::Unknown
        } else if past(self.fail) {
            HealthStatus::Unhealthy
        } else if past(self.warn) {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthStatus::*;
    use proptest::prelude::*;

    #[test]
    fn levels() {
        let t = Threshold::above(80.0, 95.0);
        assert_eq!(t.status(10.0), Healthy);
        assert_eq!(t.status(80.0), Degraded);
        assert_eq!(t.status(95.0), Unhealthy);
        assert_eq!(t.status(f64::NAN), Unknown);
        let t = Threshold::below(3600.0, 600.0);
        assert_eq!(t.status(7200.0), Healthy);
        assert_eq!(t.status(1000.0), Degraded);
        assert_eq!(t.status(60.0), Unhealthy);
    }

    proptest! {
        #[test]
        fn status_never_improves_as_the_value_worsens(warn in 0.0..100.0f64, fail in 0.0..100.0f64, a in 0.0..100.0f64, b in 0.0..100.0f64) {
            let t = Threshold::above(warn, fail);
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            prop_assert!(t.status(lo) <= t.status(hi));
            let t = Threshold::below(warn, fail);
            prop_assert!(t.status(hi) <= t.status(lo));
        }
    }
}
