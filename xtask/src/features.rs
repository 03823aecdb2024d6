//! The facade must compile with each feature alone, with none and with all.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::tidy::FEATURE_CRATES;

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let mut sets: Vec<Vec<String>> = vec![Vec::new()];
    for krate in FEATURE_CRATES {
        sets.push(vec![krate.trim_start_matches("lift-").to_owned()]);
    }
    for features in &sets {
        let mut args = vec![
            "check",
            "--quiet",
            "-p",
            "lift",
            "--lib",
            "--no-default-features",
        ];
        let joined = features.join(",");
        if !features.is_empty() {
            args.extend(["--features", &joined]);
        }
        let label = if features.is_empty() {
            "no features"
        } else {
            &joined
        };
        println!("features: checking the facade with {label}");
        let status = Command::new(crate::workspace::cargo())
            .args(&args)
            .current_dir(root)
            .status()
            .context("cannot run cargo check")?;
        if !status.success() {
            bail!("the facade does not build with {label}");
        }
    }
    let status = Command::new(crate::workspace::cargo())
        .args([
            "check",
            "--quiet",
            "-p",
            "lift",
            "--all-targets",
            "--all-features",
        ])
        .current_dir(root)
        .status()
        .context("cannot run cargo check")?;
    if !status.success() {
        bail!("the facade does not build with all features");
    }
    println!("features: the facade builds with each feature alone, none and all");
    Ok(())
}
