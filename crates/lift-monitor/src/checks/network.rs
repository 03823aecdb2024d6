//! DNS resolution and TCP connection to configured endpoints.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use lift_core::{CheckOutcome, HealthCheck, HealthStatus};
use tracing::Instrument;

use super::Findings;
use crate::error::Error;
use crate::threshold::Threshold;
use crate::units::format_seconds;

/// A `host:port` to resolve and connect to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    /// An endpoint; `host` is a DNS name or an IP address.
    pub fn new(host: impl Into<String>, port: u16) -> Result<Self, Error> {
        let host = host.into();
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(Error::InvalidConfig(format!(
                "endpoint host {host:?} is empty or contains whitespace; give a DNS name or an IP address"
            )));
        }
        Ok(Endpoint { host, port })
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    /// Parses `host:port` or `[ipv6]:port`.
    fn from_str(text: &str) -> Result<Self, Error> {
        let bad = || {
            Error::InvalidConfig(format!(
                "endpoint {text:?} is not host:port; write it like example.com:443 or [::1]:8080"
            ))
        };
        let (host, port) = text.trim().rsplit_once(':').ok_or_else(bad)?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
            None if host.contains(':') => return Err(bad()),
            None => host,
        };
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(bad());
        }
        Endpoint::new(host, port)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Resolves each endpoint and opens a TCP connection to it, with a timeout. Name: `network`.
///
/// An endpoint that does not resolve or connect within the timeout is unhealthy; a slow
/// connection is judged by the latency threshold (default: warn 250 ms, fail 1 s).
/// With no endpoints the check reports unknown ("not configured"): it never passes on nothing.
///
/// Observations: `dns@HOST:PORT` and `connect@HOST:PORT`, in seconds.
#[derive(Debug, Clone)]
pub struct NetworkCheck {
    endpoints: Vec<Endpoint>,
    timeout: Duration,
    latency: Threshold,
}

impl Default for NetworkCheck {
    fn default() -> Self {
        NetworkCheck {
            endpoints: Vec::new(),
            timeout: Duration::from_secs(2),
            latency: Self::DEFAULT_LATENCY,
        }
    }
}

impl NetworkCheck {
    /// The default connect-latency thresholds, in seconds.
    pub const DEFAULT_LATENCY: Threshold = Threshold::above(0.25, 1.0);

    /// A check of `endpoints` with the default timeout (2 s) and thresholds.
    pub fn new(endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        NetworkCheck {
            endpoints: endpoints.into_iter().collect(),
            ..Default::default()
        }
    }

    /// Sets the timeout for resolving and connecting, per endpoint.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the connect-latency thresholds, in seconds.
    #[must_use]
    pub fn latency(mut self, threshold: Threshold) -> Self {
        self.latency = threshold;
        self
    }

    /// The endpoints checked.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }
}

/// What probing one endpoint found.
enum Probe {
    Connected {
        dns: Duration,
        connect: Duration,
    },
    Failed {
        dns: Option<Duration>,
        reason: String,
    },
}

async fn probe(endpoint: &Endpoint, timeout: Duration) -> Probe {
    let start = Instant::now();
    let resolved = tokio::time::timeout(
        timeout,
        tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port)),
    )
    .await;
    let addrs: Vec<_> = match resolved {
        Err(_) => {
            return Probe::Failed {
                dns: None,
                reason: format!(
                    "resolving {endpoint} timed out after {}",
                    format_seconds(timeout.as_secs_f64())
                ),
            };
        }
        Ok(Err(err)) => {
            return Probe::Failed {
                dns: None,
                reason: format!("cannot resolve {endpoint}: {err}"),
            };
        }
        Ok(Ok(addrs)) => addrs.collect(),
    };
    let dns = start.elapsed();
    if addrs.is_empty() {
        return Probe::Failed {
            dns: Some(dns),
            reason: format!("{endpoint} resolved to no address"),
        };
    }
    let mut last_error = String::new();
    for addr in addrs {
        let remaining = timeout.saturating_sub(start.elapsed());
        let connect_start = Instant::now();
        match tokio::time::timeout(remaining, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_stream)) => {
                return Probe::Connected {
                    dns,
                    connect: connect_start.elapsed(),
                };
            }
            Ok(Err(err)) => last_error = format!("cannot connect to {endpoint} ({addr}): {err}"),
            Err(_) => {
                last_error = format!(
                    "connecting to {endpoint} ({addr}) timed out after {}",
                    format_seconds(timeout.as_secs_f64())
                );
                break;
            }
        }
    }
    Probe::Failed {
        dns: Some(dns),
        reason: last_error,
    }
}

#[async_trait::async_trait]
impl HealthCheck for NetworkCheck {
    fn name(&self) -> &str {
        "network"
    }

    async fn check(&self) -> CheckOutcome {
        if self.endpoints.is_empty() {
            return CheckOutcome::unknown("not configured: no endpoints to check");
        }
        let probes = futures::future::join_all(self.endpoints.iter().map(|endpoint| {
            let span = tracing::info_span!("lift_monitor.network_probe", endpoint = %endpoint);
            async move { (endpoint, probe(endpoint, self.timeout).await) }.instrument(span)
        }))
        .await;
        let mut f = Findings::at(chrono::Utc::now()).component_type("component");
        for (endpoint, probe) in probes {
            match probe {
                Probe::Connected { dns, connect } => {
                    f.observe(format!("dns@{endpoint}"), dns.as_secs_f64(), "seconds");
                    f.observe(
                        format!("connect@{endpoint}"),
                        connect.as_secs_f64(),
                        "seconds",
                    );
                    f.judge(&self.latency, connect.as_secs_f64(), || {
                        format!(
                            "{endpoint} connected in {}",
                            format_seconds(connect.as_secs_f64())
                        )
                    });
                }
                Probe::Failed { dns, reason } => {
                    if let Some(dns) = dns {
                        f.observe(format!("dns@{endpoint}"), dns.as_secs_f64(), "seconds");
                    }
                    tracing::warn!(%endpoint, %reason, "network check failed");
                    f.add(HealthStatus::Unhealthy, reason);
                }
            }
        }
        f.finish("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() {
        let e: Endpoint = "example.com:443".parse().unwrap();
        assert_eq!((e.host(), e.port()), ("example.com", 443));
        let e: Endpoint = "[::1]:8080".parse().unwrap();
        assert_eq!((e.host(), e.port()), ("::1", 8080));
        assert_eq!(e.to_string(), "[::1]:8080");
        for bad in [
            "example.com",
            "example.com:http",
            ":80",
            "::1:80",
            "host:0",
            "a b:1",
            "[::1:80",
        ] {
            let err = bad.parse::<Endpoint>().unwrap_err();
            assert!(
                err.to_string().contains("host:port") || err.to_string().contains("whitespace"),
                "{bad}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn with_no_endpoints_it_is_not_configured() {
        let out = NetworkCheck::default().check().await;
        assert_eq!(out.status, HealthStatus::Unknown);
        assert!(out.message.contains("not configured"));
    }

    #[tokio::test]
    async fn connects_to_a_listening_port_and_fails_on_a_closed_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        // Bind and drop to find a port nobody listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let check = NetworkCheck::new([Endpoint::new("localhost", open.port()).unwrap()]);
        let out = check.check().await;
        assert_eq!(out.status, HealthStatus::Healthy, "{}", out.message);
        assert!(
            out.observations
                .iter()
                .any(|o| o.measurement == format!("connect@localhost:{}", open.port()))
        );

        let check = NetworkCheck::new([
            Endpoint::new("127.0.0.1", open.port()).unwrap(),
            Endpoint::new("127.0.0.1", closed.port()).unwrap(),
        ])
        .timeout(Duration::from_secs(1));
        let out = check.check().await;
        assert_eq!(out.status, HealthStatus::Unhealthy);
        assert!(
            out.message
                .contains(&format!("cannot connect to 127.0.0.1:{}", closed.port())),
            "{}",
            out.message
        );
    }

    #[tokio::test]
    async fn unresolvable_hosts_are_unhealthy() {
        let check = NetworkCheck::new([Endpoint::new("no-such-host.invalid", 80).unwrap()])
            .timeout(Duration::from_secs(2));
        let out = check.check().await;
        assert_eq!(out.status, HealthStatus::Unhealthy);
        assert!(
            out.message.contains("no-such-host.invalid"),
            "{}",
            out.message
        );
    }
}
