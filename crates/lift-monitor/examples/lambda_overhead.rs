//! What the Lambda layer adds to a bare `lambda_runtime` handler: the cold start (building
//! the deployment and its monitor, then the first invocation with its pre-warm and
//! cold-start document) and each warm invocation (timing, bracketing, a fresh memory
//! read, the EMF document written to a file). Run in release:
//!
//! ```text
//! cargo run --release -p lift-monitor --features lambda --example lambda_overhead
//! ```
//!
//! Both handlers are the same `service_fn`, called in-process through tower as
//! lambda_runtime calls it; the EMF goes to /dev/null through a real `write`. What the
//! Runtime API round trip costs is the same with and without the layer, so it is left
//! out: under cargo-lambda's emulator it is milliseconds of HTTP and would drown the
//! difference.

// A benchmark reports its figures on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lambda_runtime::tower::{Layer as _, Service, ServiceExt as _};
use lambda_runtime::{Context, LambdaEvent, service_fn};
use lift_monitor::{LambdaDeployment, LambdaOptions, Monitor, MonitorOptions};
use serde_json::{Value, json};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    Ok(json!({ "echo": event.payload }))
}

fn event(i: u64) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = format!("8f5a1c2e-0000-4000-8000-{i:012}");
    LambdaEvent::new(json!({ "n": i }), context)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn per_call<S>(service: &mut S, calls: u64) -> f64
where
    S: Service<LambdaEvent<Value>>,
    S::Error: std::fmt::Debug,
{
    let start = Instant::now();
    for i in 0..calls {
        call(service, i).await;
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

async fn call<S>(service: &mut S, i: u64)
where
    S: Service<LambdaEvent<Value>>,
    S::Error: std::fmt::Debug,
{
    let ready = match service.ready().await {
        Ok(ready) => ready,
        Err(err) => panic!("service not ready: {err:?}"),
    };
    if let Err(err) = ready.call(event(i)).await {
        panic!("handler failed: {err:?}");
    }
}

/// The CPU time this thread has used, in nanoseconds.
fn thread_cpu_ns() -> f64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID) {
        Ok(t) => t.tv_sec() as f64 * 1e9 + t.tv_nsec() as f64,
        Err(err) => panic!("thread CPU clock: {err}"),
    }
}

/// The median CPU time of one call when the caches are cold, as they are in Lambda after
/// an idle gap: before each call, 16 MiB are streamed through, which evicts what the
/// previous call left in the data caches and the TLB. The eviction is not timed.
async fn per_cold_call<S>(service: &mut S, calls: u64, evict: &mut [u8]) -> f64
where
    S: Service<LambdaEvent<Value>>,
    S::Error: std::fmt::Debug,
{
    let mut times = Vec::with_capacity(calls as usize);
    for i in 0..calls {
        for chunk in evict.chunks_mut(64) {
            chunk[0] = chunk[0].wrapping_add(1);
        }
        std::hint::black_box(&mut *evict);
        let start = thread_cpu_ns();
        call(service, i).await;
        times.push(thread_cpu_ns() - start);
    }
    median(times)
}

fn config() -> LambdaOptions {
    let vars = |name: &str| match name {
        "AWS_LAMBDA_FUNCTION_NAME" => Some("bench".to_owned()),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some("512".to_owned()),
        "AWS_LAMBDA_INITIALIZATION_TYPE" => Some("on-demand".to_owned()),
        _ => None,
    };
    match LambdaOptions::from_vars(vars) {
        Ok(config) => config,
        Err(err) => panic!("config: {err}"),
    }
}

/// One cold start with the layer: deployment, monitor, layer, first invocation.
async fn layered_cold_start(sink: &Arc<Mutex<std::fs::File>>) -> (Duration, f64) {
    let start = Instant::now();
    // As in Lambda, where `AWS_LAMBDA_FUNCTION_NAME` turns it on by default: the cgroup
    // is found at the sampler's first tick, not in `Monitor::start`.
    let monitor = match Monitor::start(MonitorOptions::default().background_discovery(true)) {
        Ok(monitor) => monitor,
        Err(err) => panic!("monitor: {err}"),
    };
    let mut deployment = LambdaDeployment::new(config())
        .emf_sink(sink.clone())
        .monitor(monitor);
    let layer = match deployment.layer() {
        Ok(layer) => layer,
        Err(err) => panic!("layer: {err}"),
    };
    let mut service = layer.layer(service_fn(handler));
    per_call(&mut service, 1).await;
    let cold = start.elapsed();
    let warm = per_call(&mut service, 2_000).await;
    (cold, warm)
}

async fn bare_cold_start() -> (Duration, f64) {
    let start = Instant::now();
    let mut service = service_fn(handler);
    per_call(&mut service, 1).await;
    let cold = start.elapsed();
    let warm = per_call(&mut service, 2_000).await;
    (cold, warm)
}

/// Both services called with cold caches ([`per_cold_call`]), in interleaved rounds;
/// returns the medians of the rounds' medians, bare and layered, in nanoseconds.
async fn cold_cache_calls(sink: &Arc<Mutex<std::fs::File>>) -> (f64, f64) {
    let monitor = match Monitor::start(MonitorOptions::default()) {
        Ok(monitor) => monitor,
        Err(err) => panic!("monitor: {err}"),
    };
    let mut deployment = LambdaDeployment::new(config())
        .emf_sink(sink.clone())
        .monitor(monitor);
    let layer = match deployment.layer() {
        Ok(layer) => layer,
        Err(err) => panic!("layer: {err}"),
    };
    let mut layered = layer.layer(service_fn(handler));
    let mut bare = service_fn(handler);
    per_call(&mut layered, 100).await;
    per_call(&mut bare, 100).await;
    let mut evict = vec![0u8; 16 << 20];
    let (mut bare_rounds, mut layered_rounds) = (Vec::new(), Vec::new());
    for _ in 0..21 {
        bare_rounds.push(per_cold_call(&mut bare, 200, &mut evict).await);
        layered_rounds.push(per_cold_call(&mut layered, 200, &mut evict).await);
    }
    (median(bare_rounds), median(layered_rounds))
}

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => panic!("tokio: {err}"),
    };
    let file = match std::fs::OpenOptions::new().write(true).open("/dev/null") {
        Ok(file) => file,
        Err(err) => panic!("/dev/null: {err}"),
    };
    let sink = Arc::new(Mutex::new(file));
    runtime.block_on(async {
        let mut cold_bare = Vec::new();
        let mut cold_layered = Vec::new();
        let mut warm_bare = Vec::new();
        let mut warm_layered = Vec::new();
        // Each round is a fresh "environment"; interleaved so both see the same load.
        for _ in 0..21 {
            let (cold, warm) = bare_cold_start().await;
            cold_bare.push(cold.as_nanos() as f64);
            warm_bare.push(warm);
            let (cold, warm) = layered_cold_start(&sink).await;
            cold_layered.push(cold.as_nanos() as f64);
            warm_layered.push(warm);
        }
        let (cb, cl) = (median(cold_bare), median(cold_layered));
        let (wb, wl) = (median(warm_bare), median(warm_layered));
        println!(
            "cold start (deployment, monitor and first invocation): bare {:.1} µs, layered {:.1} µs: the layer adds {:.1} µs (target <= 1000 µs)",
            cb / 1e3,
            cl / 1e3,
            (cl - cb) / 1e3
        );
        println!(
            "per invocation (median of 21 x 2000): bare {:.2} µs, layered {:.2} µs: the layer adds {:.2} µs (target <= 20 µs)",
            wb / 1e3,
            wl / 1e3,
            (wl - wb) / 1e3
        );
        let (bare, layered) = cold_cache_calls(&sink).await;
        println!(
            "per invocation with cold caches, CPU time (median of 21 rounds of 200): bare {:.2} µs, layered {:.2} µs: the layer adds {:.2} µs (target <= 20 µs)",
            bare / 1e3,
            layered / 1e3,
            (layered - bare) / 1e3
        );
    });
}
