//! Lockstep releases: one version for every crate, packaged in dependency order.
//!
//! `--dry-run` copies the workspace to a temporary directory and does all the
//! work there, so nothing in the checkout changes. Packaging uses
//! `cargo package --no-verify --offline`: cargo resolves the not yet published
//! internal crates through its local overlay of the packages it has just
//! assembled, and the external ones from the local cache, so no registry
//! index needs to be reachable. Verification builds are left to CI, which
//! already builds every crate.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use toml_edit::{DocumentMut, value};

/// Publishable crates in dependency order: `lift-core` first, the CLI last.
pub(crate) const PUBLISH_ORDER: [&str; 7] = [
    "lift-core",
    "lift-pulumi",
    "lift-monitor",
    "lift-secrets",
    "lift-audit",
    "lift",
    "lift-cli",
];

pub(crate) fn run(root: &Path, version: &str, dry_run: bool) -> anyhow::Result<()> {
    validate_version(version)?;
    let changelog =
        std::fs::read_to_string(root.join("CHANGELOG.md")).context("cannot read CHANGELOG.md")?;
    if !changelog_has_section(&changelog, version) {
        bail!(
            "CHANGELOG.md has no section for {version}: add a `## [{version}]` heading describing the release"
        );
    }
    let scratch;
    let workdir: PathBuf = if dry_run {
        scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
        copy_workspace(root, scratch.path())?;
        println!(
            "release: dry run in a copy of the workspace at {}",
            scratch.path().display()
        );
        scratch.path().to_path_buf()
    } else {
        root.to_path_buf()
    };

    let manifest_path = workdir.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path).context("cannot read Cargo.toml")?;
    let updated = set_versions(&manifest, version)?;
    std::fs::write(&manifest_path, updated).context("cannot write Cargo.toml")?;
    println!("release: set every crate and internal requirement to {version}");

    let target = workdir.join("target").join("release-package");
    let mut args: Vec<String> = [
        "package",
        "--no-verify",
        "--allow-dirty",
        "--offline",
        "--target-dir",
    ]
    .map(str::to_owned)
    .into();
    args.push(target.display().to_string());
    for krate in PUBLISH_ORDER {
        args.push("-p".to_owned());
        args.push(krate.to_owned());
    }
    println!("release: cargo {}", args.join(" "));
    let status = Command::new(crate::workspace::cargo())
        .args(&args)
        .current_dir(&workdir)
        .status()
        .context("cannot run cargo package")?;
    if !status.success() {
        bail!("cargo package failed");
    }
    for krate in PUBLISH_ORDER {
        let file = target
            .join("package")
            .join(format!("{krate}-{version}.crate"));
        if !file.is_file() {
            bail!("cargo package did not produce {}", file.display());
        }
        println!("release: packaged {}", file.display());
    }
    if dry_run {
        println!("release: dry run complete; nothing in the checkout changed");
    } else {
        println!(
            "release: now commit, tag v{version}, and run `cargo publish -p <crate>` in the order above"
        );
    }
    Ok(())
}

fn validate_version(version: &str) -> anyhow::Result<()> {
    let parts: Vec<&str> = version.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if !numeric {
        bail!("invalid version {version:?}: use X.Y.Z with numbers, for example 0.2.0");
    }
    Ok(())
}

fn changelog_has_section(changelog: &str, version: &str) -> bool {
    changelog.lines().any(|line| {
        let line = line.trim();
        line.starts_with("## ")
            && line[3..]
                .trim_start_matches('[')
                .split([']', ' '])
                .next()
                .is_some_and(|v| v == version)
    })
}

/// Sets `[workspace.package] version` and the `version` of every internal entry of `[workspace.dependencies]`.
fn set_versions(manifest: &str, version: &str) -> anyhow::Result<String> {
    let mut doc: DocumentMut = manifest.parse().context("Cargo.toml is not valid TOML")?;
    let workspace = doc["workspace"]
        .as_table_mut()
        .context("Cargo.toml has no [workspace]")?;
    workspace["package"]["version"] = value(version);
    let deps = workspace["dependencies"]
        .as_table_like_mut()
        .context("Cargo.toml has no [workspace.dependencies]")?;
    let mut internal = 0;
    for (name, item) in deps.iter_mut() {
        if !PUBLISH_ORDER.contains(&name.get()) {
            continue;
        }
        let table = item
            .as_table_like_mut()
            .context("internal dependencies must be tables")?;
        if !table.contains_key("path") {
            bail!("internal dependency {} has no path", name.get());
        }
        table.insert("version", value(version));
        internal += 1;
    }
    if internal != PUBLISH_ORDER.len() {
        bail!(
            "expected {} internal crates in [workspace.dependencies], found {internal}",
            PUBLISH_ORDER.len()
        );
    }
    Ok(doc.to_string())
}

/// Copies the sources (not `.git` or target directories) so that a dry run can change them freely.
fn copy_workspace(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        let name_text = name.to_string_lossy();
        if name_text == ".git" || name_text.starts_with("target") {
            continue;
        }
        let source = entry.path();
        let destination = to.join(&name);
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&destination)?;
            copy_workspace(&source, &destination)?;
        } else if entry.file_type()?.is_file() {
            std::fs::copy(&source, &destination)
                .with_context(|| format!("cannot copy {}", source.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_move_in_lockstep() {
        let manifest =
            std::fs::read_to_string(crate::workspace::project_root().join("Cargo.toml")).unwrap();
        let updated = set_versions(&manifest, "9.8.7").unwrap();
        let doc: DocumentMut = updated.parse().unwrap();
        assert_eq!(
            doc["workspace"]["package"]["version"].as_str(),
            Some("9.8.7")
        );
        for krate in PUBLISH_ORDER {
            assert_eq!(
                doc["workspace"]["dependencies"][krate]["version"].as_str(),
                Some("9.8.7"),
                "{krate}"
            );
        }
        // Comments and unrelated entries survive.
        assert!(updated.contains("[workspace.lints.clippy]"));
        assert_eq!(updated.lines().count(), manifest.lines().count());
    }

    #[test]
    fn versions_and_changelog_sections_are_checked() {
        assert!(validate_version("0.1.0").is_ok());
        for bad in ["1.0", "v1.0.0", "1.0.0-rc1", "1..0", ""] {
            assert!(validate_version(bad).is_err(), "{bad}");
        }
        let changelog = "# Changelog\n\n## [0.2.0] - 2026-12-01\n\n## 0.1.0\n";
        assert!(changelog_has_section(changelog, "0.2.0"));
        assert!(changelog_has_section(changelog, "0.1.0"));
        assert!(!changelog_has_section(changelog, "0.1.1"));
        assert!(!changelog_has_section(changelog, "0.2"));
    }
}
