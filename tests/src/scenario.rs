//! Replayable pulumi CLI scenarios: `tests/scenarios/pulumi/*.json`.
//!
//! A scenario is data: a program and a list of pulumi invocations, each with
//! its stdin and what it must do (exit code, JSON on stdout, text on stderr).
//! [`replay`] runs one against any `pulumi` binary, the pinned real CLI or
//! the fake in `src/bin/pulumi`, in a fresh project with a DIY file backend,
//! a passphrase and a private `PULUMI_HOME`, and returns what each step did,
//! so that two CLIs can be compared step by step.
//!
//! In arguments, `{events}` becomes the path of the step's event log and
//! `{state}` the backend's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::Value;

/// The passphrase of every scenario's stacks.
pub const PASSPHRASE: &str = "lift-scenario-passphrase";

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What it shows.
    pub description: String,
    /// The program the project starts with: a folder of `tests/scenarios/pulumi/programs`.
    pub program: String,
    /// The invocations, in order.
    pub steps: Vec<Step>,
}

/// One pulumi invocation and what it must do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The arguments, after `pulumi`.
    pub args: Vec<String>,
    /// Switch the project to this program first.
    #[serde(default)]
    pub program: Option<String>,
    /// Bytes for stdin (stdin is empty otherwise).
    #[serde(default)]
    pub stdin: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The exit code it must end with.
    pub exit: i32,
    /// A JSON value stdout must contain (every key given, recursively).
    #[serde(default)]
    pub json: Option<Value>,
    /// Text stderr must contain.
    #[serde(default)]
    pub stderr: Option<String>,
    /// Text stdout must contain.
    #[serde(default)]
    pub stdout: Option<String>,
}

/// What one step did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The arguments, with placeholders filled in.
    pub args: Vec<String>,
    /// The exit code (-1 for a signal).
    pub exit: i32,
    /// Stdout.
    pub stdout: String,
    /// Stderr.
    pub stderr: String,
    /// The event log, when the step wrote one.
    pub events: Option<Vec<u8>>,
    /// The stacks' settings files (`Pulumi.<stack>.yaml`) in the project after the step, by name.
    pub settings: BTreeMap<String, String>,
    /// What did not match the step's expectations; empty when it all did.
    pub mismatches: Vec<String>,
}

/// The folder of the scenarios and their programs.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pulumi")
}

/// Every scenario, by file name without `.json`.
pub fn load_all() -> Result<BTreeMap<String, Scenario>, String> {
    let dir = scenarios_dir();
    let mut all = BTreeMap::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let scenario: Scenario =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        all.insert(name, scenario);
    }
    Ok(all)
}

/// Runs `scenario` with `pulumi` in `dir` (which must be empty). `path_prefix`
/// goes first on the child's `PATH` (the language host's folder).
pub fn replay(
    pulumi: &Path,
    path_prefix: Option<&Path>,
    scenario: &Scenario,
    dir: &Path,
) -> Result<Vec<Outcome>, String> {
    let project = dir.join("project");
    let state = dir.join("state");
    let home = dir.join("home");
    let events = dir.join("events");
    for d in [&project, &state, &home, &events] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    use_program(&project, &scenario.program)?;
    let path = match path_prefix {
        Some(prefix) => {
            let mut dirs = vec![prefix.to_path_buf()];
            dirs.extend(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            ));
            std::env::join_paths(dirs).map_err(|e| e.to_string())?
        }
        None => std::env::var_os("PATH").unwrap_or_default(),
    };
    let mut outcomes = Vec::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        if let Some(program) = &step.program {
            use_program(&project, program)?;
        }
        let log = events.join(format!("step-{i}.jsonl"));
        let args: Vec<String> = step
            .args
            .iter()
            .map(|a| {
                a.replace("{events}", &log.to_string_lossy())
                    .replace("{state}", &state.to_string_lossy())
            })
            .collect();
        let mut command = Command::new(pulumi);
        command
            .args(&args)
            .current_dir(&project)
            .env("PATH", &path)
            .env("PULUMI_BACKEND_URL", format!("file://{}", state.display()))
            .env("PULUMI_HOME", &home)
            .env("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
            .env("PULUMI_SKIP_UPDATE_CHECK", "true")
            .env("PULUMI_DEBUG_COMMANDS", "true")
            .env_remove("PULUMI_ACCESS_TOKEN")
            .envs(&step.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", pulumi.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let bytes = step.stdin.clone().unwrap_or_default();
            let _ = stdin.write_all(bytes.as_bytes());
        }
        let output = child.wait_with_output().map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let exit = output.status.code().unwrap_or(-1);
        let mut mismatches = Vec::new();
        if exit != step.exit {
            mismatches.push(format!("exit {exit}, expected {}", step.exit));
        }
        if let Some(expected) = &step.json {
            match serde_json::from_str::<Value>(&stdout) {
                Ok(actual) => {
                    if let Some(path) = first_difference(expected, &actual, "$") {
                        mismatches.push(format!("stdout JSON differs at {path}"));
                    }
                }
                Err(e) => mismatches.push(format!("stdout is not JSON: {e}")),
            }
        }
        if let Some(text) = &step.stderr {
            if !stderr.contains(text.as_str()) {
                mismatches.push(format!("stderr lacks {text:?}"));
            }
        }
        if let Some(text) = &step.stdout {
            if !stdout.contains(text.as_str()) {
                mismatches.push(format!("stdout lacks {text:?}"));
            }
        }
        outcomes.push(Outcome {
            events: std::fs::read(&log).ok(),
            settings: settings_files(&project)?,
            args,
            exit,
            stdout,
            stderr,
            mismatches,
        });
    }
    Ok(outcomes)
}

/// The `Pulumi.<stack>.yaml` files of a project, by name.
fn settings_files(project: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut files = BTreeMap::new();
    let entries = std::fs::read_dir(project).map_err(|e| format!("{}: {e}", project.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with("Pulumi.") && name.ends_with(".yaml") && name != "Pulumi.yaml" {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            files.insert(name, text);
        }
    }
    Ok(files)
}

/// Copies a program's files into the project directory.
fn use_program(project: &Path, program: &str) -> Result<(), String> {
    let source = scenarios_dir().join("programs").join(program);
    let entries =
        std::fs::read_dir(&source).map_err(|e| format!("program {}: {e}", source.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, project.join(name))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Where `actual` lacks something `expected` has: `None` when `expected` is a subset.
pub fn first_difference(expected: &Value, actual: &Value, at: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => want.iter().find_map(|(key, value)| {
            let here = format!("{at}.{key}");
            match have.get(key) {
                Some(found) => first_difference(value, found, &here),
                None => Some(here),
            }
        }),
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                return Some(format!("{at} (length {} vs {})", want.len(), have.len()));
            }
            want.iter()
                .zip(have)
                .enumerate()
                .find_map(|(i, (w, h))| first_difference(w, h, &format!("{at}[{i}]")))
        }
        (want, have) if want == have => None,
        _ => Some(at.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_file_parses_and_names_an_existing_program() {
        let all = load_all().unwrap();
        assert!(all.len() >= 4, "{} scenarios", all.len());
        for (name, scenario) in &all {
            let programs = std::iter::once(&scenario.program)
                .chain(scenario.steps.iter().filter_map(|s| s.program.as_ref()));
            for program in programs {
                assert!(
                    scenarios_dir()
                        .join("programs")
                        .join(program)
                        .join("Pulumi.yaml")
                        .is_file(),
                    "{name}: program {program} is missing"
                );
            }
        }
    }

    #[test]
    fn subsets_are_recognised() {
        let actual = serde_json::json!({"a": 1, "b": {"c": [1, 2], "d": true}});
        assert_eq!(
            first_difference(&serde_json::json!({"b": {"d": true}}), &actual, "$"),
            None
        );
        assert_eq!(
            first_difference(&serde_json::json!({"b": {"e": 1}}), &actual, "$").as_deref(),
            Some("$.b.e")
        );
        assert!(first_difference(&serde_json::json!({"a": 2}), &actual, "$").is_some());
    }
}
