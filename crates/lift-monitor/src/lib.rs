//! In-process monitoring for Rust services, in AWS Lambda and out of it: resource and
//! memory sampling, health checks, a health manager, and invocation metrics rendered as
//! CloudWatch Embedded Metric Format or Prometheus text.
//!
//! - A [`Monitor`] runs a [`Sampler`] in the background and publishes an immutable
//!   [`Snapshot`] (threads, tokio, RSS, fds and `RLIMIT_NOFILE`, CPU, disk space, cgroup
//!   memory (v2 or v1), the Lambda environment, runtime stalls, heap counts) that readers get without
//!   locks or system calls.
//! - [`CountingAlloc`] is an opt-in global allocator wrapper that counts the heap.
//! - Checks ([`ResourceCheck`], [`MemoryCheck`], [`DiskCheck`], [`CpuCheck`],
//!   [`StallCheck`], [`NetworkCheck`], [`FnCheck`]) judge figures against warn and fail
//!   [`Threshold`]s; [`StandardChecks`] registers the standard set.
//! - A [`HealthManager`] runs any [`lift_core::HealthCheck`]s in parallel with timeouts,
//!   panic isolation and caching, and aggregates them into a [`HealthReport`], rendered as
//!   JSON, `application/health+json` ([`HealthJson`]) or a table.
//! - A [`MetricsRegistry`] records counters, gauges and histograms and renders them as EMF
//!   JSON lines ([`EmfEmitter`]) or Prometheus text ([`render_prometheus`]);
//!   [`InvocationMetrics`] tracks Lambda invocations. The `lambda` feature adds a tower
//!   layer and a deployment wrapper for `lambda_runtime`.
//!
//! ```
//! use lift_monitor::{Group, Monitor, MonitorOptions, StandardChecks};
//! use lift_core::HealthStatus;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lift_monitor::Result<()> {
//! let monitor = Monitor::start(MonitorOptions::default())?;
//! let snapshot = monitor.snapshot();
//! assert!(snapshot.memory.rss_bytes.is_some());
//!
//! let manager = StandardChecks::default().build(&monitor)?;
//! let report = manager.check(Group::Readiness).await;
//! // No endpoints are configured, so the network check cannot pass: the report is never "healthy" by omission.
//! assert!(report.status >= HealthStatus::Unknown);
//! println!("{}", report.render_table(false));
//! # Ok(()) }
//! ```

mod alloc;
mod backend;
#[cfg(target_os = "linux")]
mod cgroup;
mod checks;
mod emf;
#[cfg(feature = "lambda")]
mod emf_layout;
mod error;
#[cfg(feature = "lambda")]
mod extension;
mod group;
mod health_client;
#[cfg(feature = "http")]
mod health_server;
mod histogram;
mod invocation;
#[cfg(feature = "jemalloc")]
mod jemalloc;
#[cfg(feature = "lambda")]
mod lambda;
mod manager;
mod metrics;
mod monitor;
#[cfg(target_os = "linux")]
mod procfile;
mod prometheus;
mod report;
mod sampler;
mod settings;
mod snapshot;
mod stall;
mod standard_checks;
mod target;
mod threshold;
mod units;

pub use alloc::{AllocStats, CountingAlloc, PEAK_GRANULARITY, allocator_stats};
pub use checks::{
    AsyncFnCheck, CpuCheck, DiskCheck, Endpoint, FnCheck, HeapCheck, HeapThresholds, MemoryCheck,
    MemoryThresholds, NetworkCheck, ResourceCheck, ResourceThresholds, StallCheck,
    physical_memory_bytes,
};
pub use emf::{
    EmfEmitter, MAX_DIMENSION_VALUE_LENGTH, MAX_DIMENSIONS, MAX_METRICS_PER_DOCUMENT,
    MAX_NAME_LENGTH, MAX_VALUES_PER_METRIC,
};
pub use error::{Error, Result};
pub use group::Group;
pub use health_client::{FetchedHealth, HealthUrl, fetch_health};
#[cfg(feature = "http")]
pub use health_server::HealthServer;
pub use histogram::Histogram;
pub use invocation::{Invocation, InvocationMetrics};
#[cfg(feature = "jemalloc")]
pub use jemalloc::jemalloc_stats;
#[cfg(feature = "lambda")]
pub use lambda::{EmfSink, LambdaDeployment, LambdaOptions, MetricsLayer, MetricsService};
pub use manager::{CheckOptions, HealthManager, HealthManagerBuilder};
pub use metrics::{
    DEFAULT_METRIC_LIMIT, DEFAULT_PENDING_LIMIT, MetricsOptions, MetricsRegistry, Unit,
};
pub use monitor::{Monitor, MonitorOptions};
pub use prometheus::{PROMETHEUS_CONTENT_TYPE, render_process_metrics, render_prometheus};
pub use report::{
    CheckDetails, CheckResult, HEALTH_JSON_CONTENT_TYPE, HealthJson, HealthJsonCheck, HealthReport,
    ServiceInfo, Verdict,
};
pub use sampler::{Sampler, SamplerOptions};
pub use settings::HealthSettings;
pub use snapshot::{
    CgroupMemory, CpuStats, DiskStats, FdStats, HeapStats, HostSnapshot, JemallocStats, LambdaEnv,
    LimitSource, MemoryStats, ProcessSnapshot, Snapshot, StallStats, TokioStats, in_lambda,
};
pub use stall::{InFlight, InvocationBracket, StallOptions};
pub use standard_checks::{ENDPOINTS_ENV, StandardChecks};
pub use target::{
    HostOptions, HostThresholds, ProcessOptions, host_checks, process_checks, sample_host,
    sample_process,
};
pub use threshold::Threshold;

// The names the options structs had before they were named alike, kept so that callers
// keep compiling (with a deprecation warning that names the new one).
#[cfg(feature = "lambda")]
#[allow(deprecated)]
pub use lambda::LambdaConfig;
#[allow(deprecated)]
pub use monitor::MonitorConfig;
#[allow(deprecated)]
pub use sampler::SamplerConfig;
#[allow(deprecated)]
pub use stall::StallConfig;
