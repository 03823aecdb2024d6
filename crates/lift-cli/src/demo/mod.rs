//! `lift demo`: lift's main job end to end, on embedded defaults, in a directory of its own.
//!
//! The walkthrough needs no setup and no network beyond loopback:
//! 1. it creates an encrypted secret store and a keyed audit log;
//! 2. it starts a small local service that authenticates clients against a
//!    credentials file, provisions a database password for it, and rotates
//!    the password through all four steps with a rotator that really changes
//!    the service's credential and proves the new one works;
//! 3. it runs the health manager with the real checks, including the secret
//!    store's, the audit log's and (when installed) the Pulumi CLI's;
//! 4. it writes a `lift.toml` with a `dev` and a production-class `prod`
//!    environment, and shows `prod`'s policy refusing a plaintext store that
//!    `dev` allows (the same parse and policy check as the `lift` binary);
//! 5. with a real `pulumi`, it deploys a `runtime: yaml` stack with only
//!    outputs on a file backend; without one it says the step was skipped;
//! 6. it closes and verifies the audit trail, checks that the password
//!    appears in no file outside the secret store, and prints where
//!    everything is.
//!
//! It exits 1 if any step that ran failed, and 2 when `--dir` names a
//! directory that is not empty (the demo never mixes its files with others').
//!
//! The modules, one job each: `args` (the command line), `layout` (where the
//! files go and what `--remove` may delete), `files` (private files),
//! `service` (the TCP credential service and its rotator), `steps` (what each
//! step does, and the secret it rotates), `walkthrough` (numbering, timing
//! and printing steps) and `report` (the `--json` document).

mod args;
mod files;
mod layout;
pub(crate) mod report;
mod service;
mod steps;
mod walkthrough;

use std::sync::Arc;

use lift::pulumi::PulumiCli;
use lift::secrets::{AuditedProvider, RotationEngine};
use lift::{AuditSink, SecretName};

pub(crate) use self::args::DemoArgs;
use self::layout::Layout;
use self::report::{DemoReport, DemoStep, StepStatus};
use self::steps::SECRET;
use self::walkthrough::Walkthrough;
use crate::context::Context;
use crate::output::{EXIT_FAILURE, EXIT_OK, Stream, use_color};

pub(crate) async fn run(args: DemoArgs, ctx: &Context) -> lift::Result<u8> {
    let layout = match &args.dir {
        Some(dir) => Layout::claim(dir)?,
        None => Layout::temporary()?,
    };
    ctx.say(format!("lift demo: working in {}", layout.root.display()));
    // Human text goes to stdout, or to stderr under --json.
    let stream = if ctx.json {
        Stream::Stderr
    } else {
        Stream::Stdout
    };
    let mut walk = Walkthrough::new(ctx, use_color(ctx.color, stream));

    let keys = walk
        .step(
            "create an encrypted secret store and a keyed audit log",
            steps::setup(&layout),
        )
        .await;
    let Some((store, sink)) = keys else {
        return finish(ctx, &layout, walk.steps, args.remove);
    };
    let audit: Arc<dyn AuditSink> = sink.clone();
    let provider = Arc::new(AuditedProvider::new(store.clone(), audit.clone()));
    let name: SecretName = SECRET.parse()?;

    let service = walk
        .step(
            "start a local service that reads its credential from a file",
            steps::start_service(&layout),
        )
        .await;
    if let Some(service) = service {
        let provisioned = walk
            .step(
                "provision the database password",
                steps::provision(&service, provider.as_ref(), &name),
            )
            .await;
        if provisioned.is_some() {
            let engine = RotationEngine::new(provider.clone(), Arc::new(store.rotation_store()))
                .with_audit(audit.clone());
            walk.step(
                "rotate it: createSecret, setSecret, testSecret, finishSecret",
                steps::rotate(&engine, &service, provider.as_ref(), &name),
            )
            .await;
        }
        walk.step(
            "run the health manager with every component's checks",
            steps::health(&layout, &store, &service),
        )
        .await;
    }

    walk.step(
        "write lift.toml with a dev and a prod environment; prod's policy refuses a plaintext store",
        async { steps::environments(&layout) },
    )
    .await;

    match PulumiCli::discover(None).await {
        Ok(cli) => {
            walk.step(
                "deploy a stack with Pulumi (runtime: yaml, outputs only, file backend)",
                steps::deploy(&layout, &cli, audit.clone()),
            )
            .await;
        }
        Err(err) => walk.skip(
            "deploy a stack with Pulumi",
            format!("no usable pulumi CLI: {err}"),
        ),
    }

    walk.step(
        "close and verify the audit trail",
        steps::verify_trail(&layout, &sink),
    )
    .await;
    if let Some(current) = walk
        .step(
            "read the current password back",
            steps::read_current(provider.as_ref(), &name),
        )
        .await
    {
        walk.step(
            "check that no file outside the secret store holds the password",
            steps::scan_for_leaks(
                &layout,
                &[store.secret_path(&name), layout.credentials.clone()],
                &current,
            ),
        )
        .await;
    }
    finish(ctx, &layout, walk.steps, args.remove)
}

fn finish(ctx: &Context, layout: &Layout, steps: Vec<DemoStep>, remove: bool) -> lift::Result<u8> {
    let report = DemoReport::new(layout.root.display().to_string(), steps);
    let failed = report.count(StepStatus::Failed);
    let skipped = report.count(StepStatus::Skipped);
    ctx.say(format!(
        "\n{} steps ran, {failed} failed, {skipped} skipped",
        report.steps.len() - skipped,
    ));
    if remove {
        let removed = layout.remove()?;
        ctx.say(format!(
            "removed what the demo created in {} ({} entries)",
            layout.root.display(),
            removed.len()
        ));
    } else {
        ctx.say(format!(
            "\nwhere everything is:\n  secret store   {}  (key: {})\n  audit log      {}  (key: {}, checkpoint: {}.checkpoint)\n  service creds  {}\n  project config {}  (environments dev and prod)\n\ntry:\n  lift --config {} env ls\n  lift secrets --store {} --key-file {} describe {SECRET}\n  lift audit verify {} --key-file {}\n  rm -rf {}",
            layout.store.display(),
            layout.store_key.display(),
            layout.audit_log.display(),
            layout.audit_key.display(),
            layout.audit_log.display(),
            layout.credentials.display(),
            layout.config.display(),
            layout.config.display(),
            layout.store.display(),
            layout.store_key.display(),
            layout.audit_log.display(),
            layout.audit_key.display(),
            layout.root.display(),
        ));
    }
    if ctx.json {
        ctx.emit_json(&report)?;
    }
    Ok(if report.ok { EXIT_OK } else { EXIT_FAILURE })
}
