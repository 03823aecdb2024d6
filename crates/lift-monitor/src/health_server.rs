//! A minimal HTTP/1.1 health endpoint (feature `http`): `/health`, `/health/ready` and
//! `/health/live`, answering `application/health+json` with 200, or 503 when unhealthy.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::error::{Error, Result};
use crate::group::Group;
use crate::manager::HealthManager;
use crate::report::{HEALTH_JSON_CONTENT_TYPE, ServiceInfo};

/// Requests larger than this are rejected: a health probe is a bare GET.
const MAX_REQUEST: usize = 8 * 1024;

/// Serves the health endpoints of a [`HealthManager`].
///
/// | path | group | status |
/// | --- | --- | --- |
/// | `/health` | all checks | 200, or 503 when unhealthy |
/// | `/health/ready` | readiness | 200, or 503 when unhealthy |
/// | `/health/live` | liveness | 200, or 503 when unhealthy |
///
/// Other paths get 404, other methods 405. Each response closes the connection.
#[derive(Debug)]
pub struct HealthServer {
    listener: TcpListener,
    manager: HealthManager,
    service: ServiceInfo,
}

impl HealthServer {
    /// Binds `addr` (use port 0 for any free port).
    pub async fn bind(
        addr: SocketAddr,
        manager: HealthManager,
        service: ServiceInfo,
    ) -> Result<Self> {
        let listener = TcpListener::bind(addr).await.map_err(|source| Error::Io {
            path: format!("tcp listener on {addr}"),
            source,
        })?;
        Ok(HealthServer {
            listener,
            manager,
            service,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|source| Error::Io {
            path: "tcp listener".into(),
            source,
        })
    }

    /// Serves until the task is dropped or aborted. A failing connection is logged and
    /// does not stop the server.
    pub async fn serve(self) {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    let manager = self.manager.clone();
                    let service = self.service.clone();
                    tokio::spawn(async move {
                        if let Err(err) = handle(stream, &manager, &service).await {
                            tracing::debug!(%peer, error = %err, "health request failed");
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a health connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn handle(
    mut stream: TcpStream,
    manager: &HealthManager,
    service: &ServiceInfo,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > MAX_REQUEST {
            return respond(
                &mut stream,
                431,
                "text/plain",
                b"request header too large\n",
            )
            .await;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request_line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let group = match path {
        b"/health" => Group::All,
        b"/health/ready" => Group::Readiness,
        b"/health/live" => Group::Liveness,
        _ => {
            return respond(
                &mut stream,
                404,
                "text/plain",
                b"not found; try /health, /health/ready or /health/live\n",
            )
            .await;
        }
    };
    if method != b"GET" && method != b"HEAD" {
        return respond(
            &mut stream,
            405,
            "text/plain",
            b"method not allowed; use GET\n",
        )
        .await;
    }
    let report = manager.check(group).await;
    let body =
        serde_json::to_vec(&report.to_health_json(service)).map_err(std::io::Error::other)?;
    respond_to(
        &mut stream,
        report.http_status(),
        HEALTH_JSON_CONTENT_TYPE,
        &body,
        method == b"HEAD",
    )
    .await
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    respond_to(stream, status, content_type, body, false).await
}

/// Writes a response. A HEAD response carries the GET body's `Content-Length` and no
/// body (RFC 9110, section 9.3.2).
async fn respond_to(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(body).await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::FnCheck;
    use crate::manager::CheckOptions;
    use lift_core::CheckOutcome;

    /// Fetches `url` with curl, a real HTTP client: (status, content type, body).
    fn curl(url: &str) -> Option<(u16, String, String)> {
        let output = std::process::Command::new("curl")
            .args([
                "-sS",
                "-o",
                "-",
                "-w",
                "\n%{http_code} %{content_type}",
                url,
            ])
            .output()
            .ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        let (body, meta) = text.rsplit_once('\n')?;
        let (code, content_type) = meta.split_once(' ')?;
        Some((code.parse().ok()?, content_type.to_owned(), body.to_owned()))
    }

    async fn raw_request(addr: SocketAddr, method: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("{method} /health/live HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_health_endpoints_over_loopback() {
        if std::process::Command::new("curl")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("skipping: this test needs the curl command line client on PATH");
            return;
        }
        let manager = HealthManager::builder()
            .ttl(std::time::Duration::ZERO)
            .build();
        manager
            .register_with(
                FnCheck::new("heartbeat", || CheckOutcome::healthy("beating")),
                CheckOptions::live_and_ready(),
            )
            .unwrap();
        manager
            .register(FnCheck::new("db", || {
                CheckOutcome::unhealthy("connection refused")
            }))
            .unwrap();
        let server = HealthServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            manager,
            ServiceInfo::default(),
        )
        .await
        .unwrap();
        let addr = server.local_addr().unwrap();
        let task = tokio::spawn(server.serve());

        let base = format!("http://{addr}");
        let results = tokio::task::spawn_blocking(move || {
            ["/health/live", "/health/ready", "/health", "/nope"]
                .map(|path| curl(&format!("{base}{path}")).unwrap())
        })
        .await
        .unwrap();
        let [live, ready, all, missing] = results;
        assert_eq!(live.0, 200);
        assert_eq!(live.1, HEALTH_JSON_CONTENT_TYPE);
        let doc: serde_json::Value = serde_json::from_str(&live.2).unwrap();
        assert_eq!(doc["status"], "pass");
        assert_eq!(ready.0, 503);
        let doc: serde_json::Value = serde_json::from_str(&ready.2).unwrap();
        assert_eq!(doc["status"], "fail");
        assert_eq!(doc["checks"]["db"][0]["output"], "connection refused");
        assert_eq!(all.0, 503);
        assert_eq!(missing.0, 404);

        // HEAD: the GET body's Content-Length, and no body.
        let get = raw_request(addr, "GET").await;
        let head = raw_request(addr, "HEAD").await;
        let length = |response: &str| -> usize {
            response
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let (_, get_body) = get.split_once("\r\n\r\n").unwrap();
        assert_eq!(length(&get), get_body.len());
        assert!(length(&head) > 0);
        assert_eq!(length(&head), length(&get));
        assert!(head.ends_with("\r\n\r\n"), "a HEAD response has no body");

        // lift's own client reads it back.
        let url: crate::HealthUrl = format!("http://{addr}").parse().unwrap();
        let fetched = crate::fetch_health(&url, std::time::Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(fetched.http_status, 503);
        assert_eq!(
            fetched.document.health_status(),
            lift_core::HealthStatus::Unhealthy
        );
        let table = fetched
            .document
            .render_table(&format!("service {url}"), false);
        assert!(table.contains("connection refused"), "{table}");
        assert!(
            table.starts_with(&format!("service http://{addr}/health\n")),
            "{table}"
        );
        task.abort();
    }
}
