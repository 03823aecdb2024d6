//! The standard set of checks, shared by `lift health`, the demo and Lambda deployments.

use std::time::Duration;

use crate::checks::{
    CpuCheck, DiskCheck, Endpoint, HeapCheck, HeapThresholds, MemoryCheck, MemoryThresholds,
    NetworkCheck, ResourceCheck, ResourceThresholds, StallCheck, physical_memory_bytes,
};
use crate::error::Result;
use crate::manager::{CheckOptions, HealthManager};
use crate::monitor::Monitor;
use crate::threshold::Threshold;

/// The environment variable listing the endpoints of the network check, comma separated
/// (`db.internal:5432,api.example.com:443`).
pub const ENDPOINTS_ENV: &str = "LIFT_HEALTH_ENDPOINTS";

/// The standard checks and their thresholds: `runtime` (stalls), `memory`, `heap`,
/// `resources`, `disk`, `cpu` and `network`.
///
/// `runtime` and `memory` are in the liveness and readiness groups; the others in readiness only.
///
/// ```
/// use lift_monitor::{Group, Monitor, MonitorOptions, StandardChecks};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lift_monitor::Result<()> {
/// let monitor = Monitor::start(MonitorOptions::default())?;
/// let manager = StandardChecks::default().build(&monitor)?;
/// let report = manager.check(Group::All).await;
/// assert_eq!(report.checks.len(), 7);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StandardChecks {
    /// Thresholds of the `resources` check.
    pub resources: ResourceThresholds,
    /// Thresholds of the `memory` check. The default's configured limit is the machine's
    /// physical memory, used when neither Lambda nor a cgroup sets one.
    pub memory: MemoryThresholds,
    /// Thresholds of the `heap` check (readiness only, at worst degraded).
    pub heap: HeapThresholds,
    /// Percent used, per disk path.
    pub disk: Threshold,
    /// Percent of the available cores.
    pub cpu: Threshold,
    /// p99 scheduler lag, in seconds.
    pub stall: Threshold,
    /// Endpoints of the `network` check; with none it reports unknown.
    pub endpoints: Vec<Endpoint>,
    /// Timeout per endpoint.
    pub network_timeout: Duration,
}

impl Default for StandardChecks {
    fn default() -> Self {
        StandardChecks {
            resources: ResourceThresholds::default(),
            memory: MemoryThresholds::default().limit_bytes(physical_memory_bytes()),
            heap: HeapThresholds::default(),
            disk: DiskCheck::DEFAULT,
            cpu: CpuCheck::DEFAULT,
            stall: StallCheck::DEFAULT,
            endpoints: Vec::new(),
            network_timeout: Duration::from_secs(2),
        }
    }
}

impl StandardChecks {
    /// The defaults, with the endpoints of [`ENDPOINTS_ENV`].
    ///
    /// Fails when an endpoint there is not `host:port`.
    pub fn from_env() -> Result<Self> {
        let mut checks = StandardChecks::default();
        if let Ok(list) = std::env::var(ENDPOINTS_ENV) {
            checks.endpoints = parse_endpoints(&list)?;
        }
        Ok(checks)
    }

    /// Adds an endpoint to the network check.
    #[must_use]
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// Registers the standard checks of `monitor` with `manager`.
    ///
    /// Fails when `manager` already has a check of one of the standard names.
    pub fn register(&self, manager: &HealthManager, monitor: &Monitor) -> Result<()> {
        let live = CheckOptions::live_and_ready();
        let ready = CheckOptions::default();
        manager.register_with(StallCheck::new(monitor.clone(), self.stall), live)?;
        manager.register_with(MemoryCheck::new(monitor.clone(), self.memory), live)?;
        // The heap heuristics guess: readiness only, never liveness.
        manager.register_with(
            HeapCheck::new(monitor.clone(), self.heap, self.memory.limit_bytes),
            ready,
        )?;
        manager.register_with(ResourceCheck::new(monitor.clone(), self.resources), ready)?;
        manager.register_with(DiskCheck::new(monitor.clone(), self.disk), ready)?;
        manager.register_with(CpuCheck::new(monitor.clone(), self.cpu), ready)?;
        let network =
            NetworkCheck::new(self.endpoints.iter().cloned()).timeout(self.network_timeout);
        manager.register_with(network, ready)?;
        Ok(())
    }

    /// A new [`HealthManager`] with the standard checks of `monitor`.
    pub fn build(&self, monitor: &Monitor) -> Result<HealthManager> {
        let manager = HealthManager::default();
        self.register(&manager, monitor)?;
        Ok(manager)
    }
}

fn parse_endpoints(list: &str) -> Result<Vec<Endpoint>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::Group;
    use crate::monitor::MonitorOptions;
    use lift_core::HealthStatus;

    #[test]
    fn parses_endpoint_lists() {
        let endpoints = parse_endpoints("db:5432, api.example.com:443,").unwrap();
        assert_eq!(endpoints.len(), 2);
        assert_eq!(endpoints[1].to_string(), "api.example.com:443");
        let err = parse_endpoints("db:5432,nope").unwrap_err();
        assert!(err.to_string().contains("\"nope\""));
    }

    #[tokio::test]
    async fn runs_the_standard_checks_on_this_machine() {
        let monitor = Monitor::start(MonitorOptions {
            interval: Duration::from_millis(20),
            sampler: crate::SamplerOptions {
                cpu_window: Duration::from_millis(100),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        let manager = StandardChecks::default().build(&monitor).unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        let report = manager.check(Group::All).await;
        let names: Vec<_> = report.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "runtime",
                "memory",
                "heap",
                "resources",
                "disk",
                "cpu",
                "network"
            ]
        );
        let by_name = |n: &str| &report.checks.iter().find(|c| c.name == n).unwrap().outcome;
        // With no endpoints the network check cannot pass, so the aggregate is at best unknown.
        assert_eq!(by_name("network").status, HealthStatus::Unknown);
        assert!(report.status >= HealthStatus::Unknown);
        assert!(
            by_name("memory")
                .observations
                .iter()
                .any(|o| o.measurement == "rss" && o.value > 0.0)
        );
        assert!(
            by_name("disk")
                .observations
                .iter()
                .any(|o| o.measurement == "available@/tmp")
        );
        assert_ne!(
            by_name("cpu").status,
            HealthStatus::Unknown,
            "{}",
            by_name("cpu").message
        );
        assert_ne!(
            by_name("runtime").status,
            HealthStatus::Unknown,
            "{}",
            by_name("runtime").message
        );
        let live = manager.check(Group::Liveness).await;
        let live: Vec<_> = live.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(live, ["runtime", "memory"], "no heuristic in liveness");
    }
}
