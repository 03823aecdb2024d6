//! The layering rules of docs/architecture.md, checked from `cargo metadata`
//! as rust-analyzer's tidy test does:
//!
//! - `lift-core` depends on no other lift crate;
//! - a feature crate depends on `lift-core` and on no other lift crate;
//! - the facade `lift` depends on `lift-core` and the feature crates only, and
//!   contains no logic (its `src/` is one `lib.rs` of docs, re-exports and a
//!   prelude);
//! - `lift-cli` depends on the facade only;
//! - a publishable crate gives every internal dependency a version;
//! - no crate has an import cycle between its modules (`module_cycles`).
//!
//! Only normal dependencies count: tests and benches may use anything.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;

/// The crates that may depend on `lift-core` and on no other lift crate.
pub(crate) const FEATURE_CRATES: [&str; 4] =
    ["lift-pulumi", "lift-monitor", "lift-secrets", "lift-audit"];

/// The crate every feature crate may depend on.
const CORE: &str = "lift-core";

/// The facade.
const FACADE: &str = "lift";

/// The command line.
const CLI: &str = "lift-cli";

/// The workspace's `cargo metadata` (members only, offline), as tidy and
/// its tests read it.
pub(crate) fn workspace_metadata(root: &Path) -> anyhow::Result<Value> {
    let output = Command::new(crate::workspace::cargo())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .context("cannot run cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("cargo metadata printed invalid JSON")
}

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let metadata = workspace_metadata(root)?;
    let mut problems = check(&metadata);
    problems.extend(check_facade_source(&root.join("crates/lift/src"))?);
    let cycles = crate::module_cycles::check_workspace(&metadata)?;
    problems.extend(cycles.problems);
    for tolerated in &cycles.tolerated {
        eprintln!(
            "tidy: tolerated for now (KNOWN_CYCLES in xtask/src/module_cycles.rs): {tolerated}"
        );
    }
    if problems.is_empty() {
        let known = match cycles.tolerated.len() {
            0 => String::new(),
            n => format!(" but the {n} known one(s) above"),
        };
        println!(
            "tidy: the layering rules of docs/architecture.md hold (lift-core alone, feature crates on lift-core, the facade on lift-core and the feature crates without logic, lift-cli on the facade), every internal dependency has a version and no crate has a cycle between its modules{known}"
        );
        Ok(())
    } else {
        for problem in &problems {
            eprintln!("tidy: {problem}");
        }
        bail!("{} tidy problem(s)", problems.len())
    }
}

/// Returns one message per broken rule in a `cargo metadata --no-deps` document.
pub(crate) fn check(metadata: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let packages = metadata["packages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let members: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    if packages.is_empty() {
        problems.push("cargo metadata lists no packages".to_owned());
    }
    for package in packages {
        let name = package["name"].as_str().unwrap_or("<unnamed>");
        // `publish: []` means the package is never published.
        let publishable =
            !matches!(package["publish"].as_array(), Some(registries) if registries.is_empty());
        let dependencies = package["dependencies"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for dep in dependencies {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            if !members.contains(&dep_name) {
                continue;
            }
            let normal = dep["kind"].is_null();
            if normal {
                if let Some(problem) = layering_problem(name, dep_name) {
                    problems.push(problem);
                }
            }
            let has_version = dep["req"].as_str().is_some_and(|req| req != "*");
            if publishable && normal && !has_version {
                problems.push(format!(
                    "{name} depends on {dep_name} without a version: add `version` next to `path` in [workspace.dependencies] so that publishing works"
                ));
            }
        }
    }
    problems
}

/// What is wrong with `name` depending (normally) on the workspace crate `dep`, if anything.
fn layering_problem(name: &str, dep: &str) -> Option<String> {
    if name == CORE {
        return Some(format!(
            "{CORE} depends on {dep}: {CORE} holds the contracts and depends on no other lift crate"
        ));
    }
    if FEATURE_CRATES.contains(&name) && dep != CORE {
        return Some(format!(
            "{name} depends on {dep}: a feature crate may depend on {CORE} only; move the shared contract into {CORE}"
        ));
    }
    if name == FACADE && dep != CORE && !FEATURE_CRATES.contains(&dep) {
        return Some(format!(
            "{FACADE} depends on {dep}: the facade re-exports {CORE} and the feature crates only"
        ));
    }
    if name == CLI && dep != FACADE {
        return Some(format!(
            "{CLI} depends on {dep}: the CLI reaches the libraries through the facade `{FACADE}` only"
        ));
    }
    None
}

/// The facade contains no logic: `src/` holds `lib.rs` alone, and outside
/// comments `lib.rs` has only attributes, `pub use` lines and the `prelude`
/// module of re-exports.
pub(crate) fn check_facade_source(src: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(src).with_context(|| format!("cannot list {}", src.display()))? {
        let name = entry
            .with_context(|| format!("cannot list {}", src.display()))?
            .file_name();
        if name != "lib.rs" {
            problems.push(format!(
                "the facade has crates/lift/src/{}: the facade is lib.rs alone (docs and re-exports); put logic in a feature crate",
                name.to_string_lossy()
            ));
        }
    }
    let lib = std::fs::read_to_string(src.join("lib.rs"))
        .with_context(|| format!("cannot read {}", src.join("lib.rs").display()))?;
    problems.extend(facade_logic(&lib));
    Ok(problems)
}

/// The lines of the facade's `lib.rs` that are more than re-exports.
fn facade_logic(lib: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut in_use = false;
    for (number, line) in lib.lines().enumerate() {
        let code = line.trim();
        let allowed = code.is_empty()
            || code.starts_with("//")
            || code.starts_with("#[")
            || code.starts_with("#![")
            || code.starts_with("pub use ")
            || code == "pub mod prelude {"
            || code == "}"
            || in_use;
        if code.starts_with("pub use ") || in_use {
            in_use = !code.ends_with(';');
        }
        if !allowed {
            problems.push(format!(
                "crates/lift/src/lib.rs:{}: `{code}` is logic; the facade holds docs and re-exports only",
                number + 1
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn package(name: &str, deps: Value) -> Value {
        json!({ "name": name, "publish": null, "dependencies": deps })
    }

    fn dep(name: &str, req: &str, kind: Option<&str>) -> Value {
        json!({ "name": name, "req": req, "kind": kind, "path": format!("/ws/crates/{name}") })
    }

    fn metadata(secrets_deps: Value) -> Value {
        json!({ "packages": [
            package("lift-core", json!([])),
            package("lift-audit", json!([dep("lift-core", "^0.1.0", None)])),
            package("lift-secrets", secrets_deps),
        ]})
    }

    #[test]
    fn accepts_the_intended_layering() {
        let ok = metadata(json!([
            dep("lift-core", "^0.1.0", None),
            dep("lift-audit", "^0.1.0", Some("dev"))
        ]));
        assert_eq!(check(&ok), Vec::<String>::new());
    }

    #[test]
    fn rejects_a_feature_crate_depending_on_another() {
        let broken = metadata(json!([
            dep("lift-core", "^0.1.0", None),
            dep("lift-audit", "^0.1.0", None)
        ]));
        let problems = check(&broken);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("lift-secrets depends on lift-audit"),
            "{problems:?}"
        );
    }

    #[test]
    fn rejects_an_internal_dependency_without_version() {
        let broken = metadata(json!([dep("lift-core", "*", None)]));
        let problems = check(&broken);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("without a version"), "{problems:?}");
    }

    #[test]
    fn unpublished_packages_may_use_path_only_dependencies() {
        let doc = json!({ "packages": [
            package("lift-core", json!([])),
            { "name": "lift-tests", "publish": [], "dependencies": [dep("lift-core", "*", None)] },
        ]});
        assert!(check(&doc).is_empty());
    }

    #[test]
    fn rejects_core_depending_on_a_lift_crate() {
        let doc = json!({ "packages": [
            package("lift-core", json!([dep("lift-audit", "^0.1.0", None)])),
            package("lift-audit", json!([])),
        ]});
        let problems = check(&doc);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("lift-core depends on lift-audit"));
    }

    #[test]
    fn the_cli_goes_through_the_facade() {
        let doc = json!({ "packages": [
            package("lift-core", json!([])),
            package("lift", json!([dep("lift-core", "^0.1.0", None)])),
            package("lift-tests", json!([])),
            package("lift-cli", json!([
                dep("lift", "^0.1.0", None),
                dep("lift-core", "^0.1.0", None),
                dep("lift-tests", "*", Some("dev")),
            ])),
        ]});
        let problems = check(&doc);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("lift-cli depends on lift-core"));
    }

    #[test]
    fn the_facade_re_exports_core_and_feature_crates_only() {
        let doc = json!({ "packages": [
            package("lift-core", json!([])),
            package("lift-cli", json!([])),
            package("lift", json!([
                dep("lift-core", "^0.1.0", None),
                dep("lift-secrets", "^0.1.0", None),
                dep("lift-cli", "^0.1.0", None),
            ])),
            package("lift-secrets", json!([])),
        ]});
        let problems = check(&doc);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("lift depends on lift-cli"));
    }

    #[test]
    fn the_facade_holds_no_logic() {
        let clean = "//! Docs.\n#![doc = \"x\"]\n\npub use lift_core::*;\n#[cfg(feature = \"audit\")]\npub use lift_audit as audit;\npub mod prelude {\n    pub use lift_core::{\n        Error,\n        Result,\n    };\n}\n";
        assert_eq!(facade_logic(clean), Vec::<String>::new());
        let logic = format!("{clean}pub fn helper() -> u8 {{ 1 }}\n");
        let problems = facade_logic(&logic);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("pub fn helper"));
    }

    #[test]
    fn the_real_facade_holds_no_logic() {
        let src = crate::workspace::project_root().join("crates/lift/src");
        assert_eq!(check_facade_source(&src).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_real_workspace_is_tidy() {
        let metadata = workspace_metadata(&crate::workspace::project_root()).unwrap();
        assert_eq!(check(&metadata), Vec::<String>::new());
    }
}
