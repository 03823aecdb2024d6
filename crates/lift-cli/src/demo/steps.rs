//! The walkthrough's steps. Each returns its value and the detail to print,
//! or the error that failed it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use lift::audit::{AuditHealthCheck, AuditKey, FileAuditSink, SinkOptions, VerifyOptions};
use lift::monitor::{Endpoint, Group, Monitor, MonitorOptions, StandardChecks};
use lift::pulumi::{CliHealthCheck, OpOptions, PulumiCli, Workspace};
use lift::secrets::{
    FileSecretsProvider, PasswordPolicy, Protection, RotateOptions, RotationEngine,
    StoreHealthCheck, StoreKey, generate_password,
};
use lift::{
    AuditSink, Error, ErrorKind, HealthStatus, OutputValue, PutOptions, SecretName, SecretValue,
    SecretsProvider, VersionSelector,
};

use super::files::{create_private_dir, io_error, random_bytes, write_private};
use super::layout::Layout;
use super::service::{Service, ServiceRotator};

/// The secret the demo provisions and rotates.
pub(super) const SECRET: &str = "demo/db/password";

/// Creates the encrypted secret store and the keyed audit log.
pub(super) async fn setup(
    layout: &Layout,
) -> lift::Result<((FileSecretsProvider, Arc<FileAuditSink>), String)> {
    for dir in [
        &layout.root.join("keys"),
        &layout.root.join("audit"),
        &layout.root.join("service"),
    ] {
        create_private_dir(dir)?;
    }
    let key = StoreKey::create_file(&layout.store_key)?;
    let store = FileSecretsProvider::open(&layout.store, Protection::Encrypted(key))?;
    write_private(&layout.audit_key, &random_bytes(32)?)?;
    let audit_key = AuditKey::load(&layout.audit_key)?;
    let key_id = audit_key.id().to_owned();
    let sink =
        FileAuditSink::open(SinkOptions::new(&layout.audit_log).key(Some(audit_key))).await?;
    let detail = format!(
        "secret store {} (XChaCha20-Poly1305, 32-byte key in {})\naudit log {} (HMAC-SHA256 chain, key id {key_id}, signed checkpoints)",
        layout.store.display(),
        layout.store_key.display(),
        layout.audit_log.display(),
    );
    Ok(((store, Arc::new(sink)), detail))
}

/// The demo's project config: `dev` over the demo's store and audit log, and a
/// production-class `prod` with its own (not yet created) store.
const PROJECT_CONFIG: &str = r#"# Written by `lift demo`. Paths are relative to this file.
default_environment = "dev"

[environments.dev]
secrets = { path = "secrets", key_file = "keys/secrets.key" }
audit = { log = "audit/audit.jsonl", key_file = "keys/audit.key" }

[environments.prod]
# A production class turns on every policy rule: no plaintext store, no fault
# injection, no --allow-unanchored, an audit log for every change, and destroy
# only with the stack's name typed.
class = "production"
secrets = { path = "prod/secrets", key_file = "keys/secrets.key" }
audit = { log = "prod/audit.jsonl", key_file = "keys/audit.key" }
"#;

/// Writes `lift.toml` and puts one command line through the same parse and
/// policy check as the `lift` binary, under `dev` and then under `prod`:
/// `dev` allows a plaintext store, `prod` refuses it and names the rule and line.
pub(super) fn environments(layout: &Layout) -> lift::Result<((), String)> {
    write_private(&layout.config, PROJECT_CONFIG.as_bytes())?;
    let config = layout.config.display().to_string();
    let line = |env: &str| -> Vec<std::ffi::OsString> {
        [
            "lift",
            "--config",
            &config,
            "--env",
            env,
            "secrets",
            "--plaintext",
            "put",
            SECRET,
        ]
        .map(std::ffi::OsString::from)
        .to_vec()
    };
    let check = |env: &str| -> lift::Result<()> {
        let args = line(env);
        let first = crate::cli::command()
            .try_get_matches_from(&args)
            .map_err(|err| Error::invalid_input(err.to_string()))?;
        let parsed =
            crate::project::parse_from(first, args, &layout.root).map_err(
                |failure| match failure {
                    crate::project::ParseFailure::Usage(err) => {
                        Error::invalid_input(err.to_string())
                    }
                    crate::project::ParseFailure::Config(err, _) => err,
                },
            )?;
        match &parsed.environment {
            Some(selected) => selected.policy.check(&selected.name, &parsed.matches),
            None => Err(Error::invalid_input(
                "the demo's lift.toml selected no environment",
            )),
        }
    };
    check("dev")?;
    let refusal = match check("prod") {
        Err(err) if err.kind() == ErrorKind::InvalidInput => err,
        Err(err) => return Err(err),
        Ok(()) => {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "prod's policy let a plaintext store through",
            ));
        }
    };
    if layout.root.join("prod").exists() {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            "the refused command left files behind in prod/",
        ));
    }
    let detail = format!(
        "{config}: dev (development), prod (production)\n`lift --env dev secrets --plaintext put {}`: allowed by dev's policy\n`lift --env prod secrets --plaintext put {}`: refused, exit 2, nothing written:\n  {refusal}",
        SECRET, SECRET
    );
    Ok(((), detail))
}

/// Starts the demo service on loopback.
pub(super) async fn start_service(layout: &Layout) -> lift::Result<(Service, String)> {
    let service = Service::start(layout.credentials.clone()).await?;
    let detail = format!(
        "listening on {}, credential file {}",
        service.address,
        service.credentials.display()
    );
    Ok((service, detail))
}

/// Generates a password, gives it to the service and stores it.
pub(super) async fn provision(
    service: &Service,
    provider: &dyn SecretsProvider,
    name: &SecretName,
) -> lift::Result<((), String)> {
    let password = generate_password(&PasswordPolicy::default())?;
    write_private(&service.credentials, password.expose())?;
    let outcome = provider
        .put(name, &password, &PutOptions::default())
        .await?;
    let works = service.authenticate(&password).await?;
    if !works {
        return Err(Error::new(
            ErrorKind::External,
            "the demo service refused the provisioned password",
        ));
    }
    Ok((
        (),
        format!(
            "generated a {}-character password from the OS CSPRNG and stored it as {name}\nversion {} carries {}; the service accepts it",
            password.len(),
            outcome.version_id,
            labels(&outcome.stages),
        ),
    ))
}

/// Rotates the password through the four steps and proves the change on the service.
pub(super) async fn rotate(
    engine: &RotationEngine,
    service: &Service,
    provider: &dyn SecretsProvider,
    name: &SecretName,
) -> lift::Result<((), String)> {
    let old = provider.get(name, &VersionSelector::default()).await?;
    let started = Instant::now();
    let report = engine
        .rotate(name, &ServiceRotator { service }, &RotateOptions::default())
        .await?;
    let elapsed = started.elapsed();
    let new = provider.get(name, &VersionSelector::default()).await?;
    let new_works = service.authenticate(&new.value).await?;
    let old_refused = !service.authenticate(&old.value).await?;
    if !new_works || !old_refused {
        return Err(Error::new(
            ErrorKind::External,
            format!(
                "after rotation the service accepts the new password: {new_works}, refuses the old one: {old_refused}"
            ),
        ));
    }
    let description = provider.describe(name).await?;
    let mut detail = format!(
        "rotation {} finished in {} ms: AWSCURRENT moved from {} to {}\nthe service accepts the new password and refuses the old one\nversions now:",
        report.rotation_id,
        elapsed.as_millis(),
        report
            .old_version
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        report.new_version,
    );
    for version in &description.versions {
        detail.push_str(&format!(
            "\n  {}  {}",
            version.version_id,
            labels(&version.stages)
        ));
    }
    let history = engine.history(name).await?;
    detail.push_str(&format!(
        "\nrotation history holds {} record(s): ids, steps and outcomes, no values",
        history.len()
    ));
    Ok(((), detail))
}

/// Runs the health manager with the standard checks and every component's own.
pub(super) async fn health(
    layout: &Layout,
    store: &FileSecretsProvider,
    service: &Service,
) -> lift::Result<((), String)> {
    let monitor = Monitor::start(MonitorOptions::default())?;
    // CPU percentages compare two samples, and stall figures need a few heartbeats:
    // let them accumulate, then take the second sample now rather than waiting a full interval.
    tokio::time::sleep(Duration::from_millis(350)).await;
    monitor.refresh();
    let endpoint = Endpoint::new(service.address.ip().to_string(), service.address.port())?;
    let checks = StandardChecks::default().endpoint(endpoint);
    let manager = checks.build(&monitor)?;
    manager.register(StoreHealthCheck::new(store.clone()))?;
    manager.register(AuditHealthCheck::new(
        &layout.audit_log,
        VerifyOptions {
            key: Some(AuditKey::load(&layout.audit_key)?),
            ..VerifyOptions::default()
        },
    ))?;
    let pulumi_present = PulumiCli::discover(None).await.is_ok();
    if pulumi_present {
        manager.register(CliHealthCheck::new())?;
    }
    let report = manager.check(Group::All).await;
    // Plain: the detail is also the `--json` document's, where escapes do not belong.
    let mut detail = report.render_table(false).trim_end().to_owned();
    if !pulumi_present {
        detail.push_str("\n(the Pulumi CLI check is not registered: no pulumi is installed)");
    }
    if report.status == HealthStatus::Unhealthy {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!("the health report is unhealthy:\n{detail}"),
        ));
    }
    Ok(((), detail))
}

/// Deploys a `runtime: yaml` stack with only outputs, on a file backend.
pub(super) async fn deploy(
    layout: &Layout,
    cli: &PulumiCli,
    audit: Arc<dyn AuditSink>,
) -> lift::Result<((), String)> {
    create_private_dir(&layout.project)?;
    create_private_dir(&layout.pulumi_state)?;
    std::fs::write(
        layout.project.join("Pulumi.yaml"),
        "name: lift-demo\nruntime: yaml\ndescription: lift demo, outputs only\noutputs:\n  greeting: hello from lift\n  secretName: demo/db/password\n",
    )
    .map_err(|err| io_error("cannot write Pulumi.yaml", &err))?;
    let workspace = Workspace::builder(&layout.project)
        .pulumi(cli.path())
        .backend_url(format!("file://{}", layout.pulumi_state.display()))
        .pulumi_home(&layout.pulumi_home)
        .passphrase(SecretValue::from("lift-demo-passphrase"))
        .audit_sink(audit)
        .build()
        .await?;
    let stack = workspace.select_or_create_stack("demo".parse()?).await?;
    let mut options = OpOptions::default().message("lift demo");
    let mut events = options.subscribe();
    let progress = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(event) = events.next().await {
            if let Some(step) = event.step() {
                lines.push(format!("  {} {}", step.op, step.urn));
            }
        }
        lines
    });
    let result = stack.up(options).await?;
    let lines = progress.await.unwrap_or_default();
    let mut detail = format!(
        "pulumi {} up: {:?} in {:.1} s, version {}",
        cli.version(),
        result.summary.resource_changes,
        result.summary.duration.as_secs_f64(),
        result
            .version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "unknown".to_owned()),
    );
    for line in lines {
        detail.push('\n');
        detail.push_str(&line);
    }
    for (name, value) in &result.outputs {
        let shown = match value {
            OutputValue::Plain(v) => v.to_string(),
            OutputValue::Secret(_) => "[secret]".to_owned(),
        };
        detail.push_str(&format!("\n  output {name} = {shown}"));
    }
    Ok(((), detail))
}

/// Closes the audit sink and verifies the chain and its signed checkpoint.
pub(super) async fn verify_trail(
    layout: &Layout,
    sink: &FileAuditSink,
) -> lift::Result<((), String)> {
    sink.close().await?;
    let key = AuditKey::load(&layout.audit_key)?;
    let report = lift::audit::verify(std::slice::from_ref(&layout.audit_log), Some(&key), None)?;
    if !report.intact {
        let why = report
            .failure
            .as_ref()
            .map(|f| format!("{} at seq {}: {}", f.finding.as_str(), f.seq, f.message))
            .unwrap_or_default();
        return Err(Error::new(
            ErrorKind::Integrity,
            format!("the audit trail does not verify: {why}"),
        ));
    }
    let checkpoint = if report.checkpoint.is_some() {
        "and its signed checkpoint"
    } else {
        "(no checkpoint)"
    };
    Ok((
        (),
        format!(
            "{} records, {} bytes: the hash chain {checkpoint} verify with key id {}",
            report.records_checked,
            report.bytes,
            report.key_id.as_deref().unwrap_or("none"),
        ),
    ))
}

/// Reads the current password back, for the leak scan.
pub(super) async fn read_current(
    provider: &dyn SecretsProvider,
    name: &SecretName,
) -> lift::Result<(SecretValue, String)> {
    let current = provider.get(name, &VersionSelector::default()).await?;
    let detail = format!(
        "{name} AWSCURRENT is version {} ({} bytes; `lift secrets get` prints values, the demo does not)",
        current.version_id,
        current.value.len()
    );
    Ok((current.value, detail))
}

/// Looks for `secret` in every file under the demo directory except `holders`,
/// the files that hold it by design: the secret's own (encrypted) file and the
/// service's credential file, which is the target system.
pub(super) async fn scan_for_leaks(
    layout: &Layout,
    holders: &[PathBuf],
    secret: &SecretValue,
) -> lift::Result<((), String)> {
    let (scanned, leaks) = find_copies(&layout.root, holders, secret.expose())?;
    if leaks.is_empty() {
        Ok((
            (),
            format!(
                "scanned {scanned} files (audit log and checkpoint, keys, rotation state and history, locks): no plaintext copy of the password"
            ),
        ))
    } else {
        Err(Error::new(
            ErrorKind::Integrity,
            format!("the password appears in {}", leaks.join(", ")),
        ))
    }
}

/// Walks `root` and returns how many files were read and which of them
/// contain `needle`, skipping `holders`.
fn find_copies(
    root: &std::path::Path,
    holders: &[PathBuf],
    needle: &[u8],
) -> lift::Result<(usize, Vec<String>)> {
    let mut scanned = 0usize;
    let mut leaks = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|err| io_error(&format!("cannot list {}", dir.display()), &err))?;
        for entry in entries {
            let path = entry
                .map_err(|err| io_error("cannot list the demo directory", &err))?
                .path();
            if holders.contains(&path) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                scanned += 1;
                if contains(&bytes, needle) {
                    leaks.push(path.display().to_string());
                }
            }
        }
    }
    Ok((scanned, leaks))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn labels(stages: &[lift::StageLabel]) -> String {
    if stages.is_empty() {
        "no label".to_owned()
    } else {
        stages
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_finds_a_needle_and_never_an_empty_one() {
        assert!(contains(b"xxsecretxx", b"secret"));
        assert!(!contains(b"xxsecrexx", b"secret"));
        assert!(!contains(b"anything", b""));
    }

    #[test]
    fn the_leak_scan_skips_holders_and_finds_copies() -> lift::Result<()> {
        let tmp = tempfile::tempdir().map_err(|e| io_error("tempdir", &e))?;
        let root = tmp.path();
        create_private_dir(&root.join("sub"))?;
        write_private(&root.join("holder"), b"pw=hunter22")?;
        write_private(&root.join("sub/log"), b"line hunter22 line")?;
        write_private(&root.join("clean"), b"nothing here")?;
        let (scanned, leaks) = find_copies(root, &[root.join("holder")], b"hunter22")?;
        assert_eq!(scanned, 2);
        assert_eq!(leaks, [root.join("sub/log").display().to_string()]);
        Ok(())
    }

    #[test]
    fn labels_name_the_stages_or_say_none() {
        assert_eq!(labels(&[]), "no label");
        let stages = vec![lift::StageLabel::current(), lift::StageLabel::previous()];
        assert_eq!(labels(&stages), "AWSCURRENT, AWSPREVIOUS");
    }
}
