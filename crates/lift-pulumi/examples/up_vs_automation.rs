//! lift's `Stack::up` against Pulumi's Go Automation API and the bare CLI, side by side.
//!
//! ```sh
//! cargo xtask pulumi          # builds the pinned CLI, its YAML host and lift-automation
//! cargo run --release -p lift-pulumi --example up_vs_automation -- 15
//! ```
//!
//! Three contenders run `up` on the same YAML program and the same file
//! backend (each on its own stack), interleaved round by round:
//!
//! - (a) the bare CLI: `pulumi up --yes --skip-preview`;
//! - (b) Pulumi's Go Automation API: `lift-automation up-bench` (one
//!   `UpsertStackLocalSource`, then `Up` with an event stream, timed inside Go);
//! - (c) lift's `Stack::up` with a subscriber, which also returns the
//!   outputs (the program's are plain, so lift takes them from the engine's
//!   event log; a secret output would cost two `pulumi stack output` runs, as
//!   the Go Automation API always does);
//! - (d) the same with `OpOptions::read_outputs(false)`, which does only
//!   what the bare CLI does.
//!
//! It prints the median wall time of N `up`s with no changes and of N with one
//! change (a resource added or removed), for each contender, and the ratios.
//! It also measures event delivery, in one more `up` of lift's per round that
//! is not timed (the watcher costs CPU that the timed runs should not pay): a
//! watcher thread reads the event log every 100 µs and notes when each line
//! appears; the delay until lift's subscriber has the event is reported as
//! p50/p99/max.
//!
//! The binaries come from `LIFT_REAL_PULUMI` (the CLI; `lift-automation`
//! beside it, the YAML host in `../language`), as `cargo xtask pulumi` lays them out.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark prints its figures"
)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lift_core::SecretValue;
use lift_pulumi::{OpOptions, Workspace};

const PASSPHRASE: &str = "bench-passphrase";

const PROGRAM: &str = "name: bench
runtime: yaml
resources:
  extra:
    type: pulumi:providers:pulumi
outputs:
  greeting: hello
";

const CHANGED: &str = "name: bench
runtime: yaml
resources:
  extra:
    type: pulumi:providers:pulumi
  second:
    type: pulumi:providers:pulumi
outputs:
  greeting: hello
";

struct Env {
    pulumi: PathBuf,
    automation: PathBuf,
    path: std::ffi::OsString,
    project: PathBuf,
    backend: String,
    home: PathBuf,
}

impl Env {
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(&self.project)
            .env("PATH", &self.path)
            .env("PULUMI_BACKEND_URL", &self.backend)
            .env("PULUMI_HOME", &self.home)
            .env("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
            .env("PULUMI_SKIP_UPDATE_CHECK", "true");
        command
    }

    fn bare_up(&self, stack: &str) -> Duration {
        let started = Instant::now();
        let out = self
            .command(&self.pulumi)
            .args([
                "up",
                "--yes",
                "--skip-preview",
                "--non-interactive",
                "--stack",
                stack,
            ])
            .output()
            .unwrap();
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }

    fn automation_up(&self, stack: &str) -> Duration {
        let out = self
            .command(&self.automation)
            .arg("up-bench")
            .arg(&self.project)
            .arg(stack)
            .arg("1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let nanos: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        Duration::from_nanos(nanos)
    }
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// Notes when each line of the event log appears, reading every 100 µs.
fn watch_lines(path: PathBuf, stop: Arc<Mutex<bool>>) -> std::thread::JoinHandle<Vec<Instant>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut file = None;
        let mut buf = [0u8; 65536];
        loop {
            if file.is_none() {
                file = std::fs::File::open(&path).ok();
            }
            if let Some(f) = file.as_mut() {
                while let Ok(n) = f.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let now = Instant::now();
                    seen.extend(buf[..n].iter().filter(|b| **b == b'\n').map(|_| now));
                }
            }
            if *stop.lock().unwrap() {
                return seen;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    })
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let pulumi = PathBuf::from(
        std::env::var_os("LIFT_REAL_PULUMI")
            .expect("set LIFT_REAL_PULUMI to the pulumi `cargo xtask pulumi` built"),
    );
    let bin = pulumi.parent().unwrap().to_path_buf();
    let language = bin.parent().unwrap().join("language");
    let mut dirs = vec![bin.clone(), language];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        automation: bin.join("lift-automation"),
        pulumi: pulumi.clone(),
        path: std::env::join_paths(dirs).unwrap(),
        project: dir.path().join("project"),
        backend: format!("file://{}", dir.path().join("state").display()),
        home: dir.path().join("home"),
    };
    std::fs::create_dir_all(&env.project).unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(env.project.join("Pulumi.yaml"), PROGRAM).unwrap();

    let workspace = Workspace::builder(&env.project)
        .pulumi(&pulumi)
        .backend_url(&env.backend)
        .pulumi_home(&env.home)
        .passphrase(SecretValue::from(PASSPHRASE))
        .env("PATH", &env.path)
        .build()
        .await
        .unwrap();
    for stack in ["bare", "auto", "lift", "lean"] {
        workspace
            .create_stack(stack.parse().unwrap())
            .await
            .unwrap();
    }
    let lift_stack = workspace.stack("lift".parse().unwrap());
    let lean_stack = workspace.stack("lean".parse().unwrap());
    // Warm-up: one up each, so the first measured run is not the one that creates.
    env.bare_up("bare");
    env.automation_up("auto");
    lift_stack.up(OpOptions::default()).await.unwrap();
    lean_stack.up(OpOptions::default()).await.unwrap();

    let mut delays: Vec<Duration> = Vec::new();
    let mut results: Vec<(&str, Vec<Duration>, Vec<Duration>)> = vec![
        ("bare CLI", Vec::new(), Vec::new()),
        ("Go Automation API", Vec::new(), Vec::new()),
        ("lift Stack::up", Vec::new(), Vec::new()),
        ("lift, no outputs", Vec::new(), Vec::new()),
    ];
    for phase in 0..2 {
        for round in 0..runs {
            if phase == 1 {
                let program = if round % 2 == 0 { CHANGED } else { PROGRAM };
                std::fs::write(env.project.join("Pulumi.yaml"), program).unwrap();
            }
            let a = env.bare_up("bare");
            let b = env.automation_up("auto");
            // lift, with a subscriber, timed alone: the delivery watcher
            // below polls every 100 µs, and on a small machine that would
            // take CPU from pulumi and slow the timed run.
            let mut timed = OpOptions::default();
            let mut timed_events = timed.subscribe();
            let timed_drain =
                tokio::spawn(async move { while timed_events.next().await.is_some() {} });
            let started = Instant::now();
            lift_stack.up(timed).await.unwrap();
            let c = started.elapsed();
            timed_drain.await.unwrap();
            // The same again, untimed, with the delivery watcher.
            let mut options = OpOptions::default();
            let mut events = options.subscribe();
            let arrivals = tokio::spawn(async move {
                let mut at = Vec::new();
                while events.next().await.is_some() {
                    at.push(Instant::now());
                }
                at
            });
            let stop = Arc::new(Mutex::new(false));
            let log_dir = std::env::temp_dir();
            let before: Vec<PathBuf> = lift_logs(&log_dir);
            let watcher_log = Arc::new(Mutex::new(None::<std::thread::JoinHandle<Vec<Instant>>>));
            let finder = {
                let stop = stop.clone();
                let watcher_log = watcher_log.clone();
                std::thread::spawn(move || {
                    // lift writes its event log to a fresh private temp dir: find it.
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while Instant::now() < deadline && !*stop.lock().unwrap() {
                        if let Some(new) = lift_logs(&log_dir)
                            .into_iter()
                            .find(|p| !before.contains(p))
                        {
                            *watcher_log.lock().unwrap() =
                                Some(watch_lines(new.join("events.jsonl"), stop.clone()));
                            return;
                        }
                        std::thread::sleep(Duration::from_micros(100));
                    }
                })
            };
            lift_stack.up(options).await.unwrap();
            *stop.lock().unwrap() = true;
            finder.join().unwrap();
            let arrived = arrivals.await.unwrap();
            if let Some(watcher) = watcher_log.lock().unwrap().take() {
                let written = watcher.join().unwrap();
                for (w, r) in written.iter().zip(&arrived) {
                    delays.push(r.saturating_duration_since(*w));
                }
            }
            let slot = |r: &mut (&str, Vec<Duration>, Vec<Duration>), d: Duration| {
                if phase == 0 { r.1.push(d) } else { r.2.push(d) }
            };
            slot(&mut results[0], a);
            slot(&mut results[1], b);
            slot(&mut results[2], c);
            let mut lean = OpOptions::default().read_outputs(false);
            let mut lean_events = lean.subscribe();
            let drain = tokio::spawn(async move { while lean_events.next().await.is_some() {} });
            let started = Instant::now();
            lean_stack.up(lean).await.unwrap();
            let d = started.elapsed();
            drain.await.unwrap();
            slot(&mut results[3], d);
        }
    }
    println!("{runs} ups per contender and phase, interleaved; median wall time:");
    println!(
        "{:<20} {:>12} {:>12}",
        "contender", "no changes", "one change"
    );
    let mut medians = Vec::new();
    for (name, same, changed) in &mut results {
        let (m1, m2) = (median(same), median(changed));
        println!(
            "{name:<20} {:>10.0}ms {:>10.0}ms",
            m1.as_secs_f64() * 1e3,
            m2.as_secs_f64() * 1e3
        );
        medians.push((m1, m2));
    }
    let ratio = |x: Duration, y: Duration| x.as_secs_f64() / y.as_secs_f64();
    println!(
        "lift / Go Automation API: {:.3} (no changes), {:.3} (one change); target <= 1.0",
        ratio(medians[2].0, medians[1].0),
        ratio(medians[2].1, medians[1].1)
    );
    println!(
        "lift / bare CLI:          {:.3} (no changes), {:.3} (one change); target <= 1.05",
        ratio(medians[2].0, medians[0].0),
        ratio(medians[2].1, medians[0].1)
    );
    println!(
        "lift without outputs / bare CLI: {:.3} (no changes), {:.3} (one change)",
        ratio(medians[3].0, medians[0].0),
        ratio(medians[3].1, medians[0].1)
    );
    delays.sort();
    if delays.is_empty() {
        println!("event delivery: no delays measured");
    } else {
        let at = |q: f64| delays[((delays.len() - 1) as f64 * q) as usize];
        println!(
            "event delivery over {} events: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; target p99 <= 5 ms",
            delays.len(),
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            delays[delays.len() - 1].as_secs_f64() * 1e3
        );
    }
}

fn lift_logs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("lift-pulumi-"))
                })
                .collect()
        })
        .unwrap_or_default()
}
