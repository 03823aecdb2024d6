//! The human progress output, Pulumi's non-interactive display (silenced under `--json`).

use std::io::Write;

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
