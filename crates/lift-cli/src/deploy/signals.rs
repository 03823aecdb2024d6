//! Interrupts while an operation runs: SIGINT (Ctrl-C), SIGTERM (a CI job
//! cancelled, a pod stopped) and SIGHUP (an SSH session dropped) all cancel
//! it the same way: pulumi gets SIGINT, finishes the steps in flight, writes
//! its state and releases the lock, within the grace period. A second signal
//! kills it at once.

use std::time::Duration;

use lift::pulumi::CancellationToken;
use tokio::signal::unix::{SignalKind, signal};

/// What the signal watcher tells the operation.
pub(crate) struct Interrupts {
    /// Cancelled by the first signal: interrupt pulumi and wait for it.
    pub(crate) cancel: CancellationToken,
    /// Cancelled by the second: kill pulumi now.
    pub(crate) kill: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Interrupts {
    /// Watches SIGINT, SIGTERM and SIGHUP until dropped. `notice` is called
    /// with what lift does about each signal.
    pub(crate) fn watch(grace: Duration, notice: impl Fn(String) + Send + 'static) -> Self {
        let cancel = CancellationToken::new();
        let kill = CancellationToken::new();
        let (c, k) = (cancel.clone(), kill.clone());
        // Registered here, before pulumi starts, not inside the task: a signal
        // that arrived before the task first ran would otherwise take its
        // default action and end lift with pulumi still running.
        let registered = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        );
        let task = tokio::spawn(async move {
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = registered else {
                return;
            };
            let mut seen = 0;
            loop {
                let name = tokio::select! {
                    _ = int.recv() => "interrupt",
                    _ = term.recv() => "SIGTERM",
                    _ = hup.recv() => "SIGHUP",
                };
                seen += 1;
                if seen == 1 {
                    notice(format!(
                        "{name} received: cancelling; waiting up to {} s for pulumi to stop and release the stack (Ctrl-C again to force)",
                        grace.as_secs()
                    ));
                    c.cancel();
                } else {
                    notice(format!(
                        "{name} received again: killing pulumi now; the stack may stay locked (`lift deploy cancel` releases it)"
                    ));
                    k.cancel();
                    return;
                }
            }
        });
        Interrupts { cancel, kill, task }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.task.abort();
    }
}
