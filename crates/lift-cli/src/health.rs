//! `lift health`: the health of this host, of a process (`--pid`) or of a service
//! (`--url`). Every report starts with what it measured.

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Args, ValueEnum};
use lift::HealthStatus;
use lift::monitor::{
    Group, HealthManager, HealthReport, HealthUrl, HostOptions, HostThresholds, NetworkCheck,
    ProcessOptions, ServiceInfo,
};

use crate::context::Context;

/// Arguments of `lift health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Check process PID (its memory against its cgroup's limit, threads, descriptors
    /// against its own limit, CPU over one second) instead of the host.
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "url")]
    pub pid: Option<u32>,

    /// Fetch a service's health endpoint (http://HOST:PORT means /health) and report
    /// what it says, with lift's exit codes.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Re-run the checks every SECONDS until interrupted (Ctrl-C); on a terminal the
    /// report is redrawn in place.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub watch: Option<u64>,

    /// Print the report as application/health+json instead of lift's JSON (implies --json output).
    #[arg(long)]
    pub health_json: bool,

    /// Also check that HOST:PORT resolves and accepts TCP connections (repeatable; adds
    /// to LIFT_HEALTH_ENDPOINTS). Host checks only.
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["pid", "url"])]
    pub endpoint: Vec<String>,

    /// Exit 1 from this status up, not only when unhealthy: `degraded` fails on
    /// degraded or unhealthy, `unknown` also on unknown.
    #[arg(long, value_name = "STATUS")]
    pub fail_on: Option<FailOn>,
}

/// The least status that fails `lift health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Degraded or unhealthy.
    Degraded,
    /// Unknown, degraded or unhealthy.
    Unknown,
}

/// How long a service may take to answer `--url`.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// What `lift health` looks at.
enum Target {
    /// The host, the lift components configured on it, and the endpoints to probe.
    Host {
        endpoints: Vec<lift::monitor::Endpoint>,
    },
    Process(u32),
    Service(HealthUrl),
}

pub(crate) async fn run(args: HealthArgs, ctx: &Context) -> lift::Result<u8> {
    let target = if let Some(url) = &args.url {
        Target::Service(url.parse().map_err(lift::Error::from)?)
    } else if let Some(pid) = args.pid {
        Target::Process(pid)
    } else {
        let mut endpoints = lift::monitor::StandardChecks::from_env()?.endpoints;
        for endpoint in &args.endpoint {
            endpoints.push(endpoint.parse().map_err(lift::Error::from)?);
        }
        Target::Host { endpoints }
    };
    let style = Style::detect(ctx.json || args.health_json, ctx.color);
    let mut status = run_once(&target, ctx, &args, &style).await?;
    if let Some(seconds) = args.watch {
        let interval = Duration::from_secs(seconds);
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                () = tokio::time::sleep(interval) => {}
            }
            status = run_once(&target, ctx, &args, &style).await?;
        }
    }
    Ok(exit_code(status, args.fail_on))
}

/// One report: measured, printed, and its status returned.
async fn run_once(
    target: &Target,
    ctx: &Context,
    args: &HealthArgs,
    style: &Style,
) -> lift::Result<HealthStatus> {
    let watching = args.watch.is_some();
    match target {
        Target::Service(url) => {
            let fetched = lift::monitor::fetch_health(url, FETCH_TIMEOUT).await?;
            let document = fetched.document;
            if ctx.json || args.health_json {
                emit(ctx, &document, watching)?;
            } else {
                let target = format!("service {url} (HTTP {})", fetched.http_status);
                style.draw(&document.render_table(&target, style.color), watching)?;
            }
            Ok(document.health_status())
        }
        Target::Process(pid) => {
            let sample = lift::monitor::sample_process(*pid, &ProcessOptions::default()).await?;
            let described = sample.describe();
            let manager = lift::monitor::process_checks(sample.snapshot)?;
            let report = finish(manager.check_fresh(Group::All).await, described);
            print_report(&report, ctx, args, style, watching)?;
            Ok(report.status)
        }
        Target::Host { endpoints } => {
            let snapshot = lift::monitor::sample_host(&HostOptions::default());
            let described = snapshot.describe();
            let manager = lift::monitor::host_checks(snapshot, HostThresholds::default())?;
            if !endpoints.is_empty() {
                manager.register(NetworkCheck::new(endpoints.iter().cloned()))?;
            }
            register_components(&manager, ctx).await?;
            let report = finish(manager.check_fresh(Group::All).await, described);
            print_report(&report, ctx, args, style, watching)?;
            Ok(report.status)
        }
    }
}

fn finish(mut report: HealthReport, target: String) -> HealthReport {
    report.target = Some(target);
    report
}

/// Adds the checks of the lift components this machine is configured for:
/// the audit log of `--audit-log`, the secret store of `LIFT_SECRETS_STORE`,
/// and the Pulumi CLI when one is installed or `LIFT_PULUMI` names one.
async fn register_components(manager: &HealthManager, ctx: &Context) -> lift::Result<()> {
    if let Some(log) = &ctx.audit_log {
        let key = match &ctx.audit_key_file {
            Some(file) => Some(lift::audit::AuditKey::load(file)?),
            None => None,
        };
        let options = lift::audit::VerifyOptions {
            key,
            checkpoint: crate::context::audit_checkpoint().map(std::path::Path::to_path_buf),
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

/// 1 when the status reaches `--fail-on` (unhealthy by default), else 0.
fn exit_code(status: HealthStatus, fail_on: Option<FailOn>) -> u8 {
    let least = match fail_on {
        None => HealthStatus::Unhealthy,
        Some(FailOn::Degraded) => HealthStatus::Degraded,
        Some(FailOn::Unknown) => HealthStatus::Unknown,
    };
    if status >= least {
        crate::EXIT_FAILURE
    } else {
        0
    }
}

/// How the table is drawn: colour and in-place redraws only on a terminal.
struct Style {
    color: bool,
    terminal: bool,
}

impl Style {
    /// Colour as `--color` and `NO_COLOR` say for stdout (see
    /// [`crate::output::use_color`]); never in JSON output.
    fn detect(json: bool, color: crate::global_args::ColorChoice) -> Self {
        let terminal = std::io::stdout().is_terminal() && !json;
        Style {
            color: !json && crate::output::use_color(color, crate::output::Stream::Stdout),
            terminal,
        }
    }

    /// Prints a table; when watching on a terminal, over the previous one.
    fn draw(&self, table: &str, watching: bool) -> lift::Result<()> {
        let mut text = String::new();
        if watching {
            if self.terminal {
                // Cursor home and clear the screen: the report replaces the previous one.
                text.push_str("\x1b[H\x1b[2J");
            }
            text.push_str(&format!(
                "{}\n",
                lift::Clock::now(&lift::SystemClock).format("%Y-%m-%d %H:%M:%S UTC")
            ));
        }
        text.push_str(table);
        write_stdout(&text)
    }
}

fn print_report(
    report: &HealthReport,
    ctx: &Context,
    args: &HealthArgs,
    style: &Style,
    watching: bool,
) -> lift::Result<()> {
    if args.health_json {
        let target = report.target.clone();
        let document = report.to_health_json(&ServiceInfo {
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            service_id: Some("lift".to_owned()),
            description: target.or_else(|| Some("lift health".to_owned())),
        });
        emit(ctx, &document, watching)
    } else if ctx.json {
        emit(ctx, report, watching)
    } else {
        style.draw(&report.render_table(style.color), watching)
    }
}

fn emit(ctx: &Context, document: &impl serde::Serialize, watching: bool) -> lift::Result<()> {
    if watching {
        // One compact document per line, so that a watcher can parse each run.
        let line = serde_json::to_string(document).map_err(|err| {
            lift::Error::new(
                lift::ErrorKind::External,
                format!("cannot render the health report as JSON: {err}"),
            )
        })?;
        write_stdout(&format!("{line}\n"))
    } else {
        ctx.emit_json(document)
    }
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

    #[test]
    fn exit_codes_follow_fail_on() {
        use HealthStatus::*;
        let table = [
            (None, [0, 0, 0, 1]),
            (Some(FailOn::Degraded), [0, 0, 1, 1]),
            (Some(FailOn::Unknown), [0, 1, 1, 1]),
        ];
        for (fail_on, expected) in table {
            let got = [Healthy, Unknown, Degraded, Unhealthy].map(|s| exit_code(s, fail_on));
            assert_eq!(got, expected, "{fail_on:?}");
        }
    }

    fn ctx() -> Context {
        Context::for_tests(true, std::sync::Arc::new(lift::NoopAuditSink))
    }

    fn args() -> HealthArgs {
        HealthArgs {
            pid: None,
            url: None,
            watch: None,
            health_json: false,
            endpoint: vec![],
            fail_on: None,
        }
    }

    #[tokio::test]
    async fn rejects_bad_endpoints_and_urls_as_bad_input() {
        let err = run(
            HealthArgs {
                endpoint: vec!["no-port".into()],
                ..args()
            },
            &ctx(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), lift::ErrorKind::InvalidInput);
        assert!(err.message().contains("host:port"));
        let err = run(
            HealthArgs {
                url: Some("https://example.com".into()),
                ..args()
            },
            &ctx(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), lift::ErrorKind::InvalidInput);
        assert!(err.message().contains("https"), "{}", err.message());
    }
}
