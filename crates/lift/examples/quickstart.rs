//! The facade's smallest real example: validate a secret name, record an audit event, aggregate health.
//!
//! Run it with `cargo run -p lift --example quickstart`.

// An example prints its results.
#![allow(clippy::print_stdout)]

use lift::prelude::*;

#[tokio::main(flavor = "current_thread")]
async fn main() -> lift::Result<()> {
    let name: SecretName = "prod/db/password".parse()?;
    let value = SecretValue::from("correct horse battery staple");
    println!(
        "secret {name} holds {} bytes and prints as {value}",
        value.len()
    );

    match "../../etc/passwd".parse::<SecretName>() {
        Ok(_) => println!("unexpected: a hostile name was accepted"),
        Err(err) => println!("rejected ({}): {err}", err.kind()),
    }

    let sink = MemoryAuditSink::new();
    sink.record(AuditEvent::new(
        "secrets",
        "put",
        Resource::new("secret", name.as_str()),
    ))
    .await?;
    println!("audit events recorded: {:?}", sink.actions());

    let overall = HealthStatus::aggregate([HealthStatus::Healthy, HealthStatus::Degraded]);
    println!("healthy + degraded aggregates to {overall}");
    Ok(())
}
