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

    /// The Prometheus base unit of this unit: the name suffix and the factor that
    /// converts a value to it (milliseconds are exposed as seconds, megabytes (MiB, as
    /// Lambda counts them) as bytes, percent as a ratio).
    pub(crate) fn prometheus_base(self) -> (Option<&'static str>, f64) {
        match self {
            Unit::Seconds => (Some("seconds"), 1.0),
            Unit::Milliseconds => (Some("seconds"), 1e-3),
            Unit::Microseconds => (Some("seconds"), 1e-6),
            Unit::Bytes => (Some("bytes"), 1.0),
            Unit::Megabytes => (Some("bytes"), 1024.0 * 1024.0),
            Unit::Percent => (Some("ratio"), 0.01),
            Unit::BytesPerSecond => (Some("bytes_per_second"), 1.0),
            Unit::CountPerSecond => (Some("per_second"), 1.0),
            Unit::Count | Unit::None => (None, 1.0),
        }
    }

    /// The fixed upper bounds of a Prometheus histogram in this unit, in the base unit.
    /// They never move, so the set of `le` series is fixed from the first scrape.
    pub(crate) fn prometheus_buckets(self) -> &'static [f64] {
        match self {
            Unit::Seconds | Unit::Milliseconds | Unit::Microseconds => &SECONDS_BUCKETS,
            Unit::Bytes | Unit::Megabytes => &BYTES_BUCKETS,
            Unit::Percent => &RATIO_BUCKETS,
            _ => &COUNT_BUCKETS,
        }
    }
}

/// Bounds for durations, in seconds: 100 µs to 5 min.
const SECONDS_BUCKETS: [f64; 19] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Bounds for sizes, in bytes: powers of four from 1 KiB to 16 GiB.
const BYTES_BUCKETS: [f64; 13] = [
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
    4294967296.0,
    17179869184.0,
];
/// Bounds for ratios.
const RATIO_BUCKETS: [f64; 9] = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0];
/// Bounds for counts and other units: 1, 2.5, 5 per decade up to a million.
const COUNT_BUCKETS: [f64; 19] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1e3, 2.5e3, 5e3, 1e4, 2.5e4, 5e4, 1e5,
    2.5e5, 5e5, 1e6,
];

/// A Prometheus histogram with fixed bounds: `counts[i]` holds the values at most
/// `bounds[i]` and above the previous bound; the last slot the values above every bound.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FixedBuckets {
    pub(crate) bounds: &'static [f64],
    pub(crate) counts: Box<[u64]>,
    /// Converts a recorded value to the base unit of `bounds`.
    pub(crate) scale: f64,
}

impl FixedBuckets {
    fn new(unit: Unit) -> Self {
        let bounds = unit.prometheus_buckets();
        FixedBuckets {
            bounds,
            counts: vec![0; bounds.len() + 1].into_boxed_slice(),
            scale: unit.prometheus_base().1,
        }
    }

    fn record(&mut self, value: f64) {
        let base = value * self.scale;
        let index = self.bounds.partition_point(|&bound| bound < base);
        self.counts[index] += 1;
    }
}

/// How a [`MetricsRegistry`] keeps histogram values for EMF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsOptions {
    pending_limit: usize,
    metric_limit: usize,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            pending_limit: DEFAULT_PENDING_LIMIT,
            metric_limit: DEFAULT_METRIC_LIMIT,
        }
    }
}

/// Histogram values kept per metric for the next EMF flush, by default.
pub const DEFAULT_PENDING_LIMIT: usize = 10_000;

/// Distinct metric names a registry holds, by default.
pub const DEFAULT_METRIC_LIMIT: usize = 1_000;

impl MetricsOptions {
    /// At most this many values per histogram wait for the next EMF flush; values past
    /// it still count in the histogram (and Prometheus) but are not emitted as EMF, and
    /// are counted in [`MetricsRegistry::dropped_values`]. A service that only serves
    /// Prometheus sets 0: then no value is kept at all. Default: [`DEFAULT_PENDING_LIMIT`].
    #[must_use]
    pub fn pending_limit(mut self, pending_limit: usize) -> Self {
        self.pending_limit = pending_limit;
        self
    }

    /// At most this many distinct metric names are held: a registry never forgets a name
    /// (Prometheus scrapes every one), so names built from data (a tenant, a path) would
    /// grow it, and every flush and scrape with it, without bound. Recording a new name
    /// past the limit is ignored, counted in [`MetricsRegistry::refused_names`] and
    /// logged. Default: [`DEFAULT_METRIC_LIMIT`].
    #[must_use]
    pub fn metric_limit(mut self, metric_limit: usize) -> Self {
        self.metric_limit = metric_limit;
        self
    }
}

/// The value of one metric.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MetricValue {
    /// A monotonic count; `flushed` is the total already emitted as EMF.
    Counter { total: u64, flushed: u64 },
    /// The latest value; `dirty` until emitted as EMF.
    Gauge { value: f64, dirty: bool },
    /// A distribution; `pending` holds the values not yet emitted as EMF, at most the
    /// registry's pending limit; `dropped` counts those that did not fit.
    Histogram {
        histogram: Histogram,
        buckets: FixedBuckets,
        pending: Vec<f64>,
        dropped: u64,
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
    metrics: Arc<Mutex<BTreeMap<Arc<str>, Metric>>>,
    options: MetricsOptions,
    /// Records of new names refused past the metric limit.
    refused: Arc<std::sync::atomic::AtomicU64>,
    /// Histogram values not kept for EMF, summed over every histogram.
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

/// The metric `name`, created by `new` when it does not exist yet: the name is copied
/// only then, not on every record of a metric that exists (each invocation records a
/// handful). `None` when it does not exist and the registry holds `limit` names already;
/// `refused` counts those records, and every power of two of them is logged.
fn entry<'m>(
    metrics: &'m mut BTreeMap<Arc<str>, Metric>,
    name: &str,
    (limit, refused): (usize, &std::sync::atomic::AtomicU64),
    new: impl FnOnce() -> Metric,
) -> Option<&'m mut Metric> {
    if !metrics.contains_key(name) {
        if metrics.len() >= limit {
            let count = refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if count.is_power_of_two() {
                tracing::warn!(
                    metric = name,
                    limit,
                    refused = count,
                    "metric ignored: the registry holds its limit of distinct names (MetricsOptions::metric_limit); names built from data grow without bound"
                );
            }
            return None;
        }
        metrics.insert(Arc::from(name), new());
    }
    metrics.get_mut(name)
}

impl MetricsRegistry {
    /// An empty registry with `options`.
    pub fn new(options: MetricsOptions) -> Self {
        MetricsRegistry {
            metrics: Arc::default(),
            options,
            refused: Arc::default(),
            dropped: Arc::default(),
        }
    }

    /// Histogram values recorded but not kept for EMF because the pending limit was
    /// reached, summed over every histogram.
    pub fn dropped_values(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The limit of distinct names and the count of refused records, for [`entry`].
    fn limits(&self) -> (usize, &std::sync::atomic::AtomicU64) {
        (self.options.metric_limit, &self.refused)
    }

    /// Records of new metric names refused because the registry held its limit of
    /// distinct names ([`MetricsOptions::metric_limit`]).
    pub fn refused_names(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<Arc<str>, Metric>) -> R) -> R {
        f(&mut self.metrics.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Adds `by` to the counter `name` (unit Count).
    pub fn increment(&self, name: &str, help: &str, by: u64) {
        self.with(|m| {
            let Some(metric) = entry(m, name, self.limits(), || Metric {
                help: help.to_owned(),
                unit: Unit::Count,
                value: MetricValue::Counter {
                    total: 0,
                    flushed: 0,
                },
            }) else {
                return;
            };
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
        self.set_gauges([(name, help, unit, value)]);
    }

    /// Sets several gauges (name, help, unit, value) under one lock, as
    /// [`MetricsRegistry::set_gauge`] sets one.
    pub fn set_gauges<'g>(&self, gauges: impl IntoIterator<Item = (&'g str, &'g str, Unit, f64)>) {
        self.with(|m| {
            for (name, help, unit, value) in gauges {
                if !value.is_finite() {
                    continue;
                }
                let Some(metric) = entry(m, name, self.limits(), || Metric {
                    help: help.to_owned(),
                    unit,
                    value: MetricValue::Gauge { value, dirty: true },
                }) else {
                    continue;
                };
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
            }
        });
    }

    /// Records `value` in the histogram `name`. Negative and non-finite values are ignored.
    pub fn observe(&self, name: &str, help: &str, unit: Unit, value: f64) {
        if !value.is_finite() || value < 0.0 {
            return;
        }
        let limit = self.options.pending_limit;
        self.with(|m| {
            let Some(metric) = entry(m, name, self.limits(), || Metric {
                help: help.to_owned(),
                unit,
                value: MetricValue::Histogram {
                    histogram: Histogram::default(),
                    buckets: FixedBuckets::new(unit),
                    pending: Vec::new(),
                    dropped: 0,
                },
            }) else {
                return;
            };
            match &mut metric.value {
                MetricValue::Histogram {
                    histogram,
                    buckets,
                    pending,
                    dropped,
                } => {
                    histogram.record(value);
                    buckets.record(value);
                    if pending.len() < limit {
                        pending.push(value);
                    } else {
                        *dropped += 1;
                        self.dropped
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
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

    /// Runs `f` over every metric, by name, under the registry's lock: rendering reads
    /// the metrics in place instead of copying them.
    pub(crate) fn visit(&self, mut f: impl FnMut(&str, &Metric)) {
        self.with(|m| {
            for (name, metric) in m.iter() {
                f(name, metric);
            }
        });
    }

    /// Takes what has not been emitted as EMF yet: counter increments, changed gauges and
    /// pending histogram values, marking them emitted.
    pub(crate) fn take_pending(&self) -> Vec<(String, Unit, Vec<f64>)> {
        let mut batch = PendingBatch::default();
        self.take_pending_into(&mut batch);
        batch
            .iter()
            .map(|(name, unit, values)| (name.to_owned(), unit, values.to_vec()))
            .collect()
    }

    /// Like [`MetricsRegistry::take_pending`], into `batch` (emptied first): a batch kept
    /// from one flush to the next makes a flush allocate nothing once it has the capacity.
    pub(crate) fn take_pending_into(&self, batch: &mut PendingBatch) {
        batch.clear();
        self.with(|m| {
            for (name, metric) in m.iter_mut() {
                let start = batch.values.len();
                match &mut metric.value {
                    MetricValue::Counter { total, flushed } => {
                        let delta = *total - *flushed;
                        *flushed = *total;
                        if delta == 0 {
                            continue;
                        }
                        batch.values.push(delta as f64);
                    }
                    MetricValue::Gauge { value, dirty } => {
                        if !*dirty {
                            continue;
                        }
                        *dirty = false;
                        batch.values.push(*value);
                    }
                    MetricValue::Histogram { pending, .. } => {
                        if pending.is_empty() {
                            continue;
                        }
                        batch.values.extend_from_slice(pending);
                        if pending.capacity() > PENDING_KEPT_CAPACITY {
                            // After a burst, give the next batch a small start rather
                            // than the burst's capacity.
                            *pending = Vec::with_capacity(PENDING_KEPT_CAPACITY);
                        } else {
                            pending.clear();
                        }
                    }
                }
                batch
                    .entries
                    .push((name.clone(), metric.unit, start..batch.values.len()));
            }
        });
    }
}

/// The capacity a histogram's pending values keep across flushes; a larger one, left by
/// a burst, is given back.
const PENDING_KEPT_CAPACITY: usize = 64;

/// The value capacity a [`PendingBatch`] keeps from one flush to the next: a function's
/// usual batch, many times over.
const BATCH_KEPT_VALUES: usize = 1024;

/// What [`MetricsRegistry::take_pending_into`] took: the metrics by name, each with its
/// unit and its values, in name order.
#[derive(Debug, Default)]
pub(crate) struct PendingBatch {
    /// Name, unit and the range of `values` that holds the metric's values.
    entries: Vec<(Arc<str>, Unit, std::ops::Range<usize>)>,
    values: Vec<f64>,
}

impl PendingBatch {
    /// Empties the batch, giving back the capacity a burst of values left.
    fn clear(&mut self) {
        self.entries.clear();
        self.values.clear();
        if self.values.capacity() > BATCH_KEPT_VALUES {
            self.values = Vec::new();
        }
    }

    /// Every metric: its name (shared with the registry), unit and values.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&Arc<str>, Unit, &[f64])> + Clone {
        self.entries.iter().map(|(name, unit, range)| {
            (
                name,
                *unit,
                self.values.get(range.clone()).unwrap_or_default(),
            )
        })
    }

    /// Every metric: its name, unit and values.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, Unit, &[f64])> + Clone {
        self.entries()
            .map(|(name, unit, values)| (name.as_ref(), unit, values))
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

    /// A Prometheus-only service never flushes EMF: what the registry holds stays bounded.
    #[test]
    fn pending_values_are_bounded_without_emf_flushes() {
        let m = MetricsRegistry::new(MetricsOptions::default().pending_limit(100));
        for i in 0..100_000u32 {
            m.observe("Latency", "", Unit::Seconds, f64::from(i % 1000) / 1000.0);
        }
        m.visit(|_, metric| match &metric.value {
            MetricValue::Histogram {
                histogram,
                buckets,
                pending,
                dropped,
            } => {
                assert_eq!(pending.len(), 100);
                assert!(pending.capacity() <= 128, "capacity {}", pending.capacity());
                assert_eq!(*dropped, 99_900);
                assert_eq!(histogram.count(), 100_000);
                assert_eq!(buckets.counts.iter().sum::<u64>(), 100_000);
            }
            other => panic!("not a histogram: {other:?}"),
        });
        assert_eq!(m.dropped_values(), 99_900);
        let none = MetricsRegistry::new(MetricsOptions::default().pending_limit(0));
        none.observe("Latency", "", Unit::Seconds, 0.1);
        assert!(none.take_pending().is_empty());
        assert_eq!(none.quantile("Latency", 0.5), Some(0.1));
    }

    /// A burst of values drains whole, then gives its capacity back: neither the
    /// histogram's pending values nor a reused batch keep a burst's memory.
    #[test]
    fn a_burst_leaves_no_capacity_behind() {
        let m = MetricsRegistry::default();
        let mut batch = PendingBatch::default();
        for i in 0..5_000u32 {
            m.observe("Duration", "", Unit::Milliseconds, f64::from(i));
        }
        m.take_pending_into(&mut batch);
        assert_eq!(batch.iter().map(|(_, _, v)| v.len()).sum::<usize>(), 5_000);
        m.visit(|_, metric| match &metric.value {
            MetricValue::Histogram { pending, .. } => {
                assert!(pending.is_empty());
                assert!(pending.capacity() <= PENDING_KEPT_CAPACITY);
            }
            other => panic!("not a histogram: {other:?}"),
        });
        m.observe("Duration", "", Unit::Milliseconds, 1.0);
        m.take_pending_into(&mut batch);
        assert_eq!(
            batch.iter().collect::<Vec<_>>(),
            vec![("Duration", Unit::Milliseconds, &[1.0][..])]
        );
        assert!(batch.values.capacity() <= BATCH_KEPT_VALUES);
    }

    /// Names built from data cannot grow the registry without bound: past the limit a
    /// new name is refused and counted, and the names it holds still record.
    #[test]
    fn distinct_names_are_bounded() {
        let m = MetricsRegistry::new(MetricsOptions::default().metric_limit(10));
        for tenant in 0..1_000u32 {
            m.increment(&format!("tenant-{tenant}-orders"), "", 1);
            m.set_gauge(&format!("tenant-{tenant}-basket"), "", Unit::Count, 3.0);
            m.observe(&format!("tenant-{tenant}-wait"), "", Unit::Seconds, 0.1);
        }
        let mut names = 0;
        m.visit(|_, _| names += 1);
        assert_eq!(names, 10);
        assert_eq!(m.refused_names(), 2_990);
        m.increment("tenant-0-orders", "", 1);
        assert_eq!(m.counter("tenant-0-orders"), Some(2));
        assert_eq!(
            MetricsRegistry::default().options.metric_limit,
            DEFAULT_METRIC_LIMIT
        );
    }

    #[test]
    fn fixed_buckets_count_values_at_their_bound() {
        let mut b = FixedBuckets::new(Unit::Milliseconds);
        // 1 ms is exactly the bound 0.001 s; 400 s is above every bound.
        for ms in [1.0, 1.5, 400_000.0] {
            b.record(ms);
        }
        let at = |bound: f64| b.bounds.iter().position(|&x| x == bound).unwrap();
        assert_eq!(b.counts[at(0.001)], 1);
        assert_eq!(b.counts[at(0.0025)], 1);
        assert_eq!(b.counts[b.bounds.len()], 1);
    }
}
