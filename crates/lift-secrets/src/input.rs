//! Reading a secret value the way a command line must: bounded, without stray copies,
//! and hidden on a terminal; and keeping the process's memory out of core dumps.

use std::io::{IsTerminal, Read, Write};

use lift_core::SecretValue;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// Reads one secret value of at most `limit` bytes.
///
/// On a terminal, `prompt` is printed on stderr and the typed line is read with echo
/// off, as `pulumi config set --secret` does. Otherwise the whole of stdin is the
/// value. One trailing newline is stripped either way.
///
/// At most `limit` + 2 bytes are read, into one buffer allocated up front that never
/// grows (a growing buffer leaves copies of the value in freed memory), and wiped
/// when dropped. More input than that is refused with [`Error::ValueTooLarge`]-like
/// bad input, without reading the rest: `yes | lift secrets put x` stops at once.
pub fn read_value(name: &str, prompt: &str, limit: usize) -> Result<SecretValue> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        // Echo goes off before the prompt shows, so that nothing typed once
        // the prompt is visible can be echoed.
        let _echo_off = EchoOff::new(&stdin)?;
        let mut err = std::io::stderr().lock();
        // A failed prompt is cosmetic: the read below still works.
        let _ = write!(err, "{prompt}").and_then(|()| err.flush());
        drop(err);
        read_bounded(name, &mut stdin.lock(), limit, true)
    } else {
        read_bounded(name, &mut stdin.lock(), limit, false)
    }
}

/// Reads a value of at most `limit` bytes from `reader` (up to the first newline when
/// `line` is set), stripping one trailing newline. See [`read_value`].
pub(crate) fn read_bounded(
    name: &str,
    reader: &mut impl Read,
    limit: usize,
    line: bool,
) -> Result<SecretValue> {
    // limit + 1 bytes of value and one newline; one more byte tells "too long" apart.
    let capacity = limit.saturating_add(2);
    let mut buffer = Zeroizing::new(vec![0u8; capacity]);
    let mut filled = 0;
    while filled < capacity {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                let end = filled + n;
                if line {
                    if let Some(at) = buffer[filled..end].iter().position(|b| *b == b'\n') {
                        filled += at + 1;
                        break;
                    }
                }
                filled = end;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::InvalidInput(format!(
                    "cannot read the value of secret {name} from stdin: {e}"
                )));
            }
        }
    }
    let mut len = filled;
    if len > 0 && buffer[len - 1] == b'\n' {
        len -= 1;
    }
    if len > limit {
        return Err(Error::InvalidInput(format!(
            "the value for secret {name} is longer than {limit} bytes, the limit (AWS Secrets Manager's is 65536); nothing was stored"
        )));
    }
    if len == 0 {
        return Err(Error::InvalidInput(format!(
            "the value for secret {name} is empty; pipe the value in, for example `printf %s \"$VALUE\" | lift secrets put {name}`, or type it at the prompt"
        )));
    }
    // An exact-size copy, so that turning it into a boxed slice does not reallocate;
    // the large buffer is wiped when it drops.
    Ok(SecretValue::new(buffer[..len].to_vec()))
}

/// Turns terminal echo off until dropped.
struct EchoOff<'a> {
    stdin: &'a std::io::Stdin,
    original: nix::sys::termios::Termios,
}

impl<'a> EchoOff<'a> {
    fn new(stdin: &'a std::io::Stdin) -> Result<Self> {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        let fail = |e: nix::errno::Errno| {
            Error::InvalidInput(format!(
                "cannot turn terminal echo off to read the value ({e}); pipe the value in instead"
            ))
        };
        let original = tcgetattr(stdin).map_err(fail)?;
        let mut silent = original.clone();
        silent.local_flags.remove(LocalFlags::ECHO);
        // Still echo the final newline, so that the next output starts on its own line.
        silent.local_flags.insert(LocalFlags::ECHONL);
        // TCSANOW, not TCSAFLUSH: input typed ahead of the prompt is kept, not dropped.
        tcsetattr(stdin, SetArg::TCSANOW, &silent).map_err(fail)?;
        Ok(EchoOff { stdin, original })
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        use nix::sys::termios::{SetArg, tcsetattr};
        if let Err(e) = tcsetattr(self.stdin, SetArg::TCSANOW, &self.original) {
            tracing::warn!(error = %e, "cannot turn terminal echo back on; run `stty echo`");
        }
    }
}

/// Keeps this process's memory, which holds keys and values, out of core dumps and
/// away from other processes of the same user (`PR_SET_DUMPABLE` 0 on Linux, which
/// also refuses `ptrace` attaches and `/proc/<pid>/mem` reads by them).
///
/// Call it first thing in a command that handles secrets. On other systems it does nothing.
pub fn harden_process() -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_dumpable(false).map_err(|e| {
            Error::io(
                "disable core dumps of",
                "this process",
                std::io::Error::from(e),
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that would go on for ever, counting what was taken from it.
    struct Endless {
        taken: usize,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            buf.fill(b'y');
            self.taken += buf.len();
            Ok(buf.len())
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_hardened_process_is_not_dumpable() {
        harden_process().unwrap();
        assert!(!nix::sys::prctl::get_dumpable().unwrap());
    }

    #[test]
    fn endless_input_is_refused_after_limit_plus_two_bytes() {
        let mut endless = Endless { taken: 0 };
        let err = read_bounded("x", &mut endless, 1024, false).unwrap_err();
        assert!(err.to_string().contains("longer than 1024 bytes"), "{err}");
        assert_eq!(endless.taken, 1026, "reads no more than limit + 2 bytes");
    }

    #[test]
    fn values_up_to_the_limit_are_read_and_one_newline_stripped() {
        let exact = vec![b'a'; 16];
        let value = read_bounded("x", &mut &exact[..], 16, false).unwrap();
        assert_eq!(value.len(), 16);
        let mut with_newline = exact.clone();
        with_newline.push(b'\n');
        assert_eq!(
            read_bounded("x", &mut &with_newline[..], 16, false)
                .unwrap()
                .len(),
            16
        );
        let mut two = with_newline.clone();
        two.push(b'\n');
        assert!(
            read_bounded("x", &mut &two[..], 16, false).is_err(),
            "17 bytes of value"
        );
        assert!(
            read_bounded("x", &mut &b"\n"[..], 16, false).is_err(),
            "empty"
        );
        let lines = b"first\nsecond\n";
        assert_eq!(
            read_bounded("x", &mut &lines[..], 64, true)
                .unwrap()
                .expose(),
            b"first"
        );
        assert_eq!(
            read_bounded("x", &mut &lines[..], 64, false)
                .unwrap()
                .expose(),
            b"first\nsecond"
        );
    }
}
