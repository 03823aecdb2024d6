//! What the Lambda layer adds to a cold start and to each invocation, under cargo-lambda's
//! Runtime API emulator: the same function (`examples/lambda_function.rs`) bare (with
//! `LIFT_EXAMPLE_BARE=1`: `lambda_runtime` alone) and with `LambdaDeployment` (monitor,
//! `MetricsLayer`, JSON logs, graceful-shutdown extension), started and invoked in turns.
//!
//! ```sh
//! pip install cargo-lambda
//! cargo build --release -p lift-monitor --features lambda --example lambda_function --example lambda_emulator
//! target/release/examples/lambda_emulator target/release/examples/lambda_function [PAIRS]
//! ```
//!
//! A cold start is the time from spawning the function to the answer of its first
//! invocation; a warm invocation is one round trip of the Invoke API through the emulator
//! on loopback. Both include the emulator's own time, which is the same for both variants.
//! Each pair starts the two variants back to back (in alternating order), so that both
//! see the same machine load; what the layer adds is the median of the pairs'
//! differences. The CPU time the function used until its first answer (the sum over its
//! threads of `/proc/PID/task/TID/schedstat`) is printed too: unlike the wall time, a busy
//! machine does not inflate it.
//!
//! The function logs at `warn` (`LIFT_LOG_LEVEL`); set `LIFT_LOG_LEVEL=info` for the emulator
//! to measure with the default level, at which lambda_runtime's span of each invocation
//! is recorded by the layer's JSON logger. With `LIFT_EXAMPLE_BARE_LOGS=1` the bare function
//! logs through the same JSON logger, so that the figures leave the logger's cost out.
// A benchmark prints its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Pairs of cold starts by default (the first argument after the function overrides it).
const PAIRS: usize = 31;
/// Invocations after each cold start that finish warming the process up (code paths and
/// buffers the first invocation did not reach): timed apart from the warm ones.
const WARM_UP: usize = 20;
/// Warm invocations after the warm-up.
const WARM_INVOCATIONS: usize = 200;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fail(message: String) -> ! {
    eprintln!("lambda_emulator: {message}");
    std::process::exit(1);
}

/// One Invoke API call; `Ok(true)` when the function answered 200.
fn invoke(port: u16, body: &str) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "POST /2015-03-31/functions/_/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest)?;
    Ok(status.split_whitespace().nth(1) == Some("200"))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The CPU time all threads of process `pid` have used, in milliseconds.
fn cpu_ms(pid: u32) -> Option<f64> {
    let mut total_ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total_ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total_ns as f64 / 1e6)
}

/// One start of the function.
struct Run {
    /// Spawn to the answer of the first invocation, in milliseconds.
    cold_ms: f64,
    /// The function's CPU time until that answer, in milliseconds.
    cold_cpu_ms: Option<f64>,
    /// Round trips of the warm invocations, in microseconds.
    warm_us: Vec<f64>,
    /// The function's CPU time per warm invocation, in microseconds.
    warm_cpu_us: Option<f64>,
    /// The function's CPU time per warm-up invocation, in microseconds.
    warm_up_cpu_us: Option<f64>,
}

/// Starts the function, waits for its first answer, then times the warm invocations.
fn run(function: &str, port: u16, bare: bool) -> Run {
    let mut command = Command::new(function);
    command
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env(
            "LIFT_LOG_LEVEL",
            std::env::var("LIFT_LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if bare {
        command.env("LIFT_EXAMPLE_BARE", "1");
        if std::env::var_os("LIFT_EXAMPLE_BARE_LOGS").is_some() {
            command.env("LIFT_EXAMPLE_BARE_LOGS", "1");
        }
    }
    let start = Instant::now();
    let child = match command.spawn() {
        Ok(child) => Killed(child),
        Err(err) => fail(format!("cannot start {function}: {err}")),
    };
    loop {
        match invoke(port, r#"{"n":0}"#) {
            Ok(true) => break,
            _ if start.elapsed() > Duration::from_secs(60) => {
                fail("the function answered no invocation within 60 s".into())
            }
            _ => std::thread::sleep(Duration::from_micros(200)),
        }
    }
    let cold_ms = start.elapsed().as_secs_f64() * 1e3;
    let cold_cpu_ms = cpu_ms(child.0.id());
    let round_trip = || {
        let start = Instant::now();
        if !matches!(invoke(port, r#"{"n":1}"#), Ok(true)) {
            fail("a warm invocation failed".into());
        }
        start.elapsed().as_secs_f64() * 1e6
    };
    for _ in 0..WARM_UP {
        round_trip();
    }
    let warm_cpu_start = cpu_ms(child.0.id());
    let warm_us: Vec<f64> = (0..WARM_INVOCATIONS).map(|_| round_trip()).collect();
    let per_call = |after: Option<f64>, before: Option<f64>, calls: usize| {
        Some((after? - before?) * 1e3 / calls as f64)
    };
    let warm_cpu_us = per_call(cpu_ms(child.0.id()), warm_cpu_start, WARM_INVOCATIONS);
    let warm_up_cpu_us = per_call(warm_cpu_start, cold_cpu_ms, WARM_UP);
    drop(child);
    Run {
        cold_ms,
        cold_cpu_ms,
        warm_us,
        warm_cpu_us,
        warm_up_cpu_us,
    }
}

fn main() {
    let Some(function) = std::env::args().nth(1) else {
        fail("usage: lambda_emulator PATH/TO/lambda_function".into())
    };
    let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(address) => address.port(),
        Err(err) => fail(format!("no free port: {err}")),
    };
    let apis = Command::new("cargo")
        .args(["lambda", "watch", "--only-lambda-apis"])
        .args([
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let _apis = match apis {
        Ok(apis) => Killed(apis),
        Err(err) => fail(format!(
            "cannot start `cargo lambda watch` ({err}); install it with `pip install cargo-lambda`"
        )),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            fail(format!("the emulator does not listen on {port}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let pairs = match std::env::args().nth(2).map(|n| n.parse::<usize>()) {
        None => PAIRS,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => fail("PAIRS must be a positive number".into()),
    };
    // One unmeasured round of each, so that both binaries are in the page cache.
    run(&function, port, true);
    run(&function, port, false);
    let (mut cold_bare, mut cold_layer, mut cold_added) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cpu_bare, mut cpu_layer, mut cpu_added) = (Vec::new(), Vec::new(), Vec::new());
    let (mut warm_bare, mut warm_layer, mut warm_added) = (Vec::new(), Vec::new(), Vec::new());
    let (mut warm_cpu_bare, mut warm_cpu_layer, mut warm_cpu_added) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut warm_up_added = Vec::new();
    for pair in 0..pairs {
        // Alternate which goes first, so that neither always starts on a machine the
        // other just warmed.
        let (bare, layer) = if pair % 2 == 0 {
            let bare = run(&function, port, true);
            (bare, run(&function, port, false))
        } else {
            let layer = run(&function, port, false);
            (run(&function, port, true), layer)
        };
        cold_added.push(layer.cold_ms - bare.cold_ms);
        cold_bare.push(bare.cold_ms);
        cold_layer.push(layer.cold_ms);
        if let (Some(b), Some(l)) = (bare.cold_cpu_ms, layer.cold_cpu_ms) {
            cpu_added.push(l - b);
            cpu_bare.push(b);
            cpu_layer.push(l);
        }
        if let (Some(b), Some(l)) = (bare.warm_up_cpu_us, layer.warm_up_cpu_us) {
            warm_up_added.push(l - b);
        }
        if let (Some(b), Some(l)) = (bare.warm_cpu_us, layer.warm_cpu_us) {
            warm_cpu_added.push(l - b);
            warm_cpu_bare.push(b);
            warm_cpu_layer.push(l);
        }
        let (mut b, mut l) = (bare.warm_us, layer.warm_us);
        warm_added.push(median(&mut l) - median(&mut b));
        warm_bare.extend(b);
        warm_layer.extend(l);
    }
    let (cb, cl, ca) = (
        median(&mut cold_bare),
        median(&mut cold_layer),
        median(&mut cold_added),
    );
    println!(
        "cold start, spawn to first answer (median of {pairs} pairs): bare {cb:.2} ms, with the layer {cl:.2} ms: the layer adds {ca:.2} ms (median of the pairs' differences; target <= 1 ms)"
    );
    if !cpu_added.is_empty() {
        let (b, l, a) = (
            median(&mut cpu_bare),
            median(&mut cpu_layer),
            median(&mut cpu_added),
        );
        println!(
            "cold start, the function's CPU time until its first answer: bare {b:.2} ms, with the layer {l:.2} ms: the layer adds {a:.2} ms"
        );
    }
    let (wb, wl, wa) = (
        median(&mut warm_bare),
        median(&mut warm_layer),
        median(&mut warm_added),
    );
    println!(
        "warm invocation round trip (median of {}): bare {wb:.1} µs, with the layer {wl:.1} µs: the layer adds {wa:.1} µs (median of the pairs' differences of their medians; target <= 20 µs)",
        pairs * WARM_INVOCATIONS,
    );
    if !warm_cpu_added.is_empty() {
        let (b, l, a) = (
            median(&mut warm_cpu_bare),
            median(&mut warm_cpu_layer),
            median(&mut warm_cpu_added),
        );
        println!(
            "warm invocation, the function's CPU time per invocation: bare {b:.1} µs, with the layer {l:.1} µs: the layer adds {a:.1} µs (median of the pairs' differences)"
        );
    }
    if !warm_up_added.is_empty() {
        println!(
            "the {WARM_UP} invocations after the first (warm-up, left out above): the layer adds {:.1} µs of CPU time to each",
            median(&mut warm_up_added)
        );
    }
}
