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
/// Counters get the `_total` suffix, other metrics their unit (`_seconds`, `_bytes`);
/// histograms expose `_bucket{le=...}` at powers of two, `_sum` and `_count`.
pub fn render_prometheus(registry: &MetricsRegistry, prefix: &str) -> String {
    let mut out = String::new();
    let prefix = snake_case(prefix);
    for (name, metric) in registry.entries() {
        let mut base = format!("{prefix}_{}", snake_case(&name));
        if let Some(suffix) = metric.unit.prometheus_suffix()
            && !base.ends_with(suffix)
        {
            base = format!("{base}_{suffix}");
        }
        let help = escape_help(&metric.help);
        match &metric.value {
            MetricValue::Counter { total, .. } => {
                let family = format!("{base}_total");
                let _ = writeln!(
                    out,
                    "# HELP {family} {help}\n# TYPE {family} counter\n{family} {total}"
                );
            }
            MetricValue::Gauge { value, .. } => {
                let _ = writeln!(
                    out,
                    "# HELP {base} {help}\n# TYPE {base} gauge\n{base} {}",
                    number(*value)
                );
            }
            MetricValue::Histogram { histogram, .. } => {
                let _ = writeln!(out, "# HELP {base} {help}\n# TYPE {base} histogram");
                for (le, count) in histogram.cumulative_buckets() {
                    let _ = writeln!(out, "{base}_bucket{{le=\"{}\"}} {count}", number(le));
                }
                let _ = writeln!(
                    out,
                    "{base}_sum {}\n{base}_count {}",
                    number(histogram.sum()),
                    histogram.count()
                );
            }
        }
    }
    out
}

/// Renders the process figures of `snapshot` with the standard Prometheus process metric
/// names (`process_resident_memory_bytes`, `process_open_fds`, ...). Figures the snapshot
/// lacks are left out.
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
        "process_threads",
        "Number of OS threads in the process.",
        "gauge",
        snapshot.threads.map(|v| v as f64),
    );
    gauge(
        "process_uptime_seconds",
        "Seconds since the process started.",
        "gauge",
        snapshot.uptime_seconds,
    );
    if let Some(heap) = snapshot.alloc {
        gauge(
            "process_heap_live_bytes",
            "Bytes allocated and not freed.",
            "gauge",
            Some(heap.counts.live_bytes as f64),
        );
        gauge(
            "process_heap_allocations_total",
            "Allocations made.",
            "counter",
            Some(heap.counts.total_allocations as f64),
        );
    }
    if let Some(stall) = snapshot.stall {
        gauge(
            "tokio_scheduler_lag_p99_seconds",
            "99th percentile lateness of the heartbeat task.",
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
        let text = render_process_metrics(&snapshot);
        assert!(text.contains("process_threads 4\n"));
        assert!(!text.contains("process_resident_memory_bytes"));
    }
}
