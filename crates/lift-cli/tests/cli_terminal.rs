//! Colour on a real terminal: `--color auto|always|never`, `NO_COLOR`, and
//! log lines without escape codes when stderr is not a terminal. The
//! terminal is a pseudo-terminal, so that the binary's own terminal checks
//! answer as they would for a person.

#![allow(
    clippy::unwrap_used,
    reason = "tests unwrap: a failure is the test failing"
)]

use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

const ESC: u8 = 0x1b;

/// Which of the child's streams are the terminal; the others are pipes.
#[derive(Clone, Copy)]
enum OnTerminal {
    Stdout,
    Stderr,
}

struct Run {
    /// What the child wrote to the terminal.
    terminal: Vec<u8>,
    /// What it wrote to the other stream, a pipe.
    piped: Vec<u8>,
    code: Option<i32>,
}

impl Run {
    fn terminal_has_escapes(&self) -> bool {
        self.terminal.contains(&ESC)
    }

    fn piped_has_escapes(&self) -> bool {
        self.piped.contains(&ESC)
    }

    fn text(&self) -> String {
        format!(
            "exit {:?}\nterminal:\n{}\npiped:\n{}",
            self.code,
            String::from_utf8_lossy(&self.terminal),
            String::from_utf8_lossy(&self.piped)
        )
    }
}

/// Runs `lift demo` in a new directory with one stream on a pseudo-terminal.
fn demo(on: OnTerminal, flags: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = flags.iter().map(|s| (*s).to_owned()).collect();
    args.extend(["demo".to_owned(), "--dir".to_owned()]);
    args.push(dir.path().join("demo").display().to_string());
    args.push("--remove".to_owned());
    lift_on_terminal(on, &args, env)
}

/// Runs `lift --plaintext list` on a new store, which logs a warning: a
/// plaintext store is for development only.
fn warning(on: OnTerminal, env: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    // An existing (empty) store: a read never creates one.
    std::fs::create_dir(dir.path().join("store")).unwrap();
    std::fs::set_permissions(
        dir.path().join("store"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let store = dir.path().join("store").display().to_string();
    let args = ["secrets", "--plaintext", "--store", &store, "list"].map(str::to_owned);
    lift_on_terminal(on, &args, env)
}

/// Runs `lift ARGS` with one stream on a pseudo-terminal and the other on a pipe.
fn lift_on_terminal(on: OnTerminal, args: &[String], env: &[(&str, &str)]) -> Run {
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave: OwnedFd = pty.slave;
    let mut command = Command::new(env!("CARGO_BIN_EXE_lift"));
    command
        .args(args)
        // No pulumi: the deploy step is skipped, whatever the machine has.
        .env("PATH", "/usr/bin:/bin")
        .env_remove("LIFT_PULUMI")
        .env_remove("LIFT_AUDIT_LOG")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    match on {
        OnTerminal::Stdout => command
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::piped()),
        OnTerminal::Stderr => command
            .stderr(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::piped()),
    };
    let mut child = command.spawn().unwrap();
    // Only the child holds the terminal's slave side now (the command kept a
    // copy too), so reading the master ends (EIO) when the child exits.
    drop(command);
    drop(slave);
    let master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut master = master;
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
        bytes
    });
    let mut piped = Vec::new();
    match on {
        OnTerminal::Stdout => child.stderr.take().unwrap().read_to_end(&mut piped),
        OnTerminal::Stderr => child.stdout.take().unwrap().read_to_end(&mut piped),
    }
    .unwrap();
    let status = child.wait().unwrap();
    let terminal = reader.join().unwrap();
    Run {
        terminal,
        piped,
        code: status.code(),
    }
}

#[test]
fn a_terminal_is_coloured_by_default() {
    let run = demo(OnTerminal::Stdout, &[], &[]);
    assert_eq!(run.code, Some(0), "{}", run.text());
    let terminal = String::from_utf8_lossy(&run.terminal);
    assert!(terminal.contains("\x1b[32mok\x1b[0m"), "{}", run.text());
}

#[test]
fn no_color_turns_colour_off_on_a_terminal() {
    for empty_means_unset in [false, true] {
        let value = if empty_means_unset { "" } else { "1" };
        let run = demo(OnTerminal::Stdout, &[], &[("NO_COLOR", value)]);
        assert_eq!(run.code, Some(0), "{}", run.text());
        assert_eq!(
            run.terminal_has_escapes(),
            empty_means_unset,
            "NO_COLOR={value:?}: {}",
            run.text()
        );
    }
}

#[test]
fn color_flag_wins_over_terminal_and_no_color() {
    let never = demo(OnTerminal::Stdout, &["--color", "never"], &[]);
    assert!(!never.terminal_has_escapes(), "{}", never.text());
    // `always` colours a pipe, and wins over NO_COLOR.
    let always = demo(
        OnTerminal::Stderr,
        &["--color", "always"],
        &[("NO_COLOR", "1")],
    );
    assert!(always.piped_has_escapes(), "{}", always.text());
    assert!(
        String::from_utf8_lossy(&always.piped).contains("\x1b[32mok"),
        "{}",
        always.text()
    );
}

#[test]
fn log_lines_carry_escapes_only_on_a_terminal() {
    // stderr is a pipe: the warning is plain.
    let piped = warning(OnTerminal::Stdout, &[]);
    assert_eq!(piped.code, Some(0), "{}", piped.text());
    let logs = String::from_utf8_lossy(&piped.piped).into_owned();
    assert!(
        logs.contains("WARN"),
        "no log line to check: {}",
        piped.text()
    );
    assert!(!piped.piped_has_escapes(), "{}", piped.text());

    // stderr is a terminal: the warning is coloured, unless NO_COLOR says no.
    let coloured = warning(OnTerminal::Stderr, &[]);
    assert!(
        String::from_utf8_lossy(&coloured.terminal).contains("WARN"),
        "{}",
        coloured.text()
    );
    assert!(coloured.terminal_has_escapes(), "{}", coloured.text());
    let plain = warning(OnTerminal::Stderr, &[("NO_COLOR", "1")]);
    assert!(
        String::from_utf8_lossy(&plain.terminal).contains("WARN"),
        "{}",
        plain.text()
    );
    assert!(!plain.terminal_has_escapes(), "{}", plain.text());
}

#[test]
fn health_honours_no_color_and_the_color_flag_on_a_terminal() {
    let health = |flags: &[&str], env: &[(&str, &str)]| {
        let mut args: Vec<String> = flags.iter().map(|s| (*s).to_owned()).collect();
        args.push("health".to_owned());
        lift_on_terminal(OnTerminal::Stdout, &args, env)
    };
    let coloured = health(&[], &[]);
    assert!(coloured.terminal_has_escapes(), "{}", coloured.text());
    let no_color = health(&[], &[("NO_COLOR", "1")]);
    assert!(
        String::from_utf8_lossy(&no_color.terminal).contains("STATUS"),
        "{}",
        no_color.text()
    );
    assert!(!no_color.terminal_has_escapes(), "{}", no_color.text());
    let never = health(&["--color", "never"], &[]);
    assert!(!never.terminal_has_escapes(), "{}", never.text());
    let always = health(&["--color", "always"], &[("NO_COLOR", "1")]);
    assert!(always.terminal_has_escapes(), "{}", always.text());
}
