//! Environments and stacks, through the `lift` binary and the real Pulumi CLI:
//! `lift.toml` gives the project, stack and backend; `init` tags the stack with
//! its environment; another environment's stack is refused; a production
//! environment's destroy needs the stack's name typed out.
//!
//! Runs when the real CLI is available (`cargo xtask pulumi`; required under
//! `LIFT_TEST_REAL_PULUMI=1`) and the `lift` binary is built beside the fake
//! pulumi (as `cargo test --workspace` does).

#![allow(clippy::unwrap_used, reason = "tests: a failure should panic")]
#![allow(clippy::print_stderr, reason = "a skipped test says why")]

mod real_common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use lift_tests::scenario::PASSPHRASE;
use real_common::{Project, language_dir, path_with, real_pulumi};
use serde_json::Value;

/// The `lift` binary beside this test's fake pulumi, or `None` when not built.
fn lift_binary() -> Option<PathBuf> {
    let lift = PathBuf::from(env!("CARGO_BIN_EXE_pulumi")).with_file_name("lift");
    if lift.is_file() {
        return Some(lift);
    }
    assert!(
        std::env::var_os("LIFT_TEST_REQUIRE_LIFT_BIN").is_none(),
        "{} is missing; build it with `cargo build -p lift-cli`",
        lift.display()
    );
    eprintln!(
        "skipping: {} is not built (run `cargo build -p lift-cli`)",
        lift.display()
    );
    None
}

struct Env {
    lift: PathBuf,
    pulumi: PathBuf,
    project: Project,
}

impl Env {
    fn root(&self) -> &Path {
        self.project.dir.path()
    }

    fn lift(&self, args: &[&str], stdin: &str) -> Output {
        let mut command = Command::new(&self.lift);
        command
            .current_dir(self.root())
            .args(args)
            .env("LIFT_PULUMI", &self.pulumi)
            .env("PATH", path_with(&language_dir(&self.pulumi)))
            .env("PULUMI_HOME", self.root().join("home"))
            .env("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
            .env("PULUMI_SKIP_UPDATE_CHECK", "true");
        for name in [
            "LIFT_ENV",
            "LIFT_CONFIG",
            "LIFT_STACK",
            "LIFT_AUDIT_LOG",
            "LIFT_AUDIT_KEY_FILE",
            "PULUMI_BACKEND_URL",
        ] {
            command.env_remove(name);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn setup() -> Option<Env> {
    let pulumi = real_pulumi()?;
    let lift = lift_binary()?;
    let project = Project::new(&pulumi, "outputs");
    let backend = project.backend();
    std::fs::write(
        project.dir.path().join("lift.toml"),
        format!(
            r#"[environments.dev]
deploy = {{ project_dir = "project", stack = "dev", backend_url = "{backend}" }}

[environments.prod]
class = "production"
audit = {{ log = "audit/prod.jsonl" }}
deploy = {{ project_dir = "project", stack = "prod", backend_url = "{backend}" }}
"#
        ),
    )
    .unwrap();
    Some(Env {
        lift,
        pulumi,
        project,
    })
}

#[test]
fn stacks_are_bound_to_their_environment_and_production_destroy_needs_the_name() {
    let Some(env) = setup() else { return };

    // init tags the stack with its environment; the file gives cwd, stack and backend.
    let init = env.lift(&["--env", "dev", "deploy", "init"], "");
    assert_eq!(init.status.code(), Some(0), "{}", stderr(&init));
    let tags = env.lift(&["--env", "dev", "--json", "deploy", "tag", "ls"], "");
    assert_eq!(tags.status.code(), Some(0), "{}", stderr(&tags));
    let tags: Value = serde_json::from_slice(&tags.stdout).unwrap();
    assert!(tags.to_string().contains("\"lift:environment\""), "{tags}");
    assert!(tags.to_string().contains("\"dev\""), "{tags}");

    // prod refuses dev's stack, before anything changes.
    let up = env.lift(
        &["--env", "prod", "deploy", "--stack", "dev", "up", "--yes"],
        "",
    );
    assert_eq!(up.status.code(), Some(2), "{}", stderr(&up));
    assert!(
        stderr(&up).contains("belongs to environment \"dev\""),
        "{}",
        stderr(&up)
    );
    let outputs = env.lift(&["--env", "dev", "--json", "deploy", "outputs"], "");
    assert!(
        !String::from_utf8_lossy(&outputs.stdout).contains("greeting"),
        "the refused up ran nothing: {}",
        String::from_utf8_lossy(&outputs.stdout)
    );

    // prod's own stack works, and its audit records carry the environment.
    let init = env.lift(&["--env", "prod", "deploy", "init"], "");
    assert_eq!(init.status.code(), Some(0), "{}", stderr(&init));
    let set = env.lift(
        &[
            "--env",
            "prod",
            "deploy",
            "config",
            "set",
            "lift-real:token",
            "--secret",
        ],
        "prod-token",
    );
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    let up = env.lift(&["--env", "prod", "deploy", "up", "--yes"], "");
    assert_eq!(up.status.code(), Some(0), "{}", stderr(&up));
    let log = std::fs::read_to_string(env.root().join("audit/prod.jsonl")).unwrap();
    assert!(log.contains("\"environment\":\"prod\""), "{log}");
    assert!(!log.contains("prod-token"));

    // destroy: --yes alone, or another stack's name, is refused, naming the policy line.
    let destroy = env.lift(&["--env", "prod", "deploy", "destroy", "--yes"], "");
    assert_eq!(destroy.status.code(), Some(2), "{}", stderr(&destroy));
    assert!(
        stderr(&destroy).contains("confirm_destroy"),
        "{}",
        stderr(&destroy)
    );
    assert!(
        stderr(&destroy).contains("lift.toml:5"),
        "{}",
        stderr(&destroy)
    );
    assert!(
        stderr(&destroy).contains("--confirm-stack prod"),
        "{}",
        stderr(&destroy)
    );
    let destroy = env.lift(
        &[
            "--env",
            "prod",
            "deploy",
            "destroy",
            "--yes",
            "--confirm-stack",
            "dev",
        ],
        "",
    );
    assert_eq!(destroy.status.code(), Some(2), "{}", stderr(&destroy));
    let outputs = env.lift(&["--env", "prod", "--json", "deploy", "outputs"], "");
    assert!(
        String::from_utf8_lossy(&outputs.stdout).contains("greeting"),
        "nothing was destroyed: {}",
        stderr(&outputs)
    );
    let destroy = env.lift(
        &[
            "--env",
            "prod",
            "deploy",
            "destroy",
            "--yes",
            "--confirm-stack",
            "prod",
        ],
        "",
    );
    assert_eq!(destroy.status.code(), Some(0), "{}", stderr(&destroy));

    // dev keeps pulumi's rule: --yes is enough.
    let destroy = env.lift(&["--env", "dev", "deploy", "destroy", "--yes"], "");
    assert_eq!(destroy.status.code(), Some(0), "{}", stderr(&destroy));
}
