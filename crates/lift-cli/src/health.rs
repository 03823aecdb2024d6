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

/// Exit code of a `--watch` interrupted (Ctrl-C) before its first report:
/// 128 + SIGINT, what a shell reports for a command that SIGINT ended.
const EXIT_INTERRUPTED: u8 = 130;

pub(crate) async fn run(args: HealthArgs, ctx: &Context) -> lift::Result<u8> {
    let result = run_checks(&args, ctx).await;
    if let Err(err) = &result {
        // `--health-json` implies JSON output: a failure prints the `--json` error
        // document too (under `--json` the caller prints it).
        if args.health_json && !ctx.json {
            crate::output::print_error_document(err);
        }
    }
    result
}

async fn run_checks(args: &HealthArgs, ctx: &Context) -> lift::Result<u8> {
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
    let Some(seconds) = args.watch else {
        let measured = measure(&target, ctx).await?;
        let status = show(&measured, ctx, args, &style, false)?;
        return Ok(exit_code(status, args.fail_on));
    };
    // One listener for the whole watch, so that a Ctrl-C that comes while a report
    // is measured (the CPU window of --pid, a slow --url) is not lost.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|err| {
        lift::Error::new(
            lift::ErrorKind::External,
            format!("cannot listen for Ctrl-C: {err}"),
        )
    })?;
    let interval = Duration::from_secs(seconds);
    let mut last: Option<HealthStatus> = None;
    loop {
        let measured = tokio::select! {
            _ = interrupt.recv() => break,
            measured = measure(&target, ctx) => measured,
        };
        let measured = match measured {
            Ok(measured) => measured,
            // A first measurement refused as bad input (a pid that never existed, a
            // missing key file) is a mistake in the command line, not an outage to watch.
            Err(err)
                if last.is_none() && crate::output::exit_code_for(&err) == crate::EXIT_USAGE =>
            {
                return Err(err);
            }
            Err(err) => failed(&target, &err),
        };
        last = Some(show(&measured, ctx, args, &style, true)?);
        tokio::select! {
            _ = interrupt.recv() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
    // Interrupted: the last report decides, as without --watch.
    Ok(last.map_or(EXIT_INTERRUPTED, |status| exit_code(status, args.fail_on)))
}

/// One report, measured but not yet printed.
enum Measured {
    /// What a service's health endpoint answered (or a failed fetch), and the
    /// line that names it.
    Service {
        document: lift::monitor::HealthJson,
        caption: String,
        /// The document's status, unhealthy on an HTTP error status.
        status: HealthStatus,
    },
    /// A report of the host or of a process.
    Report(HealthReport),
}

/// Measures one report.
async fn measure(target: &Target, ctx: &Context) -> lift::Result<Measured> {
    match target {
        Target::Service(url) => {
            let fetched = lift::monitor::fetch_health(url, FETCH_TIMEOUT).await?;
            Ok(Measured::Service {
                caption: format!("service {url} (HTTP {})", fetched.http_status),
                status: fetched.status(),
                document: fetched.document,
            })
        }
        Target::Process(pid) => {
            let sample = lift::monitor::sample_process(*pid, &ProcessOptions::default()).await?;
            let described = sample.describe();
            let manager = lift::monitor::process_checks(sample.snapshot)?;
            Ok(Measured::Report(finish(
                manager.check_fresh(Group::All).await,
                described,
            )))
        }
        Target::Host { endpoints } => {
            let snapshot = lift::monitor::sample_host(&HostOptions::default());
            let described = snapshot.describe();
            let manager = lift::monitor::host_checks(snapshot, HostThresholds::default())?;
            if !endpoints.is_empty() {
                manager.register(NetworkCheck::new(endpoints.iter().cloned()))?;
            }
            register_components(&manager, ctx).await?;
            Ok(Measured::Report(finish(
                manager.check_fresh(Group::All).await,
                described,
            )))
        }
    }
}

/// The report of a measurement that failed (in `--watch`): unhealthy, with one
/// check that says what failed.
fn failed(target: &Target, err: &lift::Error) -> Measured {
    let now = lift::Clock::now(&lift::SystemClock);
    let message = err.message().to_owned();
    match target {
        Target::Service(url) => {
            let entry = lift::monitor::HealthJsonCheck {
                component_id: None,
                observed_value: None,
                observed_unit: None,
                status: Some("fail".to_owned()),
                component_type: None,
                time: Some(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                output: Some(message.clone()),
            };
            Measured::Service {
                document: lift::monitor::HealthJson {
                    status: "fail".to_owned(),
                    version: None,
                    service_id: None,
                    description: Some(format!("lift health --url {url}")),
                    output: Some(message),
                    checks: [("fetch".to_owned(), vec![entry])].into_iter().collect(),
                },
                caption: format!("service {url} (no answer)"),
                status: HealthStatus::Unhealthy,
            }
        }
        Target::Process(pid) => failed_report("process", format!("process {pid}"), message, now),
        Target::Host { .. } => failed_report("host", "host".to_owned(), message, now),
    }
}

fn failed_report(
    check: &str,
    target: String,
    message: String,
    now: chrono::DateTime<chrono::Utc>,
) -> Measured {
    Measured::Report(HealthReport {
        status: HealthStatus::Unhealthy,
        group: Group::All,
        checked_at: now,
        duration_seconds: 0.0,
        checks: vec![lift::monitor::CheckResult {
            name: check.to_owned(),
            checked_at: now,
            cached: false,
            outcome: lift::CheckOutcome::unhealthy(message),
            details: None,
        }],
        target: Some(target),
    })
}

/// Prints one report and returns its status.
fn show(
    measured: &Measured,
    ctx: &Context,
    args: &HealthArgs,
    style: &Style,
    watching: bool,
) -> lift::Result<HealthStatus> {
    match measured {
        Measured::Service {
            document,
            caption,
            status,
        } => {
            if ctx.json || args.health_json {
                emit(ctx, document, watching)?;
            } else {
                style.draw(&document.render_table(caption, style.color), watching)?;
            }
            Ok(*status)
        }
        Measured::Report(report) => {
            print_report(report, ctx, args, style, watching)?;
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
    // Only look: a missing log or store is reported, never created.
    if let Some(log) = &ctx.audit_log {
        if log.exists() {
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
        } else {
            let message = format!(
                "audit log {} does not exist; point --audit-log (or LIFT_AUDIT_LOG) at an existing log, or create it by running an audited command with it",
                log.display()
            );
            manager.register(unhealthy("audit_log", message))?;
        }
    }
    if let Some(store) = std::env::var_os("LIFT_SECRETS_STORE") {
        let store = std::path::PathBuf::from(store);
        let key_file = std::env::var_os(lift::secrets::KEY_FILE_ENV).map(std::path::PathBuf::from);
        // Without a key the store is opened as plaintext: the check then reports a
        // plaintext store as degraded, and encrypted files as unreadable.
        let protection =
            lift::secrets::Protection::from_options(key_file.as_deref(), key_file.is_none())?;
        match lift::secrets::FileSecretsProvider::open_existing(&store, protection) {
            Ok(opened) => manager.register(lift::secrets::StoreHealthCheck::new(opened))?,
            Err(err) if lift::Classify::kind(&err) == lift::ErrorKind::NotFound => {
                let message = format!(
                    "secret store {} (LIFT_SECRETS_STORE) does not exist: {err}; point LIFT_SECRETS_STORE at an existing store, or create it with `lift secrets put`",
                    store.display()
                );
                manager.register(unhealthy("secrets:store", message))?;
            }
            Err(err) => {
                let message = format!(
                    "secret store {} (LIFT_SECRETS_STORE) cannot be opened: {err}",
                    store.display()
                );
                manager.register(unhealthy("secrets:store", message))?;
            }
        }
    }
    let asked_for_pulumi = std::env::var_os(lift::pulumi::PULUMI_ENV).is_some();
    if asked_for_pulumi || lift::pulumi::PulumiCli::discover(None).await.is_ok() {
        manager.register(lift::pulumi::CliHealthCheck::new())?;
    }
    Ok(())
}

/// A check of a component that could not be looked at: always unhealthy, with `message`.
fn unhealthy(name: &str, message: String) -> impl lift::HealthCheck + 'static {
    lift::monitor::FnCheck::new(name, move || lift::CheckOutcome::unhealthy(message.clone()))
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
