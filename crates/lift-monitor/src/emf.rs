//! CloudWatch Embedded Metric Format: metrics as JSON log lines that CloudWatch Logs turns
//! into metrics.
//!
//! Each document is one JSON object: an `_aws` member with `Timestamp` (milliseconds since
//! the epoch) and `CloudWatchMetrics` (`[{Namespace, Dimensions, Metrics: [{Name, Unit}]}]`),
//! the dimension values, and one member per metric holding a number or an array of numbers.

use std::io::Write;

use chrono::{DateTime, Utc};
#[cfg(test)]
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::metrics::{MetricsRegistry, Unit};

/// At most this many metrics in one EMF document.
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
/// At most this many values for one metric in one EMF document.
pub const MAX_VALUES_PER_METRIC: usize = 100;
/// At most this many dimension keys in one dimension set.
pub const MAX_DIMENSIONS: usize = 30;
/// The longest namespace, metric name and dimension name CloudWatch accepts.
pub const MAX_NAME_LENGTH: usize = 255;
/// The longest dimension value CloudWatch accepts.
pub const MAX_DIMENSION_VALUE_LENGTH: usize = 1024;

/// Checks a CloudWatch name or value: `min..=max` characters, printable ASCII only
/// (CloudWatch drops a document with anything else), at least one non-space, and (for
/// names) not starting with `:`.
fn validate(what: &str, text: &str, max: usize, name: bool) -> Result<()> {
    let problem = if text.trim().is_empty() {
        Some("must have at least one non-space character".to_owned())
    } else if text.len() > max {
        Some(format!(
            "has {} characters; at most {max} are allowed",
            text.len()
        ))
    } else if let Some(c) = text.chars().find(|c| !c.is_ascii() || c.is_ascii_control()) {
        Some(format!(
            "contains {c:?}; CloudWatch accepts printable ASCII only"
        ))
    } else if name && text.starts_with(':') {
        Some("must not start with ':'".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::InvalidConfig(format!(
            "EMF {what} {text:?} {problem}"
        ))),
        None => Ok(()),
    }
}

/// Checks a metric name the way CloudWatch does.
pub(crate) fn validate_metric_name(name: &str) -> Result<()> {
    validate("metric name", name, MAX_NAME_LENGTH, false)
}

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
    high_resolution: Vec<String>,
}

impl EmfEmitter {
    /// An emitter for `namespace`, with no dimensions.
    ///
    /// Fails unless the namespace has 1 to 255 printable ASCII characters and does not
    /// start with `:`, as CloudWatch requires.
    pub fn new(namespace: &str) -> Result<Self> {
        validate("namespace", namespace, MAX_NAME_LENGTH, true)?;
        if namespace.starts_with("AWS/") {
            return Err(Error::InvalidConfig(format!(
                "EMF namespace {namespace:?} is reserved: CloudWatch keeps namespaces starting with AWS/ for AWS services; choose another, such as your team or product name"
            )));
        }
        Ok(EmfEmitter {
            namespace: namespace.to_owned(),
            dimensions: Vec::new(),
            high_resolution: Vec::new(),
        })
    }

    /// Adds a dimension. Fails past [`MAX_DIMENSIONS`], on a duplicate key, on the
    /// reserved key `_aws`, and on a key or value CloudWatch would reject: a key of 1 to
    /// 255 and a value of 1 to 1,024 printable ASCII characters (a value outside ASCII
    /// would make CloudWatch drop every metric of the document).
    pub fn dimension(mut self, key: &str, value: &str) -> Result<Self> {
        validate("dimension name", key, MAX_NAME_LENGTH, true)?;
        validate(
            &format!("value of dimension {key}"),
            value,
            MAX_DIMENSION_VALUE_LENGTH,
            false,
        )?;
        if key == "_aws" {
            return Err(Error::InvalidConfig(
                "EMF dimension name _aws is reserved for the metadata".into(),
            ));
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

    /// Stores `metric` at high resolution (`StorageResolution` 1: one-second
    /// granularity, at CloudWatch's high-resolution price); others keep the standard 60.
    pub fn high_resolution(mut self, metric: &str) -> Result<Self> {
        validate_metric_name(metric)?;
        if !self.high_resolution.iter().any(|m| m == metric) {
            self.high_resolution.push(metric.to_owned());
        }
        Ok(self)
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Renders `metrics` (name, unit, values) as EMF documents, one JSON line each.
    ///
    /// A metric CloudWatch would reject (a name it does not accept, one that collides with
    /// a dimension or `_aws`) is left out with a warning, and the others are emitted.
    /// Non-finite values are left out, and a metric left without values is not emitted:
    /// a document never holds an empty value array. No metrics give no documents.
    pub fn render(
        &self,
        metrics: &[(String, Unit, Vec<f64>)],
        timestamp: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        self.render_with(metrics, timestamp, &[])
    }

    /// Like [`EmfEmitter::render`], adding `properties` (such as `function_request_id`)
    /// to every document as metadata: searchable in CloudWatch Logs, not dimensions.
    pub fn render_with(
        &self,
        metrics: &[(String, Unit, Vec<f64>)],
        timestamp: DateTime<Utc>,
        properties: &[(&str, &str)],
    ) -> Result<Vec<String>> {
        self.render_parts(
            metrics
                .iter()
                .map(|(name, unit, values)| (name.as_str(), *unit, values.as_slice())),
            timestamp,
            properties,
        )
    }

    /// [`EmfEmitter::render_with`] over borrowed metrics.
    pub(crate) fn render_parts<'m>(
        &self,
        metrics: impl Iterator<Item = (&'m str, Unit, &'m [f64])>,
        timestamp: DateTime<Utc>,
        properties: &[(&str, &str)],
    ) -> Result<Vec<String>> {
        let mut kept: Vec<(&str, Unit, Vec<f64>)> = Vec::new();
        for (name, unit, values) in metrics {
            if let Err(err) = validate_metric_name(name) {
                tracing::warn!(metric = %name, error = %err, "metric left out of EMF");
                continue;
            }
            if name == "_aws"
                || self.dimensions.iter().any(|(k, _)| k == name)
                || properties.iter().any(|(k, _)| *k == name)
            {
                tracing::warn!(
                    metric = %name,
                    "metric left out of EMF: its name collides with a dimension, a property or _aws"
                );
                continue;
            }
            let values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
            if values.is_empty() {
                continue;
            }
            kept.push((name, unit, values));
        }
        // Round r holds the r-th chunk of 100 values of every metric that has one.
        let rounds = kept
            .iter()
            .map(|(_, _, values)| values.len().div_ceil(MAX_VALUES_PER_METRIC))
            .max()
            .unwrap_or(0);
        let mut documents = Vec::new();
        for round in 0..rounds {
            let chunks: Vec<(&str, Unit, &[f64])> = kept
                .iter()
                .filter_map(|(name, unit, values)| {
                    let chunk = values.chunks(MAX_VALUES_PER_METRIC).nth(round)?;
                    Some((*name, *unit, chunk))
                })
                .collect();
            for group in chunks.chunks(MAX_METRICS_PER_DOCUMENT) {
                documents.push(self.document(group, timestamp, properties)?);
            }
        }
        Ok(documents)
    }

    /// Whether a document can hold the metric `name` next to `properties`: CloudWatch
    /// accepts the name, and it collides with no dimension, no property and not `_aws`.
    #[cfg(feature = "lambda")]
    pub(crate) fn accepts(&self, name: &str, properties: &[(&str, &str)]) -> bool {
        validate_metric_name(name).is_ok()
            && name != "_aws"
            && !self.dimensions.iter().any(|(k, _)| k == name)
            && !properties.iter().any(|(k, _)| *k == name)
    }

    /// Whether a document writes the property `key`: not `_aws`, and not a dimension's
    /// name (the dimension wins).
    pub(crate) fn writes_property(&self, key: &str) -> bool {
        key != "_aws" && !self.dimensions.iter().any(|(k, _)| k == key)
    }

    /// Writes one document straight into a buffer: strings and numbers through
    /// serde_json's own writers (escaping, shortest round-trip floats), with no
    /// intermediate `Value` tree to allocate and free on every invocation.
    fn document(
        &self,
        metrics: &[(&str, Unit, &[f64])],
        timestamp: DateTime<Utc>,
        properties: &[(&str, &str)],
    ) -> Result<String> {
        let mut out: Vec<u8> = Vec::with_capacity(384 + metrics.len() * 64);
        write_timestamp(&mut out, timestamp)?;
        self.write_head(
            metrics.iter().map(|(name, unit, _)| (*name, *unit)),
            &mut out,
        )?;
        self.write_properties(properties, &mut out)?;
        for (name, _, values) in metrics {
            write_name(name, &mut out)?;
            write_values(values, &mut out)?;
        }
        out.push(b'}');
        String::from_utf8(out).map_err(|err| Error::Render(err.to_string()))
    }

    /// The part of a document that depends only on its metrics' names and units, from the
    /// `CloudWatchMetrics` directive after the timestamp to the dimensions' values.
    pub(crate) fn write_head<'m>(
        &self,
        metrics: impl Iterator<Item = (&'m str, Unit)>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        out.extend_from_slice(b",\"CloudWatchMetrics\":[{\"Namespace\":");
        write_string(out, &self.namespace)?;
        out.extend_from_slice(b",\"Dimensions\":[[");
        for (i, (key, _)) in self.dimensions.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_string(out, key)?;
        }
        out.extend_from_slice(b"]],\"Metrics\":[");
        for (i, (name, unit)) in metrics.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"Name\":");
            write_string(out, name)?;
            out.extend_from_slice(b",\"Unit\":");
            write_string(out, unit.as_cloudwatch())?;
            if self.high_resolution.iter().any(|m| m == name) {
                out.extend_from_slice(b",\"StorageResolution\":1");
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}]}");
        for (key, value) in &self.dimensions {
            out.push(b',');
            write_string(out, key)?;
            out.push(b':');
            write_string(out, value)?;
        }
        Ok(())
    }

    /// The properties a document writes (see [`EmfEmitter::writes_property`]), each with a
    /// leading comma.
    pub(crate) fn write_properties(
        &self,
        properties: &[(&str, &str)],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        for (key, value) in properties {
            if self.writes_property(key) {
                out.push(b',');
                write_string(out, key)?;
                out.push(b':');
                write_string(out, value)?;
            }
        }
        Ok(())
    }

    /// Renders what `registry` has not emitted yet (counter increments since the last
    /// flush, changed gauges, new histogram values) and marks it emitted.
    ///
    /// Values a histogram could not keep because its pending limit was reached are not
    /// in the documents; the registry counts them ([`MetricsRegistry::dropped_values`]).
    pub fn flush(
        &self,
        registry: &MetricsRegistry,
        timestamp: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        self.render(&registry.take_pending(), timestamp)
    }

    /// Like [`EmfEmitter::flush`], with `properties` as metadata on every document.
    pub fn flush_with(
        &self,
        registry: &MetricsRegistry,
        timestamp: DateTime<Utc>,
        properties: &[(&str, &str)],
    ) -> Result<Vec<String>> {
        self.render_with(&registry.take_pending(), timestamp, properties)
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

fn render_error(err: serde_json::Error) -> Error {
    Error::Render(err.to_string())
}

/// A JSON string, escaped.
fn write_string(out: &mut Vec<u8>, text: &str) -> Result<()> {
    serde_json::to_writer(out, text).map_err(render_error)
}

/// The start of a document, to its timestamp in milliseconds since the epoch.
pub(crate) fn write_timestamp(out: &mut Vec<u8>, timestamp: DateTime<Utc>) -> Result<()> {
    out.extend_from_slice(b"{\"_aws\":{\"Timestamp\":");
    serde_json::to_writer(out, &timestamp.timestamp_millis()).map_err(render_error)
}

/// `,"name":`, the key of a metric's values.
pub(crate) fn write_name(name: &str, out: &mut Vec<u8>) -> Result<()> {
    out.push(b',');
    write_string(out, name)?;
    out.push(b':');
    Ok(())
}

/// A metric's values: one value as a number, several as an array.
pub(crate) fn write_values(values: &[f64], out: &mut Vec<u8>) -> Result<()> {
    match values {
        [single] => serde_json::to_writer(out, single),
        _ => serde_json::to_writer(out, values),
    }
    .map_err(render_error)
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
    fn enforces_cloudwatch_limits() {
        assert!(EmfEmitter::new(&"n".repeat(255)).is_ok());
        let err = EmfEmitter::new(&"n".repeat(256)).unwrap_err();
        assert!(err.to_string().contains("at most 255"), "{err}");
        assert!(EmfEmitter::new(":ns").is_err());
        assert!(EmfEmitter::new("Shop/Orders").is_ok());
        // A non-ASCII dimension value is refused where it is configured, not dropped later.
        let err = EmfEmitter::new("ns")
            .unwrap()
            .dimension("Environment", "Produktion-München")
            .unwrap_err();
        assert!(err.to_string().contains("printable ASCII"), "{err}");
        assert!(
            EmfEmitter::new("ns")
                .unwrap()
                .dimension("Env", "a\tb")
                .is_err()
        );
        assert!(
            EmfEmitter::new("ns")
                .unwrap()
                .dimension("Env", &"v".repeat(1024))
                .is_ok()
        );
        assert!(
            EmfEmitter::new("ns")
                .unwrap()
                .dimension("Env", &"v".repeat(1025))
                .is_err()
        );
        assert!(
            EmfEmitter::new("ns")
                .unwrap()
                .dimension(&"k".repeat(256), "v")
                .is_err()
        );
    }

    #[test]
    fn leaves_out_bad_metrics_and_empty_value_arrays() {
        let metrics = vec![
            ("Good".to_owned(), Unit::Count, vec![1.0]),
            (
                "Only NaN".to_owned(),
                Unit::Count,
                vec![f64::NAN, f64::INFINITY],
            ),
            ("Empty".to_owned(), Unit::Count, vec![]),
            ("Größe".to_owned(), Unit::Count, vec![2.0]),
            ("N".repeat(256), Unit::Count, vec![3.0]),
        ];
        let lines = emitter().render(&metrics, at_epoch()).unwrap();
        assert_eq!(lines.len(), 1);
        let doc: Value = serde_json::from_str(&lines[0]).unwrap();
        let defs = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        assert_eq!(defs.len(), 1);
        assert_eq!(defs[0]["Name"], "Good");
        assert!(doc.get("Empty").is_none() && doc.get("Only NaN").is_none());
        let only_bad = vec![("Empty".to_owned(), Unit::Count, vec![f64::NAN])];
        assert!(emitter().render(&only_bad, at_epoch()).unwrap().is_empty());
    }

    #[test]
    fn marks_high_resolution_metrics_and_adds_properties() {
        let e = emitter().high_resolution("Latency").unwrap();
        let metrics = vec![
            ("Latency".to_owned(), Unit::Milliseconds, vec![1.0, 2.0]),
            ("Calls".to_owned(), Unit::Count, vec![2.0]),
        ];
        let lines = e
            .render_with(&metrics, at_epoch(), &[("function_request_id", "abc-123")])
            .unwrap();
        let doc: Value = serde_json::from_str(&lines[0]).unwrap();
        let defs = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        let def = |n: &str| defs.iter().find(|d| d["Name"] == n).unwrap().clone();
        assert_eq!(def("Latency")["StorageResolution"], 1);
        assert!(def("Calls").get("StorageResolution").is_none());
        assert_eq!(doc["function_request_id"], "abc-123");
        assert_eq!(doc["Latency"], json!([1.0, 2.0]));
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
        // A metric named like a dimension is left out, not mixed up with it.
        let lines = e
            .render(
                &[
                    ("D1".into(), Unit::Count, vec![1.0]),
                    ("Calls".into(), Unit::Count, vec![1.0]),
                ],
                at_epoch(),
            )
            .unwrap();
        let doc: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(doc["D1"], "v");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
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
