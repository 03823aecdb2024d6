//! The end of a run's human output: diagnostics, outputs, the resource counts and the duration.

use serde_json::Value;

use super::operation::Operation;
use super::run::Run;
use super::screen::{past, symbol};
use super::step::blinded;
use crate::secret;

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
                    Value::String(s) if s == secret::BLINDED => s.clone(),
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
