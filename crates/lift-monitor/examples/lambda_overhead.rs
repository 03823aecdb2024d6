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
        let ready = match service.ready().await {
            Ok(ready) => ready,
            Err(err) => panic!("service not ready: {err:?}"),
        };
        if let Err(err) = ready.call(event(i)).await {
            panic!("handler failed: {err:?}");
        }
    }
    start.elapsed().as_nanos() as f64 / calls as f64
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
    });
}
