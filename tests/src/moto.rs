//! A moto server on loopback, for the AWS Secrets Manager parity tests.
//!
//! `moto_server` comes from `pip install "moto[server]"`. The harness starts
//! it on a free port of 127.0.0.1, waits until it answers, resets it between
//! tests and kills it on drop.

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

    fn request(&self, method: &str, path: &str) -> Result<String, String> {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).map_err(|err| err.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|err| err.to_string())?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .map_err(|err| err.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|err| err.to_string())?;
        Ok(response)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
