//! The whole check suite, in the order that fails fastest: the README's test command.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    step(root, "format", &["fmt", "--all", "--check"])?;
    step(
        root,
        "lint",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // The libraries' API docs, with broken or private links as errors.
    step_with_env(
        root,
        "docs",
        &["doc", "--workspace", "--no-deps", "--lib", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    timed("codegen check", || crate::codegen::run(root, true))?;
    timed("tidy", || crate::tidy::run(root))?;
    timed("facade features", || crate::features::run(root))?;
    // The real-CLI suite runs against the pinned pulumi, built from tools/ (once per version).
    let tools = match std::env::var("LIFT_TEST_REAL_PULUMI").as_deref() {
        Ok("0") => {
            println!("ci: LIFT_TEST_REAL_PULUMI=0: the real-CLI suite will skip");
            None
        }
        _ => Some(timed_value("build the pinned pulumi", || {
            crate::pulumi::ensure(root, true)
        })?),
    };
    let pulumi = tools
        .as_ref()
        .map(|t| t.bin_dir.join("pulumi").display().to_string())
        .unwrap_or_default();
    let real = if tools.is_some() { "1" } else { "0" };
    // The workspace run builds the `lift` binary, so the tests that drive it
    // must find it here; run alone they may skip (and say so).
    step_with_env(
        root,
        "tests",
        &TEST_ARGS,
        &[
            ("LIFT_TEST_REQUIRE_LIFT_BIN", "1"),
            ("LIFT_TEST_REAL_PULUMI", real),
            ("LIFT_REAL_PULUMI", &pulumi),
        ],
    )?;
    // lift-monitor's portable backend (the workspace run above uses /proc), and
    // the /proc hot path with the optional features, which `--all-features`
    // cannot cover since it selects sysinfo.
    step(
        root,
        "lift-monitor on the sysinfo backend",
        &[
            "test",
            "-p",
            "lift-monitor",
            "--features",
            "sysinfo",
            "--locked",
        ],
    )?;
    step(
        root,
        "lint (lift-monitor, sysinfo)",
        &[
            "clippy",
            "-p",
            "lift-monitor",
            "--all-targets",
            "--features",
            "sysinfo",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    step(
        root,
        "lift-monitor on /proc with http, lambda and jemalloc",
        &[
            "test",
            "-p",
            "lift-monitor",
            "--features",
            "http,lambda,jemalloc",
            "--locked",
        ],
    )?;
    if target_installed(MACOS_TARGET) {
        // The libraries (and so the `lift` facade) build off Linux: lift-monitor's
        // sysinfo backend, lift-pulumi without inotify. Checked, not run: this machine
        // cannot run macOS code, and the CLI's AWS dependencies need a macOS C toolchain.
        step(
            root,
            "the libraries on macOS (clippy)",
            &[
                "clippy",
                "-p",
                "lift",
                "-p",
                "lift-core",
                "-p",
                "lift-pulumi",
                "-p",
                "lift-secrets",
                "-p",
                "lift-audit",
                "--target",
                MACOS_TARGET,
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        )?;
        step(
            root,
            "lift-monitor on macOS with http and lambda (clippy, all targets)",
            &[
                "clippy",
                "-p",
                "lift-monitor",
                "--features",
                "http,lambda",
                "--all-targets",
                "--target",
                MACOS_TARGET,
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        )?;
    } else {
        println!(
            "ci: skipping the macOS check: `rustup target add {MACOS_TARGET}` (.ci/run does it) to run it"
        );
    }
    if std::env::var("LIFT_TEST_MOTO").as_deref() == Ok("1") {
        // The AWS SDK is heavy, so the `aws` feature is built only for the suite that needs it.
        step(
            root,
            "lint (aws feature)",
            &[
                "clippy",
                "-p",
                "lift-secrets",
                "-p",
                "lift-tests",
                "--features",
                "lift-tests/aws",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        )?;
        step(
            root,
            "provider contract and IAM pre-check on moto",
            &[
                "test",
                "-p",
                "lift-tests",
                "--features",
                "aws",
                "--test",
                "provider_contract",
                "--test",
                "secrets_iam",
                "--locked",
            ],
        )?;
    } else {
        println!(
            "ci: skipping the AWS Secrets Manager provider on moto: set LIFT_TEST_MOTO=1 (needs `pip install \"moto[server]\"`)"
        );
    }
    println!("ci: all checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// The test step: every workspace member, xtask's own tests included (codegen
/// freshness, the layering rules), with the `lift` binary built.
const TEST_ARGS: [&str; 4] = ["test", "--workspace", "--locked", "--no-fail-fast"];

/// The target the libraries are checked for off Linux.
const MACOS_TARGET: &str = "x86_64-apple-darwin";

/// Whether rustup has the standard library for `target`.
fn target_installed(target: &str) -> bool {
    std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|out| {
            out.status.success()
                && String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .any(|l| l.trim() == target)
        })
}

fn step(root: &Path, name: &str, args: &[&str]) -> anyhow::Result<()> {
    step_with_env(root, name, args, &[])
}

fn step_with_env(
    root: &Path,
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<()> {
    timed(name, || {
        let status = Command::new(crate::workspace::cargo())
            .args(args)
            .envs(env.iter().copied())
            .current_dir(root)
            .status()
            .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
        if !status.success() {
            bail!("`cargo {}` failed", args.join(" "));
        }
        Ok(())
    })
}

fn timed(name: &str, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    timed_value(name, f)
}

fn timed_value<T>(name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    println!("ci: {name}...");
    let started = Instant::now();
    let result = f().with_context(|| format!("ci step `{name}` failed"));
    println!("ci: {name} took {:.1?}", started.elapsed());
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cargo_stdout(args: &[&str]) -> String {
        let output = Command::new(crate::workspace::cargo())
            .args(args)
            .current_dir(crate::workspace::project_root())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cargo {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn the_test_step_runs_xtask_tests_too() {
        assert!(TEST_ARGS.contains(&"--workspace"));
        let metadata = crate::tidy::workspace_metadata(&crate::workspace::project_root()).unwrap();
        let xtask_is_a_member = metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "xtask");
        assert!(
            xtask_is_a_member,
            "`cargo test --workspace` must reach xtask"
        );
    }

    #[test]
    fn xtask_does_not_build_the_aws_sdk() {
        // `cargo xtask codegen`, `tidy` and the rest need the CLI's definition,
        // not the AWS SDK, which takes minutes to build.
        let tree = cargo_stdout(&[
            "tree",
            "-p",
            "xtask",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--offline",
        ]);
        let aws: Vec<&str> = tree.lines().filter(|l| l.starts_with("aws-")).collect();
        assert!(aws.is_empty(), "xtask pulls in {aws:?}");
        assert!(tree.lines().any(|l| l.starts_with("lift-cli ")), "{tree}");
    }
}
