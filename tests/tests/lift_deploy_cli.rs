//! `lift deploy` end to end: the real `lift` binary driving the fake `pulumi`.
//!
//! Cargo builds the `lift` binary whenever lift-cli's tests are built, which
//! `cargo test --workspace` (and so `cargo xtask ci`) does; it lands beside the
//! fake `pulumi`. Run alone (`cargo test -p lift-tests`), the binary may be
//! missing: the test then says so and skips, unless `LIFT_TEST_REQUIRE_LIFT_BIN=1`
//! (set by `cargo xtask ci`) makes that a failure.

#![allow(clippy::unwrap_used, reason = "tests: a failure should panic")]
#![allow(clippy::print_stderr, reason = "a skipped test says why")]

mod pulumi_common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use pulumi_common::{Project, fake_pulumi};
use serde_json::Value;

/// The `lift` binary beside the fake, or `None` (with the reason printed) when it is not built.
fn lift_binary() -> Option<PathBuf> {
    let lift = fake_pulumi().with_file_name("lift");
    if lift.is_file() {
        return Some(lift);
    }
    assert!(
        std::env::var_os("LIFT_TEST_REQUIRE_LIFT_BIN").is_none(),
        "{} is missing; build it with `cargo build -p lift-cli`",
        lift.display()
    );
    eprintln!(
        "skipping: {} is not built (run `cargo build -p lift-cli`, or `cargo test --workspace`)",
        lift.display()
    );
    None
}

struct Cli {
    lift: PathBuf,
    project: Project,
}

impl Cli {
    /// A fresh project driven by the `lift` binary, or `None` when it is not built.
    fn new() -> Option<Cli> {
        Some(Cli {
            lift: lift_binary()?,
            project: Project::new(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let dir = self.project.path();
        let mut command = Command::new(&self.lift);
        command
            .args(["deploy", "--stack", "dev", "--cwd"])
            .arg(dir)
            .arg("--pulumi")
            .arg(fake_pulumi())
            .args(args)
            .env(
                "PULUMI_BACKEND_URL",
                format!("file://{}", dir.join("state").display()),
            )
            .env("PULUMI_HOME", dir.join("home"))
            .env("FAKE_PULUMI_RECORD", self.project.record_file())
            .env_remove("LIFT_AUDIT_LOG")
            .env_remove("LIFT_AUDIT_KEY_FILE")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs with `--json` and parses stdout, failing with stderr on a non-zero exit.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "lift deploy {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `config set KEY` with the value on stdin.
    fn config_set(&self, key: &str, value: &str, secret: bool) {
        let mut args = vec!["config", "set", key];
        if secret {
            args.push("--secret");
        }
        let mut child = self.command(&args).stdin(Stdio::piped()).spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(value.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn audit_verifies(lift: &Path, log: &Path) -> Value {
    let out = Command::new(lift)
        .args(["audit", "verify"])
        .arg(log)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn init_config_up_outputs_history_through_the_lift_binary() {
    let Some(cli) = Cli::new() else {
        return;
    };

    let init = cli.json(&["init"]);
    assert_eq!(init["stack"], "dev");

    cli.config_set("greeting", "bonjour", false);
    cli.config_set("dbPassword", "s3cret-canary-771", true);
    let config = cli.json(&["config", "ls"]);
    assert_eq!(config["stack"], "dev");
    let shown = config.to_string();
    assert!(shown.contains("bonjour"), "{shown}");
    assert!(
        !shown.contains("s3cret-canary-771"),
        "secrets stay hidden: {shown}"
    );

    let log = cli.project.path().join("audit.jsonl");
    let up = cli.json(&["up", "--yes", "--audit-log", log.to_str().unwrap()]);
    assert_eq!(up["operation"], "up");
    assert_eq!(up["summary"]["result"], "succeeded");
    assert_eq!(up["version"], Value::Null, "DIY backends number no update");
    let resources = up["resources"].as_array().unwrap();
    assert!(
        resources
            .iter()
            .any(|r| r["type"] == "aws:s3:Bucket" && r["op"] == "create"),
        "{up}"
    );
    assert!(resources.iter().all(|r| r["status"] == "succeeded"), "{up}");
    assert_eq!(up["outputs"]["greeting"]["value"], "bonjour");
    assert_eq!(up["outputs"]["password"]["secret"], true);
    assert_eq!(up["outputs"]["password"]["value"], "[secret]");

    let outputs = cli.json(&["outputs"]);
    assert_eq!(outputs["outputs"]["greeting"]["value"], "bonjour");
    assert!(!outputs.to_string().contains("hunter2"));

    let history = cli.json(&["history"]);
    let updates = history["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 1, "{history}");
    assert_eq!(updates[0]["result"], "succeeded");

    // The update was audited, and the trail verifies.
    let report = audit_verifies(&cli.lift, &log);
    assert_eq!(report["intact"], true);
    assert!(report["records_checked"].as_u64().unwrap() >= 2, "{report}");
    let trail = std::fs::read_to_string(&log).unwrap();
    assert!(trail.contains("\"action\":\"up.started\""), "{trail}");
    assert!(trail.contains("\"action\":\"up.succeeded\""), "{trail}");

    // No secret reached any pulumi command line.
    for call in cli.project.recorded() {
        let argv = call["argv"].to_string();
        assert!(!argv.contains("s3cret-canary-771"), "{argv}");
    }
    // Nor the audit trail.
    assert!(!trail.contains("s3cret-canary-771"));

    // A changed config value shows in preview --diff as pulumi shows it: per
    // resource, each changed property old => new, secrets never in clear.
    cli.config_set("greeting", "hola", false);
    let preview = cli.run(&["preview", "--diff"]);
    let text = String::from_utf8_lossy(&preview.stdout).into_owned()
        + &String::from_utf8_lossy(&preview.stderr);
    assert!(preview.status.success(), "{text}");
    assert!(text.contains("=>"), "a property change: {text}");
    assert!(text.contains("bonjour") && text.contains("hola"), "{text}");
    assert!(!text.contains("s3cret-canary-771"), "{text}");
    let preview = cli.json(&["preview", "--diff"]);
    assert!(
        preview["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["diff"].is_array() || r["diff"].is_object()),
        "{preview}"
    );
    assert!(!trail.contains("hunter2"));
}

#[test]
fn a_locked_stack_exits_75_with_a_classified_error_document() {
    let Some(cli) = Cli::new() else {
        return;
    };
    cli.json(&["init"]);
    let out = cli
        .command(&["up", "--yes", "--json"])
        .env("FAKE_PULUMI_FAIL", "conflict")
        .output()
        .unwrap();
    // A conflict is worth retrying: EX_TEMPFAIL, as the exit-code table says.
    assert_eq!(out.status.code(), Some(75));
    let failure: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(failure["operation"], "up");
    assert_eq!(failure["stack"], "dev");
    assert_eq!(failure["error"]["kind"], "conflict", "{failure}");
    let message = failure["error"]["message"].as_str().unwrap();
    assert!(message.contains("locked by another update"), "{message}");

    // A missing config key is not_found, with the command that lists the keys.
    let out = cli.run(&["config", "get", "nope", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let failure: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(failure["error"]["kind"], "not_found", "{failure}");
    assert!(
        failure["error"]["message"]
            .as_str()
            .unwrap()
            .contains("config ls"),
        "{failure}"
    );
}

/// Whether any update holds a lock on a stack of the project's diy backend.
fn a_lock_is_held(state: &Path) -> bool {
    let mut dirs = vec![state.join(".pulumi").join("locks")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                return true;
            }
        }
    }
    false
}

#[test]
fn sigterm_and_sighup_cancel_a_running_update_release_the_stack_and_clean_up() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use std::time::{Duration, Instant};

    let Some(cli) = Cli::new() else {
        return;
    };
    cli.json(&["init"]);
    let state = cli.project.path().join("state");
    for signal in [Signal::SIGTERM, Signal::SIGHUP] {
        // A private TMPDIR shows whether lift removed its `lift-pulumi-*` directory.
        let tmp = tempfile::tempdir().unwrap();
        let mut child = cli
            .command(&["up", "--yes"])
            .env("FAKE_PULUMI_SLOW", "wait-sigint")
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while !a_lock_is_held(&state) {
            if child.try_wait().unwrap().is_some() {
                let out = child.wait_with_output().unwrap();
                panic!(
                    "lift ended before the update locked the stack: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the update never took the stack's lock"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), signal).unwrap();
        let stopped = Instant::now();
        let out = loop {
            if child.try_wait().unwrap().is_some() {
                break child.wait_with_output().unwrap();
            }
            assert!(
                stopped.elapsed() < Duration::from_secs(20),
                "lift did not stop after {signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{signal}: {stderr}");
        assert!(stderr.contains("cancelling"), "{signal}: {stderr}");
        assert!(
            !a_lock_is_held(&state),
            "{signal}: the stack is released: {stderr}"
        );
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{signal}: temp files left: {left:?}");
    }
    // Nothing holds the stack: the next update runs.
    let up = cli.json(&["up", "--yes"]);
    assert_eq!(up["summary"]["result"], "succeeded", "{up}");
}

/// Runs `lift deploy ARGS` on a pseudo-terminal (stdin, stdout and stderr), typing
/// `answer` once the question appears; returns everything the terminal showed and
/// the exit code.
fn on_a_terminal(cli: &Cli, args: &[&str], answer: &str) -> (String, Option<i32>) {
    on_a_terminal_answering(cli, args, Some(answer))
}

/// [`on_a_terminal`], or with no answer, lift's run to its end, failing if it asks.
fn on_a_terminal_answering(
    cli: &Cli,
    args: &[&str],
    answer: Option<&str>,
) -> (String, Option<i32>) {
    use std::io::Read as _;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = pty.slave;
    let mut command = cli.command(args);
    command
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()))
        .env_remove("NO_COLOR");
    let mut child = command.spawn().unwrap();
    drop(command);
    drop(slave);
    let mut master = std::fs::File::from(pty.master);
    let mut writer = master.try_clone().unwrap();
    let shown = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let shown = Arc::clone(&shown);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the child, the last holder of the slave side, exits.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let started = Instant::now();
    let asked = || String::from_utf8_lossy(&shown.lock().unwrap()).contains("type yes to go ahead");
    let status = match answer {
        Some(answer) => {
            while !asked() {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "no question on the terminal: {}",
                    String::from_utf8_lossy(&shown.lock().unwrap())
                );
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "lift ended without asking: {}",
                    String::from_utf8_lossy(&shown.lock().unwrap())
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            writer.write_all(format!("{answer}\r").as_bytes()).unwrap();
            child.wait().unwrap()
        }
        None => loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if asked() || started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!(
                    "lift asked, or did not end: {}",
                    String::from_utf8_lossy(&shown.lock().unwrap())
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        },
    };
    reader.join().unwrap();
    let text = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    (text, status.code())
}

#[test]
fn on_a_terminal_up_and_destroy_show_the_preview_ask_and_honour_the_answer() {
    let Some(cli) = Cli::new() else {
        return;
    };
    cli.json(&["init"]);
    let updates = |cli: &Cli| cli.json(&["history"])["updates"].as_array().unwrap().len();

    // `up` previews, asks, and a "no" changes nothing.
    let (shown, _) = on_a_terminal(&cli, &["up"], "no");
    let question = shown.find("Do you want to perform this update?").unwrap();
    let preview = shown
        .find("aws:s3:Bucket")
        .expect("the preview lists the resources");
    assert!(
        preview < question,
        "the preview comes before the question: {shown}"
    );
    assert!(shown.contains("declined; nothing was changed"), "{shown}");
    assert_eq!(updates(&cli), 0, "a declined update changes nothing");

    // "yes" runs it, with the live view redrawn in place and a summary in words.
    let (shown, code) = on_a_terminal(&cli, &["up"], "yes");
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("created"), "a summary in words: {shown}");
    assert!(
        ["\u{1b}[2K", "\u{1b}[1A", "\u{1b}[K"]
            .iter()
            .any(|erase| shown.contains(erase)),
        "on a terminal the view redraws in place (erases and rewrites lines): {shown:?}"
    );
    assert_eq!(updates(&cli), 1);

    // `destroy` asks too, and a "no" keeps every resource.
    let (shown, _) = on_a_terminal(&cli, &["destroy"], "no");
    assert!(
        shown.contains("Do you want to delete every resource of this stack?"),
        "{shown}"
    );
    assert!(shown.contains("declined; nothing was changed"), "{shown}");
    assert_eq!(updates(&cli), 1, "a declined destroy changes nothing");
    let outputs = cli.json(&["outputs"]);
    assert!(
        !outputs["outputs"].as_object().unwrap().is_empty(),
        "{outputs}"
    );
}

#[test]
fn a_second_ctrl_c_kills_a_pulumi_that_ignores_the_first() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use std::time::{Duration, Instant};

    let Some(cli) = Cli::new() else {
        return;
    };
    cli.json(&["init"]);
    let state = cli.project.path().join("state");
    let stderr_file = cli.project.path().join("lift.stderr");
    let mut child = cli
        .command(&["up", "--yes"])
        .env("FAKE_PULUMI_SLOW", "ignore-sigint")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .unwrap();
    let lift_pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{what}: {}",
                std::fs::read_to_string(&stderr_file).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("the update never took the stack's lock", &|| {
        a_lock_is_held(&state)
    });
    kill(lift_pid, Signal::SIGINT).unwrap();
    wait_for("no word after the first Ctrl-C", &|| {
        std::fs::read_to_string(&stderr_file).is_ok_and(|t| t.contains("Ctrl-C again to force"))
    });
    assert!(child.try_wait().unwrap().is_none(), "pulumi ignores SIGINT");
    let second = Instant::now();
    kill(lift_pid, Signal::SIGINT).unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            second.elapsed() < Duration::from_secs(10),
            "lift did not stop after the second Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&stderr_file).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("killing pulumi now"), "{stderr}");
    // The fake pulumi of that update is gone too.
    let record = std::fs::read_to_string(cli.project.record_file()).unwrap();
    let up_pid = record
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["argv"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "up"))
        })
        .filter_map(|v| v["pid"].as_i64())
        .next_back()
        .expect("the fake recorded the update");
    let gone = Instant::now();
    while Path::new(&format!("/proc/{up_pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{up_pid}/stat"))
            .is_ok_and(|s| s.contains(") Z "))
    {
        assert!(
            gone.elapsed() < Duration::from_secs(10),
            "pulumi (pid {up_pid}) still runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_failed_step_is_shown_in_place() {
    let Some(cli) = Cli::new() else {
        return;
    };
    cli.json(&["init"]);
    let out = cli
        .command(&["up", "--yes"])
        .env("FAKE_PULUMI_FAIL_RESOURCE", "bucket")
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.contains("aws:s3:Bucket") && l.contains("bucket") && l.contains("failed")),
        "the failed step has its own line: {shown}"
    );
}

/// The lines of `text` that show a step of resource `name` of type `ty`:
/// `  +- aws:s3:Bucket  bucket  replaced (0.1s)`.
fn step_lines<'a>(text: &'a str, ty: &str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.windows(2).any(|w| w[0] == ty && w[1] == name)
        })
        .collect()
}

fn shown(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A program whose bucket is replaced when `greeting` changes (`replaceOnChanges`).
const REPLACING: &str = r#"name: demo
runtime: yaml
config:
  greeting:
    default: hello
resources:
  bucket:
    type: aws:s3:Bucket
    properties:
      acl: ${greeting}
    options:
      replaceOnChanges: [acl]
  object:
    type: aws:s3:BucketObject
    properties:
      bucket: ${bucket.id}
      content: ${greeting}
outputs:
  bucketName: ${bucket.id}
"#;

#[test]
fn a_replacement_shows_as_one_replacement() {
    let Some(cli) = Cli::new() else {
        return;
    };
    std::fs::write(cli.project.path().join("Pulumi.yaml"), REPLACING).unwrap();
    cli.json(&["init"]);
    let first = cli.json(&["up", "--yes"]);
    let old_id = first["outputs"]["bucketName"]["value"].clone();

    // The engine's create-replacement, replace and delete-replaced steps make one
    // line, in the preview and in the update; the summary counts one replacement.
    cli.config_set("greeting", "hola", false);
    let preview = cli.run(&["preview"]);
    let text = shown(&preview);
    assert!(preview.status.success(), "{text}");
    let lines = step_lines(&text, "aws:s3:Bucket", "bucket");
    assert_eq!(lines.len(), 1, "one line for the bucket: {text}");
    assert!(lines[0].trim_start().starts_with("+- "), "{text}");
    assert!(lines[0].contains("to replace"), "{text}");
    assert!(text.contains("+- 1 to replace"), "{text}");

    let up = cli.run(&["up", "--yes"]);
    let text = shown(&up);
    assert!(up.status.success(), "{text}");
    let lines = step_lines(&text, "aws:s3:Bucket", "bucket");
    assert_eq!(lines.len(), 1, "one line for the bucket: {text}");
    assert!(lines[0].trim_start().starts_with("+- "), "{text}");
    assert!(lines[0].contains("replaced"), "{text}");
    for word in ["created", "deleted", "++", "--"] {
        assert!(!lines[0].contains(word), "{text}");
    }
    let summary = text
        .lines()
        .find(|l| l.starts_with("Resources:"))
        .unwrap_or_else(|| panic!("a summary: {text}"));
    assert!(summary.contains("+- 1 replaced"), "{summary}");
    assert!(
        !summary.contains("created") && !summary.contains("deleted"),
        "{summary}"
    );

    let outputs = cli.json(&["outputs"]);
    assert_ne!(
        outputs["outputs"]["bucketName"]["value"], old_id,
        "a new bucket"
    );
    let history = cli.json(&["history"]);
    assert_eq!(
        history["updates"][0]["resourceChanges"]["replace"], 1,
        "{history}"
    );

    // The same on a terminal: the preview shows the replacement once, and after
    // "yes" the update shows it once, whatever the live view redrew meanwhile.
    cli.config_set("greeting", "salut", false);
    let (text, code) = on_a_terminal(&cli, &["up"], "yes");
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text.matches("bucket  to replace").count(), 1, "{text}");
    assert_eq!(text.matches("bucket  replaced").count(), 1, "{text}");
    for word in ["created", "deleted"] {
        assert!(!text.contains(&format!("bucket  {word}")), "{text}");
    }
    assert!(text.contains("+- 1 replaced"), "{text}");
    assert!(!text.contains("1 created"), "{text}");
    let json = cli.json(&["up", "--yes", "--expect-no-changes"]);
    assert_eq!(json["summary"]["result"], "succeeded", "{json}");
}

#[test]
fn a_preview_shows_each_step_once() {
    let Some(cli) = Cli::new() else {
        return;
    };
    cli.json(&["init"]);
    // In a preview the engine reports the stack's outputs twice (at once, and with
    // its outputs at the end), as the pinned real CLI does; the stack shows once.
    let out = cli.run(&["preview"]);
    let text = shown(&out);
    assert!(out.status.success(), "{text}");
    for (ty, name) in [
        ("pulumi:pulumi:Stack", "demo-dev"),
        ("aws:s3:Bucket", "bucket"),
        ("aws:s3:BucketObject", "object"),
    ] {
        let lines = step_lines(&text, ty, name);
        assert_eq!(lines.len(), 1, "{ty} {name} once: {text}");
        assert!(lines[0].contains("to create"), "{text}");
    }
    // The engine's default provider is an internal step, not shown.
    assert!(!text.contains("pulumi:providers:"), "{text}");
    assert!(text.contains("Resources: + 3 to create"), "{text}");
    assert!(
        !text.contains("created"),
        "nothing is created by a preview: {text}"
    );

    let out = cli.run(&["up", "--yes"]);
    let text = shown(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        step_lines(&text, "pulumi:pulumi:Stack", "demo-dev").len(),
        1,
        "{text}"
    );
    assert!(!text.contains("pulumi:providers:"), "{text}");
    assert!(text.contains("Resources: + 3 created"), "{text}");
}

#[test]
fn a_failed_preview_never_lists_a_succeeded_step() {
    let Some(cli) = Cli::new() else {
        return;
    };
    // The program fails: an output reads a resource that does not exist, as in the
    // `broken` program of tests/scenarios/pulumi, which the real CLI runs too.
    let program = format!("{}  broken: ${{missing.id}}\n", pulumi_common::PROGRAM);
    std::fs::write(cli.project.path().join("Pulumi.yaml"), program).unwrap();
    cli.json(&["init"]);
    let said_nothing_done = |text: &str| {
        for word in ["succeeded", "created", "updated", "deleted"] {
            assert!(!text.contains(word), "{word}: {text}");
        }
    };

    let out = cli.run(&["preview"]);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("\"missing\" could not be found"),
        "the error: {text}"
    );
    said_nothing_done(&text);

    let out = cli.run(&["preview", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let failure: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(failure["operation"], "preview", "{failure}");
    assert!(
        failure["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "{failure}"
    );
    let resources = failure["resources"].as_array().unwrap();
    assert!(!resources.is_empty(), "{failure}");
    assert!(
        resources.iter().all(|r| r["status"] == "planned"),
        "a preview plans, it does not succeed: {failure}"
    );

    // `up` on a terminal previews first: the failed preview ends it, with the
    // error, no question and no update.
    let (text, code) = on_a_terminal_answering(&cli, &["up"], None);
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("\"missing\" could not be found"),
        "the error: {text}"
    );
    said_nothing_done(&text);
    let history = cli.json(&["history"]);
    assert_eq!(history["updates"].as_array().unwrap().len(), 0, "{history}");
}
