//! Environments end to end through the real binary: `lift.toml` found from a
//! subdirectory, overrides by variable and by flag, the production policy's
//! refusals, and audit records that carry the environment.
#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const CONFIG: &str = r#"# a project config for the tests
default_environment = "dev"

[environments.dev]
secrets = { path = "state/dev/secrets", key_file = "keys/dev.key" }
audit = { log = "state/dev/audit.jsonl" }
deploy = { project_dir = "infra", stack = "dev" }

[environments.prod]
class = "production"
secrets = { path = "state/prod/secrets", key_file = "keys/prod.key" }
deploy = { project_dir = "infra", stack = "prod" }

[environments.prod-unaudited]
class = "production"
secrets = { path = "state/prod-unaudited/secrets", key_file = "keys/prod.key" }
policy = { require_audit_log = false }
"#;

/// A project directory with `lift.toml`, key files and a subdirectory.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lift.toml"), CONFIG).unwrap();
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        std::fs::create_dir_all(dir.path().join("infra/src/deep")).unwrap();
        for (name, byte) in [("dev.key", 1u8), ("prod.key", 2u8)] {
            let key = dir.path().join("keys").join(name);
            std::fs::write(&key, [byte; 32]).unwrap();
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Project { dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Runs `lift ARGS` in `cwd` with a clean environment of lift variables.
    fn run_in(&self, cwd: &Path, args: &[&str], vars: &[(&str, &str)], stdin: &str) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lift"));
        command.current_dir(cwd).args(args);
        for name in [
            "LIFT_ENV",
            "LIFT_CONFIG",
            "LIFT_AUDIT_LOG",
            "LIFT_AUDIT_KEY_FILE",
            "LIFT_AUDIT_CHECKPOINT",
            "LIFT_AUDIT_SIGNING_KEY_FILE",
            "LIFT_SECRETS_STORE",
            "LIFT_SECRETS_KEY_FILE",
            "LIFT_STACK",
            "PULUMI_BACKEND_URL",
        ] {
            command.env_remove(name);
        }
        for (name, value) in vars {
            command.env(name, value);
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

    fn run(&self, args: &[&str]) -> Output {
        self.run_in(self.dir.path(), args, &[], "")
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "not JSON ({err}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            stderr(output)
        )
    })
}

/// The `env show --json` setting `key`: `(value, source)`.
fn setting(document: &Value, key: &str) -> (String, String) {
    let found = document["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no setting {key} in {document:#}"));
    (
        found["value"].as_str().unwrap().to_owned(),
        found["source"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn the_config_is_found_from_a_subdirectory_and_its_store_and_audit_log_are_used() {
    let project = Project::new();
    let deep = project.path("infra/src/deep");
    // The default environment (dev) gives the store, its key and the audit log.
    let put = project.run_in(
        &deep,
        &["secrets", "put", "db-password"],
        &[],
        "s3cr3t-value",
    );
    assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));
    assert!(
        project.path("state/dev/secrets").is_dir(),
        "the store is where lift.toml says"
    );
    let get = project.run_in(&deep, &["secrets", "get", "db-password"], &[], "");
    assert_eq!(get.status.code(), Some(0), "{}", stderr(&get));
    assert_eq!(
        String::from_utf8_lossy(&get.stdout).trim_end(),
        "s3cr3t-value"
    );

    // Every audit record carries the environment it ran in, and no value.
    let log = std::fs::read_to_string(project.path("state/dev/audit.jsonl")).unwrap();
    assert!(!log.contains("s3cr3t-value"));
    let mut records = 0;
    for line in log.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let event = if record.get("event").is_some() {
            &record["event"]
        } else {
            &record
        };
        if event.get("origin").is_none() {
            continue;
        }
        records += 1;
        assert_eq!(event["origin"]["environment"], "dev", "{line}");
    }
    assert!(records >= 1, "no audit record in {log}");

    // `env ls` from the subdirectory names the file and marks the selection.
    let ls = project.run_in(&deep, &["--json", "env", "ls"], &[], "");
    assert_eq!(ls.status.code(), Some(0), "{}", stderr(&ls));
    let ls = json(&ls);
    assert_eq!(ls["selected"], "dev");
    let names: Vec<&str> = ls["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dev", "prod", "prod-unaudited"]);
}

#[test]
fn variables_and_flags_override_the_file_and_env_show_says_which() {
    let project = Project::new();
    let show = project.run(&["--json", "--env", "dev", "env", "show"]);
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    let document = json(&show);
    let (log, source) = setting(&document, "audit.log");
    assert_eq!(source, "file");
    assert!(log.ends_with("state/dev/audit.jsonl"), "{log}");
    assert!(
        Path::new(&log).is_absolute(),
        "paths are resolved against lift.toml's directory"
    );

    let variable = project.path("from-variable.jsonl");
    let show = project.run_in(
        project.dir.path(),
        &["--json", "env", "show", "dev"],
        &[("LIFT_AUDIT_LOG", variable.to_str().unwrap())],
        "",
    );
    assert_eq!(
        setting(&json(&show), "audit.log"),
        (variable.display().to_string(), "variable".into())
    );

    let flag = project.path("from-flag.jsonl");
    let show = project.run_in(
        project.dir.path(),
        &[
            "--json",
            "--audit-log",
            flag.to_str().unwrap(),
            "env",
            "show",
            "dev",
        ],
        &[("LIFT_AUDIT_LOG", variable.to_str().unwrap())],
        "",
    );
    assert_eq!(
        setting(&json(&show), "audit.log"),
        (flag.display().to_string(), "flag".into())
    );

    // A flag overrides the file for a real command too: the put lands in the flag's store.
    let other = project.path("other-store");
    let put = project.run_in(
        project.dir.path(),
        &["secrets", "--store", other.to_str().unwrap(), "put", "x"],
        &[],
        "value",
    );
    assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));
    assert!(other.is_dir());
    assert!(!project.path("state/dev/secrets").exists());

    // The human view has a header and the policy.
    let human = project.run(&["env", "show", "prod"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("SETTING"), "{text}");
    assert!(text.contains("require_audit_log"), "{text}");
    assert!(
        text.contains("lift.toml:10"),
        "the class line is named: {text}"
    );
}

#[test]
fn production_refuses_a_state_change_without_an_audit_log() {
    let project = Project::new();
    let put = project.run_in(
        project.dir.path(),
        &["--env", "prod", "secrets", "put", "db"],
        &[],
        "v",
    );
    assert_eq!(put.status.code(), Some(2), "{}", stderr(&put));
    let message = stderr(&put);
    assert!(message.contains("require_audit_log"), "{message}");
    assert!(
        message.contains("lift.toml:10"),
        "names the line that set it: {message}"
    );
    assert!(
        message.contains("--audit-log"),
        "says what to do: {message}"
    );
    assert!(
        !project.path("state/prod").exists(),
        "a refused command leaves nothing behind"
    );

    // Reading is not a state change; an explicit rule turns the requirement off.
    let list = project.run(&["--env", "prod", "secrets", "list"]);
    assert!(
        !stderr(&list).contains("require_audit_log"),
        "{}",
        stderr(&list)
    );
    let put = project.run_in(
        project.dir.path(),
        &["--env", "prod-unaudited", "secrets", "put", "db"],
        &[],
        "v",
    );
    assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));
}

#[test]
fn production_refuses_a_plaintext_store_and_unanchored_audit_records() {
    let project = Project::new();
    let log = project.path("audit.jsonl");
    let log = log.to_str().unwrap();
    let plain = project.run(&[
        "--env",
        "prod",
        "--audit-log",
        log,
        "secrets",
        "--plaintext",
        "list",
    ]);
    assert_eq!(plain.status.code(), Some(2), "{}", stderr(&plain));
    assert!(
        stderr(&plain).contains("refuse_plaintext_store"),
        "{}",
        stderr(&plain)
    );
    assert!(
        stderr(&plain).contains("lift.toml:10"),
        "{}",
        stderr(&plain)
    );

    let verify = project.run(&[
        "--env",
        "prod",
        "audit",
        "verify",
        log,
        "--allow-unanchored",
    ]);
    assert_eq!(verify.status.code(), Some(2), "{}", stderr(&verify));
    assert!(
        stderr(&verify).contains("refuse_allow_unanchored"),
        "{}",
        stderr(&verify)
    );

    // The same commands are allowed in development.
    let plain = project.run_in(
        project.dir.path(),
        &[
            "--env",
            "dev",
            "secrets",
            "--plaintext",
            "--store",
            "p",
            "put",
            "db",
        ],
        &[],
        "v",
    );
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
}

#[test]
fn selection_mistakes_are_bad_input_with_a_way_out() {
    let project = Project::new();
    let unknown = project.run(&["--env", "staging", "env", "show"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("dev, prod, prod-unaudited"),
        "{}",
        stderr(&unknown)
    );

    let elsewhere = tempfile::tempdir().unwrap();
    let missing = project.run_in(
        elsewhere.path(),
        &["--env", "prod", "secrets", "list"],
        &[],
        "",
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("--config"),
        "{}",
        stderr(&missing)
    );

    let explicit = project.run_in(
        elsewhere.path(),
        &[
            "--config",
            project.path("lift.toml").to_str().unwrap(),
            "--json",
            "env",
            "show",
            "prod",
        ],
        &[],
        "",
    );
    assert_eq!(explicit.status.code(), Some(0), "{}", stderr(&explicit));
    assert_eq!(json(&explicit)["class"], "production");

    let typo = elsewhere.path().join("lift.toml");
    std::fs::write(&typo, "[environments.dev]\nsecrets = { paht = \"x\" }\n").unwrap();
    let bad = project.run_in(elsewhere.path(), &["env", "ls"], &[], "");
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("lift.toml:2"), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("paht"), "{}", stderr(&bad));

    // Without a config file and without --env, nothing changes for existing users.
    let plain = project.run_in(
        tempfile::tempdir().unwrap().path(),
        &["health", "--json"],
        &[],
        "",
    );
    assert_ne!(plain.status.code(), Some(2), "{}", stderr(&plain));
}

#[test]
fn production_refuses_fault_injection_and_development_rehearses_it() {
    let project = Project::new();
    let log = project.path("audit.jsonl");
    let log = log.to_str().unwrap();
    // Development: the injected failure fails the rotation as a real one would,
    // and history marks it injected.
    let put = project.run_in(
        project.dir.path(),
        &["--env", "dev", "secrets", "put", "db"],
        &[],
        "v1",
    );
    assert_eq!(put.status.code(), Some(0), "{}", stderr(&put));
    let rotate = project.run(&[
        "--env",
        "dev",
        "secrets",
        "rotate",
        "db",
        "--inject-fault",
        "testSecret",
    ]);
    assert_eq!(rotate.status.code(), Some(1), "{}", stderr(&rotate));
    assert!(
        stderr(&rotate).contains("--inject-fault"),
        "{}",
        stderr(&rotate)
    );
    let history = project.run(&["--env", "dev", "--json", "secrets", "history", "db"]);
    assert_eq!(history.status.code(), Some(0), "{}", stderr(&history));
    let history = json(&history);
    assert_eq!(history[0]["injected"], true, "{history}");
    assert_eq!(history[0]["failed_step"], "test_secret", "{history}");

    // Production: refused before anything is opened, naming the rule and its line.
    for op in ["rotate", "resume"] {
        let refused = project.run(&[
            "--env",
            "prod",
            "--audit-log",
            log,
            "secrets",
            op,
            "db",
            "--inject-fault",
            "testSecret",
        ]);
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        let message = stderr(&refused);
        assert!(message.contains("refuse_fault_injection"), "{message}");
        assert!(message.contains("lift.toml:"), "{message}");
        assert!(!project.path("state/prod").exists(), "{message}");
        assert!(!project.path("audit.jsonl").exists(), "{message}");
    }
}
