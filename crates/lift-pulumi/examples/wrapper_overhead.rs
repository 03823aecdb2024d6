//! Measures lift-pulumi's overhead per `up`: lift's `Stack::up` minus the time
//! the same pulumi commands take when run directly (`up` with an event log,
//! the two `stack output` runs in parallel, then `stack history`).
//!
//! Build the fake CLI first and point `LIFT_PULUMI` at it:
//!
//! ```sh
//! cargo build --release -p lift-tests --bin pulumi
//! LIFT_PULUMI=$CARGO_TARGET_DIR/release/pulumi cargo run --release -p lift-pulumi --example wrapper_overhead
//! ```
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    reason = "an example that prints its figure"
)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lift_pulumi::{OpOptions, Workspace};

const PROGRAM: &str = r#"name: demo
runtime: yaml
resources:
  bucket:
    type: aws:s3:Bucket
    properties:
      acl: private
  object:
    type: aws:s3:BucketObject
    properties:
      bucket: ${bucket.id}
outputs:
  bucketName: ${bucket.id}
  password:
    fn::secret: hunter2
"#;

fn direct_up(pulumi: &Path, dir: &Path, backend: &str, home: &Path, log: &Path) -> Duration {
    let run = |args: &[&str]| {
        Command::new(pulumi)
            .args(args)
            .current_dir(dir)
            .env("PULUMI_SKIP_UPDATE_CHECK", "true")
            .env("PULUMI_BACKEND_URL", backend)
            .env("PULUMI_HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let log_text = log.to_str().unwrap();
    let start = Instant::now();
    let up = run(&[
        "up",
        "--yes",
        "--skip-preview",
        "--event-log",
        log_text,
        "--color",
        "never",
        "--stack",
        "dev",
        "--non-interactive",
    ]);
    assert!(up.wait_with_output().unwrap().status.success());
    let masked = run(&[
        "stack",
        "output",
        "--json",
        "--stack",
        "dev",
        "--non-interactive",
    ]);
    let revealed = run(&[
        "stack",
        "output",
        "--json",
        "--show-secrets",
        "--stack",
        "dev",
        "--non-interactive",
    ]);
    assert!(masked.wait_with_output().unwrap().status.success());
    assert!(revealed.wait_with_output().unwrap().status.success());
    let history = run(&[
        "stack",
        "history",
        "--json",
        "--page-size",
        "1",
        "--page",
        "1",
        "--stack",
        "dev",
        "--non-interactive",
    ]);
    assert!(history.wait_with_output().unwrap().status.success());
    let elapsed = start.elapsed();
    std::fs::remove_file(log).unwrap();
    elapsed
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(pulumi) = std::env::var_os("LIFT_PULUMI") else {
        eprintln!(
            "set LIFT_PULUMI to the fake pulumi binary (cargo build --release -p lift-tests --bin pulumi)"
        );
        std::process::exit(2);
    };
    let pulumi = std::path::PathBuf::from(pulumi);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Pulumi.yaml"), PROGRAM).unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let backend = format!("file://{}", dir.path().join("state").display());
    let home = dir.path().join("home");
    let workspace = Workspace::builder(dir.path())
        .pulumi(&pulumi)
        .backend_url(&backend)
        .pulumi_home(&home)
        .build()
        .await
        .unwrap();
    let stack = workspace
        .create_stack("dev".parse().unwrap())
        .await
        .unwrap();
    stack.up(OpOptions::default()).await.unwrap();
    let log = dir.path().join("direct-events.jsonl");

    let rounds = 50;
    let mut lift_times = Vec::new();
    let mut direct_times = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        let result = stack.up(OpOptions::default()).await.unwrap();
        lift_times.push(start.elapsed());
        assert_eq!(result.ledger.entries().len(), 3);
        direct_times.push(direct_up(&pulumi, dir.path(), &backend, &home, &log));
    }
    // Each round runs both sides back to back, so the median of the paired
    // differences is less sensitive to load drifting during the run.
    let mut differences: Vec<f64> = lift_times
        .iter()
        .zip(&direct_times)
        .map(|(l, d)| (l.as_secs_f64() - d.as_secs_f64()) * 1e3)
        .collect();
    differences.sort_by(f64::total_cmp);
    let lift = median(lift_times);
    let direct = median(direct_times);
    println!(
        "up against the fake CLI, {rounds} rounds: median lift {:.2} ms, median direct {:.2} ms, wrapper overhead (median of paired differences) {:.2} ms",
        lift.as_secs_f64() * 1e3,
        direct.as_secs_f64() * 1e3,
        differences[differences.len() / 2]
    );
}
