//! A Lambda function instrumented with lift-monitor: invocation metrics as EMF on stdout,
//! a pre-warm hook and a shutdown hook. Build it with the `lambda` feature; run it under
//! `cargo lambda watch` or deploy it.
//!
//! The event `{"fail": true}` makes the handler return an error, to see the error metrics.
//! With `LIFT_EXAMPLE_BARE=1` it runs the same handler with `lambda_runtime` alone, no
//! monitor and no layer: the baseline of `examples/lambda_emulator.rs`; with
//! `LIFT_EXAMPLE_BARE_LOGS=1` as well, that baseline logs through the same JSON logger as
//! the deployment, at `LIFT_LOG_LEVEL`.

// An example reports what it does on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use lambda_runtime::{LambdaEvent, service_fn};
use lift_monitor::{LambdaDeployment, Monitor, MonitorOptions};
use serde_json::{Value, json};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    if event.payload.get("fail").and_then(Value::as_bool) == Some(true) {
        return Err("asked to fail".into());
    }
    Ok(json!({ "echo": event.payload }))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    if std::env::var_os("LIFT_EXAMPLE_BARE").is_some() {
        if std::env::var_os("LIFT_EXAMPLE_BARE_LOGS").is_some() {
            // The deployment's JSON logger at the same level, without the deployment.
            let level = std::env::var("LIFT_LOG_LEVEL")
                .ok()
                .and_then(|level| level.parse().ok())
                .unwrap_or(tracing::Level::INFO);
            tracing_subscriber::fmt()
                .json()
                .with_max_level(level)
                .with_ansi(false)
                .with_current_span(false)
                .init();
        }
        return lambda_runtime::run(service_fn(handler)).await;
    }
    let monitor = Monitor::start(MonitorOptions::default())?;
    LambdaDeployment::from_env()?
        .monitor(monitor)
        .pre_warm("greeting", || async {
            eprintln!("pre-warm: first invocation");
            Ok(())
        })
        .on_shutdown("goodbye", || async {
            eprintln!("shutdown: flushing");
            Ok(())
        })
        .run(service_fn(handler))
        .await
}
