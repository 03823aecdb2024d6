//! `lift health` end to end through the real binary, against real targets: the host,
//! a child process (`--pid`) and an HTTP server on loopback (`--url`). Every report
//! names what it measured, and the exit codes follow the status and `--fail-on`.
#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn lift(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lift"))
        .args(args)
        .env_remove("LIFT_HEALTH_ENDPOINTS")
        .env_remove("LIFT_SECRETS_STORE")
        .env("LIFT_PULUMI", "/nonexistent/pulumi")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "not JSON ({err}): {}\nstderr: {}",
            stdout(output),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn observation(report: &serde_json::Value, check: &str, measurement: &str) -> f64 {
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == check)
        .unwrap_or_else(|| panic!("no {check} check in {report}"));
    check["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["measurement"] == measurement)
        .unwrap_or_else(|| panic!("no {measurement} in {check}"))["value"]
        .as_f64()
        .unwrap()
}

/// A child that allocates about 64 MiB, opens a few files and then waits.
struct Child64 {
    child: Child,
}

impl Child64 {
    fn start() -> Child64 {
        // Python is not guaranteed; the shell builds a 64 MiB string in a variable.
        let mut child = Command::new("sh")
            .args([
                "-c",
                "x=$(head -c 67108864 /dev/zero | tr '\\0' a); exec 3</dev/null 4</dev/null; echo ready; while :; do sleep 1; done",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Child64 { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Child64 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status_kib(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<f64>()
        .unwrap()
        * 1024.0
}

#[test]
fn pid_reports_the_other_process_not_the_cli() {
    let child = Child64::start();
    let pid = child.pid();
    let output = lift(&["--json", "health", "--pid", &pid.to_string()]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let report = json(&output);
    assert_eq!(report["target"], format!("process {pid} (sh)"));
    let names: Vec<_> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["memory", "resources", "cpu"]);
    // The child's figures, as the kernel reports them, not the CLI's.
    let rss = observation(&report, "memory", "rss");
    let kernel_rss = proc_status_kib(pid, "VmRSS:");
    assert!(
        (rss - kernel_rss).abs() < 8.0 * 1024.0 * 1024.0,
        "rss {rss} vs VmRSS {kernel_rss}"
    );
    assert!(
        rss > 60.0 * 1024.0 * 1024.0,
        "the child holds 64 MiB: {rss}"
    );
    let peak = observation(&report, "memory", "peak_rss");
    assert!(peak >= rss, "peak {peak} rss {rss}");
    assert_eq!(observation(&report, "resources", "threads"), 1.0);
    let fds = observation(&report, "resources", "open_fds");
    let kernel_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as f64;
    assert_eq!(fds, kernel_fds);
    let limit = observation(&report, "resources", "fd_limit");
    assert!(limit >= kernel_fds);
    // A sleeping shell uses almost no CPU over the one-second window.
    assert!(observation(&report, "cpu", "utilization") < 20.0);
}

#[test]
fn pid_table_says_what_it_measured() {
    let child = Child64::start();
    let pid = child.pid();
    let output = lift(&["health", "--pid", &pid.to_string()]);
    let text = stdout(&output);
    assert!(text.starts_with(&format!("process {pid} (sh)\n")), "{text}");
    assert!(text.contains("over 1."), "the CPU window is named: {text}");
    assert!(!text.contains('\x1b'), "no ANSI codes in a pipe: {text:?}");
}

#[test]
fn a_missing_pid_or_a_bad_flag_is_exit_2() {
    let output = lift(&["health", "--pid", "4294967294"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no process has pid 4294967294"));
    assert_eq!(lift(&["health", "--pid", "0"]).status.code(), Some(2));
    assert_eq!(lift(&["health", "--pid", "abc"]).status.code(), Some(2));
    assert_eq!(
        lift(&["health", "--fail-on", "sometimes"]).status.code(),
        Some(2)
    );
    assert_eq!(
        lift(&["health", "--pid", "1", "--url", "http://x"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(lift(&["health", "--url", "ftp://x"]).status.code(), Some(2));
}

#[test]
fn the_default_is_the_host() {
    let output = lift(&["--json", "health"]);
    let report = json(&output);
    let target = report["target"].as_str().unwrap();
    assert!(target.starts_with("host "), "{target}");
    let names: Vec<_> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(&names[..3], ["memory", "load", "disk"]);
    // The host's memory, not the CLI's RSS.
    let total = observation(&report, "memory", "total");
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kernel_total = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<f64>()
        .unwrap()
        * 1024.0;
    assert_eq!(total, kernel_total);
    let code = output.status.code().unwrap();
    let status = report["status"].as_str().unwrap();
    assert_eq!(code, i32::from(status == "unhealthy"), "{status}");
}

/// `--health-json` prints the host's report as `application/health+json`: the overall
/// status, entries keyed `component:measurement`, each value's status its own.
#[test]
fn health_json_is_the_draft_format() {
    let output = lift(&["health", "--health-json"]);
    let doc = json(&output);
    let status = doc["status"].as_str().unwrap();
    assert!(["pass", "warn", "fail"].contains(&status), "{doc}");
    let checks = doc["checks"].as_object().unwrap();
    let total = &checks["memory:total"][0];
    assert_eq!(total["observedUnit"], "bytes", "{doc}");
    assert!(total["observedValue"].as_f64().is_some_and(|v| v > 0.0));
    assert!(total["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    for (key, entries) in checks {
        assert!(key.matches(':').count() <= 1, "{key}");
        for entry in entries.as_array().unwrap() {
            if let Some(status) = entry.get("status") {
                assert!(["pass", "warn", "fail"].contains(&status.as_str().unwrap()));
            }
            // Output only where the entry itself did not pass.
            if entry.get("output").is_some() {
                assert_ne!(entry["status"], "pass", "{key}: {entry}");
            }
        }
    }
    let code = output.status.code().unwrap();
    assert_eq!(code, i32::from(status == "fail"), "{status}");
}

/// A real HTTP/1.1 server on loopback serving one health+json document per connection.
struct Service {
    port: u16,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Service {
    fn start(http_status: &'static str, body: &'static str, requests: usize) -> Service {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let mut stream = stream.unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = stream.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let request = String::from_utf8(request).unwrap();
                assert!(request.starts_with("GET /health HTTP/1.1\r\n"), "{request}");
                // Chunked, as many frameworks answer.
                let response = format!(
                    "HTTP/1.1 {http_status}\r\nContent-Type: application/health+json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                    body.len()
                );
                stream.write_all(response.as_bytes()).unwrap();
            }
        });
        Service {
            port,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take()
            && !std::thread::panicking()
        {
            thread.join().unwrap();
        }
    }
}

const WARN: &str = r#"{"status":"warn","serviceId":"orders","output":"disk: /data 85% used","checks":{"disk:utilization":[{"componentId":"/data","observedValue":85.0,"observedUnit":"percent","status":"warn","time":"2026-01-01T00:00:00.000Z","output":"/data: 85.0% used"}],"db:responseTime":[{"observedValue":0.004,"observedUnit":"seconds","status":"pass","time":"2026-01-01T00:00:00.000Z"}]}}"#;
const FAIL: &str = r#"{"status":"fail","output":"db: connection refused","checks":{"db":[{"status":"fail","time":"2026-01-01T00:00:00.000Z","output":"connection refused"}]}}"#;

#[test]
fn url_renders_the_service_report_with_lift_exit_codes() {
    let service = Service::start("200 OK", WARN, 3);
    let output = lift(&["health", "--url", &service.url()]);
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "warn is not unhealthy: {text}"
    );
    assert!(
        text.starts_with(&format!("service {}/health (HTTP 200)\n", service.url())),
        "{text}"
    );
    assert!(text.contains("disk:utilization@/data"), "{text}");
    assert!(text.contains("/data: 85.0% used"), "{text}");
    assert!(text.contains("4.0 ms"), "{text}");
    let output = lift(&["health", "--url", &service.url(), "--fail-on", "degraded"]);
    assert_eq!(output.status.code(), Some(1));
    let output = lift(&["--json", "health", "--url", &service.url()]);
    assert_eq!(json(&output)["serviceId"], "orders");
    drop(service);

    let service = Service::start("503 Service Unavailable", FAIL, 1);
    let output = lift(&["health", "--url", &format!("{}/health", service.url())]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("connection refused"));
    drop(service);

    // Spring Boot's upper-case DOWN is unhealthy, and so is an HTTP error whose body says
    // pass (a service contradicting itself, or a wrong path).
    let down = r#"{"status":"DOWN"}"#;
    let service = Service::start("503 Service Unavailable", down, 1);
    let output = lift(&["health", "--url", &format!("{}/health", service.url())]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    drop(service);
    let pass = r#"{"status":"pass","checks":{}}"#;
    let service = Service::start("503 Service Unavailable", pass, 1);
    let output = lift(&["health", "--url", &format!("{}/health", service.url())]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
}

#[test]
fn an_unreachable_service_fails() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = lift(&["health", "--url", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot connect"));
}

/// Runs `lift ARGS` on a pseudo-terminal (util-linux `script`) for `seconds`.
fn on_a_terminal(args: &str, no_color: bool, seconds: u32) -> Option<String> {
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_lift"));
    let mut script = Command::new("timeout");
    script
        .args([
            &seconds.to_string(),
            "script",
            "-qec",
            &command,
            "/dev/null",
        ])
        .env("LIFT_PULUMI", "/nonexistent/pulumi")
        .stdin(Stdio::null());
    if no_color {
        script.env("NO_COLOR", "1");
    } else {
        script.env_remove("NO_COLOR");
    }
    let output = script.output().ok()?;
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn watch_redraws_in_place_on_a_terminal_and_honours_no_color() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipping: this test needs util-linux `script` for a pseudo-terminal");
        return;
    }
    let text = on_a_terminal("health --watch 1", false, 3).unwrap();
    let redraws = text.matches("\x1b[H\x1b[2J").count();
    assert!(redraws >= 2, "each tick redraws in place: {text:?}");
    assert_eq!(redraws, text.matches("STATUS").count(), "{text:?}");
    assert!(text.contains("\x1b[32m") || text.contains("\x1b[33m") || text.contains("\x1b[1;31m"));
    let plain = on_a_terminal("health --watch 1", true, 3).unwrap();
    assert!(plain.contains("\x1b[H\x1b[2J"), "{plain:?}");
    assert!(
        !plain.contains("\x1b[3") && !plain.contains("\x1b[1;31m"),
        "NO_COLOR: {plain:?}"
    );
}

#[test]
fn watch_in_a_pipe_appends_reports_without_ansi() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lift"))
        .args(["health", "--watch", "1"])
        .env("LIFT_PULUMI", "/nonexistent/pulumi")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let text = stdout(&output);
    assert!(text.matches("overall:").count() >= 2, "{text}");
    assert!(!text.contains('\x1b'), "{text:?}");
}
