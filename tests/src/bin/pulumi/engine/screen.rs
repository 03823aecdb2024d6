//! The human progress output, Pulumi's non-interactive display (silenced under `--json`).

use std::io::Write;

use serde_json::Value;

use super::Operation;
use super::run::Run;
use super::step::blinded;
use crate::store;

/// Human output, silenced under `--json`.
pub(super) struct Screen {
    pub(super) quiet: bool,
}

impl Screen {
    pub(super) fn line(&self, text: &str) {
        if !self.quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }
}

pub(super) fn symbol(op: &str) -> &'static str {
    match op {
        "create" => "+",
        "update" => "~",
        "delete" => "-",
        "replace" | "create-replacement" => "+-",
        "delete-replaced" => "--",
        "refresh" => "~",
        _ => " ",
    }
}

pub(super) fn past(op: &str) -> &'static str {
    match op {
        "create" => "created",
        "update" => "updated",
        "delete" => "deleted",
        "replace" => "replaced",
        "create-replacement" => "created replacement",
        "delete-replaced" => "deleted original",
        "refresh" => "refreshed",
        _ => "unchanged",
    }
}

pub(super) fn present(op: &str) -> &'static str {
    match op {
        "create" => "creating",
        "update" => "updating",
        "delete" => "deleting",
        "replace" => "replacing",
        "create-replacement" => "creating replacement",
        "delete-replaced" => "deleting original",
        "refresh" => "refreshing",
        _ => "",
    }
}

/// The end of the human output: diagnostics, outputs, the resource counts and the duration.
pub(super) fn print_summary(
    run: &Run<'_>,
    op: Operation,
    outputs: Option<&serde_json::Map<String, Value>>,
    duration: i64,
) {
    let screen = &run.screen;
    if !run.diagnostics.is_empty() {
        screen.line("Diagnostics:");
        for (urn, msg) in &run.diagnostics {
            let owner = if urn.is_empty() {
                format!("pulumi:pulumi:Stack ({}-{})", run.project.name, run.stack)
            } else {
                let name = urn.rsplit("::").next().unwrap_or_default();
                let ty = urn.rsplit("::").nth(1).unwrap_or_default();
                let ty = ty.rsplit('$').next().unwrap_or(ty);
                format!("{ty} ({name})")
            };
            screen.line(&format!("  {owner}:"));
            for (i, l) in msg.lines().enumerate() {
                let prefix = if i == 0 { "error: " } else { "" };
                screen.line(&format!("    {prefix}{l}"));
            }
            screen.line("");
        }
    }
    let show_outputs = !run.failed && !run.ctx.args.bool("suppress-outputs");
    if let Some(outputs) = outputs.filter(|_| show_outputs) {
        if !outputs.is_empty() && op != Operation::Destroy && op != Operation::Refresh {
            screen.line("Outputs:");
            for (k, v) in &blinded(outputs) {
                let text = match v {
                    Value::String(s) if s == store::BLINDED => s.clone(),
                    other => other.to_string(),
                };
                screen.line(&format!("    {k}: {text}"));
            }
            screen.line("");
        }
    }
    screen.line("Resources:");
    for (opname, n) in &run.changes {
        let text = if opname == "same" {
            format!("    {n} unchanged")
        } else if run.preview {
            format!("    {} {n} to {opname}", symbol(opname))
        } else {
            format!("    {} {n} {}", symbol(opname), past(opname))
        };
        screen.line(&text);
    }
    screen.line("");
    if !run.preview {
        screen.line(&format!("Duration: {duration}s"));
        screen.line("");
    }
}
