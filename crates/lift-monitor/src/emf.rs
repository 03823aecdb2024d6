//! CloudWatch Embedded Metric Format: metrics as JSON log lines that CloudWatch Logs turns
//! into metrics.
//!
//! Each document is one JSON object: an `_aws` member with `Timestamp` (milliseconds since
//! the epoch) and `CloudWatchMetrics` (`[{Namespace, Dimensions, Metrics: [{Name, Unit}]}]`),
//! the dimension values, and one member per metric holding a number or an array of numbers.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::metrics::{MetricsRegistry, Unit};

/// At most this many metrics in one EMF document.
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
/// At most this many values for one metric in one EMF document.
pub const MAX_VALUES_PER_METRIC: usize = 100;
/// At most this many dimension keys in one dimension set.
pub const MAX_DIMENSIONS: usize = 30;

/// Renders metrics as EMF documents under one namespace and one dimension set.
///
/// Invariant: every document it renders respects the EMF limits: at most
/// [`MAX_METRICS_PER_DOCUMENT`] metrics, at most [`MAX_VALUES_PER_METRIC`] values per
/// metric, at most [`MAX_DIMENSIONS`] dimensions. Larger batches are split over several
/// documents, losing no value.
///
/// ```
/// use lift_monitor::{EmfEmitter, MetricsRegistry};
///
/// # fn main() -> lift_monitor::Result<()> {
/// let metrics = MetricsRegistry::default();
/// metrics.increment("Invocations", "invocations handled", 1);
/// let emf = EmfEmitter::new("MyService")?.dimension("FunctionName", "orders")?;
/// let lines = emf.flush(&metrics, chrono::Utc::now())?;
/// assert_eq!(lines.len(), 1);
/// assert!(lines[0].contains(r#""Invocations":1"#));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmfEmitter {
    namespace: String,
    dimensions: Vec<(String, String)>,
}

impl EmfEmitter {
    /// An emitter for `namespace` (1 to 1,024 characters), with no dimensions.
    pub fn new(namespace: &str) -> Result<Self> {
        if namespace.trim().is_empty() || namespace.chars().count() > 1024 {
            return Err(Error::InvalidConfig(format!(
                "EMF namespace {namespace:?} must have 1 to 1024 characters"
            )));
        }
        Ok(EmfEmitter {
            namespace: namespace.to_owned(),
            dimensions: Vec::new(),
        })
    }

    /// Adds a dimension. Fails past [`MAX_DIMENSIONS`], on an empty key or value, on a
    /// duplicate key, or on the reserved key `_aws`.
    pub fn dimension(mut self, key: &str, value: &str) -> Result<Self> {
        if key.trim().is_empty() || value.trim().is_empty() || key == "_aws" {
            return Err(Error::InvalidConfig(format!(
                "EMF dimension {key:?}={value:?} needs a non-empty key other than _aws and a non-empty value"
            )));
        }
        if self.dimensions.iter().any(|(k, _)| k == key) {
            return Err(Error::InvalidConfig(format!(
                "EMF dimension {key:?} is set twice"
            )));
        }
        if self.dimensions.len() == MAX_DIMENSIONS {
            return Err(Error::InvalidConfig(format!(
                "EMF allows at most {MAX_DIMENSIONS} dimensions in a dimension set; {key:?} would be one more"
            )));
        }
        self.dimensions.push((key.to_owned(), value.to_owned()));
        Ok(self)
    }

    /// Renders `metrics` (name, unit, values) as EMF documents, one JSON line each.
    /// Metrics without values are left out; no metrics give no documents.
    pub fn render(
        &self,
        metrics: &[(String, Unit, Vec<f64>)],
        timestamp: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        for (name, _, _) in metrics {
            if name.is_empty() || name == "_aws" || self.dimensions.iter().any(|(k, _)| k == name) {
                return Err(Error::Render(format!(
                    "metric name {name:?} is empty or collides with a dimension or _aws; rename the metric"
                )));
            }
        }
        // Round r holds the r-th chunk of 100 values of every metric that has one.
        let rounds = metrics
            .iter()
            .map(|(_, _, values)| values.len().div_ceil(MAX_VALUES_PER_METRIC))
            .max()
            .unwrap_or(0);
        let mut documents = Vec::new();
        for round in 0..rounds {
            let chunks: Vec<(&str, Unit, &[f64])> = metrics
                .iter()
                .filter_map(|(name, unit, values)| {
                    let chunk = values.chunks(MAX_VALUES_PER_METRIC).nth(round)?;
                    Some((name.as_str(), *unit, chunk))
                })
                .collect();
            for group in chunks.chunks(MAX_METRICS_PER_DOCUMENT) {
                documents.push(self.document(group, timestamp)?);
            }
        }
        Ok(documents)
    }

    fn document(
        &self,
        metrics: &[(&str, Unit, &[f64])],
        timestamp: DateTime<Utc>,
    ) -> Result<String> {
        let mut root = Map::new();
        let definitions: Vec<Value> = metrics
            .iter()
            .map(|(name, unit, _)| json!({ "Name": name, "Unit": unit.as_cloudwatch() }))
            .collect();
        let keys: Vec<&str> = self.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        root.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": timestamp.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [keys],
                    "Metrics": definitions,
                }],
            }),
        );
        for (key, value) in &self.dimensions {
            root.insert(key.clone(), Value::String(value.clone()));
        }
        for (name, _, values) in metrics {
            let numbers: Vec<Value> = values
                .iter()
                .filter_map(|v| serde_json::Number::from_f64(*v).map(Value::Number))
                .collect();
            let value = match numbers.as_slice() {
                [single] => single.clone(),
                _ => Value::Array(numbers),
            };
            root.insert((*name).to_owned(), value);
        }
        serde_json::to_string(&Value::Object(root)).map_err(|err| Error::Render(err.to_string()))
    }

    /// Renders what `registry` has not emitted yet (counter increments since the last
    /// flush, changed gauges, new histogram values) and marks it emitted.
    pub fn flush(
        &self,
        registry: &MetricsRegistry,
        timestamp: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        self.render(&registry.take_pending(), timestamp)
    }

    /// Like [`EmfEmitter::flush`], writing one document per line to `out` (stdout in Lambda).
    /// Returns the documents written.
    pub fn flush_to<W: Write + ?Sized>(
        &self,
        registry: &MetricsRegistry,
        out: &mut W,
    ) -> Result<usize> {
        let lines = self.flush(registry, Utc::now())?;
        for line in &lines {
            writeln!(out, "{line}").map_err(|source| Error::Io {
                path: "EMF output".into(),
                source,
            })?;
        }
        out.flush().map_err(|source| Error::Io {
            path: "EMF output".into(),
            source,
        })?;
        Ok(lines.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_epoch() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_577_836_800, 0).unwrap()
    }

    fn emitter() -> EmfEmitter {
        EmfEmitter::new("lift")
            .unwrap()
            .dimension("FunctionName", "orders")
            .unwrap()
            .dimension("Environment", "prod")
            .unwrap()
    }

    #[test]
    fn renders_a_document() {
        let metrics = MetricsRegistry::default();
        metrics.increment("Invocations", "", 3);
        metrics.increment("ColdStart", "", 1);
        metrics.observe("Duration", "", Unit::Milliseconds, 12.5);
        metrics.observe("Duration", "", Unit::Milliseconds, 40.0);
        metrics.set_gauge("MemoryUsed", "", Unit::Megabytes, 48.0);
        let lines = emitter().flush(&metrics, at_epoch()).unwrap();
        assert_eq!(lines.len(), 1);
        let doc: Value = serde_json::from_str(&lines[0]).unwrap();
        insta::assert_json_snapshot!("emf_document", doc);
    }

    #[test]
    fn splits_past_100_metrics_and_100_values() {
        let mut metrics: Vec<(String, Unit, Vec<f64>)> = (0..150)
            .map(|i| (format!("M{i:03}"), Unit::Count, vec![i as f64]))
            .collect();
        metrics.push((
            "Duration".into(),
            Unit::Seconds,
            (0..250).map(f64::from).collect(),
        ));
        let lines = emitter().render(&metrics, at_epoch()).unwrap();
        let docs: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut seen_values = 0;
        let mut seen_metrics = std::collections::BTreeSet::new();
        for doc in &docs {
            let directive = &doc["_aws"]["CloudWatchMetrics"][0];
            let defs = directive["Metrics"].as_array().unwrap();
            assert!(defs.len() <= MAX_METRICS_PER_DOCUMENT);
            assert!(directive["Dimensions"][0].as_array().unwrap().len() <= MAX_DIMENSIONS);
            for def in defs {
                let name = def["Name"].as_str().unwrap();
                seen_metrics.insert(name.to_owned());
                match &doc[name] {
                    Value::Array(values) => {
                        assert!(values.len() <= MAX_VALUES_PER_METRIC);
                        if name == "Duration" {
                            seen_values += values.len();
                        }
                    }
                    Value::Number(_) if name == "Duration" => seen_values += 1,
                    Value::Number(_) => {}
                    other => panic!("unexpected value {other}"),
                }
            }
        }
        // 151 metrics in the first round (two documents), then Duration alone twice.
        assert_eq!(docs.len(), 4);
        assert_eq!(seen_metrics.len(), 151);
        assert_eq!(seen_values, 250);
        insta::assert_snapshot!(
            "emf_split_shape",
            docs.iter()
                .map(|d| {
                    let defs = d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                        .as_array()
                        .unwrap();
                    let duration = d
                        .get("Duration")
                        .map(|v| v.as_array().map_or(1, Vec::len))
                        .unwrap_or(0);
                    format!("{} metrics, Duration values: {duration}", defs.len())
                })
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    #[test]
    fn validates_namespace_dimensions_and_names() {
        assert!(EmfEmitter::new("").is_err());
        let mut e = EmfEmitter::new("ns").unwrap();
        for i in 0..MAX_DIMENSIONS {
            e = e.dimension(&format!("D{i}"), "v").unwrap();
        }
        let err = e.clone().dimension("OneTooMany", "v").unwrap_err();
        assert!(err.to_string().contains("at most 30 dimensions"));
        assert!(EmfEmitter::new("ns").unwrap().dimension("A", "").is_err());
        let err = e
            .render(&[("D1".into(), Unit::Count, vec![1.0])], at_epoch())
            .unwrap_err();
        assert!(err.to_string().contains("collides"));
        assert!(e.render(&[], at_epoch()).unwrap().is_empty());
    }

    #[test]
    fn flush_to_writes_json_lines() {
        let metrics = MetricsRegistry::default();
        metrics.increment("Errors", "", 1);
        let mut out = Vec::new();
        assert_eq!(emitter().flush_to(&metrics, &mut out).unwrap(), 1);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), 1);
        assert_eq!(emitter().flush_to(&metrics, &mut Vec::new()).unwrap(), 0);
    }
}
