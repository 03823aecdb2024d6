//! The Prometheus text exposition format (version 0.0.4), for processes outside Lambda.

use std::fmt::Write as _;

use crate::metrics::{MetricValue, MetricsRegistry};
use crate::snapshot::Snapshot;

/// The media type of the Prometheus text exposition.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `ColdStart` → `cold_start`; anything outside `[a-zA-Z0-9_]` becomes `_`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if previous_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            previous_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            out.push('_');
            previous_lower = false;
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn number(value: f64) -> String {
    if value == f64::INFINITY {
        "+Inf".to_owned()
    } else {
        format!("{value}")
    }
}

/// Renders `registry` as Prometheus text, each name prefixed with `prefix_`.
///
/// Names are snake case in base units: a metric recorded in milliseconds is exposed in
/// seconds (`_seconds`), megabytes in bytes (`_bytes`), percent as a ratio (`_ratio`).
/// Counters get one `_total` suffix (`RequestsTotal` is `requests_total`, not
/// `requests_total_total`). Histograms expose `_bucket{le=...}` at fixed bounds chosen by
/// their unit, `_sum` and `_count`, so the set of series never changes between scrapes.
///
/// The metrics are rendered in place under the registry's lock: a scrape copies no
/// observation.
pub fn render_prometheus(registry: &MetricsRegistry, prefix: &str) -> String {
    let mut out = String::new();
    let prefix = snake_case(prefix);
    registry.visit(|name, metric| {
        let (suffix, scale) = metric.unit.prometheus_base();
        let mut base = format!("{prefix}_{}", snake_case(name));
        let help = escape_help(&metric.help);
        match &metric.value {
            MetricValue::Counter { total, .. } => {
                let stem = base.strip_suffix("_total").unwrap_or(&base);
                let family = format!("{stem}_total");
                let _ = writeln!(
                    out,
                    "# HELP {family} {help}\n# TYPE {family} counter\n{family} {total}"
                );
            }
            MetricValue::Gauge { value, .. } => {
                add_suffix(&mut base, suffix);
                let _ = writeln!(
                    out,
                    "# HELP {base} {help}\n# TYPE {base} gauge\n{base} {}",
                    number(*value * scale)
                );
            }
            MetricValue::Histogram {
                histogram, buckets, ..
            } => {
                add_suffix(&mut base, suffix);
                let _ = writeln!(out, "# HELP {base} {help}\n# TYPE {base} histogram");
                let mut cumulative = 0;
                for (bound, count) in buckets.bounds.iter().zip(buckets.counts.iter()) {
                    cumulative += count;
                    let _ = writeln!(
                        out,
                        "{base}_bucket{{le=\"{}\"}} {cumulative}",
                        number(*bound)
                    );
                }
                let _ = writeln!(
                    out,
                    "{base}_bucket{{le=\"+Inf\"}} {}\n{base}_sum {}\n{base}_count {}",
                    histogram.count(),
                    number(histogram.sum() * scale),
                    histogram.count()
                );
            }
        }
    });
    out
}

fn add_suffix(base: &mut String, suffix: Option<&str>) {
    if let Some(suffix) = suffix
        && !base.ends_with(suffix)
    {
        base.push('_');
        base.push_str(suffix);
    }
}

/// Renders the process figures of `snapshot` with the names of the Prometheus client
/// libraries' process collector (`process_cpu_seconds_total`, `process_open_fds`,
/// `process_max_fds`, `process_virtual_memory_bytes`, `process_resident_memory_bytes`,
/// `process_start_time_seconds`, `process_threads`), and lift's own figures under `lift_`
/// (peak RSS, heap counts from [`crate::CountingAlloc`], scheduler lag). Figures the
/// snapshot lacks are left out.
pub fn render_process_metrics(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, value: Option<f64>| {
        if let Some(value) = value {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                number(value)
            );
        }
    };
    let cpu = snapshot
        .cpu
        .user_seconds
        .zip(snapshot.cpu.system_seconds)
        .map(|(u, s)| u + s);
    gauge(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        "counter",
        cpu,
    );
    gauge(
        "process_open_fds",
        "Number of open file descriptors.",
        "gauge",
        snapshot.fds.open.map(|v| v as f64),
    );
    gauge(
        "process_max_fds",
        "Maximum number of open file descriptors.",
        "gauge",
        snapshot.fds.soft_limit.map(|v| v as f64),
    );
    gauge(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        "gauge",
        snapshot.memory.virtual_bytes.map(|v| v as f64),
    );
    gauge(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        "gauge",
        snapshot.memory.rss_bytes.map(|v| v as f64),
    );
    gauge(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        "gauge",
        snapshot
            .started_at
            .map(|t| t.timestamp_micros() as f64 / 1e6),
    );
    gauge(
        "process_threads",
        "Number of OS threads in the process.",
        "gauge",
        snapshot.threads.map(|v| v as f64),
    );
    gauge(
        "lift_process_resident_memory_peak_bytes",
        "Peak resident memory size in bytes (VmHWM).",
        "gauge",
        snapshot.memory.peak_rss_bytes.map(|v| v as f64),
    );
    if let Some(heap) = snapshot.alloc {
        gauge(
            "lift_heap_live_bytes",
            "Bytes allocated and not freed, counted by CountingAlloc.",
            "gauge",
            Some(heap.counts.live_bytes as f64),
        );
        gauge(
            "lift_heap_live_allocations",
            "Allocations not yet freed, counted by CountingAlloc.",
            "gauge",
            Some(heap.counts.live_allocations as f64),
        );
        gauge(
            "lift_heap_allocations_total",
            "Allocations made, counted by CountingAlloc.",
            "counter",
            Some(heap.counts.total_allocations as f64),
        );
        gauge(
            "lift_heap_allocated_bytes_total",
            "Bytes allocated, counted by CountingAlloc; rate() of it is the allocation rate.",
            "counter",
            Some(heap.counts.total_bytes_allocated as f64),
        );
    }
    if let Some(stall) = snapshot.stall {
        gauge(
            "lift_runtime_lag_p99_seconds",
            "99th percentile lateness of the heartbeat task over the last minute.",
            "gauge",
            Some(stall.p99_seconds),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Unit;

    #[test]
    fn names_are_snake_case() {
        assert_eq!(snake_case("ColdStart"), "cold_start");
        assert_eq!(snake_case("DurationP99"), "duration_p99");
        assert_eq!(snake_case("http.requests"), "http_requests");
        assert_eq!(snake_case("9lives"), "_9lives");
    }

    #[test]
    fn counters_get_one_total_and_values_are_in_base_units() {
        let metrics = MetricsRegistry::default();
        metrics.increment("RequestsTotal", "Requests.", 2);
        metrics.set_gauge("MemoryUsed", "Memory.", Unit::Megabytes, 2.0);
        metrics.set_gauge("Utilization", "Use.", Unit::Percent, 50.0);
        metrics.observe("Duration", "Time.", Unit::Milliseconds, 250.0);
        let text = render_prometheus(&metrics, "app");
        assert!(text.contains("\napp_requests_total 2\n"), "{text}");
        assert!(!text.contains("total_total"));
        assert!(text.contains("\napp_memory_used_bytes 2097152\n"), "{text}");
        assert!(text.contains("\napp_utilization_ratio 0.5\n"), "{text}");
        assert!(
            text.contains("app_duration_seconds_bucket{le=\"0.25\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("app_duration_seconds_sum 0.25\n"), "{text}");
        assert!(!text.contains("milliseconds"));
    }

    /// The `le` series of a histogram are the same before and after new extremes.
    #[test]
    fn histogram_buckets_do_not_move() {
        let metrics = MetricsRegistry::default();
        metrics.observe("Duration", "Time.", Unit::Seconds, 0.02);
        let series = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.contains("_bucket{"))
                .map(|l| l.rsplit_once(' ').unwrap().0.to_owned())
                .collect()
        };
        let before = series(&render_prometheus(&metrics, "app"));
        metrics.observe("Duration", "Time.", Unit::Seconds, 1e-6);
        metrics.observe("Duration", "Time.", Unit::Seconds, 5000.0);
        let after = series(&render_prometheus(&metrics, "app"));
        assert_eq!(before, after);
        assert!(before.last().unwrap().ends_with("le=\"+Inf\"}"));
    }

    #[test]
    fn renders_the_text_format() {
        let metrics = MetricsRegistry::default();
        metrics.increment("Invocations", "Invocations handled.", 3);
        metrics.set_gauge("MemoryUsed", "Resident memory.", Unit::Bytes, 50_331_648.0);
        for ms in [3.0, 5.0, 9.0, 120.0] {
            metrics.observe("Duration", "Handler duration.", Unit::Seconds, ms / 1000.0);
        }
        insta::assert_snapshot!("prometheus_text", render_prometheus(&metrics, "lift"));
    }

    #[test]
    fn renders_process_metrics_that_exist() {
        let mut snapshot = Snapshot::empty();
        snapshot.threads = Some(4);
        snapshot.started_at = chrono::DateTime::from_timestamp(1_700_000_000, 500_000_000);
        snapshot.alloc = Some(crate::snapshot::HeapStats {
            counts: crate::alloc::AllocStats {
                live_bytes: 10,
                total_allocations: 1234,
                ..Default::default()
            },
            allocations_per_second: None,
            bytes_per_second: None,
            growth_bytes_per_second: None,
            growth_fit: None,
            objects_growth_per_second: None,
            objects_growth_fit: None,
        });
        let text = render_process_metrics(&snapshot);
        assert!(text.contains("process_threads 4\n"));
        // The allocation count, whose rate is the allocation rate.
        assert!(
            text.contains("# TYPE lift_heap_allocations_total counter\n")
                && text.contains("\nlift_heap_allocations_total 1234\n"),
            "{text}"
        );
        assert!(
            text.contains("\nprocess_start_time_seconds 1700000000.5\n"),
            "{text}"
        );
        assert!(!text.contains("process_resident_memory_bytes"));
        // Only the process collector's own names live under process_.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(' ').next().unwrap();
            assert!(
                ["process_threads", "process_start_time_seconds"].contains(&name)
                    || name.starts_with("lift_"),
                "{name}"
            );
        }
    }
}
