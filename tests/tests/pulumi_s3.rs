//! Pulumi state beyond one machine: two workspaces, standing for two
//! machines (separate project directories and `PULUMI_HOME`s), drive one
//! stack whose state lives in an S3 bucket, with the real pinned CLI and
//! moto's server as the S3 endpoint.
//!
//! Needs the real CLI (see `pulumi_real.rs`) and `LIFT_TEST_MOTO=1` with
//! `moto_server` installed (`pip install "moto[server]"`); `cargo xtask ci`
//! runs it.

#![allow(
    clippy::print_stderr,
    clippy::unwrap_used,
    reason = "a skip says why; a failure should panic"
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lift::pulumi::{ConfigOptions, ConfigValue, OpOptions, Workspace};
use lift_core::{Classify, ErrorKind, OutputValue, SecretValue};
use lift_tests::moto::{self, MotoServer};
use lift_tests::scenario::{self, PASSPHRASE};
use real_common::{language_dir, path_with, real_pulumi, slow_host_path};

mod real_common;

const BUCKET: &str = "lift-pulumi-state";

/// One raw HTTP request to moto (path-style S3 needs no signature there).
fn http(endpoint: &str, method: &str, path: &str) -> String {
    let address = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Whether an update holds the stack's lock in the bucket.
fn locked(endpoint: &str) -> bool {
    http(
        endpoint,
        "GET",
        &format!("/{BUCKET}?list-type=2&prefix=.pulumi/locks/"),
    )
    .contains("<Key>")
}

/// A machine: its own project directory and `PULUMI_HOME`.
struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("project")).unwrap();
        let program = scenario::scenarios_dir().join("programs/outputs/Pulumi.yaml");
        std::fs::copy(program, dir.path().join("project/Pulumi.yaml")).unwrap();
        Machine { dir }
    }

    fn project(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    async fn workspace(
        &self,
        pulumi: &Path,
        endpoint: &str,
        path: std::ffi::OsString,
    ) -> Workspace {
        Workspace::builder(self.project())
            .pulumi(pulumi)
            .backend_url(format!(
                "s3://{BUCKET}?endpoint={endpoint}&s3ForcePathStyle=true&region=us-east-1"
            ))
            .secret_env("AWS_ACCESS_KEY_ID", SecretValue::from("testing"))
            .secret_env("AWS_SECRET_ACCESS_KEY", SecretValue::from("testing"))
            .env("AWS_REGION", "us-east-1")
            .pulumi_home(self.dir.path().join("home"))
            .passphrase(SecretValue::from(PASSPHRASE))
            .env("PATH", path)
            .build()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_machines_share_one_stack_in_s3() {
    let Some(pulumi) = real_pulumi() else {
        return;
    };
    if !moto::enabled("two_machines_share_one_stack_in_s3") {
        return;
    }
    let server = MotoServer::start().unwrap();
    let endpoint = server.endpoint();
    assert!(http(&endpoint, "PUT", &format!("/{BUCKET}")).starts_with("HTTP/1.1 200"));

    let laptop = Machine::new();
    let runner = Machine::new();
    let fast = path_with(&language_dir(&pulumi));
    let a = laptop.workspace(&pulumi, &endpoint, fast.clone()).await;
    let dev = a.create_stack("dev".parse().unwrap()).await.unwrap();
    dev.config_set(
        "token",
        &ConfigValue::Secret(SecretValue::from("shared-secret")),
        ConfigOptions::default(),
    )
    .await
    .unwrap();
    // The stack's config file is part of the project, as a team commits it.
    std::fs::copy(
        laptop.project().join("Pulumi.dev.yaml"),
        runner.project().join("Pulumi.dev.yaml"),
    )
    .unwrap();
    let b = runner.workspace(&pulumi, &endpoint, fast.clone()).await;
    let b_dev = b.select_stack("dev".parse().unwrap()).await.unwrap();

    // While the laptop's update runs, the runner's is refused as a conflict.
    let slow = laptop
        .workspace(
            &pulumi,
            &endpoint,
            slow_host_path(laptop.dir.path(), &pulumi, 6),
        )
        .await;
    let first = slow.stack("dev".parse().unwrap());
    let running = tokio::spawn(async move {
        first
            .up(OpOptions::default().message("from the laptop"))
            .await
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while !locked(&endpoint) {
        assert!(
            Instant::now() < deadline,
            "the laptop's update never took the lock"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = b_dev.up(OpOptions::default()).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict, "{refused}");
    let laptop_up = running.await.unwrap().unwrap();
    assert_eq!(laptop_up.summary.result, lift::DeployResult::Succeeded);

    // Afterwards each sees the other's outputs and history.
    let outputs = b_dev.outputs().await.unwrap();
    assert_eq!(
        outputs["greeting"],
        OutputValue::Plain("hello <world> & more".into())
    );
    assert!(matches!(&outputs["token"], OutputValue::Secret(s) if s.expose() == b"shared-secret"));
    let history = b_dev.history(5).await.unwrap();
    assert_eq!(history[0].message, "from the laptop");
    b_dev
        .up(OpOptions::default().message("from the runner"))
        .await
        .unwrap();
    let seen = dev.history(5).await.unwrap();
    assert_eq!(seen[0].message, "from the runner");
    assert_eq!(seen[1].message, "from the laptop");
    drop(server);
}
