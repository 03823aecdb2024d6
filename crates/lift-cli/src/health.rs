//! `lift health`: run the standard checks on this machine.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use lift::HealthStatus;
use lift::monitor::{Group, HealthReport, Monitor, MonitorConfig, StandardChecks};

use crate::context::Context;

/// Arguments of `lift health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Re-run the checks every SECONDS until interrupted (Ctrl-C).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub watch: Option<u64>,

    /// Print the report as application/health+json instead of lift's JSON (implies --json output).
    #[arg(long)]
    pub health_json: bool,

    /// Also check that HOST:PORT resolves and accepts TCP connections (repeatable; adds to LIFT_HEALTH_ENDPOINTS).
    #[arg(long, value_name = "HOST:PORT")]
    pub endpoint: Vec<String>,
}

/// How long the sampler and heartbeat run before the first report, so that CPU use and
/// runtime stalls are measured rather than unknown.
const WARM_UP: Duration = Duration::from_millis(500);

pub(crate) async fn run(args: HealthArgs, ctx: &Context) -> lift::Result<u8> {
    let mut checks = StandardChecks::from_env()?;
    for endpoint in &args.endpoint {
        checks = checks.endpoint(endpoint.parse().map_err(lift::Error::from)?);
    }
    let monitor = Monitor::start(MonitorConfig {
        interval: Duration::from_millis(250),
        ..MonitorConfig::default()
    })?;
    let manager = checks.build(&monitor)?;
    register_components(&manager, ctx).await?;
    tokio::time::sleep(WARM_UP).await;
    monitor.refresh();

    let color = std::io::stdout().is_terminal();
    let mut report = manager.check_fresh(Group::All).await;
    print_report(&report, ctx, &args, color, args.watch.is_some())?;
    if let Some(seconds) = args.watch {
        let interval = Duration::from_secs(seconds);
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                () = tokio::time::sleep(interval) => {}
            }
            monitor.refresh();
            report = manager.check_fresh(Group::All).await;
            print_report(&report, ctx, &args, color, true)?;
        }
    }
    Ok(exit_code(&report))
}

/// Adds the checks of the lift components this machine is configured for:
/// the audit log of `--audit-log`, the secret store of `LIFT_SECRETS_STORE`,
/// and the Pulumi CLI when one is installed or `LIFT_PULUMI` names one.
async fn register_components(
    manager: &lift::monitor::HealthManager,
    ctx: &Context,
) -> lift::Result<()> {
    if let Some(log) = &ctx.audit_log {
        let key = match &ctx.audit_key_file {
            Some(file) => Some(lift::audit::AuditKey::load(file)?),
            None => None,
        };
        let options = lift::audit::VerifyOptions {
            key,
            ..lift::audit::VerifyOptions::default()
        };
        manager.register(lift::audit::AuditHealthCheck::new(log, options))?;
    }
    if let Some(store) = std::env::var_os("LIFT_SECRETS_STORE") {
        let key_file = std::env::var_os(lift::secrets::KEY_FILE_ENV).map(std::path::PathBuf::from);
        // Without a key the store is opened as plaintext: the check then reports a
        // plaintext store as degraded, and encrypted files as unreadable.
        let protection =
            lift::secrets::Protection::from_options(key_file.as_deref(), key_file.is_none())?;
        let store =
            lift::secrets::FileSecretsProvider::open(std::path::PathBuf::from(store), protection)?;
        manager.register(lift::secrets::StoreHealthCheck::new(store))?;
    }
    let asked_for_pulumi = std::env::var_os(lift::pulumi::PULUMI_ENV).is_some();
    if asked_for_pulumi || lift::pulumi::PulumiCli::discover(None).await.is_ok() {
        manager.register(lift::pulumi::CliHealthCheck::new())?;
    }
    Ok(())
}

/// 1 when the report is unhealthy, else 0: degraded and unknown still exit 0.
fn exit_code(report: &HealthReport) -> u8 {
    if report.status == HealthStatus::Unhealthy {
        crate::EXIT_FAILURE
    } else {
        0
    }
}

fn print_report(
    report: &HealthReport,
    ctx: &Context,
    args: &HealthArgs,
    color: bool,
    watching: bool,
) -> lift::Result<()> {
    if ctx.json || args.health_json {
        let document = if args.health_json {
            serde_json::to_value(report.to_health_json(&lift::monitor::ServiceInfo {
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                service_id: Some("lift".to_owned()),
                description: Some("lift health: the standard checks on this machine".to_owned()),
            }))
        } else {
            serde_json::to_value(report)
        }
        .map_err(|err| {
            lift::Error::new(
                lift::ErrorKind::External,
                format!("cannot render the health report as JSON: {err}"),
            )
        })?;
        if watching {
            // One compact document per line, so that a watcher can parse each run.
            write_stdout(&format!("{document}\n"))?;
        } else {
            ctx.emit_json(&document)?;
        }
    } else {
        let mut text = String::new();
        if watching {
            text = format!("{}\n", report.checked_at.format("%Y-%m-%d %H:%M:%S UTC"));
        }
        text.push_str(&report.render_table(color));
        write_stdout(&text)?;
    }
    Ok(())
}

/// Writes to stdout, turning a closed pipe into an error rather than a panic.
fn write_stdout(text: &str) -> lift::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(lift::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lift::monitor::CheckResult;

    fn report(status: HealthStatus) -> HealthReport {
        HealthReport {
            status,
            group: Group::All,
            checked_at: lift::monitor::Snapshot::empty().taken_at,
            duration_seconds: 0.0,
            checks: Vec::<CheckResult>::new(),
        }
    }

    #[test]
    fn only_unhealthy_exits_1() {
        assert_eq!(exit_code(&report(HealthStatus::Unhealthy)), 1);
        assert_eq!(exit_code(&report(HealthStatus::Degraded)), 0);
        assert_eq!(exit_code(&report(HealthStatus::Unknown)), 0);
        assert_eq!(exit_code(&report(HealthStatus::Healthy)), 0);
    }

    #[tokio::test]
    async fn runs_the_standard_checks_and_rejects_bad_endpoints() {
        let ctx = Context {
            json: true,
            audit: std::sync::Arc::new(lift::NoopAuditSink),
            audit_log: None,
            audit_key_file: None,
        };
        let args = HealthArgs {
            watch: None,
            health_json: false,
            endpoint: vec![],
        };
        let code = run(args, &ctx).await.unwrap();
        assert!(code == 0 || code == 1);
        let args = HealthArgs {
            watch: None,
            health_json: false,
            endpoint: vec!["no-port".into()],
        };
        let err = run(args, &ctx).await.unwrap_err();
        assert_eq!(err.kind(), lift::ErrorKind::InvalidInput);
        assert!(err.message().contains("host:port"));
    }
}
