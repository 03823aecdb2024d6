//! End to end under the local Lambda emulator: starts the Lambda runtime API of
//! `cargo lambda watch --only-lambda-apis`, runs `examples/lambda_function.rs` against it,
//! invokes it twice, and checks the EMF lines it printed.
//!
//! Opt-in locally: `LIFT_TEST_LAMBDA=1 cargo test -p lift-monitor --features lambda --test
//! lambda_e2e` with cargo-lambda installed (`pip install cargo-lambda`); `.ci/run` installs
//! it and sets the variable. The first run compiles the function, which takes minutes.

// A test reports its skip reason on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// A test may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn collect(reader: impl std::io::Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line);
        }
    });
}

fn invoke(port: u16, data: &str) -> std::process::Output {
    Command::new("cargo")
        .args(["lambda", "invoke", "--invoke-address", "127.0.0.1"])
        .args(["--invoke-port", &port.to_string(), "--data-ascii", data])
        .output()
        .unwrap()
}

fn emf_documents(lines: &Mutex<Vec<String>>) -> Vec<serde_json::Value> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| {
            let start = line.find('{')?;
            let doc: serde_json::Value = serde_json::from_str(&line[start..]).ok()?;
            doc.get("_aws").is_some().then_some(doc)
        })
        .collect()
}

#[test]
fn cold_start_and_invocations_under_cargo_lambda() {
    if std::env::var("LIFT_TEST_LAMBDA").as_deref() != Ok("1") {
        eprintln!(
            "skipping: set LIFT_TEST_LAMBDA=1 and install cargo-lambda (pip install cargo-lambda) to run this test"
        );
        return;
    }
    // Build the function first, and find its executable from cargo's JSON messages.
    let build = Command::new(env!("CARGO"))
        .args([
            "build",
            "-p",
            "lift-monitor",
            "--example",
            "lambda_function",
            "--features",
            "lambda",
        ])
        .args(["--message-format", "json"])
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let executable = String::from_utf8_lossy(&build.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|msg| {
            (msg["target"]["name"] == "lambda_function")
                .then(|| msg["executable"].as_str().map(str::to_owned))?
        })
        .expect("cargo reports the example's executable");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut apis = Command::new("cargo")
        .args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "--invoke-address",
            "127.0.0.1",
        ])
        .args(["--invoke-port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo lambda watch starts; install cargo-lambda");
    collect(apis.stdout.take().unwrap(), lines.clone());
    collect(apis.stderr.take().unwrap(), lines.clone());
    let mut apis = Killed(apis);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            apis.0.try_wait().unwrap().is_none(),
            "the emulator exited: {}",
            lines.lock().unwrap().join("\n")
        );
        assert!(
            Instant::now() < deadline,
            "the emulator does not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut function = Command::new(executable)
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("LIFT_ENV", "e2e")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    collect(function.stdout.take().unwrap(), lines.clone());
    collect(function.stderr.take().unwrap(), lines.clone());
    let mut function = Killed(function);

    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        let output = invoke(port, r#"{"hello":"world"}"#);
        if output.status.success() {
            break output;
        }
        let exited =
            function.0.try_wait().unwrap().is_some() || apis.0.try_wait().unwrap().is_some();
        assert!(
            !exited && Instant::now() < deadline,
            "no successful invocation: {}",
            lines.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(String::from_utf8_lossy(&first.stdout).contains("world"));
    let second = invoke(port, r#"{"fail":true}"#);
    assert!(
        !second.status.success()
            || String::from_utf8_lossy(&second.stdout).contains("asked to fail"),
        "the failing invocation reports an error"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let docs = loop {
        let docs = emf_documents(&lines);
        if docs.len() >= 3 || Instant::now() > deadline {
            break docs;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        docs.len() >= 3,
        "EMF lines: {docs:?}\noutput:\n{}",
        lines.lock().unwrap().join("\n")
    );
    // The cold start in a document of its own, then one document per invocation.
    let (cold_start, first, warm) = (
        &docs[docs.len() - 3],
        &docs[docs.len() - 2],
        &docs[docs.len() - 1],
    );
    assert_eq!(cold_start["ColdStart"], 1.0, "{cold_start}");
    assert!(cold_start.get("service").is_some());
    assert!(cold_start.get("Invocations").is_none());
    assert_eq!(first["Invocations"], 1.0);
    assert_eq!(first["Environment"], "e2e");
    assert!(first.get("PreWarmDuration").is_some());
    assert!(first.get("function_request_id").is_some(), "{first}");
    assert!(warm.get("ColdStart").is_none(), "{warm}");
    assert_eq!(warm["Invocations"], 1.0);
    assert_eq!(warm["Errors"], 1.0);
    assert!(warm.get("ErrorRate").is_none(), "no per-environment rate");
}
