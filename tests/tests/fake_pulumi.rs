//! Self-tests of the fake `pulumi` CLI (`tests/src/bin/pulumi`): they pin the command surface, the JSON
//! shapes and the event-log framing that `lift-pulumi` is tested against.
#![allow(clippy::unwrap_used, clippy::print_stderr, reason = "tests")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const PROGRAM: &str = r#"name: demo
runtime: yaml
config:
  greeting:
    default: hello
resources:
  bucket:
    type: aws:s3:Bucket
    properties:
      acl: private
    options:
      replaceOnChanges: [region]
  object:
    type: aws:s3:BucketObject
    properties:
      bucket: ${bucket.id}
      content: ${greeting}
outputs:
  bucketName: ${bucket.id}
  password:
    fn::secret: hunter2
  greeting: ${greeting}
"#;

/// A project directory and a file backend in a temporary directory.
struct Fake {
    _dir: tempfile::TempDir,
    root: PathBuf,
    project: PathBuf,
    state: PathBuf,
}

impl Fake {
    fn new() -> Fake {
        Fake::with_program(PROGRAM)
    }

    fn with_program(program: &str) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let project = root.join("project");
        let state = root.join("state");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        std::fs::create_dir_all(root.join("home")).unwrap();
        std::fs::write(project.join("Pulumi.yaml"), program).unwrap();
        Fake {
            _dir: dir,
            root,
            project,
            state,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pulumi"));
        c.args(args)
            .current_dir(&self.project)
            .env(
                "PULUMI_BACKEND_URL",
                format!("file://{}", self.state.display()),
            )
            .env("PULUMI_HOME", self.root.join("home"))
            .env("PULUMI_SKIP_UPDATE_CHECK", "true")
            .stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("FAKE_PULUMI_") {
                c.env_remove(k);
            }
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "pulumi {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    fn log(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn init(&self, stack: &str) {
        self.ok(&["stack", "init", stack, "--non-interactive"]);
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Parses an event log, checking the Pulumi framing of every line.
fn events(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'), "every line ends with a newline");
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let obj = v.as_object().unwrap();
            let seq = obj["sequence"].as_i64().unwrap();
            assert_eq!(
                usize::try_from(seq).ok(),
                Some(i),
                "sequence numbers count from 0"
            );
            assert!(obj["timestamp"].as_i64().unwrap() > 1_600_000_000);
            let kinds: Vec<&String> = obj
                .keys()
                .filter(|k| *k != "sequence" && *k != "timestamp")
                .collect();
            assert_eq!(kinds.len(), 1, "exactly one event per line: {line}");
            assert!(kinds[0].ends_with("Event"), "{line}");
            v
        })
        .collect()
}

fn kind(e: &Value) -> &str {
    e.as_object()
        .unwrap()
        .keys()
        .find(|k| *k != "sequence" && *k != "timestamp")
        .unwrap()
}

fn summary(evs: &[Value]) -> &Value {
    &evs.iter().find(|e| kind(e) == "summaryEvent").unwrap()["summaryEvent"]
}

/// Whether an event is a step of a default provider (`pulumi:providers:<pkg>::default`).
fn is_default_provider(e: &Value, k: &str) -> bool {
    let urn = e[k]["metadata"]["urn"].as_str().unwrap_or_default();
    urn.contains("::pulumi:providers:") && urn.ends_with("::default")
}

/// The op and name of each event of kind `k`, default providers (the engine's internal steps) left out.
fn ops(evs: &[Value], k: &str) -> Vec<(String, String)> {
    evs.iter()
        .filter(|e| kind(e) == k && !is_default_provider(e, k))
        .map(|e| {
            let m = &e[k]["metadata"];
            (
                m["op"].as_str().unwrap().to_owned(),
                m["urn"]
                    .as_str()
                    .unwrap()
                    .rsplit("::")
                    .next()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigint(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
}

#[test]
fn version_prints_a_semver_and_can_be_overridden() {
    let f = Fake::new();
    assert_eq!(f.ok(&["version"]), "v3.274.1\n");
    let out = f.run_env(&["version"], &[("FAKE_PULUMI_VERSION", "v2.0.0")]);
    assert_eq!(stdout(&out), "v2.0.0\n");
}

#[test]
fn default_provider_steps_are_written_like_the_engine() {
    let f = Fake::new();
    f.ok(&["stack", "init", "dev"]);
    // On by default; `FAKE_PULUMI_DEFAULT_PROVIDERS=0` turns them off.
    let off = f.log("dp-off.json");
    let o = f.run_env(
        &[
            "preview",
            "--stack",
            "dev",
            "--event-log",
            off.to_str().unwrap(),
        ],
        &[("FAKE_PULUMI_DEFAULT_PROVIDERS", "0")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !events(&off)
            .iter()
            .any(|e| is_default_provider(e, "resourcePreEvent")),
        "FAKE_PULUMI_DEFAULT_PROVIDERS=0 leaves them out"
    );
    let provider = |evs: &[Value]| -> Vec<(String, String)> {
        evs.iter()
            .filter(|e| is_default_provider(e, kind(e)))
            .map(|e| {
                let k = kind(e);
                (
                    k.to_owned(),
                    e[k]["metadata"]["op"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    let run = |args: &[&str], name: &str| {
        let log = f.log(name);
        let mut all = args.to_vec();
        all.extend(["--yes", "--skip-preview", "--stack", "dev", "--event-log"]);
        all.push(log.to_str().unwrap());
        let o = f.run(&all);
        assert!(o.status.success(), "{}", stderr(&o));
        events(&log)
    };
    // Created before the first aws resource, then the same on the next update; never counted.
    let evs = run(&["up"], "dp-up.json");
    let first = evs
        .iter()
        .position(|e| is_default_provider(e, "resourcePreEvent"))
        .unwrap();
    assert_eq!(
        evs[first]["resourcePreEvent"]["metadata"]["urn"],
        "urn:pulumi:dev::demo::pulumi:providers:aws::default"
    );
    assert_eq!(
        provider(&evs),
        [
            pair("resourcePreEvent", "create"),
            pair("resOutputsEvent", "create")
        ]
    );
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"create": 3})
    );
    let evs = run(&["up"], "dp-up2.json");
    assert_eq!(
        provider(&evs),
        [
            pair("resourcePreEvent", "same"),
            pair("resOutputsEvent", "same")
        ]
    );
    let evs = run(&["refresh"], "dp-refresh.json");
    assert_eq!(
        provider(&evs),
        [
            pair("resourcePreEvent", "refresh"),
            pair("resOutputsEvent", "same")
        ]
    );
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"same": 3})
    );
    // Deleted after its last user, in the stack's wave.
    let evs = run(&["destroy"], "dp-destroy.json");
    assert_eq!(
        provider(&evs),
        [
            pair("resourcePreEvent", "delete"),
            pair("resOutputsEvent", "delete")
        ]
    );
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"delete": 3})
    );
    let names: Vec<String> = evs
        .iter()
        .filter(|e| kind(e) == "resourcePreEvent")
        .map(|e| {
            e["resourcePreEvent"]["metadata"]["urn"]
                .as_str()
                .unwrap()
                .rsplit("::")
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(names.last().map(String::as_str), Some("demo-dev"));
}

#[test]
fn stacks_are_created_selected_listed_and_removed_like_pulumi() {
    let f = Fake::new();
    let created = f.run(&["stack", "init", "dev"]);
    assert!(created.status.success());
    assert_eq!(stderr(&created), "Created stack 'dev'\n");
    let dup = f.run(&["stack", "init", "dev"]);
    assert_eq!(dup.status.code(), Some(1));
    assert_eq!(
        stderr(&dup),
        "error: stack 'organization/demo/dev' already exists\n"
    );
    let missing = f.run(&["stack", "select", "--stack", "nope", "--non-interactive"]);
    assert_eq!(stderr(&missing), "error: no stack named 'nope' found\n");
    for cmd in [
        &["up", "--yes", "--stack", "nope"][..],
        &["config", "--json", "--stack", "nope"],
        &["stack", "output", "--json", "--stack", "nope"],
        &["stack", "history", "--json", "--stack", "nope"],
        &["stack", "tag", "ls", "--json", "--stack", "nope"],
    ] {
        let out = f.run(cmd);
        assert_eq!(out.status.code(), Some(6), "{cmd:?}");
        assert!(
            stderr(&out).contains("no stack named 'nope' found"),
            "{cmd:?}"
        );
    }
    f.init("prod");
    f.ok(&["stack", "select", "dev"]);
    let ls = f.json(&["stack", "ls", "--json"]);
    let names: Vec<(&str, bool, u64)> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(
                s["lastUpdate"].is_string(),
                "the DIY backend writes a checkpoint at init: {s}"
            );
            (
                s["name"].as_str().unwrap(),
                s["current"].as_bool().unwrap(),
                s["resourceCount"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [("dev", true, 0), ("prod", false, 0)]);
    f.ok(&["up", "--yes", "--skip-preview", "--stack", "dev"]);
    let ls = f.json(&["stack", "ls", "--json"]);
    assert_eq!(ls[0]["resourceCount"], 3);
    assert!(ls[0]["lastUpdate"].as_str().unwrap().ends_with('Z'));
    let refused = f.run(&["stack", "rm", "--yes", "dev"]);
    assert!(stderr(&refused).contains("still has resources"));
    assert_eq!(
        f.ok(&["stack", "rm", "--yes", "--force", "dev"]),
        "Stack 'dev' has been removed!\n"
    );
    assert_eq!(
        f.json(&["stack", "ls", "--json"]).as_array().unwrap().len(),
        1
    );
}

#[test]
fn config_values_come_from_stdin_and_secrets_stay_out_of_argv_and_files() {
    let f = Fake::new();
    f.init("dev");
    let record = f.log("record.jsonl");
    let mut child = f
        .cmd(&[
            "config",
            "set",
            "dbPassword",
            "--secret",
            "--stack",
            "dev",
            "--non-interactive",
        ])
        .env("FAKE_PULUMI_RECORD", &record)
        .env("PULUMI_CONFIG_PASSPHRASE", "pass")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cr3t-value\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    f.ok(&[
        "config",
        "set",
        "region",
        "--plaintext",
        "--stack",
        "dev",
        "--",
        "-us-west-2",
    ]);

    let blinded = f.json(&["config", "--json", "--stack", "dev"]);
    assert_eq!(
        blinded["demo:dbPassword"],
        serde_json::json!({"secret": true})
    );
    assert_eq!(
        blinded["demo:region"],
        serde_json::json!({"value": "-us-west-2", "secret": false})
    );
    assert_eq!(
        blinded["demo:greeting"]["value"], "hello",
        "project defaults are listed"
    );
    let shown = f.json(&["config", "--json", "--show-secrets", "--stack", "dev"]);
    assert_eq!(
        shown["demo:dbPassword"]["value"], "s3cr3t-value",
        "one newline stripped"
    );
    let one = f.json(&["config", "get", "dbPassword", "--json", "--stack", "dev"]);
    assert_eq!(
        one,
        serde_json::json!({"value": "s3cr3t-value", "secret": true})
    );
    let missing = f.run(&["config", "get", "nope", "--stack", "dev"]);
    assert_eq!(
        stderr(&missing),
        "error: configuration key 'nope' not found for stack 'dev'\n"
    );

    let rec = std::fs::read_to_string(&record).unwrap();
    let line: Value = serde_json::from_str(rec.lines().next().unwrap()).unwrap();
    let argv: Vec<&str> = line["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(argv[..3], ["config", "set", "dbPassword"]);
    assert!(
        !rec.contains("s3cr3t-value"),
        "the secret is in no recorded argv"
    );
    assert!(!rec.contains("\"pass\""), "env values are not recorded");
    assert!(
        line["env"]
            .as_array()
            .unwrap()
            .contains(&Value::from("PULUMI_CONFIG_PASSPHRASE"))
    );
    assert_eq!(line["stdinIsTerminal"], false);
    for entry in walk(&f.state) {
        let text = std::fs::read_to_string(entry).unwrap();
        assert!(
            !text.contains("s3cr3t-value"),
            "no plaintext secret at rest"
        );
    }

    f.ok(&[
        "config",
        "set",
        "--path",
        "tags.list[0]",
        "true",
        "--stack",
        "dev",
    ]);
    f.ok(&[
        "config",
        "set",
        "--path",
        "tags.name",
        "web",
        "--stack",
        "dev",
    ]);
    let tags = f.json(&["config", "get", "tags", "--json", "--stack", "dev"]);
    assert_eq!(
        tags["objectValue"],
        serde_json::json!({"list": [true], "name": "web"})
    );
    f.ok(&["config", "rm", "--path", "tags.name", "--stack", "dev"]);
    f.ok(&["config", "rm", "region", "--stack", "dev"]);
    let after = f.json(&["config", "--json", "--stack", "dev"]);
    assert!(after.get("demo:region").is_none());
    assert_eq!(
        after["demo:tags"]["objectValue"],
        serde_json::json!({"list": [true]})
    );

    let looks = f.run(&[
        "config",
        "set",
        "apiToken",
        "Zx9#kLm2$pQr9!zTq",
        "--stack",
        "dev",
    ]);
    assert!(stderr(&looks).contains("looks like a secret"));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn up_writes_a_pulumi_event_log_and_records_outputs_and_history() {
    let f = Fake::new();
    f.init("dev");
    f.ok(&["config", "set", "greeting", "hi", "--stack", "dev"]);
    let log = f.log("up.json");
    let out = f.ok(&[
        "up",
        "--yes",
        "--skip-preview",
        "--stack",
        "dev",
        "--non-interactive",
        "--color=never",
        "--message=\"first\"",
        "--exec-kind=auto.local",
        "--event-log",
        log.to_str().unwrap(),
    ]);
    assert!(out.contains("Updating (dev)"));
    assert!(out.contains("password: [secret]"));
    let evs = events(&log);
    assert_eq!(kind(&evs[0]), "preludeEvent");
    assert_eq!(
        evs[0]["preludeEvent"]["config"],
        serde_json::json!({"demo:greeting": "hi"})
    );
    assert_eq!(kind(evs.last().unwrap()), "cancelEvent");
    assert!(
        evs.iter()
            .any(|e| is_default_provider(e, "resourcePreEvent")),
        "default-provider steps are written, as the real engine writes them"
    );
    assert_eq!(
        ops(&evs, "resourcePreEvent"),
        [
            ("create", "demo-dev"),
            ("create", "bucket"),
            ("create", "object")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let s = summary(&evs);
    assert_eq!(s["resourceChanges"], serde_json::json!({"create": 3}));
    assert_eq!(s["result"], "succeeded");
    assert_eq!(s["isPreview"], false);
    assert!(s.get("PolicyPacks").is_some() && s.get("maybeCorrupt").is_some());
    let created = evs
        .iter()
        .find(|e| {
            kind(e) == "resOutputsEvent"
                && e["resOutputsEvent"]["metadata"]["urn"]
                    .as_str()
                    .unwrap()
                    .ends_with("::bucket")
        })
        .unwrap();
    let meta = &created["resOutputsEvent"]["metadata"];
    assert_eq!(meta["type"], "aws:s3:Bucket");
    assert_eq!(meta["old"], Value::Null);
    assert!(meta["new"]["id"].as_str().unwrap().starts_with("bucket-"));
    assert_eq!(meta["new"]["custom"], true);
    let last_stack = evs
        .iter()
        .rev()
        .find(|e| kind(e) == "resOutputsEvent")
        .unwrap();
    assert_eq!(
        last_stack["resOutputsEvent"]["metadata"]["new"]["outputs"]["password"], "[secret]",
        "secrets are blinded in events"
    );

    let outputs = f.json(&["stack", "output", "--json", "--stack", "dev"]);
    assert_eq!(outputs["password"], "[secret]");
    assert_eq!(outputs["greeting"], "hi");
    let bucket = outputs["bucketName"].as_str().unwrap().to_owned();
    let revealed = f.json(&[
        "stack",
        "output",
        "--json",
        "--show-secrets",
        "--stack",
        "dev",
    ]);
    assert_eq!(revealed["password"], "hunter2");
    assert_eq!(
        f.ok(&["stack", "output", "bucketName", "--stack", "dev"]),
        format!("{bucket}\n")
    );

    let history = f.json(&[
        "stack",
        "history",
        "--json",
        "--show-secrets",
        "--page-size",
        "1",
        "--page",
        "1",
        "--stack",
        "dev",
    ]);
    let h = &history[0];
    assert_eq!(h["version"], 0, "DIY backends do not number updates");
    assert_eq!(h["kind"], "update");
    assert_eq!(h["result"], "succeeded");
    assert_eq!(h["message"], "\"first\"");
    assert_eq!(h["resourceChanges"], serde_json::json!({"create": 3}));
    assert_eq!(h["environment"]["exec.kind"], "auto.local");
    assert!(h["startTime"].as_str().unwrap().ends_with('Z') && h["endTime"].is_string());
    let keys: Vec<&str> = h.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys.len(),
        9,
        "version kind startTime message environment config result endTime resourceChanges"
    );

    // An unchanged second update is all `same`; a changed input is an update with a detailed diff.
    f.ok(&["up", "--yes", "--stack", "dev"]);
    f.ok(&["config", "set", "greeting", "bye", "--stack", "dev"]);
    let log2 = f.log("up2.json");
    f.ok(&[
        "up",
        "--yes",
        "--stack",
        "dev",
        "--event-log",
        log2.to_str().unwrap(),
    ]);
    let evs = events(&log2);
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"same": 2, "update": 1})
    );
    let upd = evs
        .iter()
        .find(|e| {
            kind(e) == "resourcePreEvent" && e["resourcePreEvent"]["metadata"]["op"] == "update"
        })
        .unwrap();
    assert_eq!(
        upd["resourcePreEvent"]["metadata"]["detailedDiff"],
        serde_json::json!({"content": {"diffKind": "update", "inputDiff": true}})
    );
    let rlog = f.log("up-refresh.json");
    f.ok(&[
        "up",
        "--yes",
        "--refresh",
        "--stack",
        "dev",
        "--event-log",
        rlog.to_str().unwrap(),
    ]);
    let evs = events(&rlog);
    let pre: Vec<String> = ops(&evs, "resourcePreEvent")
        .into_iter()
        .map(|(op, _)| op)
        .collect();
    assert_eq!(pre, ["same", "refresh", "refresh", "same", "same"]);
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"same": 3})
    );
    let kinds: Vec<String> = f
        .json(&["stack", "history", "--json", "--stack", "dev"])
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
}

#[test]
fn replacements_deletions_previews_refreshes_and_destroys_count_like_the_engine() {
    let f = Fake::new();
    f.init("dev");
    f.ok(&["up", "--yes", "--stack", "dev"]);
    let before = f.json(&["stack", "output", "--json", "--stack", "dev"])["bucketName"].clone();

    // Preview: planning events, no history, no state change.
    let program = PROGRAM.replace("acl: private", "acl: private\n      region: eu-west-1");
    std::fs::write(f.project.join("Pulumi.yaml"), &program).unwrap();
    let plog = f.log("preview.json");
    f.ok(&[
        "preview",
        "--stack",
        "dev",
        "--event-log",
        plog.to_str().unwrap(),
    ]);
    let evs = events(&plog);
    let s = summary(&evs);
    assert_eq!(s["isPreview"], true);
    assert_eq!(
        s["resourceChanges"],
        serde_json::json!({"replace": 1, "same": 1, "update": 1})
    );
    assert!(
        evs.iter()
            .filter(|e| kind(e) == "resourcePreEvent")
            .all(|e| e["resourcePreEvent"]["planning"] == true)
    );
    assert_eq!(
        f.json(&["stack", "history", "--json", "--stack", "dev"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Up: the replacement runs create-replacement, replace and finally delete-replaced, counted once.
    let ulog = f.log("replace.json");
    f.ok(&[
        "up",
        "--yes",
        "--stack",
        "dev",
        "--event-log",
        ulog.to_str().unwrap(),
    ]);
    let evs = events(&ulog);
    let pre: Vec<String> = ops(&evs, "resourcePreEvent")
        .into_iter()
        .map(|(op, _)| op)
        .collect();
    assert_eq!(
        pre,
        [
            "same",
            "create-replacement",
            "replace",
            "update",
            "delete-replaced"
        ]
    );
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"replace": 1, "same": 1, "update": 1})
    );
    let after = f.json(&["stack", "output", "--json", "--stack", "dev"])["bucketName"].clone();
    assert_ne!(before, after, "a replacement gets a new ID");

    // Removing a resource deletes it.
    let program = program.replace(
        "  object:\n    type: aws:s3:BucketObject\n    properties:\n      bucket: ${bucket.id}\n      content: ${greeting}\n",
        "",
    );
    std::fs::write(f.project.join("Pulumi.yaml"), &program).unwrap();
    let dlog = f.log("delete.json");
    f.ok(&[
        "up",
        "--yes",
        "--stack",
        "dev",
        "--event-log",
        dlog.to_str().unwrap(),
    ]);
    let evs = events(&dlog);
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"delete": 1, "same": 2})
    );
    assert!(ops(&evs, "resOutputsEvent").contains(&("delete".to_owned(), "object".to_owned())));

    // Refresh reads every resource back, the stack too.
    let rlog = f.log("refresh.json");
    f.ok(&[
        "refresh",
        "--yes",
        "--skip-preview",
        "--stack",
        "dev",
        "--event-log",
        rlog.to_str().unwrap(),
    ]);
    let evs = events(&rlog);
    assert_eq!(
        ops(&evs, "resourcePreEvent"),
        [
            ("refresh".to_owned(), "demo-dev".to_owned()),
            ("refresh".to_owned(), "bucket".to_owned())
        ]
    );
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"same": 2})
    );

    // Destroy deletes everything, the stack last.
    let xlog = f.log("destroy.json");
    f.ok(&[
        "destroy",
        "--yes",
        "--skip-preview",
        "--stack",
        "dev",
        "--event-log",
        xlog.to_str().unwrap(),
    ]);
    let evs = events(&xlog);
    let del = ops(&evs, "resourcePreEvent");
    assert_eq!(del.last().unwrap().1, "demo-dev");
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"delete": 2})
    );
    assert_eq!(
        f.json(&["stack", "output", "--json", "--stack", "dev"]),
        serde_json::json!({})
    );
    let kinds: Vec<String> = f
        .json(&["stack", "history", "--json", "--stack", "dev"])
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["destroy", "refresh", "update", "update", "update"]);
}

#[test]
fn targets_limit_what_an_update_touches() {
    let f = Fake::new();
    f.init("dev");
    let log = f.log("t.json");
    f.ok(&[
        "up",
        "--yes",
        "--stack",
        "dev",
        "--target",
        "urn:pulumi:dev::demo::aws:s3:Bucket::bucket",
        "--event-log",
        log.to_str().unwrap(),
    ]);
    let evs = events(&log);
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"create": 2})
    );
    let log = f.log("t2.json");
    f.ok(&[
        "up",
        "--yes",
        "--stack",
        "dev",
        "--target=*::bucket",
        "--target-dependents",
        "--event-log",
        log.to_str().unwrap(),
    ]);
    let evs = events(&log);
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"create": 1, "same": 2})
    );
}

#[test]
fn up_json_streams_events_on_stdout_and_preview_json_is_one_document() {
    let f = Fake::new();
    f.init("dev");
    let out = f.ok(&["up", "--yes", "--json", "--stack", "dev"]);
    let evs: Vec<Value> = serde_json::Deserializer::from_str(&out)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect();
    assert_eq!(kind(&evs[0]), "preludeEvent");
    assert_eq!(kind(evs.last().unwrap()), "cancelEvent");
    let doc = f.json(&["preview", "--json", "--stack", "dev"]);
    assert_eq!(doc["changeSummary"], serde_json::json!({"same": 3}));
    assert_eq!(doc["steps"].as_array().unwrap().len(), 2);
    assert!(doc["duration"].as_u64().unwrap() > 0);
    let failed = f.run_env(
        &["preview", "--json", "--stack", "dev"],
        &[("FAKE_PULUMI_FAIL", "runtime")],
    );
    assert_eq!(failed.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&failed.stdout).unwrap();
    let messages: Vec<&str> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert!(messages[0].contains("failed with an unhandled exception:"));
    assert_eq!(messages.last().unwrap(), &"preview failed\n");
}

#[test]
fn injected_failures_look_like_pulumi_failures() {
    let f = Fake::new();
    f.init("dev");
    let up = ["up", "--yes", "--skip-preview", "--stack", "dev"];

    let o = f.run_env(&up, &[("FAKE_PULUMI_FAIL", "conflict")]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: [409] Conflict: Another update is currently in progress.\n"
    );
    let o = f.run_env(&up, &[("FAKE_PULUMI_FAIL", "locked")]);
    assert!(stderr(&o).starts_with("error: the stack is currently locked by 1 lock(s)."));

    let log = f.log("compile.json");
    let mut args = up.to_vec();
    args.extend(["--event-log", log.to_str().unwrap()]);
    let o = f.run_env(&args, &[("FAKE_PULUMI_FAIL", "compile")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("Unable to compile TypeScript"));
    assert_eq!(summary(&events(&log))["result"], "failed");

    let o = f.run_env(&args, &[("FAKE_PULUMI_FAIL", "runtime")]);
    assert!(stdout(&o).contains("failed with an unhandled exception:"));
    assert!(!stdout(&o).contains("Unable to compile"));

    let o = f.run_env(&args, &[("FAKE_PULUMI_FAIL", "engine-bug")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("The Pulumi CLI encountered a fatal error. This is a bug!"));
    let evs = events(&log);
    assert!(
        evs.iter()
            .all(|e| kind(e) != "cancelEvent" && kind(e) != "summaryEvent")
    );

    let o = f.run_env(
        &["stack", "ls", "--json"],
        &[
            ("FAKE_PULUMI_FAIL", "exit:3"),
            ("FAKE_PULUMI_FAIL_ON", "all"),
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    let o = f.run_env(
        &["stack", "ls", "--json"],
        &[
            ("FAKE_PULUMI_FAIL", "garbage"),
            ("FAKE_PULUMI_FAIL_ON", "stack"),
        ],
    );
    assert!(o.status.success());
    assert!(serde_json::from_slice::<Value>(&o.stdout).is_err());
    let o = f.run_env(&up, &[("FAKE_PULUMI_FAIL", "no-such-fault")]);
    assert!(stderr(&o).contains("does not know FAKE_PULUMI_FAIL=no-such-fault"));

    let o = f.run_env(&args, &[("FAKE_PULUMI_FAIL", "truncate-event-log")]);
    assert!(o.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.ends_with('\n'));
    let last = text.lines().last().unwrap();
    assert!(serde_json::from_str::<Value>(last).is_err());
    assert!(
        text.lines()
            .rev()
            .skip(1)
            .all(|l| serde_json::from_str::<Value>(l).is_ok())
    );

    let o = f.run_env(&args, &[("FAKE_PULUMI_FAIL", "garbage-events")]);
    assert!(o.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| serde_json::from_str::<Value>(l).is_err())
            .count(),
        1
    );

    // A failing resource: diagnostic with its URN, resOpFailedEvent, failed summary, exit 255.
    let g = Fake::new();
    g.init("dev");
    let log = g.log("fail.json");
    let o = g.run_env(
        &[
            "up",
            "--yes",
            "--stack",
            "dev",
            "--event-log",
            log.to_str().unwrap(),
        ],
        &[("FAKE_PULUMI_FAIL_RESOURCE", "bucket")],
    );
    assert_eq!(o.status.code(), Some(1));
    let evs = events(&log);
    let failed = evs.iter().find(|e| kind(e) == "resOpFailedEvent").unwrap();
    assert_eq!(failed["resOpFailedEvent"]["metadata"]["op"], "create");
    let diag = evs
        .iter()
        .find(|e| kind(e) == "diagnosticEvent" && e["diagnosticEvent"]["severity"] == "error")
        .unwrap();
    assert!(
        diag["diagnosticEvent"]["urn"]
            .as_str()
            .unwrap()
            .ends_with("::bucket")
    );
    assert_eq!(diag["diagnosticEvent"]["severity"], "error");
    assert_eq!(summary(&evs)["result"], "failed");
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"create": 1})
    );
    let h = g.json(&["stack", "history", "--json", "--stack", "dev"]);
    assert_eq!(h[0]["result"], "failed");

    let o = f.run(&["up", "--frobnicate", "--stack", "dev"]);
    assert_eq!(stderr(&o), "error: unknown flag: --frobnicate\n");
    let o = f.run(&["up", "--stack", "dev"]);
    assert!(stderr(&o).contains("--yes or --skip-preview must be passed"));
}

#[test]
fn a_slow_update_holds_the_lock_and_cancels_gracefully_on_sigint() {
    let f = Fake::new();
    f.init("dev");
    f.init("other");
    let log = f.log("slow.json");
    let mut slow = f
        .cmd(&[
            "up",
            "--yes",
            "--stack",
            "dev",
            "--event-log",
            log.to_str().unwrap(),
        ])
        .env("FAKE_PULUMI_SLOW", "wait-sigint")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the slow update to start", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() >= 3)
    });

    let busy = f.run(&["up", "--yes", "--stack", "dev"]);
    assert_eq!(busy.status.code(), Some(1));
    assert!(stderr(&busy).contains("the stack is currently locked by 1 lock(s)"));
    let ls = f.json(&["stack", "ls", "--json"]);
    assert_eq!(ls[0]["name"], "dev");
    f.ok(&["up", "--yes", "--stack", "other"]);
    f.ok(&["config", "set", "during", "yes", "--stack", "dev"]);

    sigint(&slow);
    let status = wait_exit(&mut slow, Duration::from_secs(10)).expect("exits after SIGINT");
    assert_eq!(status.code(), Some(1));
    let mut out = String::new();
    std::io::Read::read_to_string(slow.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(out.contains(
        "^C received; cancelling. If you would like to terminate immediately, press ^C again."
    ));
    let evs = events(&log);
    assert_eq!(kind(evs.last().unwrap()), "cancelEvent");
    assert_eq!(summary(&evs)["result"], "failed");
    assert!(evs.iter().any(|e| {
        kind(e) == "diagnosticEvent"
            && e["diagnosticEvent"]["message"]
                .as_str()
                .unwrap()
                .contains("update canceled")
    }));
    let cfg = f.json(&["config", "--json", "--stack", "dev"]);
    assert_eq!(
        cfg["demo:during"]["value"], "yes",
        "config set during an update survives it"
    );
    f.ok(&["up", "--yes", "--stack", "dev"]);
}

#[test]
fn protected_resources_refuse_deletion() {
    let f = Fake::with_program(&PROGRAM.replace(
        "      replaceOnChanges: [region]\n",
        "      replaceOnChanges: [region]\n      protect: true\n",
    ));
    f.init("dev");
    f.ok(&["up", "--yes", "--stack", "dev"]);
    let log = f.log("protect.json");
    let o = f.run(&[
        "destroy",
        "--yes",
        "--stack",
        "dev",
        "--event-log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("as it is currently marked for protection"));
    let evs = events(&log);
    assert_eq!(summary(&evs)["result"], "failed");
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"delete": 1})
    );
    let exported = f.json(&["stack", "export", "--stack", "dev"]);
    assert_eq!(
        exported["deployment"]["resources"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn cancel_removes_the_lock_of_a_running_update() {
    let f = Fake::new();
    f.init("dev");
    let log = f.log("slow.json");
    let mut slow = f
        .cmd(&[
            "destroy",
            "--yes",
            "--stack",
            "dev",
            "--event-log",
            log.to_str().unwrap(),
        ])
        .env("FAKE_PULUMI_SLOW", "wait-sigint")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the slow destroy to start", || {
        std::fs::read_to_string(&log).is_ok_and(|t| !t.is_empty())
    });
    assert_eq!(
        f.ok(&["cancel", "--yes", "--stack", "dev"]),
        "The currently running update for 'dev' has been canceled!\n"
    );
    // Like the real DIY backend, cancel only deleted the lock: the update
    // goes on to its end, and a cancel with nothing running succeeds too.
    let status = wait_exit(&mut slow, Duration::from_secs(10)).expect("ends on its own");
    assert!(status.code().is_some(), "{status:?}");
    let nothing = f.run(&["cancel", "--yes", "--stack", "dev"]);
    assert_eq!(nothing.status.code(), Some(0));
}

#[test]
fn ignore_sigint_mode_needs_sigkill() {
    let f = Fake::new();
    f.init("dev");
    let log = f.log("stuck.json");
    let mut stuck = f
        .cmd(&[
            "up",
            "--yes",
            "--stack",
            "dev",
            "--event-log",
            log.to_str().unwrap(),
        ])
        .env("FAKE_PULUMI_SLOW", "ignore-sigint")
        .env("FAKE_PULUMI_SLOW_TIMEOUT_MS", "30000")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the stuck update to start", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() >= 3)
    });
    sigint(&stuck);
    assert!(
        wait_exit(&mut stuck, Duration::from_millis(500)).is_none(),
        "SIGINT is ignored"
    );
    stuck.kill().unwrap();
    let status = wait_exit(&mut stuck, Duration::from_secs(5)).expect("SIGKILL ends it");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let locked = f.run(&["up", "--yes", "--stack", "dev"]);
    assert!(
        stderr(&locked).contains("currently locked"),
        "a killed update leaves its lock"
    );
    f.ok(&["cancel", "--yes", "--stack", "dev"]);
    f.ok(&["up", "--yes", "--stack", "dev"]);
}

#[test]
fn a_cloud_backend_prints_permalinks_and_409s() {
    let f = Fake::new();
    let cloud = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = f.cmd(args);
        c.env_remove("PULUMI_BACKEND_URL")
            .env("FAKE_PULUMI_ORG", "acme");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    assert!(cloud(&["stack", "init", "dev"], &[]).status.success());
    let up = cloud(&["up", "--yes", "--stack", "dev"], &[]);
    assert!(stdout(&up).contains("View Live: https://app.pulumi.com/acme/demo/dev/updates/1\n"));
    let ls: Value = serde_json::from_slice(&cloud(&["stack", "ls", "--json"], &[]).stdout).unwrap();
    assert_eq!(ls[0]["url"], "https://app.pulumi.com/acme/demo/dev");
    assert_eq!(ls[0]["updateInProgress"], false);
    let who: Value = serde_json::from_slice(
        &cloud(&["whoami", "--json"], &[("FAKE_PULUMI_USER", "ann")]).stdout,
    )
    .unwrap();
    assert_eq!(
        who,
        serde_json::json!({"user": "ann", "organizations": ["acme"], "url": "https://api.pulumi.com"})
    );

    let log = f.log("cloud-slow.json");
    let mut c = f.cmd(&[
        "up",
        "--yes",
        "--stack",
        "dev",
        "--event-log",
        log.to_str().unwrap(),
    ]);
    c.env_remove("PULUMI_BACKEND_URL")
        .env("FAKE_PULUMI_ORG", "acme")
        .env("FAKE_PULUMI_SLOW", "wait-sigint")
        .stdout(Stdio::null());
    let mut slow = c.spawn().unwrap();
    wait_for("the slow update", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() >= 3)
    });
    let busy = cloud(&["up", "--yes", "--stack", "dev"], &[]);
    assert_eq!(
        stderr(&busy),
        "error: [409] Conflict: Another update is currently in progress.\n"
    );
    sigint(&slow);
    assert_eq!(
        wait_exit(&mut slow, Duration::from_secs(10))
            .unwrap()
            .code(),
        Some(1)
    );
}

#[test]
fn tags_export_and_import_round_trip() {
    let f = Fake::new();
    f.init("dev");
    f.ok(&["stack", "tag", "set", "team", "core", "--stack", "dev"]);
    assert_eq!(
        f.ok(&["stack", "tag", "get", "team", "--stack", "dev"]),
        "core\n"
    );
    let tags = f.json(&["stack", "tag", "ls", "--json", "--stack", "dev"]);
    assert_eq!(tags["team"], "core");
    assert!(
        tags.get("pulumi:project").is_none(),
        "DIY backends keep only user tags"
    );
    f.ok(&["stack", "tag", "rm", "team", "--stack", "dev"]);
    let missing = f.run(&["stack", "tag", "get", "team", "--stack", "dev"]);
    assert_eq!(missing.status.code(), Some(1));

    f.ok(&["up", "--yes", "--stack", "dev"]);
    let sealed = f.ok(&["stack", "export", "--stack", "dev"]);
    assert!(!sealed.contains("hunter2"));
    let exported = f.json(&["stack", "export", "--show-secrets", "--stack", "dev"]);
    assert_eq!(exported["version"], 3);
    let resources = exported["deployment"]["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 3);
    assert_eq!(resources[0]["type"], "pulumi:pulumi:Stack");
    assert_eq!(
        resources[0]["outputs"]["password"]["4dabf18193072939515e22adb298388d"],
        "1b47061264138c4ac30d75fd1eb44270"
    );
    assert_eq!(
        resources[0]["outputs"]["password"]["plaintext"],
        "\"hunter2\""
    );

    f.init("copy");
    let file = f.log("state.json");
    std::fs::write(&file, exported.to_string()).unwrap();
    assert_eq!(
        f.ok(&[
            "stack",
            "import",
            "--file",
            file.to_str().unwrap(),
            "--stack",
            "copy"
        ]),
        "Import complete.\n"
    );
    let outputs = f.json(&[
        "stack",
        "output",
        "--json",
        "--show-secrets",
        "--stack",
        "copy",
    ]);
    assert_eq!(outputs["password"], "hunter2");
    std::fs::write(&file, "{\"version\": 99}").unwrap();
    let bad = f.run(&[
        "stack",
        "import",
        "--file",
        file.to_str().unwrap(),
        "--stack",
        "copy",
    ]);
    assert!(stderr(&bad).contains("could not deserialize deployment"));
}

#[test]
fn an_opt_in_passphrase_check_emulates_the_diy_secrets_manager() {
    let f = Fake::new();
    let strict = [("FAKE_PULUMI_REQUIRE_PASSPHRASE", "1")];
    let o = f.run_env(&["stack", "init", "dev"], &strict);
    assert_eq!(
        stderr(&o),
        "error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables\n"
    );
    let right = [
        ("FAKE_PULUMI_REQUIRE_PASSPHRASE", "1"),
        ("PULUMI_CONFIG_PASSPHRASE", "correct horse"),
    ];
    assert!(
        f.run_env(&["stack", "init", "dev"], &right)
            .status
            .success()
    );
    let file = f.log("passphrase.txt");
    std::fs::write(&file, "correct horse").unwrap();
    let from_file = [
        ("FAKE_PULUMI_REQUIRE_PASSPHRASE", "1"),
        ("PULUMI_CONFIG_PASSPHRASE_FILE", file.to_str().unwrap()),
    ];
    assert!(
        f.run_env(&["up", "--yes", "--stack", "dev"], &from_file)
            .status
            .success()
    );
    let wrong = [
        ("FAKE_PULUMI_REQUIRE_PASSPHRASE", "1"),
        ("PULUMI_CONFIG_PASSPHRASE", "battery staple"),
    ];
    let o = f.run_env(
        &[
            "stack",
            "output",
            "--json",
            "--show-secrets",
            "--stack",
            "dev",
        ],
        &wrong,
    );
    assert!(stderr(&o).starts_with("error: failed to decrypt: incorrect passphrase"));
    let o = f.run_env(&["stack", "output", "--json", "--stack", "dev"], &wrong);
    assert!(o.status.success(), "blinded outputs need no passphrase");
}

#[test]
fn refresh_reports_drift_and_suppress_outputs_hides_outputs() {
    let f = Fake::new();
    f.init("dev");
    let out = f.ok(&["up", "--yes", "--stack", "dev", "--suppress-outputs"]);
    assert!(!out.contains("Outputs:"));
    let log = f.log("drift.json");
    let o = f.run_env(
        &[
            "refresh",
            "--yes",
            "--stack",
            "dev",
            "--event-log",
            log.to_str().unwrap(),
        ],
        &[("FAKE_PULUMI_DRIFT", "bucket")],
    );
    assert!(o.status.success());
    let evs = events(&log);
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"same": 2, "update": 1})
    );
    assert!(ops(&evs, "resOutputsEvent").contains(&("update".to_owned(), "bucket".to_owned())));
    let exported = f.json(&["stack", "export", "--stack", "dev"]);
    let bucket = &exported["deployment"]["resources"][1];
    assert!(
        bucket["outputs"]["driftedAt"].is_string(),
        "the refreshed state is saved"
    );
}

/// The keys of a JSON object text, in the order they are written (Go writes struct fields in order).
fn keys_in_order(json: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let bytes = json.as_bytes();
    let (mut depth, mut i, mut in_str) = (0i32, 0usize, false);
    let mut start = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
                // A string at depth 1 followed by ':' is a key of the outer object.
                let rest = json[i + 1..].trim_start();
                if depth == 1 && rest.starts_with(':') {
                    keys.push(json[start..i].to_owned());
                }
            }
        } else {
            match c {
                b'"' => {
                    in_str = true;
                    start = i + 1;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                _ => {}
            }
        }
        i += 1;
    }
    keys
}

/// The raw text of `key`'s object value inside `json` (first occurrence).
fn raw_object<'a>(json: &'a str, key: &str) -> &'a str {
    let at = json.find(&format!("\"{key}\":{{")).unwrap() + key.len() + 3;
    let bytes = json.as_bytes();
    let (mut depth, mut in_str, mut i) = (0i32, false, at);
    loop {
        let c = bytes[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
        } else if c == b'"' {
            in_str = true;
        } else if c == b'{' {
            depth += 1;
        } else if c == b'}' {
            depth -= 1;
            if depth == 0 {
                return &json[at..=i];
            }
        }
        i += 1;
    }
}

#[test]
fn event_shapes_match_the_real_engine_fixtures() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pulumi/pulumi-lifecycle");
    let mut real: Vec<String> = Vec::new();
    for name in [
        "TestSingleResourceDefaultProviderLifecycle__-0-0.jsonl",
        "TestConstructHangsAfterRegisterResourceFailure.jsonl",
    ] {
        let text = std::fs::read_to_string(fixtures.join(name)).unwrap();
        real.extend(text.lines().map(str::to_owned));
    }
    let f = Fake::new();
    f.init("dev");
    let log = f.log("shape.json");
    let o = f.run_env(
        &[
            "up",
            "--yes",
            "--stack",
            "dev",
            "--event-log",
            log.to_str().unwrap(),
        ],
        &[("FAKE_PULUMI_FAIL_RESOURCE", "object")],
    );
    assert_eq!(o.status.code(), Some(1));
    let fake: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let find = |lines: &[String], kind: &str, op: Option<&str>| -> String {
        lines
            .iter()
            .find(|l| {
                l.contains(&format!("\"{kind}\":"))
                    && op.is_none_or(|op| l.contains(&format!("\"op\":\"{op}\"")))
                    && (kind != "diagnosticEvent" || l.contains("\"urn\""))
                    && (!kind.starts_with("res") || l.contains("\"custom\":true"))
            })
            .unwrap_or_else(|| panic!("no {kind} {op:?}"))
            .clone()
    };
    for (kind, op) in [
        ("preludeEvent", None),
        ("resourcePreEvent", Some("create")),
        ("resOutputsEvent", Some("create")),
        ("diagnosticEvent", None),
        ("resOpFailedEvent", Some("create")),
        ("summaryEvent", None),
        ("cancelEvent", None),
    ] {
        let (r, k) = (find(&real, kind, op), find(&fake, kind, op));
        assert_eq!(keys_in_order(&k), keys_in_order(&r), "{kind} framing");
        let (rp, kp) = (raw_object(&r, kind), raw_object(&k, kind));
        assert_eq!(
            keys_in_order(kp),
            keys_in_order(rp),
            "{kind} payload fields"
        );
        if kind.starts_with("res") {
            let (rm, km) = (raw_object(rp, "metadata"), raw_object(kp, "metadata"));
            assert_eq!(
                keys_in_order(km),
                keys_in_order(rm),
                "{kind} metadata fields"
            );
            let (rn, kn) = (raw_object(rm, "new"), raw_object(km, "new"));
            assert_eq!(keys_in_order(kn), keys_in_order(rn), "{kind} state fields");
        }
    }
}

#[test]
fn continue_on_error_skips_dependents_and_expect_no_changes_fails_on_changes() {
    let program = format!(
        "{PROGRAM}  lone:\n    type: random:index:RandomPet\n    properties:\n      length: 2\n"
    )
    .replace("outputs:\n", "")
    .replace("  bucketName: ${bucket.id}\n  password:\n    fn::secret: hunter2\n  greeting: ${greeting}\n", "");
    let program = format!("{program}outputs:\n  n: 1\n");
    let f = Fake::with_program(&program);
    f.init("dev");
    let log = f.log("coe.json");
    let o = f.run_env(
        &[
            "up",
            "--yes",
            "--continue-on-error",
            "--stack",
            "dev",
            "--event-log",
            log.to_str().unwrap(),
        ],
        &[("FAKE_PULUMI_FAIL_RESOURCE", "bucket")],
    );
    assert_eq!(o.status.code(), Some(1));
    let evs = events(&log);
    let pre: Vec<String> = ops(&evs, "resourcePreEvent")
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(
        pre,
        ["demo-dev", "bucket", "lone"],
        "object depends on the failed bucket"
    );
    assert_eq!(
        summary(&evs)["resourceChanges"],
        serde_json::json!({"create": 2})
    );

    let g = Fake::new();
    g.init("dev");
    let o = g.run(&["preview", "--expect-no-changes", "--stack", "dev"]);
    assert_eq!(o.status.code(), Some(7));
    assert!(stderr(&o).contains("no changes were expected for preview"));
    g.ok(&["up", "--yes", "--stack", "dev"]);
    g.ok(&["up", "--yes", "--expect-no-changes", "--stack", "dev"]);
}
