//! `cargo xtask pulumi`: builds the pinned Pulumi CLI and its YAML language
//! host from the Go modules in `tools/`, once per version, into a cache.
//!
//! The versions are the ones `tools/pulumi/go.mod` and
//! `tools/pulumi-yaml/go.mod` require. The binaries go to
//! `$LIFT_TOOLS_DIR` (default `$XDG_CACHE_HOME/lift/tools`, then
//! `~/.cache/lift/tools`), in a folder named after both versions, so a
//! version bump builds afresh and an unchanged one costs nothing:
//!
//! - `bin/`: `pulumi` and `lift-automation`;
//! - `language/`: `pulumi-language-yaml`. It is kept apart because pulumi
//!   prefers a language host beside its own binary to one on `PATH`; apart,
//!   `PATH` decides (and a test can put a wrapped host first).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

/// The Go package path of the CLI and the variable `-ldflags` sets to its version.
const CLI_PACKAGE: &str = "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi";
const CLI_MODULE: &str = "github.com/pulumi/pulumi/pkg/v3";
const VERSION_VARIABLE: &str = "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version";
const YAML_PACKAGE: &str = "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml";
const YAML_MODULE: &str = "github.com/pulumi/pulumi-yaml";
/// The Go Automation API contender of the `up` benchmark and the recorder
/// of real event streams with a component resource.
const AUTOMATION_PACKAGE: &str = "./cmd/lift-automation";

/// What was built, and where.
pub(crate) struct Tools {
    pub(crate) bin_dir: PathBuf,
    pub(crate) language_dir: PathBuf,
    pub(crate) cli_version: String,
    pub(crate) yaml_version: String,
}

pub(crate) fn run(root: &Path, bin_dir_only: bool) -> anyhow::Result<()> {
    let tools = ensure(root, !bin_dir_only)?;
    if bin_dir_only {
        println!(
            "{}:{}",
            tools.bin_dir.display(),
            tools.language_dir.display()
        );
    } else {
        println!(
            "pulumi {} is in {}, pulumi-language-yaml {} in {}",
            tools.cli_version,
            tools.bin_dir.display(),
            tools.yaml_version,
            tools.language_dir.display()
        );
        println!(
            "use them with: export PATH=\"{}:{}:$PATH\" LIFT_PULUMI=\"{}\"",
            tools.bin_dir.display(),
            tools.language_dir.display(),
            tools.bin_dir.join("pulumi").display()
        );
    }
    Ok(())
}

/// Builds what is missing and returns where the tools are.
pub(crate) fn ensure(root: &Path, verbose: bool) -> anyhow::Result<Tools> {
    let cli_version = required_version(&root.join("tools/pulumi/go.mod"), CLI_MODULE)?;
    let yaml_version = required_version(&root.join("tools/pulumi-yaml/go.mod"), YAML_MODULE)?;
    let home = cache_dir()?.join(format!("pulumi-{cli_version}+yaml-{yaml_version}"));
    let bin_dir = home.join("bin");
    let language_dir = home.join("language");
    let yaml_host = language_dir.join("pulumi-language-yaml");
    let pulumi = bin_dir.join("pulumi");
    for dir in [&bin_dir, &language_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if pulumi.is_file() && version_of(&pulumi).as_deref() == Some(cli_version.as_str()) {
        if !yaml_host.is_file() {
            build(
                root,
                "tools/pulumi-yaml",
                YAML_PACKAGE,
                &[],
                &yaml_host,
                verbose,
            )?;
        }
        if !bin_dir.join("lift-automation").is_file() {
            let helper = bin_dir.join("lift-automation");
            build(
                root,
                "tools/pulumi",
                AUTOMATION_PACKAGE,
                &[],
                &helper,
                verbose,
            )?;
        }
        return Ok(Tools {
            bin_dir,
            language_dir,
            cli_version,
            yaml_version,
        });
    }
    let ldflags = format!("-X {VERSION_VARIABLE}={cli_version}");
    // Build the CLI last under a temporary name: its presence marks a complete set.
    build(
        root,
        "tools/pulumi-yaml",
        YAML_PACKAGE,
        &[],
        &yaml_host,
        verbose,
    )?;
    build(
        root,
        "tools/pulumi",
        AUTOMATION_PACKAGE,
        &[],
        &bin_dir.join("lift-automation"),
        verbose,
    )?;
    let partial = bin_dir.join("pulumi.partial");
    build(
        root,
        "tools/pulumi",
        CLI_PACKAGE,
        &["-ldflags", &ldflags],
        &partial,
        verbose,
    )?;
    std::fs::rename(&partial, &pulumi)
        .with_context(|| format!("cannot move the CLI to {}", pulumi.display()))?;
    match version_of(&pulumi) {
        Some(found) if found == cli_version => {}
        other => bail!(
            "the pulumi just built reports version {other:?}, not {cli_version}; check -ldflags"
        ),
    }
    Ok(Tools {
        bin_dir,
        language_dir,
        cli_version,
        yaml_version,
    })
}

fn build(
    root: &Path,
    module_dir: &str,
    package: &str,
    extra: &[&str],
    output: &Path,
    verbose: bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    if verbose {
        eprintln!("xtask: building {package} (from {module_dir})...");
    }
    let status = Command::new("go")
        .arg("build")
        .arg("-trimpath")
        .args(extra)
        .arg("-o")
        .arg(output)
        .arg(package)
        .current_dir(root.join(module_dir))
        .status()
        .context("cannot run `go`: install Go 1.26 or newer (https://go.dev/dl/)")?;
    if !status.success() {
        bail!("`go build {package}` in {module_dir} failed");
    }
    eprintln!(
        "xtask: built {} in {:.0?}",
        output.display(),
        started.elapsed()
    );
    Ok(())
}

/// `vX.Y.Z` from a `require MODULE vX.Y.Z` line of a go.mod.
fn required_version(go_mod: &Path, module: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(go_mod)
        .with_context(|| format!("cannot read {}", go_mod.display()))?;
    parse_required_version(&text, module)
        .with_context(|| format!("{} does not require {module}", go_mod.display()))
}

fn parse_required_version(go_mod: &str, module: &str) -> Option<String> {
    go_mod.lines().find_map(|line| {
        let line = line.trim().trim_start_matches("require").trim();
        let mut words = line.split_whitespace();
        (words.next() == Some(module))
            .then(|| words.next().map(str::to_owned))
            .flatten()
    })
}

fn version_of(pulumi: &Path) -> Option<String> {
    let output = Command::new(pulumi)
        .arg("version")
        .env("PULUMI_SKIP_UPDATE_CHECK", "true")
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("LIFT_TOOLS_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("lift/tools"));
    }
    let home = std::env::var_os("HOME").context("set LIFT_TOOLS_DIR or HOME")?;
    Ok(PathBuf::from(home).join(".cache/lift/tools"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_require_lines() {
        let go_mod = "module x\n\ngo 1.26\n\nrequire github.com/pulumi/pulumi/pkg/v3 v3.274.1\n\nrequire (\n\tgithub.com/pulumi/pulumi-yaml v1.25.0\n\tgithub.com/pulumi/pulumi/sdk/v3 v3.274.1 // indirect\n)\n";
        assert_eq!(
            parse_required_version(go_mod, CLI_MODULE).as_deref(),
            Some("v3.274.1")
        );
        assert_eq!(
            parse_required_version(go_mod, YAML_MODULE).as_deref(),
            Some("v1.25.0")
        );
        assert_eq!(parse_required_version(go_mod, "example.com/none"), None);
    }

    #[test]
    fn the_pinned_versions_are_readable() {
        let root = crate::workspace::project_root();
        assert!(required_version(&root.join("tools/pulumi/go.mod"), CLI_MODULE).is_ok());
        assert!(required_version(&root.join("tools/pulumi-yaml/go.mod"), YAML_MODULE).is_ok());
    }
}
