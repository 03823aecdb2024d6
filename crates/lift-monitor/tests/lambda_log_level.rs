//! `LIFT_LOG_LEVEL` takes effect: `LambdaDeployment::run` installs its JSON log subscriber
//! at that level.
//!
//! A log subscriber is global to a process, so each level runs in a child process: this
//! binary (`harness = false`) re-runs itself as a Lambda function against a minimal
//! Runtime API on loopback, served here, which hands it one invocation. The handler logs
//! one event per level; the parent reads the child's stdout and checks which came out.

// A test binary without the libtest harness reports on stderr and exits non-zero on failure.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// A test may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const CHILD: &str = "LIFT_TEST_LOG_LEVEL_CHILD";
const PROBE: &str = "lift-log-probe";

fn main() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    // warn: the warn and error events only.
    let lines = run_child("warn");
    assert_eq!(levels(&lines), ["WARN", "ERROR"], "{lines:#?}");
    // debug: everything but trace.
    let lines = run_child("debug");
    assert_eq!(
        levels(&lines),
        ["DEBUG", "INFO", "WARN", "ERROR"],
        "{lines:#?}"
    );
    // Unset: info.
    let lines = run_child("");
    assert_eq!(levels(&lines), ["INFO", "WARN", "ERROR"], "{lines:#?}");
    eprintln!("lambda_log_level: LIFT_LOG_LEVEL warn, debug and unset take effect");
}

/// The levels of the probe events the child logged, in order; every one is a JSON line.
fn levels(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|line| line.contains(PROBE))
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not a JSON log line ({err}): {line}"));
            event["level"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// The Lambda function: logs one probe event per level from its handler.
fn child() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        lift_monitor::LambdaDeployment::from_env()?
            .run(lambda_runtime::service_fn(
                |event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
                    tracing::trace!("{PROBE} trace");
                    tracing::debug!("{PROBE} debug");
                    tracing::info!("{PROBE} info");
                    tracing::warn!("{PROBE} warn");
                    tracing::error!("{PROBE} error");
                    Ok::<_, lambda_runtime::Error>(event.payload)
                },
            ))
            .await
    });
    if let Err(err) = result {
        eprintln!("the function failed: {err}");
        std::process::exit(1);
    }
}

/// Runs this binary as the function with `LIFT_LOG_LEVEL=level` (unset when empty) until it
/// has answered one invocation; returns its stdout lines.
fn run_child(level: &str) -> Vec<String> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (answered, answered_rx) = mpsc::channel();
    let handed_out = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (answered, handed_out) = (answered.clone(), handed_out.clone());
            std::thread::spawn(move || serve(stream, &answered, &handed_out));
        }
    });
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(CHILD, "1")
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "log-level")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if level.is_empty() {
        command.env_remove("LIFT_LOG_LEVEL");
    } else {
        command.env("LIFT_LOG_LEVEL", level);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (line_tx, line_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                return;
            }
        }
    });
    let outcome = answered_rx.recv_timeout(Duration::from_secs(60));
    // The EMF is written just after the response is posted: leave time for it.
    std::thread::sleep(Duration::from_millis(200));
    let _ = child.kill();
    let _ = child.wait();
    let lines: Vec<String> = line_rx.try_iter().collect();
    assert!(
        outcome.is_ok(),
        "the function answered no invocation within 60 s; stdout: {lines:#?}"
    );
    lines
}

/// One connection of the fake Runtime API: the extension registration lambda_runtime's
/// graceful shutdown makes, one invocation, and its response.
fn serve(mut stream: TcpStream, answered: &mpsc::Sender<()>, handed_out: &AtomicBool) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let path = request_line.split_whitespace().nth(1).unwrap_or("");
        let (status, headers, body) = if path == "/2020-01-01/extension/register" {
            (
                "200 OK",
                "Lambda-Extension-Identifier: extension-1\r\n".to_owned(),
                r#"{"functionName":"log-level","functionVersion":"1","handler":"bootstrap"}"#,
            )
        } else if path == "/2020-01-01/extension/event/next" {
            // The no-op extension waits here for a shutdown that never comes.
            std::thread::park();
            return;
        } else if path == "/2018-06-01/runtime/invocation/next" {
            if handed_out.swap(true, Ordering::SeqCst) {
                // One invocation per child; the next poll waits until the child is killed.
                std::thread::park();
                return;
            }
            let deadline =
                SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(60);
            (
                "200 OK",
                format!(
                    "Lambda-Runtime-Aws-Request-Id: request-1\r\n\
                     Lambda-Runtime-Deadline-Ms: {}\r\n\
                     Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:log-level\r\n\
                     Content-Type: application/json\r\n",
                    deadline.as_millis()
                ),
                r#"{"probe":true}"#,
            )
        } else if path.starts_with("/2018-06-01/runtime/invocation/") {
            let _ = answered.send(());
            ("202 Accepted", String::new(), r#"{"status":"OK"}"#)
        } else {
            ("404 Not Found", String::new(), "{}")
        };
        let response = format!(
            "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
