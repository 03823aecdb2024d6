//! What the Lambda layer adds to a cold start and to each invocation, under cargo-lambda's
//! Runtime API emulator: the same function (`examples/lambda_function.rs`) bare (with
//! `LIFT_EXAMPLE_BARE=1`: `lambda_runtime` alone) and with `LambdaDeployment` (monitor,
//! `MetricsLayer`, graceful-shutdown extension), started and invoked in turns.
//!
//! ```sh
//! pip install cargo-lambda
//! cargo build --release -p lift-monitor --features lambda --example lambda_function --example lambda_emulator
//! target/release/examples/lambda_emulator target/release/examples/lambda_function
//! ```
//!
//! A cold start is the time from spawning the function to the answer of its first
//! invocation; a warm invocation is one round trip of the Invoke API through the emulator
//! on loopback. Both include the emulator's own time, which is the same for both variants:
//! the difference of the medians is what the layer adds.

// A benchmark prints its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const COLD_STARTS: usize = 7;
const WARM_INVOCATIONS: usize = 300;

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

/// Starts the function, waits for its first answer, then times the warm invocations.
fn run(function: &str, port: u16, bare: bool) -> (f64, Vec<f64>) {
    let mut command = Command::new(function);
    command
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("LIFT_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if bare {
        command.env("LIFT_EXAMPLE_BARE", "1");
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
    let cold = start.elapsed().as_secs_f64() * 1e3;
    let warm = (0..WARM_INVOCATIONS)
        .map(|_| {
            let start = Instant::now();
            if !matches!(invoke(port, r#"{"n":1}"#), Ok(true)) {
                fail("a warm invocation failed".into());
            }
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    drop(child);
    (cold, warm)
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
    // One unmeasured round of each, so that both binaries are in the page cache.
    run(&function, port, true);
    run(&function, port, false);
    let (mut cold_bare, mut cold_layer, mut warm_bare, mut warm_layer) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..COLD_STARTS {
        let (cold, warm) = run(&function, port, true);
        cold_bare.push(cold);
        warm_bare.extend(warm);
        let (cold, warm) = run(&function, port, false);
        cold_layer.push(cold);
        warm_layer.extend(warm);
    }
    let (cb, cl) = (median(&mut cold_bare), median(&mut cold_layer));
    let (wb, wl) = (median(&mut warm_bare), median(&mut warm_layer));
    println!(
        "cold start, spawn to first answer (median of {COLD_STARTS}): bare {cb:.2} ms, with the layer {cl:.2} ms: the layer adds {:.2} ms (target <= 1 ms)",
        cl - cb
    );
    println!(
        "warm invocation round trip (median of {}): bare {wb:.1} µs, with the layer {wl:.1} µs: the layer adds {:.1} µs (target <= 20 µs)",
        COLD_STARTS * WARM_INVOCATIONS,
        wl - wb
    );
}
