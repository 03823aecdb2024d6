//! A small metrics registry: counters, gauges and histograms, rendered by the EMF emitter
//! and the Prometheus exposition. It does not depend on Lambda.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::histogram::Histogram;

/// A CloudWatch unit (also used for Prometheus name suffixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unit {
    /// Seconds.
    Seconds,
    /// Milliseconds.
    Milliseconds,
    /// Microseconds.
    Microseconds,
    /// Bytes.
    Bytes,
    /// Megabytes.
    Megabytes,
    /// Percent.
    Percent,
    /// A count.
    Count,
    /// Counts per second.
    CountPerSecond,
    /// Bytes per second.
    BytesPerSecond,
    /// No unit.
    None,
}

impl Unit {
    /// The name CloudWatch expects in an EMF `Unit` field.
    pub fn as_cloudwatch(self) -> &'static str {
        match self {
            Unit::Seconds => "Seconds",
            Unit::Milliseconds => "Milliseconds",
            Unit::Microseconds => "Microseconds",
            Unit::Bytes => "Bytes",
            Unit::Megabytes => "Megabytes",
            Unit::Percent => "Percent",
            Unit::Count => "Count",
            Unit::CountPerSecond => "Count/Second",
            Unit::BytesPerSecond => "Bytes/Second",
            Unit::None => "None",
        }
    }

    /// The suffix of a Prometheus metric name in this unit, if any.
    pub(crate) fn prometheus_suffix(self) -> Option<&'static str> {
        match self {
            Unit::Seconds => Some("seconds"),
            Unit::Milliseconds => Some("milliseconds"),
            Unit::Microseconds => Some("microseconds"),
            Unit::Bytes => Some("bytes"),
            Unit::Megabytes => Some("megabytes"),
            Unit::Percent => Some("percent"),
            Unit::BytesPerSecond => Some("bytes_per_second"),
            Unit::CountPerSecond => Some("per_second"),
            Unit::Count | Unit::None => None,
        }
    }
}

/// The value of one metric.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MetricValue {
    /// A monotonic count; `flushed` is the total already emitted as EMF.
    Counter { total: u64, flushed: u64 },
    /// The latest value; `dirty` until emitted as EMF.
    Gauge { value: f64, dirty: bool },
    /// A distribution; `pending` holds the values not yet emitted as EMF.
    Histogram {
        histogram: Histogram,
        pending: Vec<f64>,
    },
}

/// One metric of a registry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Metric {
    pub(crate) help: String,
    pub(crate) unit: Unit,
    pub(crate) value: MetricValue,
}

/// Counters, gauges and histograms by name. Clones share the same metrics.
///
/// Invariant: a name keeps the kind and unit it was first recorded with; recording it as
/// another kind is ignored (and logged), never silently mixed.
///
/// ```
/// use lift_monitor::{MetricsRegistry, Unit};
///
/// let metrics = MetricsRegistry::default();
/// metrics.increment("Invocations", "invocations handled", 1);
/// metrics.set_gauge("MemoryUsed", "resident memory", Unit::Bytes, 48.0 * 1024.0 * 1024.0);
/// metrics.observe("Duration", "handler duration", Unit::Seconds, 0.012);
/// assert_eq!(metrics.counter("Invocations"), Some(1));
/// ```
#[derive(Debug, Clone, Default)]
pub struct MetricsRegistry {
    metrics: Arc<Mutex<BTreeMap<String, Metric>>>,
}

impl MetricsRegistry {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Metric>) -> R) -> R {
        f(&mut self.metrics.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Adds `by` to the counter `name` (unit Count).
    pub fn increment(&self, name: &str, help: &str, by: u64) {
        self.with(|m| {
            let metric = m.entry(name.to_owned()).or_insert_with(|| Metric {
                help: help.to_owned(),
                unit: Unit::Count,
                value: MetricValue::Counter {
                    total: 0,
                    flushed: 0,
                },
            });
            match &mut metric.value {
                MetricValue::Counter { total, .. } => *total = total.saturating_add(by),
                _ => tracing::warn!(
                    metric = name,
                    "metric recorded as a counter but is not one; ignored"
                ),
            }
        });
    }

    /// Sets the gauge `name`. Non-finite values are ignored.
    pub fn set_gauge(&self, name: &str, help: &str, unit: Unit, value: f64) {
        if !value.is_finite() {
            return;
        }
        self.with(|m| {
            let metric = m.entry(name.to_owned()).or_insert_with(|| Metric {
                help: help.to_owned(),
                unit,
                value: MetricValue::Gauge { value, dirty: true },
            });
            match &mut metric.value {
                MetricValue::Gauge { value: v, dirty } => {
                    *v = value;
                    *dirty = true;
                }
                _ => tracing::warn!(
                    metric = name,
                    "metric recorded as a gauge but is not one; ignored"
                ),
            }
        });
    }

    /// Records `value` in the histogram `name`. Negative and non-finite values are ignored.
    pub fn observe(&self, name: &str, help: &str, unit: Unit, value: f64) {
        if !value.is_finite() || value < 0.0 {
            return;
        }
        self.with(|m| {
            let metric = m.entry(name.to_owned()).or_insert_with(|| Metric {
                help: help.to_owned(),
                unit,
                value: MetricValue::Histogram {
                    histogram: Histogram::default(),
                    pending: Vec::new(),
                },
            });
            match &mut metric.value {
                MetricValue::Histogram { histogram, pending } => {
                    histogram.record(value);
                    pending.push(value);
                }
                _ => tracing::warn!(
                    metric = name,
                    "metric recorded as a histogram but is not one; ignored"
                ),
            }
        });
    }

    /// The total of counter `name`.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.with(|m| match m.get(name)?.value {
            MetricValue::Counter { total, .. } => Some(total),
            _ => None,
        })
    }

    /// The value of gauge `name`.
    pub fn gauge(&self, name: &str) -> Option<f64> {
        self.with(|m| match m.get(name)?.value {
            MetricValue::Gauge { value, .. } => Some(value),
            _ => None,
        })
    }

    /// The `q` quantile of histogram `name`, since the process started.
    pub fn quantile(&self, name: &str, q: f64) -> Option<f64> {
        self.with(|m| match &m.get(name)?.value {
            MetricValue::Histogram { histogram, .. } => histogram.quantile(q),
            _ => None,
        })
    }

    /// A copy of every metric, by name.
    pub(crate) fn entries(&self) -> BTreeMap<String, Metric> {
        self.with(|m| m.clone())
    }

    /// Takes what has not been emitted as EMF yet: counter increments, changed gauges and
    /// pending histogram values, marking them emitted.
    pub(crate) fn take_pending(&self) -> Vec<(String, Unit, Vec<f64>)> {
        self.with(|m| {
            let mut out = Vec::new();
            for (name, metric) in m.iter_mut() {
                let values = match &mut metric.value {
                    MetricValue::Counter { total, flushed } => {
                        let delta = *total - *flushed;
                        *flushed = *total;
                        if delta == 0 {
                            continue;
                        } else {
                            vec![delta as f64]
                        }
                    }
                    MetricValue::Gauge { value, dirty } => {
                        if !*dirty {
                            continue;
                        }
                        *dirty = false;
                        vec![*value]
                    }
                    MetricValue::Histogram { pending, .. } => {
                        if pending.is_empty() {
                            continue;
                        }
                        std::mem::take(pending)
                    }
                };
                out.push((name.clone(), metric.unit, values));
            }
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_drains() {
        let m = MetricsRegistry::default();
        m.increment("Invocations", "calls", 2);
        m.increment("Invocations", "calls", 1);
        m.set_gauge("Memory", "rss", Unit::Bytes, 10.0);
        m.observe("Duration", "time", Unit::Seconds, 0.5);
        m.observe("Duration", "time", Unit::Seconds, 1.5);
        // A kind mismatch is ignored, not mixed.
        m.set_gauge("Invocations", "calls", Unit::Count, 99.0);
        assert_eq!(m.counter("Invocations"), Some(3));
        let pending = m.take_pending();
        assert_eq!(
            pending,
            vec![
                ("Duration".to_owned(), Unit::Seconds, vec![0.5, 1.5]),
                ("Invocations".to_owned(), Unit::Count, vec![3.0]),
                ("Memory".to_owned(), Unit::Bytes, vec![10.0]),
            ]
        );
        assert!(m.take_pending().is_empty());
        m.increment("Invocations", "calls", 4);
        assert_eq!(
            m.take_pending(),
            vec![("Invocations".to_owned(), Unit::Count, vec![4.0])]
        );
        // The histogram keeps its distribution after draining.
        assert_eq!(m.quantile("Duration", 1.0), Some(1.5));
    }
}
