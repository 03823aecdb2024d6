//! `lift health --pid` on pids that are not a live process: a zombie, a thread of another
//! process, a process that exits while it is measured, and a process with no descriptors.
//! Each test runs real processes (or a real thread of this one).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lift_core::{Classify, ErrorKind};
use lift_monitor::{Error, ProcessOptions, sample_process};

mod support;

use support::KillOnDrop;

/// The state letter of `/proc/PID/stat` (after the parenthesised command name).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Waits until process `pid` is in state `want`.
fn wait_for_state(pid: u32, want: char) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(pid) != Some(want) {
        assert!(
            Instant::now() < deadline,
            "{pid} never reached state {want}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn short() -> ProcessOptions {
    ProcessOptions::default().cpu_window(Duration::from_millis(200))
}

/// A child that has exited and that this process has not waited for is a zombie: no
/// figures of it are invented, and the error says what it is.
#[tokio::test]
async fn a_zombie_is_named_not_measured() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    wait_for_state(pid, 'Z');
    let result = sample_process(pid, &short()).await;
    child.wait().unwrap();
    let err = result.unwrap_err();
    assert!(
        matches!(err, Error::Zombie { pid: p, parent } if p == pid && parent == std::process::id()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "process {pid} is a zombie (exited, not yet reaped by its parent, process {})",
            std::process::id()
        )
    );
    // Not the caller's mistake: the CLI exits 1, not 2.
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// The descriptor count is the number of entries of `/proc/PID/fd`, without `.` and `..`.
#[tokio::test]
async fn the_descriptor_count_is_the_listing() {
    let child = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let pid = child.0.id();
    // Until the child has exec'd `sleep`, it holds this process's descriptors that are
    // closed on exec: list them only after.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap() != "sleep\n" {
        assert!(Instant::now() < deadline, "the child did not exec sleep");
        std::thread::sleep(Duration::from_millis(5));
    }
    let listed = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    let sample = sample_process(pid, &short()).await.unwrap();
    assert_eq!(sample.snapshot.fds.open, Some(listed));
    assert_eq!(sample.snapshot.threads, Some(1));
}

/// A thread's id has a `/proc` directory too; it is refused, naming its process.
#[tokio::test]
async fn a_thread_id_is_refused_with_its_process() {
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        // "/proc/thread-self" links to "PID/task/TID".
        let link = std::fs::read_link("/proc/thread-self").unwrap();
        let tid: u32 = link.file_name().unwrap().to_str().unwrap().parse().unwrap();
        tid_tx.send(tid).unwrap();
        let _ = done_rx.recv();
    });
    let tid = tid_rx.recv().unwrap();
    let process = std::process::id();
    assert_ne!(tid, process);
    let result = sample_process(tid, &short()).await;
    done_tx.send(()).unwrap();
    thread.join().unwrap();
    let err = result.unwrap_err();
    assert!(
        matches!(err, Error::ThreadOfProcess { tid: t, process: p } if t == tid && p == process),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("{tid} is a thread of process {process}; pass --pid {process}")
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// A process that exits during the CPU window, whether or not its parent reaps it by the
/// time the window ends, was a valid pid: the error says it exited, and is not bad input.
#[tokio::test]
async fn a_process_that_exits_while_measured_is_not_bad_input() {
    for reaped in [false, true] {
        let mut child = Command::new("sleep").arg("0.3").spawn().unwrap();
        let pid = child.id();
        let options = ProcessOptions::default().cpu_window(Duration::from_millis(1500));
        let err = if reaped {
            let reaper = std::thread::spawn(move || child.wait().unwrap());
            let result = sample_process(pid, &options).await;
            reaper.join().unwrap();
            result.unwrap_err()
        } else {
            let result = sample_process(pid, &options).await;
            // Still a zombie: it exited during the window, and nobody has reaped it.
            assert_eq!(state(pid), Some('Z'));
            child.wait().unwrap();
            result.unwrap_err()
        };
        assert!(
            matches!(err, Error::ProcessExited { pid: p } if p == pid),
            "reaped {reaped}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("process {pid} exited while it was measured")
        );
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
