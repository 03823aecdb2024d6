//! `lift secrets` through the real binary, in the scenarios of issue 15 that only the
//! command line shows: exit codes and messages, bounded input, an unwritable audit
//! log, and the rotation commands' truthfulness.
#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, [9u8; 32]).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        Cli { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, audit_log: Option<&Path>) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lift"));
        if let Some(log) = audit_log {
            command.arg("--audit-log").arg(log);
        }
        command
            .arg("secrets")
            .arg("--store")
            .arg(self.path("store"))
            .env("LIFT_SECRETS_KEY_FILE", self.path("key"))
            .env_remove("LIFT_AUDIT_LOG")
            .env_remove("LIFT_AUDIT_KEY_FILE")
            .env_remove("LIFT_SECRETS_STORE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn run_with(&self, audit_log: Option<&Path>, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = self.command(audit_log).args(args).spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        // The command may stop reading early (a value too large): a broken pipe is expected.
        let _ = input.write_all(stdin);
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with(Some(&self.path("audit.log")), args, stdin.as_bytes())
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn ok(output: Output) -> Output {
    assert!(output.status.success(), "{}", text(&output));
    output
}

fn current_id(cli: &Cli, name: &str) -> String {
    let out = ok(cli.run(&["--json", "describe", name], ""));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| {
            v["stages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "AWSCURRENT")
        })
        .unwrap()["version_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

// 13. With an audit log that cannot be written, put stores nothing and rotate leaves no stuck rotation.
#[test]
fn an_unwritable_audit_log_changes_nothing() {
    let cli = Cli::new();
    ok(cli.run(&["put", "prod/api"], "first"));
    let before = current_id(&cli, "prod/api");
    let full = Path::new("/dev/full");
    let put = cli.run_with(Some(full), &["put", "prod/api"], b"second");
    assert_eq!(put.status.code(), Some(1), "{}", text(&put));
    let rotate = cli.run_with(Some(full), &["rotate", "prod/api"], b"");
    assert_eq!(rotate.status.code(), Some(1), "{}", text(&rotate));
    assert_eq!(current_id(&cli, "prod/api"), before, "nothing was stored");
    let get = ok(cli.run(&["get", "prod/api"], ""));
    assert_eq!(get.stdout, b"first\n");
    // No stuck rotation: a rotation with a working audit log runs.
    ok(cli.run(&["rotate", "prod/api"], ""));
}

// 14. An endless stdin is refused after the limit, without reading it all.
#[test]
fn put_reads_at_most_the_limit() {
    let cli = Cli::new();
    let mut child = cli.command(None).args(["put", "big"]).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let started = Instant::now();
    let writer = std::thread::spawn(move || {
        // Like `yes | lift secrets put big`: stops only when the reader goes away.
        let chunk = vec![b'y'; 64 * 1024];
        let mut written = 0usize;
        while input.write_all(&chunk).is_ok() {
            written += chunk.len();
            if written > 512 * 1024 * 1024 {
                break;
            }
        }
        written
    });
    let out = child.wait_with_output().unwrap();
    let written = writer.join().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("65536"), "{}", text(&out));
    assert!(
        written < 64 * 1024 * 1024,
        "lift read {written} bytes before refusing"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    let exact = vec![b'x'; 65536];
    ok(cli.run_with(None, &["put", "exact"], &exact));
}

/// Leaves a rotation of `name` interrupted after createSecret, as a crash or an outage
/// does: the library with the same store and key, and a fault at testSecret.
fn interrupt_a_rotation(cli: &Cli, name: &str) {
    use lift::secrets::{
        FaultPlan, FaultTrigger, FileSecretsProvider, Protection, RotateOptions, RotationEngine,
        RotationStep, StoreKey, StoreOnlyRotator,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let key = StoreKey::from_file(&cli.path("key")).unwrap();
        let store = std::sync::Arc::new(
            FileSecretsProvider::open(cli.path("store"), Protection::Encrypted(key)).unwrap(),
        );
        let engine =
            RotationEngine::new(store.clone(), std::sync::Arc::new(store.rotation_store()));
        engine.faults().inject(FaultPlan::new(
            RotationStep::TestSecret,
            FaultTrigger::Times(1),
            "simulated outage",
        ));
        let secret = name.parse().unwrap();
        assert!(
            engine
                .rotate(&secret, &StoreOnlyRotator, &RotateOptions::default())
                .await
                .is_err()
        );
    });
}

// 9. cancel says what happened to AWSCURRENT, including when a put moved it.
#[test]
fn cancel_tells_the_truth_about_awscurrent() {
    let cli = Cli::new();
    ok(cli.run(&["put", "svc/token"], "first"));
    interrupt_a_rotation(&cli, "svc/token");
    ok(cli.run(&["put", "svc/token"], "emergency"));
    let cancel = ok(cli.run(&["cancel", "svc/token"], ""));
    let said = text(&cancel);
    assert!(!said.contains("AWSCURRENT is unchanged"), "{said}");
    assert!(said.contains("had moved"), "{said}");

    interrupt_a_rotation(&cli, "svc/token");
    let cancel = ok(cli.run(&["cancel", "svc/token"], ""));
    assert!(
        text(&cancel).contains("AWSCURRENT is unchanged"),
        "{}",
        text(&cancel)
    );
}

// 8. resume does not override a later put; it says why and points at cancel.
#[test]
fn resume_stops_when_awscurrent_moved() {
    let cli = Cli::new();
    ok(cli.run(&["put", "db"], "first"));
    interrupt_a_rotation(&cli, "db");
    ok(cli.run(&["put", "db"], "emergency"));
    let resume = cli.run(&["resume", "db"], "");
    assert_eq!(resume.status.code(), Some(1), "{}", text(&resume));
    assert!(
        text(&resume).contains("lift secrets cancel db"),
        "{}",
        text(&resume)
    );
    let current = ok(cli.run(&["get", "db"], ""));
    assert_eq!(current.stdout, b"emergency\n");
}

// 10. A rotate refused for bad input leaves nothing behind.
#[test]
fn a_bad_kind_is_refused_before_anything_changes() {
    let cli = Cli::new();
    ok(cli.run(&["put", "api"], "v"));
    for kind in ["password:0", "password:2", "hex:0", "token:8:bad/prefix"] {
        let out = cli.run(&["rotate", "api", "--kind", kind], "");
        assert_eq!(out.status.code(), Some(2), "{kind}: {}", text(&out));
    }
    let history = ok(cli.run(&["--json", "history", "api"], ""));
    let doc: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(doc.as_array().unwrap().len(), 0);
    ok(cli.run(&["rotate", "api", "--kind", "password:24"], ""));
    let get = ok(cli.run(&["get", "api"], ""));
    assert_eq!(get.stdout.len(), 25);
}

// 6. A JSON secret keeps its fields through the command line's rotation.
#[test]
fn rotate_keeps_json_fields() {
    let cli = Cli::new();
    ok(cli.run(
        &["put", "prod/db"],
        r#"{"username":"app","password":"old","host":"db","port":5432}"#,
    ));
    ok(cli.run(&["rotate", "prod/db"], ""));
    let get = ok(cli.run(&["get", "prod/db"], ""));
    let doc: serde_json::Value = serde_json::from_slice(&get.stdout).unwrap();
    assert_eq!(doc["username"], "app");
    assert_eq!(doc["port"], 5432);
    assert_ne!(doc["password"], "old");
}

// 12. After a force delete, a new secret of the same name starts with no rotation state.
#[test]
fn force_delete_forgets_rotation_state() {
    let cli = Cli::new();
    ok(cli.run(&["put", "x"], "v"));
    ok(cli.run(&["rotate", "x"], ""));
    ok(cli.run(&["delete", "x", "--force"], ""));
    ok(cli.run(&["put", "x"], "w"));
    let history = ok(cli.run(&["--json", "history", "x"], ""));
    let doc: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(doc.as_array().unwrap().len(), 0, "{doc}");
}

// 18. With --aws, the commands that keep rotation state need --store.
#[test]
fn aws_rotation_commands_need_a_store() {
    for op in ["rotate", "resume", "cancel", "history"] {
        let out = Command::new(env!("CARGO_BIN_EXE_lift"))
            .args(["secrets", "--aws", "--region", "us-east-1", op, "x"])
            .env_remove("LIFT_SECRETS_STORE")
            .env_remove("LIFT_AUDIT_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{op}: {}", text(&out));
        assert!(text(&out).contains("--store"), "{}", text(&out));
    }
}

// 15. On a terminal, put prompts and does not echo the value.
#[test]
fn put_on_a_terminal_prompts_and_hides_the_value() {
    use std::io::Read;
    // util-linux's `script` runs the command on a pseudo-terminal and copies its output.
    let Ok(script) = which_script() else {
        // The skip message is the point: a test that silently passes would hide that it did not run.
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "skipping put_on_a_terminal_prompts_and_hides_the_value: no `script` (util-linux) to run lift on a terminal"
            );
        }
        return;
    };
    let cli = Cli::new();
    let command = format!(
        "{} secrets --store {} put tty/secret",
        env!("CARGO_BIN_EXE_lift"),
        cli.path("store").display()
    );
    let mut child = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .env("LIFT_SECRETS_KEY_FILE", cli.path("key"))
        .env_remove("LIFT_AUDIT_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    // Wait for the prompt, so the value is typed after echo is off, as a person would.
    while !String::from_utf8_lossy(&seen).contains("(input hidden)") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"typed-canary-51d2\n").unwrap();
    stdout.read_to_end(&mut seen).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    let shown = String::from_utf8_lossy(&seen);
    assert!(shown.contains("value for tty/secret"), "{shown}");
    assert!(
        !shown.contains("typed-canary-51d2"),
        "the value was echoed: {shown}"
    );
    let get = ok(cli.run(&["get", "tty/secret"], ""));
    assert_eq!(get.stdout, b"typed-canary-51d2\n");
}

fn which_script() -> Result<PathBuf, ()> {
    ["/usr/bin/script", "/bin/script"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn a_store_file_of_another_user_is_refused_before_any_write() {
    // Only root can give a file away; elsewhere this test has nothing to set up.
    if !nix_is_root() {
        #[allow(clippy::print_stderr, reason = "the test says why it skips")]
        {
            eprintln!("skipping: giving a store file to another user needs root");
        }
        return;
    }
    let cli = Cli::new();
    ok(cli.run(&["put", "db"], "first"));
    let mut files = vec![cli.path("store")];
    let mut secret_file = None;
    while let Some(dir) = files.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.push(path);
            } else if path.file_name().unwrap() == "db.secret" {
                secret_file = Some(path);
            }
        }
    }
    let secret_file = secret_file.expect("the store holds a file for db");
    let before = std::fs::read(&secret_file).unwrap();
    std::os::unix::fs::chown(&secret_file, Some(65_534), None).unwrap();

    for (args, stdin) in [(&["get", "db"][..], ""), (&["put", "db"][..], "second")] {
        let out = cli.run(args, stdin);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("belongs to uid 65534") && text(&out).contains("chown 0"),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert_eq!(
        std::fs::read(&secret_file).unwrap(),
        before,
        "nothing was written"
    );
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .ok()
        == Some(0)
}
