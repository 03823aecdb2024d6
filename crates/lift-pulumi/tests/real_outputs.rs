//! The outputs `up` and `refresh` return are exactly what `pulumi stack
//! output` says, whether lift took them from the engine's event log (plain
//! outputs) or asked the CLI (a secret anywhere), against the real CLI.
//!
//! Opt-in: `LIFT_TEST_REAL_PULUMI=1 LIFT_REAL_PULUMI=/path/to/pulumi`, the
//! pinned CLI `cargo xtask pulumi` builds (its YAML language host in
//! `../language`). Without them the test says why it skips.

#![allow(
    clippy::print_stderr,
    clippy::unwrap_used,
    reason = "a skip says why; a failure should panic"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lift_core::{OutputValue, SecretValue};
use lift_pulumi::{ConfigOptions, ConfigValue, OpOptions, Stack, Workspace};

const PASSPHRASE: &str = "real-outputs-passphrase";

const PLAIN: &str = r#"name: lift-outputs
runtime: yaml
resources:
  extra:
    type: pulumi:providers:pulumi
outputs:
  greeting: hello <world> & "more"
  count: 3
  ratio: 1.5
  enabled: false
  empty: ""
  nested:
    list:
      - 1
      - two
      - three: 3
    map:
      a: b
      deeper:
        c: [true, 2.25]
"#;

const SECRET: &str = r#"name: lift-outputs
runtime: yaml
config:
  lift-outputs:token:
    type: string
    secret: true
resources:
  extra:
    type: pulumi:providers:pulumi
outputs:
  greeting: hello
  token: ${lift-outputs:token}
  wrapped:
    fn::secret: canary-output-secret
"#;

const NESTED_SECRET: &str = r#"name: lift-outputs
runtime: yaml
resources:
  extra:
    type: pulumi:providers:pulumi
outputs:
  greeting: hello
  mixed:
    open: visible
    list:
      - 1
      - fn::secret: nested-canary
"#;

const ASSET: &str = r#"name: lift-outputs
runtime: yaml
resources:
  extra:
    type: pulumi:providers:pulumi
outputs:
  greeting: hello
  asset:
    fn::stringAsset: asset-text
"#;

fn real_pulumi() -> Option<PathBuf> {
    if std::env::var("LIFT_TEST_REAL_PULUMI").as_deref() != Ok("1") {
        eprintln!(
            "skipping: set LIFT_TEST_REAL_PULUMI=1 and LIFT_REAL_PULUMI to the pulumi `cargo xtask pulumi` built"
        );
        return None;
    }
    let path = std::env::var_os("LIFT_REAL_PULUMI")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    match path {
        Some(path) if path.is_file() => Some(path),
        _ => panic!(
            "LIFT_TEST_REAL_PULUMI=1 needs LIFT_REAL_PULUMI set to the real pulumi binary (`cargo xtask pulumi` prints it)"
        ),
    }
}

/// A pulumi that records each command line in `log`, then runs the real one.
fn recording_wrapper(dir: &Path, real: &Path, log: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("pulumi");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

struct Project {
    _dir: tempfile::TempDir,
    project: PathBuf,
    log: PathBuf,
    stack: Stack,
}

impl Project {
    async fn new(real: &Path) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        let state = dir.path().join("state");
        let bin = dir.path().join("bin");
        for d in [&project, &state, &bin] {
            std::fs::create_dir_all(d).unwrap();
        }
        let log = dir.path().join("argv.log");
        let wrapper = recording_wrapper(&bin, real, &log);
        let language = real
            .parent()
            .and_then(Path::parent)
            .map(|root| root.join("language"))
            .unwrap();
        let mut path = vec![language, real.parent().unwrap().to_path_buf()];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        std::fs::write(project.join("Pulumi.yaml"), PLAIN).unwrap();
        let workspace = Workspace::builder(&project)
            .pulumi(&wrapper)
            .backend_url(format!("file://{}", state.display()))
            .pulumi_home(dir.path().join("home"))
            .passphrase(SecretValue::from(PASSPHRASE))
            .env("PATH", std::env::join_paths(path).unwrap())
            .build()
            .await
            .unwrap();
        let stack = workspace
            .create_stack("dev".parse().unwrap())
            .await
            .unwrap();
        stack
            .config_set(
                "lift-outputs:token",
                &ConfigValue::Secret(SecretValue::from("canary-config-secret")),
                ConfigOptions::default(),
            )
            .await
            .unwrap();
        Project {
            _dir: dir,
            project,
            log,
            stack,
        }
    }

    fn program(&self, yaml: &str) {
        std::fs::write(self.project.join("Pulumi.yaml"), yaml).unwrap();
    }

    /// How many `stack output` commands ran since the last call.
    fn stack_output_runs(&self) -> usize {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        std::fs::write(&self.log, "").unwrap();
        text.lines()
            .filter(|l| l.starts_with("stack output"))
            .count()
    }
}

fn secret_text(outputs: &BTreeMap<String, OutputValue>, name: &str) -> String {
    match &outputs[name] {
        OutputValue::Secret(secret) => String::from_utf8(secret.expose().to_vec()).unwrap(),
        other => panic!("{name} should be secret, is {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_of_up_and_refresh_are_those_of_stack_output() {
    let Some(real) = real_pulumi() else { return };
    let project = Project::new(&real).await;
    let stack = &project.stack;

    // Plain outputs: taken from the event log, no `stack output` runs, and
    // they equal what `stack output` says (created, then unchanged, then refreshed).
    for round in ["create", "no change", "refresh"] {
        project.stack_output_runs();
        let result = if round == "refresh" {
            stack.refresh(OpOptions::default()).await.unwrap()
        } else {
            stack.up(OpOptions::default()).await.unwrap()
        };
        assert!(result.warnings.is_empty(), "{:?}", result.warnings);
        assert_eq!(project.stack_output_runs(), 0, "{round}: read from events");
        let cli = stack.outputs().await.unwrap();
        assert_eq!(result.outputs, cli, "{round}");
        assert_eq!(cli.len(), 6, "{cli:?}");
        assert_eq!(
            cli["nested"],
            OutputValue::Plain(serde_json::json!({
                "list": [1, "two", {"three": 3}],
                "map": {"a": "b", "deeper": {"c": [true, 2.25]}}
            }))
        );
        assert_eq!(
            cli["greeting"],
            OutputValue::Plain("hello <world> & \"more\"".into())
        );
    }

    // Secret outputs: the event log blinds them, so lift asks the CLI.
    project.program(SECRET);
    project.stack_output_runs();
    let result = stack.up(OpOptions::default()).await.unwrap();
    assert_eq!(project.stack_output_runs(), 2, "masked and revealed");
    assert_eq!(
        secret_text(&result.outputs, "token"),
        "canary-config-secret"
    );
    assert_eq!(
        secret_text(&result.outputs, "wrapped"),
        "canary-output-secret"
    );
    assert_eq!(
        result.outputs["greeting"],
        OutputValue::Plain("hello".into())
    );
    assert_eq!(result.outputs, stack.outputs().await.unwrap());
    let refreshed = stack.refresh(OpOptions::default()).await.unwrap();
    assert_eq!(refreshed.outputs, result.outputs);

    // A secret nested inside a plain structure makes the whole output secret.
    project.program(NESTED_SECRET);
    project.stack_output_runs();
    let result = stack.up(OpOptions::default()).await.unwrap();
    assert_eq!(project.stack_output_runs(), 2);
    assert!(result.outputs["mixed"].is_secret());
    assert!(secret_text(&result.outputs, "mixed").contains("nested-canary"));
    assert!(!result.outputs.contains_key("token"));
    assert_eq!(result.outputs, stack.outputs().await.unwrap());

    // An asset is not plain JSON in the event log either: lift asks the CLI.
    project.program(ASSET);
    project.stack_output_runs();
    let result = stack.up(OpOptions::default()).await.unwrap();
    assert_eq!(project.stack_output_runs(), 2);
    assert!(result.outputs.contains_key("asset"), "{result:?}");
    assert_eq!(result.outputs, stack.outputs().await.unwrap());

    // Back to plain outputs: removed outputs are gone from both.
    project.program(PLAIN);
    project.stack_output_runs();
    let result = stack.up(OpOptions::default()).await.unwrap();
    assert_eq!(project.stack_output_runs(), 0);
    assert_eq!(result.outputs, stack.outputs().await.unwrap());
    assert!(!result.outputs.contains_key("mixed"));
    assert!(!result.outputs.contains_key("asset"));

    // A targeted update asks the CLI (the root stack may keep its old outputs).
    project.stack_output_runs();
    let urn = "urn:pulumi:dev::lift-outputs::pulumi:providers:pulumi::extra";
    let result = stack.up(OpOptions::default().target(urn)).await.unwrap();
    assert_eq!(project.stack_output_runs(), 2);
    assert_eq!(result.outputs, stack.outputs().await.unwrap());

    // Without outputs nothing is read.
    project.stack_output_runs();
    let result = stack
        .up(OpOptions::default().read_outputs(false))
        .await
        .unwrap();
    assert!(result.outputs.is_empty());
    assert_eq!(project.stack_output_runs(), 0);
}
