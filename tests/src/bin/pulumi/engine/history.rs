//! The record an update, refresh or destroy leaves: the new resources and a `stack history` entry.

use std::collections::BTreeMap;

use crate::clock;
use crate::context::Ctx;
use crate::error::CliError;
use crate::project::Project;
use crate::settings::ConfigEntry;
use crate::store::{Backend, ResourceState, UpdateRecord};

/// What the history entry says about the operation.
pub(super) struct Entry<'a> {
    pub(super) version: i64,
    pub(super) kind: &'static str,
    pub(super) start_millis: i64,
    pub(super) config: &'a BTreeMap<String, ConfigEntry>,
    pub(super) result: &'static str,
    pub(super) changes: &'a BTreeMap<String, i64>,
}

/// Saves the new resources (when the operation produced any) and appends the history entry.
pub(super) fn record(
    ctx: &Ctx,
    project: &Project,
    backend: &Backend,
    stack: &str,
    resources: Option<Vec<ResourceState>>,
    entry: &Entry<'_>,
) -> Result<(), CliError> {
    // Config and tags may have changed while the update ran: merge into the current state instead of
    // overwriting it.
    let mut state = backend.load(&project.name, stack)?;
    if let Some(resources) = resources {
        state.resources = resources;
    }
    let end = clock::now_millis();
    state.history.push(UpdateRecord {
        version: entry.version,
        kind: entry.kind.to_owned(),
        start_millis: entry.start_millis,
        end_millis: Some(end),
        message: ctx.args.value("message").unwrap_or_default().to_owned(),
        environment: environment(ctx, project),
        config: entry.config.clone(),
        result: entry.result.to_owned(),
        resource_changes: entry.changes.clone(),
    });
    state.last_update_millis = Some(end);
    backend.save(&state)
}

/// The `environment` block pulumi records: the CLI's version and platform, the runtime, which
/// `PULUMI_*` variables and which flags were set (a boolean's value, else just `set`), and the
/// execution kind.
fn environment(ctx: &Ctx, project: &Project) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        env.insert(k.to_owned(), v.to_owned());
    };
    put("exec.kind", ctx.args.value("exec-kind").unwrap_or("cli"));
    if let Some(agent) = ctx.args.value("exec-agent") {
        put("exec.agent", agent);
    }
    put("pulumi.version", &ctx.faults.version());
    put("pulumi.os", std::env::consts::OS);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    put("pulumi.arch", arch);
    if let Some(runtime) = project.doc.get("runtime").and_then(|r| r.as_str()) {
        put("runtime.name", runtime);
    }
    put("stack.environments", "[]");
    put("updatePlan", "false");
    for (name, value) in std::env::vars() {
        if name.starts_with("PULUMI_") {
            put(&format!("pulumi.env.{name}"), boolean_or_set(&value));
        }
    }
    for (flag, value) in ctx.args.given() {
        put(&format!("pulumi.flag.{flag}"), value);
    }
    env
}

/// `true`/`false` for a boolean, `set` for anything else, so that no value is recorded.
fn boolean_or_set(value: &str) -> &'static str {
    match value {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => "true",
        "false" | "0" | "f" | "F" | "FALSE" | "False" => "false",
        _ => "set",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_booleans_are_recorded_as_values() {
        assert_eq!(boolean_or_set("true"), "true");
        assert_eq!(boolean_or_set("false"), "false");
        assert_eq!(boolean_or_set("s3cr3t"), "set");
    }
}
