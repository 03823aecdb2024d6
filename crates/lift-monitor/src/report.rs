//! Health reports and their renderings: lift's JSON, `application/health+json`, and a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use lift_core::{CheckOutcome, HealthStatus};

use crate::group::Group;
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
    /// What was measured (`host web-1, 8 cores`, `process 4242 (api)`), when the
    /// report is about something other than the process that ran the checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
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
    /// Per-observation statuses and when the figures were observed, from the checks of
    /// this crate; `None` for checks that only return a `CheckOutcome`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<CheckDetails>,
}

/// What a check of this crate says beyond its `CheckOutcome`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct CheckDetails {
    /// When the figures were measured (the snapshot's time), which can be earlier than
    /// when the check ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
    /// The health+json `componentType`: `system`, `component` or `datastore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_type: Option<String>,
    /// One verdict per observation of the outcome, in the same order.
    pub observations: Vec<Verdict>,
    /// The worst parts of the check that measured nothing (a path that cannot be
    /// stat'ed), when they are not healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmeasured: Option<Verdict>,
}

/// The status of one observation, and what was found when it is not healthy.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Verdict {
    /// The status.
    pub status: HealthStatus,
    /// The sentence about this observation.
    pub message: String,
}

impl Verdict {
    /// A verdict.
    pub fn new(status: HealthStatus, message: String) -> Self {
        Verdict { status, message }
    }
}

/// A health report in the IETF draft format `application/health+json`
/// (draft-inadarei-api-health-check).
///
/// `checks` is keyed `component:measurement`; an observation named `measurement@instance`
/// is keyed `component:measurement` with `componentId` set to the instance, so that one key
/// lists every instance (every disk path, every endpoint). A component name never holds a
/// `:` (a check named `audit:chain` is component `audit`, measurement `chain`), and every
/// entry carries its own status and output.
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
    /// The checks' observations, keyed `component:measurement` (the draft makes them
    /// optional: a document with only a status has none).
    #[serde(default)]
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
    /// `pass`, `warn` or `fail`: this entry's own status. Absent on a value the check did
    /// not judge on its own (a check that reports one verdict for all its values): the
    /// entry of the check without a value then carries the check's status and output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `system`, `component` or `datastore`, when the check says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_type: Option<String>,
    /// When the value was observed (RFC 3339): the time of the sample it comes from.
    /// lift always writes it; another service's document may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// What was found about this entry when it did not pass.
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
            let details = result.details.as_ref();
            let time = details
                .and_then(|d| d.observed_at)
                .unwrap_or(result.checked_at)
                .to_rfc3339_opts(SecondsFormat::Millis, true);
            let component_type = details.and_then(|d| d.component_type.clone());
            if outcome.status != HealthStatus::Healthy {
                failing.push(format!("{}: {}", result.name, outcome.message));
            }
            let (component, sub) = match result.name.split_once(':') {
                Some((component, rest)) => (component, Some(rest.replace(':', "_"))),
                None => (result.name.as_str(), None),
            };
            let key = |measurement: Option<&str>| {
                let measurement = match (&sub, measurement) {
                    (Some(sub), Some(m)) => Some(format!("{sub}.{m}")),
                    (Some(sub), None) => Some(sub.clone()),
                    (None, m) => m.map(str::to_owned),
                };
                match measurement {
                    Some(m) => format!("{component}:{}", m.replace(':', "_")),
                    None => component.to_owned(),
                }
            };
            // `None`: the check's own verdict, on the entry without a value.
            let entry = |verdict: Option<&Verdict>,
                         component_id: Option<String>,
                         value: Option<(f64, &str)>| {
                let judged = match (verdict, value) {
                    (Some(v), _) => Some((v.status, v.message.as_str())),
                    (None, None) => Some((outcome.status, outcome.message.as_str())),
                    // A value the check did not judge on its own: giving it the check's
                    // status and output would blame it for another value's problem.
                    (None, Some(_)) => None,
                };
                HealthJsonCheck {
                    component_id,
                    component_type: component_type.clone(),
                    observed_value: value.and_then(|(v, _)| v.is_finite().then_some(v)),
                    observed_unit: value.map(|(_, u)| u.to_owned()),
                    status: judged.map(|(status, _)| status.as_health_json().to_owned()),
                    time: Some(time.clone()),
                    output: judged
                        .filter(|(status, _)| *status != HealthStatus::Healthy)
                        .map(|(_, message)| message.to_owned()),
                }
            };
            let judged_alone =
                details.is_some_and(|d| d.observations.len() >= outcome.observations.len());
            if outcome.observations.is_empty() || !judged_alone {
                checks
                    .entry(key(None))
                    .or_default()
                    .push(entry(None, None, None));
            }
            for (i, observation) in outcome.observations.iter().enumerate() {
                let (measurement, instance) = match observation.measurement.split_once('@') {
                    Some((m, i)) => (m, Some(i.to_owned())),
                    None => (observation.measurement.as_str(), None),
                };
                let verdict = details.and_then(|d| d.observations.get(i));
                checks
                    .entry(key(Some(measurement)))
                    .or_default()
                    .push(entry(
                        verdict,
                        instance,
                        Some((observation.value, &observation.unit)),
                    ));
            }
            if let Some(unmeasured) = details.and_then(|d| d.unmeasured.as_ref())
                && !outcome.observations.is_empty()
            {
                checks
                    .entry(key(None))
                    .or_default()
                    .push(entry(Some(unmeasured), None, None));
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
            .map(|c| shown(&c.name, NAME_CHARS).chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = String::new();
        // The target and the messages can hold what another program chose (a process's
        // name, a path, an error's text): shown escaped.
        if let Some(target) = &self.target {
            let _ = writeln!(out, "{}", shown(target, TEXT_CHARS));
        }
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
                shown(&result.name, NAME_CHARS),
                time,
                shown(&outcome.message, TEXT_CHARS)
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

impl HealthJson {
    /// The status as lift's: `pass` is healthy, `warn` degraded (lift reports an
    /// unknown status as `warn` too), `fail` unhealthy, anything else unknown.
    pub fn health_status(&self) -> HealthStatus {
        status_of(&self.status)
    }

    /// Renders as a table for people: one row per entry, with its value and output, and
    /// a summary line naming `target`. With `color`, statuses are coloured.
    pub fn render_table(&self, target: &str, color: bool) -> String {
        let rows: Vec<(String, &HealthJsonCheck)> = self
            .checks
            .iter()
            .flat_map(|(key, entries)| {
                entries.iter().map(move |entry| {
                    let name = match &entry.component_id {
                        Some(id) => format!("{}@{}", shown(key, NAME_CHARS), shown(id, NAME_CHARS)),
                        None => shown(key, NAME_CHARS),
                    };
                    (name, entry)
                })
            })
            .take(TABLE_ROWS)
            .collect();
        let entries: usize = self.checks.values().map(Vec::len).sum();
        let name_width = rows
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = String::new();
        let _ = writeln!(out, "{}", shown(target, TEXT_CHARS));
        let _ = writeln!(
            out,
            "{:<9}  {:<name_width$}  {:>12}  OUTPUT",
            "STATUS", "CHECK", "VALUE"
        );
        for (name, entry) in &rows {
            // An entry without a status is a value its check judged only as a whole.
            let shown_status = shown(entry.status.as_deref().unwrap_or("-"), STATUS_CHARS);
            let status = status_of(&shown_status);
            let value = match (entry.observed_value, entry.observed_unit.as_deref()) {
                (Some(v), Some(unit)) => shown(&format_value(v, unit), STATUS_CHARS),
                (Some(v), None) => format!("{v}"),
                _ => String::new(),
            };
            let row = format!(
                "{}  {:<name_width$}  {:>12}  {}",
                match &entry.status {
                    Some(_) => paint(status, &format!("{shown_status:<9}"), color),
                    None => format!("{shown_status:<9}"),
                },
                name,
                value,
                shown(entry.output.as_deref().unwrap_or(""), TEXT_CHARS)
            );
            let _ = writeln!(out, "{}", row.trim_end());
        }
        if entries > rows.len() {
            let _ = writeln!(
                out,
                "... {} more entries not shown (see --health-json)",
                entries - rows.len()
            );
        }
        let status = self.health_status();
        let _ = write!(
            out,
            "overall: {} ({} entries",
            paint(status, &shown(&self.status, STATUS_CHARS), color),
            entries
        );
        if let Some(output) = &self.output {
            let _ = write!(out, "; {}", shown(output, TEXT_CHARS));
        }
        out.push_str(")\n");
        out
    }
}

/// At most this many characters of a check's name (and of its component id) are shown.
const NAME_CHARS: usize = 64;
/// At most this many characters of a status or a value are shown.
const STATUS_CHARS: usize = 24;
/// At most this many characters of an output, the summary or the target are shown.
const TEXT_CHARS: usize = 400;
/// At most this many entries are shown in a table.
const TABLE_ROWS: usize = 1_000;

/// `text` from another program made safe to print: control characters (escape
/// sequences, carriage returns, new lines) are escaped as `\u{1b}` and the like, so that
/// a service cannot move the cursor, colour the terminal or forge table rows; past
/// `max` characters it is cut, ending in `...`.
pub(crate) fn shown(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 8));
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A health+json status word as lift's status, in any letter case (`DOWN` and `UP` are
/// Spring Boot's): the draft's `pass`, `warn` and `fail`, their aliases `ok`, `up` and
/// `down`, and the words services commonly use for them.
fn status_of(status: &str) -> HealthStatus {
    const HEALTHY: [&str; 4] = ["pass", "ok", "up", "healthy"];
    const DEGRADED: [&str; 3] = ["warn", "warning", "degraded"];
    const UNHEALTHY: [&str; 5] = ["fail", "error", "down", "unhealthy", "critical"];
    let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(status.trim()));
    if is(&HEALTHY) {
        HealthStatus::Healthy
    } else if is(&DEGRADED) {
        HealthStatus::Degraded
    } else if is(&UNHEALTHY) {
        HealthStatus::Unhealthy
    } else {
        HealthStatus::Unknown
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
                details: None,
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
                details: None,
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
                details: None,
                outcome: CheckOutcome::unknown("not configured: no endpoints to check"),
            },
            CheckResult {
                name: "audit".into(),
                checked_at: at(1),
                cached: false,
                details: None,
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
            target: None,
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

    /// Two disks, one at 40 % and one at 85 %: each entry says its own status and its
    /// own path's sentence, and the time is when the sample was taken.
    /// A check that judges only as a whole (no per-value verdicts) does not hand its
    /// status and output to each value: a path at 40 % is not `warn` because another
    /// path is at 85 %. The check's verdict goes on its entry without a value.
    #[test]
    fn values_of_a_check_judged_as_a_whole_carry_no_status() {
        let doc = sample_report().to_health_json(&ServiceInfo::default());
        for key in ["disk:utilization", "disk:available"] {
            for entry in &doc.checks[key] {
                assert_eq!(entry.status, None, "{key}: {entry:?}");
                assert_eq!(entry.output, None, "{key}: {entry:?}");
                assert!(entry.observed_value.is_some());
            }
        }
        let disk = &doc.checks["disk"];
        assert_eq!(disk.len(), 1);
        assert_eq!(disk[0].status.as_deref(), Some("warn"));
        assert!(
            disk[0]
                .output
                .as_deref()
                .is_some_and(|o| o.starts_with("/tmp: 85.0% used"))
        );
        // A passing check judged as a whole: its entry passes, its values carry no verdict.
        assert_eq!(doc.checks["memory"][0].status.as_deref(), Some("pass"));
        assert_eq!(doc.checks["memory:rss"][0].status, None);
        // The table shows such a value with a dash, not as unknown.
        let table = doc.render_table("orders-api", false);
        let row = table
            .lines()
            .find(|l| l.contains("disk:utilization@/srv"))
            .unwrap();
        assert!(row.starts_with("-  "), "{row}");
        assert!(!row.contains("/tmp"), "{row}");
    }

    #[tokio::test]
    async fn health_json_entries_carry_their_own_status_and_time() {
        use crate::snapshot::DiskStats;
        use std::sync::Arc;
        let mut snapshot = crate::Snapshot::empty();
        snapshot.sequence = 3;
        snapshot.taken_at = at(-30);
        let disk = |path: &str, used: u64| DiskStats {
            path: Arc::from(path),
            total_bytes: Some(1000),
            free_bytes: Some(1000 - used),
            available_bytes: Some(1000 - used),
        };
        snapshot.disks = vec![disk("/srv", 400), disk("/tmp", 850)];
        let monitor = crate::Monitor::fixed(snapshot);
        let manager = crate::HealthManager::default();
        manager
            .register(crate::DiskCheck::new(monitor, crate::DiskCheck::DEFAULT))
            .unwrap();
        manager
            .register(crate::FnCheck::new("audit:chain", || {
                CheckOutcome::healthy("intact").observe("records", 10.0, "count")
            }))
            .unwrap();
        let report = manager.check(Group::All).await;
        let doc = report.to_health_json(&ServiceInfo::default());
        let entries = &doc.checks["disk:utilization"];
        let srv = entries
            .iter()
            .find(|e| e.component_id.as_deref() == Some("/srv"))
            .unwrap();
        let tmp = entries
            .iter()
            .find(|e| e.component_id.as_deref() == Some("/tmp"))
            .unwrap();
        assert_eq!(srv.status.as_deref(), Some("pass"));
        assert_eq!(srv.output, None);
        assert_eq!(tmp.status.as_deref(), Some("warn"));
        let output = tmp.output.as_deref().unwrap();
        assert!(output.starts_with("/tmp: 85.0% used"), "{output}");
        assert!(!output.contains("/srv"));
        // `available@/srv` is not judged itself: it shares its path's verdict.
        let available = &doc.checks["disk:available"];
        assert_eq!(
            available
                .iter()
                .find(|e| e.component_id.as_deref() == Some("/srv"))
                .unwrap()
                .status
                .as_deref(),
            Some("pass")
        );
        assert_eq!(
            available
                .iter()
                .find(|e| e.component_id.as_deref() == Some("/tmp"))
                .unwrap()
                .status
                .as_deref(),
            Some("warn")
        );
        assert_eq!(
            srv.time.as_deref(),
            Some("2019-12-31T23:59:30.000Z"),
            "the sample's time, not the check's"
        );
        assert_eq!(srv.component_type.as_deref(), Some("system"));
        // No component name holds a ':'.
        assert!(
            doc.checks.contains_key("audit:chain.records"),
            "{:?}",
            doc.checks.keys()
        );
        assert!(doc.checks.keys().all(|k| k.matches(':').count() <= 1));
        assert_eq!(doc.status, "warn");
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

    /// Another service's document is shown safely: no control character reaches the
    /// terminal, long names are cut (a 70,000-character name made the padding panic),
    /// and the table stays bounded however many entries the document has.
    #[test]
    fn a_hostile_document_renders_bounded_and_escaped() {
        let long = "a".repeat(70_000);
        let mut checks = BTreeMap::new();
        let entry = |status: &str, output: &str| HealthJsonCheck {
            component_id: Some("\x1b[1mid".to_owned()),
            observed_value: None,
            observed_unit: None,
            status: Some(status.to_owned()),
            component_type: None,
            time: None,
            output: Some(output.to_owned()),
        };
        checks.insert(long.clone(), vec![entry("pass", "fine")]);
        checks.insert(
            "db:conn".to_owned(),
            (0..5_000)
                .map(|_| {
                    entry(
                        "\x1b[5mfail",
                        &"x\r\nhealthy  forged row\x1b[0m".repeat(100),
                    )
                })
                .collect(),
        );
        let doc = HealthJson {
            status: "FAIL".to_owned(),
            version: None,
            service_id: None,
            description: None,
            output: Some("\x1b[31mRED\x1b[0m\rOVERWRITE".to_owned()),
            checks,
        };
        let table = doc.render_table("service http://127.0.0.1:1/health (HTTP 200)", false);
        assert!(
            !table.chars().any(|c| c.is_control() && c != '\n'),
            "{table:.400}"
        );
        assert_eq!(table.lines().filter(|l| l.contains("forged")).count(), 999);
        assert!(table.contains("... 4001 more entries not shown"));
        assert!(table.contains(&format!("{}...@\\u{{1b}}[1mid", "a".repeat(64))));
        assert!(table.lines().all(|line| line.chars().count() < 1_000));
        assert!(
            table.ends_with("overall: FAIL (5001 entries; \\u{1b}[31mRED\\u{1b}[0m\\rOVERWRITE)\n")
        );
        assert_eq!(doc.health_status(), HealthStatus::Unhealthy);
    }

    #[test]
    fn status_words_are_read_in_any_case() {
        for (word, status) in [
            ("pass", HealthStatus::Healthy),
            ("UP", HealthStatus::Healthy),
            ("Ok", HealthStatus::Healthy),
            ("WARN", HealthStatus::Degraded),
            ("degraded", HealthStatus::Degraded),
            ("DOWN", HealthStatus::Unhealthy),
            ("Fail", HealthStatus::Unhealthy),
            ("unhealthy", HealthStatus::Unhealthy),
            ("maybe", HealthStatus::Unknown),
        ] {
            assert_eq!(status_of(word), status, "{word}");
        }
    }

    /// The draft requires only `status`: a document without checks, or an entry without
    /// a time, is read.
    #[test]
    fn minimal_documents_are_read() {
        let doc: HealthJson = serde_json::from_str(r#"{"status":"pass"}"#).unwrap();
        assert!(doc.checks.is_empty());
        let doc: HealthJson =
            serde_json::from_str(r#"{"status":"fail","checks":{"db:conn":[{"status":"fail"}]}}"#)
                .unwrap();
        assert_eq!(doc.checks["db:conn"][0].time, None);
        assert_eq!(doc.health_status(), HealthStatus::Unhealthy);
    }
}
