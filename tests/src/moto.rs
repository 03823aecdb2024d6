//! A moto server on loopback, for the AWS Secrets Manager parity tests.
//!
//! `moto_server` comes from `pip install "moto[server]"`. The harness starts
//! it on a free port of 127.0.0.1, waits until it answers, resets it between
//! tests and kills it on drop. It can also create IAM users and turn moto's IAM
//! enforcement on, for the tests of refused actions.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable that turns the moto tests on.
pub const ENABLE_VAR: &str = "LIFT_TEST_MOTO";

/// Whether the moto tests should run; prints why not when they should not.
// The skip message is the point: a test that silently passes would hide that it did not run.
#[allow(clippy::print_stderr)]
pub fn enabled(test: &str) -> bool {
    if std::env::var(ENABLE_VAR).as_deref() == Ok("1") {
        return true;
    }
    eprintln!(
        "skipping {test}: set {ENABLE_VAR}=1 to run it against moto (needs `pip install \"moto[server]\"`, which provides moto_server)"
    );
    false
}

/// A running `moto_server`, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
}

impl MotoServer {
    /// Starts `moto_server -H 127.0.0.1 -p <free port>` and waits up to 60 s for it to answer.
    pub fn start() -> Result<MotoServer, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|err| format!("cannot find a free loopback port: {err}"))?
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot start moto_server ({err}); install it with `pip install \"moto[server]\"`"))?;
        let mut server = MotoServer { child, port };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("moto_server exited early with {status}"));
            }
            if server.request("GET", "/moto-api/").is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("moto_server did not answer within 60 s".to_owned())
    }

    /// The endpoint URL to give the AWS SDK.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Forgets every secret (`POST /moto-api/reset`).
    pub fn reset(&self) -> Result<(), String> {
        let response = self.request("POST", "/moto-api/reset")?;
        if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
            Ok(())
        } else {
            Err(format!(
                "moto reset answered {:?}",
                response.lines().next().unwrap_or_default()
            ))
        }
    }

    /// Turns moto's IAM enforcement on (`Some(0)`: every request from now on must be
    /// signed by an IAM user's access key and allowed by its policies; `Some(n)`: after
    /// `n` more requests) or off (`None`), as `INITIAL_NO_AUTH_ACTION_COUNT` does
    /// (`POST /moto-api/reset-auth`).
    pub fn enforce_iam(&self, after_requests: Option<u32>) -> Result<(), String> {
        let count = after_requests.map_or_else(|| "inf".to_owned(), |n| n.to_string());
        let response = self.request_with("POST", "/moto-api/reset-auth", &[], &count)?;
        expect_ok("reset-auth", &response)
    }

    /// Creates an IAM user whose only policy is the inline `policy` document, and returns
    /// its access key id and secret access key. Call it while IAM is not enforced.
    pub fn create_iam_user(&self, user: &str, policy: &str) -> Result<(String, String), String> {
        self.iam(&[("Action", "CreateUser"), ("UserName", user)])?;
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", user),
            ("PolicyName", "lift-test"),
            ("PolicyDocument", policy),
        ])?;
        let created = self.iam(&[("Action", "CreateAccessKey"), ("UserName", user)])?;
        let key_id = xml_text(&created, "AccessKeyId")
            .ok_or_else(|| format!("CreateAccessKey answered without an AccessKeyId: {created}"))?;
        let secret = xml_text(&created, "SecretAccessKey")
            .ok_or_else(|| "CreateAccessKey answered without a SecretAccessKey".to_owned())?;
        Ok((key_id, secret))
    }

    /// One IAM Query API call. moto routes it by the credential scope of the
    /// `Authorization` header, which it does not check while IAM is not enforced.
    fn iam(&self, params: &[(&str, &str)]) -> Result<String, String> {
        let mut body = String::from("Version=2010-05-08");
        for (key, value) in params {
            body.push('&');
            body.push_str(key);
            body.push('=');
            body.push_str(&form_encode(value));
        }
        let response = self.request_with(
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
                ),
            ],
            &body,
        )?;
        expect_ok(
            params.first().map_or("IAM", |(_, action)| action),
            &response,
        )?;
        Ok(response)
    }

    fn request(&self, method: &str, path: &str) -> Result<String, String> {
        self.request_with(method, path, &[], "")
    }

    fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<String, String> {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).map_err(|err| err.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|err| err.to_string())?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream
            .write_all(request.as_bytes())
            .map_err(|err| err.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|err| err.to_string())?;
        Ok(response)
    }
}

fn expect_ok(what: &str, response: &str) -> Result<(), String> {
    if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(format!("moto {what} answered {response:?}"))
    }
}

/// The text of the first `<tag>` element of an XML answer.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].to_owned())
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
