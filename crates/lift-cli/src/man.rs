//! `lift man`, and the man pages `cargo xtask codegen` writes into docs/man:
//! roff rendered by clap_mangen from the same definition as the parser
//! (`cli.rs` defines the subcommand).

use clap::Command;

use crate::cli::command;
use crate::output::{EXIT_FAILURE, EXIT_OK, stderr_line, write_bytes};

/// Prints the man page of `lift` and returns the exit code.
pub(crate) fn run() -> u8 {
    match render(without_env_values(command())) {
        Ok(page) => {
            write_bytes(&mut std::io::stdout().lock(), &page);
            EXIT_OK
        }
        Err(err) => {
            stderr_line(&format!("error: cannot render the man page: {err}"));
            EXIT_FAILURE
        }
    }
}

/// Every man page: `lift.1`, then one per subcommand (`lift-deploy.1`,
/// `lift-deploy-up.1`, ...), as `(file name, roff)`, depth first.
///
/// The pages do not depend on the environment that renders them: values of
/// the environment variables behind options are left out.
pub fn man_pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut root = without_env_values(command());
    root.build();
    let mut pages = Vec::new();
    collect(&root, "lift", &mut pages)?;
    Ok(pages)
}

fn collect(cmd: &Command, name: &str, pages: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
    let page = render(
        cmd.clone()
            .name(name.to_owned())
            .display_name(name.to_owned()),
    )?;
    pages.push((format!("{name}.1"), page));
    for sub in cmd.get_subcommands().filter(|sub| sub.get_name() != "help") {
        collect(sub, &format!("{name}-{}", sub.get_name()), pages)?;
    }
    Ok(())
}

fn render(cmd: Command) -> std::io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buffer)?;
    Ok(buffer)
}

/// Hides the values of environment variables behind options, in every command.
fn without_env_values(cmd: Command) -> Command {
    let cmd = cmd.mut_args(|arg| arg.hide_env_values(true));
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    names.into_iter().fold(cmd, |cmd, name| {
        cmd.mut_subcommand(name, without_env_values)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_a_page_per_command() {
        let pages = man_pages().unwrap_or_default();
        let names: Vec<&str> = pages.iter().map(|(name, _)| name.as_str()).collect();
        for expected in [
            "lift.1",
            "lift-deploy.1",
            "lift-secrets.1",
            "lift-demo.1",
            "lift-man.1",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        let root = String::from_utf8_lossy(&pages[0].1).into_owned();
        assert!(root.contains(".TH lift"), "{root}");
    }

    #[test]
    fn pages_do_not_show_environment_values() {
        // LIFT_AUDIT_LOG is behind --audit-log: its value must not reach a page.
        let pages = man_pages().unwrap_or_default();
        assert!(!pages.is_empty());
        for (name, page) in pages {
            let page = String::from_utf8_lossy(&page).into_owned();
            assert!(!page.contains("LIFT_AUDIT_LOG="), "{name}");
        }
    }
}
