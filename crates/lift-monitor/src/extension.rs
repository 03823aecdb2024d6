//! lift's no-op internal Lambda extension: registered so that Lambda sends the runtime
//! SIGTERM (and gives it about 500 ms) before it shuts an environment down, which it does
//! only when at least one extension is registered.
//!
//! It is what `lambda_runtime::spawn_graceful_shutdown_handler` does, with a plain
//! HTTP/1.1 exchange on the Runtime API's loopback socket instead of a hyper client: the
//! registration is on every cold start's path (Lambda ends the Init phase when the runtime
//! asks for its first event, and an extension must have registered by then), and through
//! hyper it measured 0.54 to 1.7 ms under cargo-lambda's emulator, against 0.24 to 0.34 ms
//! for the same request written directly (see docs/lift-monitor.md).
//!
//! The Extensions API: `POST /2020-01-01/extension/register` with the extension's name in
//! `Lambda-Extension-Name` and the events it subscribes to (none), answered with its
//! identifier in `Lambda-Extension-Identifier`; then `GET /2020-01-01/extension/event/next`
//! with that identifier, which says the extension is ready and, with no events subscribed,
//! waits until the environment is shut down.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// The name the extension registers under; unique among the function's extensions.
pub(crate) const EXTENSION_NAME: &str = "lift-monitor-graceful-shutdown";

/// The largest response read: the API's answers are a few hundred bytes.
const MAX_RESPONSE: usize = 64 * 1024;

/// The Runtime API's address from `AWS_LAMBDA_RUNTIME_API`: `host:port` in Lambda,
/// `http://host:port/prefix` under cargo-lambda.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuntimeApi {
    authority: String,
    prefix: String,
}

impl RuntimeApi {
    pub(crate) fn parse(value: &str) -> Result<Self> {
        let invalid = || Error::InvalidEnv {
            name: "AWS_LAMBDA_RUNTIME_API",
            value: value.to_owned(),
            expected: "HOST:PORT or http://HOST:PORT[/PATH]",
        };
        let rest = match value.trim().split_once("://") {
            Some(("http", rest)) => rest,
            Some(_) => return Err(invalid()),
            None => value.trim(),
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty()
            || !authority.contains(':')
            || authority
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '@')
            || prefix.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid());
        }
        Ok(RuntimeApi {
            authority: authority.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// One request on a connection of its own; returns the status, the headers and the
    /// body. The body is read to its `Content-Length`, so that a server keeping the
    /// connection open does not hold the answer back.
    async fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Response> {
        let fail = |reason: String| Error::Extension { reason };
        let mut stream = TcpStream::connect(self.authority.as_str())
            .await
            .map_err(|err| fail(format!("cannot connect to {}: {err}", self.authority)))?;
        // Small requests and answers: send each at once.
        stream.set_nodelay(true).ok();
        let mut request = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.prefix, self.authority
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|err| fail(format!("cannot send {method} {path}: {err}")))?;
        let mut received = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(response) = Response::parse(&received).map_err(&fail)? {
                return Ok(response);
            }
            if received.len() > MAX_RESPONSE {
                return Err(fail(format!(
                    "the answer to {method} {path} is larger than {MAX_RESPONSE} bytes"
                )));
            }
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|err| fail(format!("cannot read the answer to {method} {path}: {err}")))?;
            if n == 0 {
                return Err(fail(format!(
                    "the connection closed before a complete answer to {method} {path}"
                )));
            }
            received.extend_from_slice(&chunk[..n]);
        }
    }

    /// Registers the extension, subscribed to no events; returns its identifier.
    pub(crate) async fn register(&self) -> Result<String> {
        let response = self
            .exchange(
                "POST",
                "/2020-01-01/extension/register",
                &[
                    ("Lambda-Extension-Name", EXTENSION_NAME),
                    ("Content-Type", "application/json"),
                ],
                r#"{"events":[]}"#,
            )
            .await?;
        if response.status != 200 {
            return Err(Error::Extension {
                reason: format!(
                    "the registration was answered HTTP {}: {}",
                    response.status,
                    String::from_utf8_lossy(&response.body)
                ),
            });
        }
        response
            .header("lambda-extension-identifier")
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Error::Extension {
                reason: "the registration's answer has no Lambda-Extension-Identifier".into(),
            })
    }

    /// Asks for the extension's next event: says it is ready, then waits (with no events
    /// subscribed, until the environment shuts down). Returns the status of the answer.
    pub(crate) async fn next_event(&self, id: &str) -> Result<u16> {
        self.exchange(
            "GET",
            "/2020-01-01/extension/event/next",
            &[("Lambda-Extension-Identifier", id)],
            "",
        )
        .await
        .map(|response| response.status)
    }
}

/// An HTTP/1.1 answer.
#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    /// The answer in `bytes`, `Ok(None)` while it is incomplete.
    fn parse(bytes: &[u8]) -> std::result::Result<Option<Response>, String> {
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Ok(None);
        };
        let head = std::str::from_utf8(&bytes[..end])
            .map_err(|_| "the answer's header is not UTF-8".to_owned())?;
        let status_line = head.split("\r\n").next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP/1.x status line: {status_line:?}"))?;
        let response = Response {
            status,
            head: head.to_owned(),
            body: Vec::new(),
        };
        if response
            .header("transfer-encoding")
            .is_some_and(|v| !v.eq_ignore_ascii_case("identity"))
        {
            return Err("the answer has a Transfer-Encoding; expected a Content-Length".into());
        }
        let length = match response.header("content-length") {
            Some(text) => text
                .parse::<usize>()
                .map_err(|_| format!("bad Content-Length {text:?}"))?,
            None => 0,
        };
        let body = &bytes[end + 4..];
        if body.len() < length {
            return Ok(None);
        }
        Ok(Some(Response {
            body: body[..length].to_vec(),
            ..response
        }))
    }

    /// The value of the header `name` (case-insensitive).
    fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_runtime_api_address() {
        assert_eq!(
            RuntimeApi::parse("127.0.0.1:9001").unwrap(),
            RuntimeApi {
                authority: "127.0.0.1:9001".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            RuntimeApi::parse("http://127.0.0.1:9000/.rt/").unwrap(),
            RuntimeApi {
                authority: "127.0.0.1:9000".into(),
                prefix: "/.rt".into()
            }
        );
        for bad in [
            "",
            "https://127.0.0.1:9001",
            "127.0.0.1",
            "a b:1",
            "user@h:1",
        ] {
            assert!(RuntimeApi::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_answers_by_their_content_length() {
        let full =
            b"HTTP/1.1 200 OK\r\nLambda-Extension-Identifier: abc\r\ncontent-length: 2\r\n\r\n{}";
        assert!(Response::parse(&full[..20]).unwrap().is_none());
        assert!(Response::parse(&full[..full.len() - 1]).unwrap().is_none());
        let response = Response::parse(full).unwrap().unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("lambda-extension-identifier"), Some("abc"));
        assert_eq!(response.body, b"{}");
        let no_body = Response::parse(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(no_body.status, 403);
        assert!(Response::parse(b"SMTP ready\r\n\r\n").is_err());
        assert!(Response::parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
    }

    /// Against a server on loopback that answers like the Extensions API and keeps the
    /// connection open: the registration returns the identifier, and the next event
    /// carries it.
    #[tokio::test]
    async fn registers_and_asks_for_the_next_event() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut requests = Vec::new();
            for answer in [
                "HTTP/1.1 200 OK\r\nLambda-Extension-Identifier: ext-7\r\nContent-Length: 2\r\n\r\n{}",
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            ] {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    read += stream.read(&mut buf[read..]).await.unwrap();
                }
                requests.push(String::from_utf8_lossy(&buf[..read]).into_owned());
                stream.write_all(answer.as_bytes()).await.unwrap();
                // Kept open, as a keep-alive server would.
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    drop(stream);
                });
            }
            requests
        });
        let api = RuntimeApi::parse(&format!("http://{address}/.rt")).unwrap();
        let id = api.register().await.unwrap();
        assert_eq!(id, "ext-7");
        assert_eq!(api.next_event(&id).await.unwrap(), 200);
        let requests = server.await.unwrap();
        assert!(
            requests[0].starts_with("POST /.rt/2020-01-01/extension/register HTTP/1.1\r\n"),
            "{}",
            requests[0]
        );
        assert!(requests[0].contains(&format!("Lambda-Extension-Name: {EXTENSION_NAME}\r\n")));
        assert!(requests[0].ends_with(r#"{"events":[]}"#));
        assert!(requests[1].starts_with("GET /.rt/2020-01-01/extension/event/next HTTP/1.1\r\n"));
        assert!(requests[1].contains("Lambda-Extension-Identifier: ext-7\r\n"));
    }

    #[tokio::test]
    async fn a_refused_registration_is_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let body =
                r#"{"errorMessage":"too late","errorType":"Extension.RegistrationAfterInit"}"#;
            let answer = format!(
                "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).await.unwrap();
        });
        let api = RuntimeApi::parse(&address.to_string()).unwrap();
        let err = api.register().await.unwrap_err();
        assert!(err.to_string().contains("HTTP 403"), "{err}");
        assert!(err.to_string().contains("RegistrationAfterInit"), "{err}");
    }
}
