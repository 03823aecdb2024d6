//! The layering rule, checked from `cargo metadata` as rust-analyzer's tidy test does.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;

/// The crates that may depend on `lift-core` and on no other lift crate.
pub(crate) const FEATURE_CRATES: [&str; 4] =
    ["lift-pulumi", "lift-monitor", "lift-secrets", "lift-audit"];

/// The crate every feature crate may depend on.
const CORE: &str = "lift-core";

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let output = Command::new(crate::cargo())
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
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("cargo metadata printed invalid JSON")?;
    let problems = check(&metadata);
    if problems.is_empty() {
        println!("tidy: the layering rule holds and every internal dependency has a version");
        Ok(())
    } else {
        for problem in &problems {
            eprintln!("tidy: {problem}");
        }
        bail!("{} layering problem(s)", problems.len())
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
            if FEATURE_CRATES.contains(&name) && normal && dep_name != CORE {
                problems.push(format!(
                    "{name} depends on {dep_name}: a feature crate may depend on {CORE} only; move the shared contract into {CORE}"
                ));
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
    fn the_real_workspace_is_tidy() {
        let root = crate::project_root();
        let output = Command::new(crate::cargo())
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ])
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(output.status.success());
        let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(check(&metadata), Vec::<String>::new());
    }
}
