//! `lift health` under the conditions a hostile tester found: Ctrl-C while a report
//! is measured, a target that goes away during `--watch`, `--health-json` on errors,
//! and components (a secret store, an audit log) that are missing or damaged, which a
//! health check must report and never create or refuse.
#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn lift_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lift"));
    command
        .args(args)
        .env_remove("LIFT_HEALTH_ENDPOINTS")
        .env_remove("LIFT_SECRETS_STORE")
        .env_remove("LIFT_SECRETS_KEY_FILE")
        .env_remove("LIFT_AUDIT_LOG")
        .env_remove("LIFT_AUDIT_KEY_FILE")
        .env_remove("LIFT_AUDIT_CHECKPOINT")
        .env_remove("LIFT_AUDIT_SIGNING_KEY_FILE")
        .env_remove("LIFT_AUDIT_S3")
        .env_remove("LIFT_CONFIG")
        .env_remove("LIFT_ENV")
        .env("LIFT_PULUMI", "/nonexistent/pulumi")
        .stdin(Stdio::null());
    command
}

fn lift(args: &[&str]) -> Output {
    lift_command(args).output().unwrap()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "not JSON ({err}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report}"))
}

/// The names of the entries of `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A running `lift ... --watch` whose stdout is read line by line.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watch {
    fn start(args: &[&str]) -> Watch {
        let mut child = lift_command(args).stdout(Stdio::piped()).spawn().unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Watch { child, lines }
    }

    /// The next line of output, as JSON (each report is one line under `--json`).
    fn next_report(&self, within: Duration) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(within)
            .unwrap_or_else(|err| panic!("no report within {within:?}: {err}"));
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
    }

    fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The exit code, if the process ends within `within`.
    fn exit_within(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const FAIL: &str = r#"{"status":"fail","output":"db: connection refused","checks":{"db":[{"status":"fail","time":"2026-01-01T00:00:00.000Z","output":"connection refused"}]}}"#;
const PASS: &str = r#"{"status":"pass","checks":{}}"#;

/// Reads one HTTP request and answers it with `body` (chunked) under `http_status`.
fn answer(stream: &mut std::net::TcpStream, http_status: &str, body: &str) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let response = format!(
        "HTTP/1.1 {http_status}\r\nContent-Type: application/health+json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// Ctrl-C while `--url` waits for a slow service ends the watch at once, with the
/// exit code of the last report, as a Ctrl-C between reports does.
#[test]
fn ctrl_c_while_a_report_is_measured_stops_the_watch() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (hanging, hung) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let mut first = listener.accept().unwrap().0;
        answer(&mut first, "503 Service Unavailable", FAIL);
        drop(first);
        // The second request gets no answer: the report is being measured until
        // lift's 10 s timeout, or until it is interrupted.
        let second = listener.accept().unwrap().0;
        hanging.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(12));
        drop(second);
    });
    let url = format!("http://127.0.0.1:{port}");
    let mut watch = Watch::start(&["--json", "health", "--url", &url, "--watch", "1"]);
    let first = watch.next_report(Duration::from_secs(10));
    assert_eq!(first["status"], "fail", "{first}");
    hung.recv_timeout(Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    watch.interrupt();
    let code = watch.exit_within(Duration::from_secs(3));
    assert_eq!(
        code,
        Some(1),
        "Ctrl-C during a fetch ends the watch with the last report's code (unhealthy: 1)"
    );
    drop(watch);
    drop(server);
}

/// A service that stops answering during `--watch` is a failed report, and the
/// watch goes on; the exit code is the last report's.
#[test]
fn watch_goes_on_when_the_service_stops() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut first = listener.accept().unwrap().0;
        answer(&mut first, "200 OK", PASS);
        // Dropping the listener closes the port: later fetches are refused.
    });
    let url = format!("http://127.0.0.1:{port}");
    let mut watch = Watch::start(&["--json", "health", "--url", &url, "--watch", "1"]);
    let first = watch.next_report(Duration::from_secs(10));
    assert_eq!(first["status"], "pass", "{first}");
    server.join().unwrap();
    for _ in 0..2 {
        let failed = watch.next_report(Duration::from_secs(10));
        assert_eq!(failed["status"], "fail", "{failed}");
        let output = failed["output"].as_str().unwrap();
        assert!(
            output.contains("cannot connect"),
            "says what failed: {output}"
        );
        assert_eq!(failed["checks"]["fetch"][0]["status"], "fail", "{failed}");
    }
    assert_eq!(watch.exit_within(Duration::ZERO), None, "still watching");
    watch.interrupt();
    assert_eq!(watch.exit_within(Duration::from_secs(3)), Some(1));
}

/// A process that exits during `--watch --pid` is a failed report; the watch goes on.
#[test]
fn watch_goes_on_when_the_process_exits() {
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = child.id().to_string();
    let mut watch = Watch::start(&["--json", "health", "--pid", &pid, "--watch", "1"]);
    let first = watch.next_report(Duration::from_secs(10));
    assert_eq!(first["target"], format!("process {pid} (sleep)"), "{first}");
    child.kill().unwrap();
    child.wait().unwrap();
    let failed = watch.next_report(Duration::from_secs(10));
    assert_eq!(failed["status"], "unhealthy", "{failed}");
    let message = check(&failed, "process")["message"].as_str().unwrap();
    assert!(
        message.contains(&pid),
        "says which process is gone: {message}"
    );
    let again = watch.next_report(Duration::from_secs(10));
    assert_eq!(again["status"], "unhealthy", "{again}");
    watch.interrupt();
    assert_eq!(watch.exit_within(Duration::from_secs(3)), Some(1));
}

/// Without `--watch`, a failed fetch is still an error; with `--health-json` it
/// prints the error document on stdout, as `--json` does.
#[test]
fn health_json_prints_the_error_document() {
    let output = lift(&["health", "--health-json", "--pid", "4294967294"]);
    assert_eq!(output.status.code(), Some(2));
    let doc = json(&output);
    assert_eq!(doc["error"]["kind"], "invalid_input", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no process has pid 4294967294"),
        "{doc}"
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let output = lift(&["health", "--health-json", "--url", &url]);
    assert_eq!(output.status.code(), Some(1));
    let doc = json(&output);
    assert_eq!(doc["error"]["kind"], "unavailable", "{doc}");
    // Under both flags the document is printed once.
    let output = lift(&["--json", "health", "--health-json", "--url", &url]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json(&output)["error"]["kind"], "unavailable");
}

/// A missing secret store or audit log is reported unhealthy, naming the path, and
/// nothing is created.
#[test]
fn missing_store_and_log_are_reported_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("st2");
    let log = dir.path().join("new.jsonl");
    let output = lift_command(&["--json", "health", "--audit-log", log.to_str().unwrap()])
        .env("LIFT_SECRETS_STORE", &store)
        .output()
        .unwrap();
    let report = json(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    let secrets = check(&report, "secrets:store");
    assert_eq!(secrets["status"], "unhealthy", "{secrets}");
    let message = secrets["message"].as_str().unwrap();
    assert!(message.contains(store.to_str().unwrap()), "{message}");
    assert!(message.contains("does not exist"), "{message}");
    let audit = check(&report, "audit_log");
    assert_eq!(audit["status"], "unhealthy", "{audit}");
    let message = audit["message"].as_str().unwrap();
    assert!(message.contains(log.to_str().unwrap()), "{message}");
    assert!(message.contains("does not exist"), "{message}");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

/// An existing store is checked without being changed.
#[test]
fn an_existing_store_is_checked_in_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let store = dir.path().join("store");
    let mut put = lift_command(&["secrets", "--plaintext", "put", "app/token"])
        .env("LIFT_SECRETS_STORE", &store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    put.stdin.take().unwrap().write_all(b"x\n").unwrap();
    let put = put.wait_with_output().unwrap();
    if !put.status.success() {
        // The store is created here only to be checked; say why not if it cannot be.
        panic!(
            "cannot create a store: {}",
            String::from_utf8_lossy(&put.stderr)
        );
    }
    let before = listing(&store);
    let output = lift_command(&["--json", "health"])
        .env("LIFT_SECRETS_STORE", &store)
        .output()
        .unwrap();
    let report = json(&output);
    let secrets = check(&report, "secrets:store");
    assert_eq!(secrets["status"], "degraded", "plaintext: {secrets}");
    assert_eq!(listing(&store), before);
}

/// A damaged audit log does not stop the report: its check is unhealthy, and the log
/// is neither appended to nor given a checkpoint, lock or signing key.
#[test]
fn a_damaged_audit_log_is_an_unhealthy_check() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("badlog.jsonl");
    std::fs::write(&log, "{\"not\":\"an audit record\"}\n").unwrap();
    let output = lift(&["--json", "health", "--audit-log", log.to_str().unwrap()]);
    let report = json(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    let audit = check(&report, "audit_log");
    assert_eq!(audit["status"], "unhealthy", "{audit}");
    assert!(
        audit["message"]
            .as_str()
            .unwrap()
            .contains(log.to_str().unwrap()),
        "{audit}"
    );
    assert_eq!(listing(dir.path()), ["badlog.jsonl"]);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "{\"not\":\"an audit record\"}\n"
    );
}
