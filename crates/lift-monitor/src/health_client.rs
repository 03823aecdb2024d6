//! Fetching another service's health endpoint: a small HTTP/1.1 client for
//! `application/health+json`, so that `lift health --url` needs no HTTP stack.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::report::HealthJson;
use lift_core::HealthStatus;

/// The largest response read: a health document is a few kilobytes.
const MAX_RESPONSE: usize = 1 << 20;

/// A service's health endpoint, parsed from a URL such as `http://10.0.0.5:8080` (which
/// means `/health`) or `http://api.internal/health/ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthUrl {
    host: String,
    port: u16,
    path: String,
}

impl std::fmt::Display for HealthUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

impl std::str::FromStr for HealthUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self> {
        let invalid =
            |why: &str| Error::InvalidConfig(format!("invalid health URL {url:?}: {why}"));
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(invalid(
                    "https is not supported; point --url at the plain-HTTP port or a sidecar",
                ));
            }
            Some(_) => return Err(invalid("only http:// URLs are supported")),
            None => url,
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(invalid("expected http://HOST[:PORT][/PATH]"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            // An IPv6 literal: [::1]:8080 or [::1].
            _ if authority.starts_with('[') => match authority.split_once(']') {
                Some((host, "")) => (format!("{host}]"), 80),
                Some((host, port)) => (
                    format!("{host}]"),
                    port.strip_prefix(':')
                        .and_then(|p| p.parse().ok())
                        .ok_or_else(|| invalid("the port must be a number from 1 to 65535"))?,
                ),
                None => return Err(invalid("unclosed [ in the host")),
            },
            Some((host, port)) => (
                host.to_owned(),
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| invalid("the port must be a number from 1 to 65535"))?,
            ),
            None => (authority.to_owned(), 80),
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("the host is empty or holds spaces"));
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("the path holds spaces; percent-encode them"));
        }
        let path = if path.is_empty() || path == "/" {
            "/health".to_owned()
        } else {
            path.to_owned()
        };
        Ok(HealthUrl { host, port, path })
    }
}

/// What a health endpoint answered.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedHealth {
    /// The HTTP status (200, or 503 when the service reports itself unhealthy).
    pub http_status: u16,
    /// The document.
    pub document: HealthJson,
}

impl FetchedHealth {
    /// The service's status: its document's, made unhealthy by an HTTP status outside
    /// 2xx and 3xx. The draft has a service answer `fail` with a 4xx or 5xx; a 5xx with
    /// `pass` in the body contradicts itself, and a 404 usually means a wrong path, so
    /// neither is reported healthy.
    pub fn status(&self) -> HealthStatus {
        let document = self.document.health_status();
        if (200..400).contains(&self.http_status) {
            document
        } else {
            HealthStatus::Unhealthy
        }
    }
}

/// GETs `url` and parses its `application/health+json` body, within `timeout`.
///
/// A 503 with a health document is a successful fetch of an unhealthy service. Fails
/// with [`Error::Fetch`] when the service cannot be reached or answers something else.
pub async fn fetch_health(url: &HealthUrl, timeout: Duration) -> Result<FetchedHealth> {
    let fail = |reason: String| Error::Fetch {
        url: url.to_string(),
        reason,
    };
    let exchange = async {
        let host = url.host.trim_start_matches('[').trim_end_matches(']');
        let mut stream = TcpStream::connect((host, url.port))
            .await
            .map_err(|err| fail(format!("cannot connect: {err}")))?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}:{}\r\nAccept: application/health+json, application/json\r\nUser-Agent: lift/{}\r\nConnection: close\r\n\r\n",
            url.path,
            url.host,
            url.port,
            env!("CARGO_PKG_VERSION")
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|err| fail(format!("cannot send the request: {err}")))?;
        let mut response = Vec::with_capacity(4096);
        let mut limited = (&mut stream).take(MAX_RESPONSE as u64 + 1);
        limited
            .read_to_end(&mut response)
            .await
            .map_err(|err| fail(format!("cannot read the response: {err}")))?;
        if response.len() > MAX_RESPONSE {
            return Err(fail(format!(
                "the response is larger than {MAX_RESPONSE} bytes"
            )));
        }
        Ok(response)
    };
    let response = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| fail(format!("no answer within {} s", timeout.as_secs_f64())))??;
    let (status, body) = parse_response(&response).map_err(fail)?;
    let document: HealthJson = serde_json::from_slice(&body).map_err(|err| {
        fail(format!(
            "HTTP {status}, and the body is not a health+json document: {}",
            crate::report::shown(&err.to_string(), 400)
        ))
    })?;
    Ok(FetchedHealth {
        http_status: status,
        document,
    })
}

/// Splits an HTTP/1.1 response into its status and its body, decoding a chunked body.
fn parse_response(response: &[u8]) -> std::result::Result<(u16, Vec<u8>), String> {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the response has no complete header")?;
    let head = std::str::from_utf8(&response[..end]).map_err(|_| "the header is not UTF-8")?;
    let body = &response[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP/1.x status line: {status_line:?}"))?;
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let chunked =
        header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(body)?
    } else if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad Content-Length {length:?}"))?;
        body.get(..length)
            .ok_or("the body is shorter than its Content-Length")?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line is cut off")?;
        let size_text = std::str::from_utf8(&body[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(body.get(..size).ok_or("a chunk is cut off")?);
        body = body.get(size + 2..).ok_or("a chunk is cut off")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_health_urls() {
        let url: HealthUrl = "http://127.0.0.1:8080".parse().unwrap();
        assert_eq!(url.to_string(), "http://127.0.0.1:8080/health");
        let url: HealthUrl = "api.internal/health/ready".parse().unwrap();
        assert_eq!(url.to_string(), "http://api.internal:80/health/ready");
        let url: HealthUrl = "http://[::1]:9000/".parse().unwrap();
        assert_eq!(url.to_string(), "http://[::1]:9000/health");
        for bad in [
            "https://x",
            "ftp://x",
            "http://",
            "http://host:0",
            "http://host:99999",
            "http://host:port",
            "http://a b/",
            "http://u@host/",
        ] {
            let err = bad.parse::<HealthUrl>().unwrap_err();
            assert_eq!(
                lift_core::Classify::kind(&err),
                lift_core::ErrorKind::InvalidInput,
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}extra";
        assert_eq!(parse_response(plain).unwrap(), (503, b"{}".to_vec()));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked).unwrap(),
            (200, br#"{"a":1}"#.to_vec())
        );
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}").is_err());
    }

    #[tokio::test]
    async fn an_unreachable_service_is_a_fetch_error() {
        // Bind then drop a listener: nothing listens on that port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url: HealthUrl = format!("http://127.0.0.1:{port}").parse().unwrap();
        let err = fetch_health(&url, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Fetch { .. }), "{err}");
        assert!(err.to_string().contains("cannot connect"), "{err}");
    }

    /// An HTTP error status is never reported healthy, whatever the body says.
    #[test]
    fn an_http_error_makes_the_service_unhealthy() {
        let fetched = |http_status: u16, status: &str| FetchedHealth {
            http_status,
            document: serde_json::from_str(&format!(r#"{{"status":"{status}"}}"#)).unwrap(),
        };
        assert_eq!(fetched(200, "pass").status(), HealthStatus::Healthy);
        assert_eq!(fetched(200, "warn").status(), HealthStatus::Degraded);
        assert_eq!(fetched(503, "DOWN").status(), HealthStatus::Unhealthy);
        assert_eq!(fetched(503, "pass").status(), HealthStatus::Unhealthy);
        assert_eq!(fetched(404, "pass").status(), HealthStatus::Unhealthy);
    }
}
