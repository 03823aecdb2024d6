//! SIGINT handling for the slow modes, without `unsafe`: the signal is blocked and collected with
//! `sigwait(2)` on a helper thread.

use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

/// What ended a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// SIGINT arrived.
    Interrupted,
    /// The `still_ok` check turned false (e.g. `pulumi cancel` removed the lock).
    Cancelled,
    /// The timeout elapsed.
    TimedOut,
}

/// Blocks SIGINT for the whole process and delivers each one on a channel.
pub(crate) struct Interrupts {
    rx: Receiver<()>,
}

impl Interrupts {
    /// Starts collecting SIGINTs. Must be called before any other thread is spawned.
    pub(crate) fn install() -> Option<Interrupts> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.thread_block().ok()?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            while let Ok(sig) = set.wait() {
                if sig == Signal::SIGINT && tx.send(()).is_err() {
                    break;
                }
            }
        });
        Some(Interrupts { rx })
    }

    /// Waits for a SIGINT, until `timeout`, or until `still_ok` returns false (polled every 20 ms).
    pub(crate) fn wait(&self, timeout: Duration, still_ok: &dyn Fn() -> bool) -> Woken {
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Woken::TimedOut;
            }
            let slice = (deadline - now).min(Duration::from_millis(20));
            match self.rx.recv_timeout(slice) {
                Ok(()) => return Woken::Interrupted,
                Err(RecvTimeoutError::Disconnected) => return Woken::TimedOut,
                Err(RecvTimeoutError::Timeout) => {
                    if !still_ok() {
                        return Woken::Cancelled;
                    }
                }
            }
        }
    }
}

/// Blocks SIGINT and never collects it, so that only SIGKILL (or the timeout) ends the process.
pub(crate) fn ignore_sigint() {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    let _ = set.thread_block();
}
