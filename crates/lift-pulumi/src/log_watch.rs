//! The wake-ups of the event-log reader: on Linux an inotify watch on the log's
//! directory wakes it on each write; elsewhere there is none and the reader polls.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Notify;

#[cfg(target_os = "linux")]
use nix::errno::Errno;
#[cfg(target_os = "linux")]
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

/// An inotify watch on the event log's directory: each write to a file in it
/// (and its creation) wakes [`LogWatch::wakeups`].
///
/// A thread blocks on the inotify descriptor and turns its events into
/// wake-ups, so delivery does not wait for a poll interval. Dropping the
/// watch removes it, which ends the thread (the kernel then queues
/// `IN_IGNORED`); so does removing the directory.
#[cfg(target_os = "linux")]
pub(crate) struct LogWatch {
    inotify: Arc<Inotify>,
    watch: WatchDescriptor,
    wakeups: Arc<Notify>,
}

#[cfg(target_os = "linux")]
impl LogWatch {
    /// Watches `dir`, or returns `None` when inotify is unavailable (the
    /// caller then polls).
    pub(crate) fn start(dir: &Path) -> Option<LogWatch> {
        let inotify = match Inotify::init(InitFlags::IN_CLOEXEC) {
            Ok(inotify) => Arc::new(inotify),
            Err(err) => {
                tracing::debug!(%err, "no inotify; the event log is polled");
                return None;
            }
        };
        let watch = match inotify.add_watch(
            dir,
            AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CREATE | AddWatchFlags::IN_CLOSE_WRITE,
        ) {
            Ok(watch) => watch,
            Err(err) => {
                tracing::debug!(%err, "cannot watch the event log; it is polled");
                return None;
            }
        };
        let wakeups = Arc::new(Notify::new());
        let reader = Arc::clone(&inotify);
        let woken = Arc::clone(&wakeups);
        let spawned = std::thread::Builder::new()
            .name("lift-pulumi-event-log".to_owned())
            .spawn(move || {
                loop {
                    match reader.read_events() {
                        Ok(events) => {
                            woken.notify_one();
                            if events
                                .iter()
                                .any(|e| e.mask.contains(AddWatchFlags::IN_IGNORED))
                            {
                                return;
                            }
                        }
                        Err(Errno::EINTR) => {}
                        Err(err) => {
                            tracing::debug!(%err, "reading inotify events failed");
                            return;
                        }
                    }
                }
            });
        if let Err(err) = spawned {
            tracing::debug!(%err, "cannot start the event log watcher; it is polled");
            let _ = inotify.rm_watch(watch);
            return None;
        }
        Some(LogWatch {
            inotify,
            watch,
            wakeups,
        })
    }

    /// Notified after each batch of writes.
    pub(crate) fn wakeups(&self) -> Arc<Notify> {
        Arc::clone(&self.wakeups)
    }
}

#[cfg(target_os = "linux")]
impl Drop for LogWatch {
    fn drop(&mut self) {
        // Fails only when the watch is already gone (the directory was removed).
        let _ = self.inotify.rm_watch(self.watch);
    }
}

/// Without inotify there is no watch: [`LogWatch::start`] returns `None` and the
/// reader polls the log.
#[cfg(not(target_os = "linux"))]
pub(crate) enum LogWatch {}

#[cfg(not(target_os = "linux"))]
impl LogWatch {
    /// Always `None` off Linux: the caller polls.
    pub(crate) fn start(_dir: &Path) -> Option<LogWatch> {
        None
    }

    /// Never called: there is no watch off Linux.
    pub(crate) fn wakeups(&self) -> Arc<Notify> {
        match *self {}
    }
}

/// Like the Linux watch, dropped when the operation ends (there is nothing to end).
#[cfg(not(target_os = "linux"))]
impl Drop for LogWatch {
    fn drop(&mut self) {
        match *self {}
    }
}
