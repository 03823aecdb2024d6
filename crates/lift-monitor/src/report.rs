//! Health reports and their renderings: lift's JSON, `application/health+json`, and a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use lift_core::{CheckOutcome, HealthStatus};

use crate::manager::Group;
use crate::units::{format_seconds, format_value};

/// The media type of [`HealthJson`] documents.
pub const HEALTH_JSON_CONTENT_TYPE: &str = "application/health+json";

/// The result of one run of a [`crate::HealthManager`]: lift's JSON document for health
/// (`lift health --json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct HealthReport {
    /// The worst status of the checks; unknown when there are none.
    pub status: HealthStatus,
    /// The group that was run.
    pub group: Group,
    /// When the run started.
    pub checked_at: DateTime<Utc>,
    /// How long the run took, in seconds.
    pub duration_seconds: f64,
    /// One result per check, in registration order.
    pub checks: Vec<CheckResult>,
}

/// One check's result within a [`HealthReport`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// When the outcome was produced (earlier than the report's time when cached).
    pub checked_at: DateTime<Utc>,
    /// Whether the outcome came from the cache.
    pub cached: bool,
    /// The outcome.
    #[serde(flatten)]
    pub outcome: CheckOutcome,
}

/// A health report in the IETF draft format `application/health+json`
/// (draft-inadarei-api-health-check).
///
/// `checks` is keyed `component:measurement`; an observation named `measurement@instance`
/// is keyed `component:measurement` with `componentId` set to the instance, so that one key
/// lists every instance (every disk path, every endpoint).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthJson {
    /// `pass`, `warn` or `fail`.
    pub status: String,
    /// The service's version, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The service's id, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// A human description of the service, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The messages of the checks that did not pass; absent on pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The checks' observations, keyed `component:measurement`.
    pub checks: BTreeMap<String, Vec<HealthJsonCheck>>,
}

/// One entry of [`HealthJson::checks`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthJsonCheck {
    /// The instance measured (a disk path, an endpoint), when there are several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_id: Option<String>,
    /// The measured value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_value: Option<f64>,
    /// The value's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_unit: Option<String>,
    /// `pass`, `warn` or `fail`: the status of the check the value belongs to.
    pub status: String,
    /// When the value was observed (RFC 3339).
    pub time: String,
    /// The check's message when it did not pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// Who the report is about, for [`HealthReport::to_health_json`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceInfo {
    /// The service's version.
    pub version: Option<String>,
    /// The service's id.
    pub service_id: Option<String>,
    /// A description.
    pub description: Option<String>,
}

impl HealthReport {
    /// Whether the status calls for HTTP 503 (unhealthy) rather than 200.
    pub fn http_status(&self) -> u16 {
        if self.status == HealthStatus::Unhealthy {
            503
        } else {
            200
        }
    }

    /// Renders as `application/health+json`.
    pub fn to_health_json(&self, service: &ServiceInfo) -> HealthJson {
        let mut checks: BTreeMap<String, Vec<HealthJsonCheck>> = BTreeMap::new();
        let mut failing = Vec::new();
        for result in &self.checks {
            let outcome = &result.outcome;
            let status = outcome.status.as_health_json().to_owned();
            let time = result
                .checked_at
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            let output = (outcome.status != HealthStatus::Healthy).then(|| outcome.message.clone());
            if let Some(message) = &output {
                failing.push(format!("{}: {message}", result.name));
            }
            if outcome.observations.is_empty() {
                checks
                    .entry(result.name.clone())
                    .or_default()
                    .push(HealthJsonCheck {
                        component_id: None,
                        observed_value: None,
                        observed_unit: None,
                        status: status.clone(),
                        time: time.clone(),
                        output: output.clone(),
                    });
            }
            for observation in &outcome.observations {
                let (measurement, instance) = match observation.measurement.split_once('@') {
                    Some((m, i)) => (m, Some(i.to_owned())),
                    None => (observation.measurement.as_str(), None),
                };
                checks
                    .entry(format!("{}:{measurement}", result.name))
                    .or_default()
                    .push(HealthJsonCheck {
                        component_id: instance,
                        observed_value: observation.value.is_finite().then_some(observation.value),
                        observed_unit: Some(observation.unit.clone()),
                        status: status.clone(),
                        time: time.clone(),
                        output: output.clone(),
                    });
            }
        }
        HealthJson {
            status: self.status.as_health_json().to_owned(),
            version: service.version.clone(),
            service_id: service.service_id.clone(),
            description: service.description.clone(),
            output: (!failing.is_empty()).then(|| failing.join("; ")),
            checks,
        }
    }

    /// Renders as a table for people: one row per check, its observations beneath it,
    /// and a summary line. With `color`, statuses are coloured with ANSI escapes.
    pub fn render_table(&self, color: bool) -> String {
        let name_width = self
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<9}  {:<name_width$}  {:>9}  MESSAGE",
            "STATUS", "CHECK", "TIME"
        );
        for result in &self.checks {
            let outcome = &result.outcome;
            let mut time = format_seconds(outcome.duration.as_secs_f64());
            if result.cached {
                time.push('*');
            }
            let _ = writeln!(
                out,
                "{}  {:<name_width$}  {:>9}  {}",
                paint(
                    outcome.status,
                    &format!("{:<9}", outcome.status.as_str()),
                    color
                ),
                result.name,
                time,
                outcome.message
            );
            for observation in &outcome.observations {
                let _ = writeln!(
                    out,
                    "{:<9}  {:<name_width$}  {:>9}  {} = {}",
                    "",
                    "",
                    "",
                    observation.measurement,
                    format_value(observation.value, &observation.unit)
                );
            }
        }
        let cached = self.checks.iter().filter(|c| c.cached).count();
        let _ = write!(
            out,
            "overall: {} ({} checks in {}",
            paint(self.status, self.status.as_str(), color),
            self.checks.len(),
            format_seconds(self.duration_seconds)
        );
        if cached > 0 {
            let _ = write!(out, ", {cached} cached*");
        }
        out.push_str(")\n");
        out
    }
}

fn paint(status: HealthStatus, text: &str, color: bool) -> String {
    if !color {
        return text.to_owned();
    }
    let code = match status {
        HealthStatus::Healthy => "32",
        HealthStatus::Unknown => "36",
        HealthStatus::Degraded => "33",
        HealthStatus::Unhealthy => "1;31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_577_836_800 + secs, 0).unwrap()
    }

    pub(crate) fn sample_report() -> HealthReport {
        let checks = vec![
            CheckResult {
                name: "memory".into(),
                checked_at: at(0),
                cached: false,
                outcome: CheckOutcome::healthy(
                    "rss 48.0 MiB is 9.4% of the lambda memory size 512.0 MiB",
                )
                .observe("rss", 50_331_648.0, "bytes")
                .observe("limit", 536_870_912.0, "bytes")
                .observe("utilization", 9.375, "percent")
                .took(Duration::from_micros(40)),
            },
            CheckResult {
                name: "disk".into(),
                checked_at: at(0),
                cached: true,
                outcome: CheckOutcome::degraded(
                    "/tmp: 85.0% used, 76.8 MiB of 512.0 MiB available (warn level 80)",
                )
                .observe("utilization@/srv", 40.0, "percent")
                .observe("available@/srv", 6_442_450_944.0, "bytes")
                .observe("utilization@/tmp", 85.0, "percent")
                .observe("available@/tmp", 80_530_636.8_f64.round(), "bytes")
                .took(Duration::from_micros(25)),
            },
            CheckResult {
                name: "network".into(),
                checked_at: at(1),
                cached: false,
                outcome: CheckOutcome::unknown("not configured: no endpoints to check"),
            },
            CheckResult {
                name: "audit".into(),
                checked_at: at(1),
                cached: false,
                outcome: CheckOutcome::unhealthy("audit log is not writable: permission denied")
                    .took(Duration::from_millis(3)),
            },
        ];
        HealthReport {
            status: HealthStatus::aggregate(checks.iter().map(|c| c.outcome.status)),
            group: Group::All,
            checked_at: at(0),
            duration_seconds: 0.0042,
            checks,
        }
    }

    #[test]
    fn renders_lift_json() {
        insta::assert_json_snapshot!("lift_json", sample_report());
    }

    #[test]
    fn renders_health_json() {
        let service = ServiceInfo {
            version: Some("1.4.2".into()),
            service_id: Some("orders-api".into()),
            description: None,
        };
        let doc = sample_report().to_health_json(&service);
        assert_eq!(doc.status, "fail");
        assert_eq!(doc.checks["disk:utilization"].len(), 2);
        assert_eq!(
            doc.checks["disk:utilization"][1].component_id.as_deref(),
            Some("/tmp")
        );
        assert!(doc.checks["memory:rss"][0].output.is_none());
        insta::assert_json_snapshot!("health_json", doc);
    }

    #[test]
    fn renders_a_table() {
        insta::assert_snapshot!("table", sample_report().render_table(false));
        let colored = sample_report().render_table(true);
        assert!(colored.contains("\x1b[1;31munhealthy"));
    }

    #[test]
    fn lift_json_round_trips() {
        let report = sample_report();
        let json = serde_json::to_string(&report).unwrap();
        let back: HealthReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        assert_eq!(report.http_status(), 503);
    }
}
