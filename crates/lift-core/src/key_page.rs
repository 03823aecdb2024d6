//! Key bytes on memory pages of their own: locked into RAM and left out of
//! core dumps where the operating system allows it.
//!
//! A long-lived key (the secret store's key, the audit chain's key) is held
//! in a private anonymous mapping rather than on the heap, so that no other
//! allocation shares its page. That page is locked (`mlock`), so it is never
//! written to swap, and marked `MADV_DONTDUMP`, so a core dump leaves it out
//! even in a process that is still dumpable. Both are best effort: a
//! `RLIMIT_MEMLOCK` too small to lock one more page, or a system without
//! `MADV_DONTDUMP`, leaves the key usable and says so through
//! [`KeyPage::protection`]. The bytes are wiped before the page is unmapped.
//!
//! Copies made while the key is used (a cipher's key schedule, an HMAC
//! state) live where those libraries keep them; they are short-lived and
//! wiped by the libraries that zeroize on drop.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// What the operating system granted for a key's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageProtection {
    /// The page is locked into RAM (`mlock`): it is never swapped out.
    pub locked: bool,
    /// The page is excluded from core dumps (`MADV_DONTDUMP`).
    pub excluded_from_dumps: bool,
}

enum Storage {
    /// A private anonymous mapping holding only this key.
    Mapped(memmap2::MmapMut),
    /// Where no mapping could be made: the heap, still wiped on drop.
    Heap(Zeroizing<Vec<u8>>),
}

/// Key bytes on a memory page of their own: a private anonymous mapping
/// that no other allocation shares, locked into RAM (`mlock`) so it is never
/// swapped out, and marked `MADV_DONTDUMP` so a core dump leaves it out.
/// Both are best effort ([`KeyPage::protection`] says what was granted);
/// the bytes are wiped before the page is unmapped.
///
/// Cloning maps a new page. `Debug` never shows the bytes.
pub struct KeyPage {
    storage: Storage,
    len: usize,
    protection: PageProtection,
}

impl KeyPage {
    /// Copies `bytes` onto a fresh page, locks it and excludes it from core
    /// dumps where the system allows. The caller should wipe its own copy.
    pub fn new(bytes: &[u8]) -> KeyPage {
        let len = bytes.len();
        match memmap2::MmapMut::map_anon(len.max(1)) {
            Ok(mut map) => {
                map[..len].copy_from_slice(bytes);
                let locked = map.lock().is_ok();
                let excluded_from_dumps = exclude_from_dumps(&map);
                KeyPage {
                    storage: Storage::Mapped(map),
                    len,
                    protection: PageProtection {
                        locked,
                        excluded_from_dumps,
                    },
                }
            }
            // Out of mappings or address space: the key still works, on the
            // heap, and `protection` says that nothing was granted.
            Err(_) => KeyPage {
                storage: Storage::Heap(Zeroizing::new(bytes.to_vec())),
                len,
                protection: PageProtection {
                    locked: false,
                    excluded_from_dumps: false,
                },
            },
        }
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8] {
        match &self.storage {
            Storage::Mapped(map) => &map[..self.len],
            Storage::Heap(bytes) => bytes,
        }
    }

    /// What the operating system granted for this key's page.
    pub fn protection(&self) -> PageProtection {
        self.protection
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn exclude_from_dumps(map: &memmap2::MmapMut) -> bool {
    map.advise(memmap2::Advice::DontDump).is_ok()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn exclude_from_dumps(_map: &memmap2::MmapMut) -> bool {
    false
}

impl Clone for KeyPage {
    fn clone(&self) -> Self {
        KeyPage::new(self.expose())
    }
}

impl Drop for KeyPage {
    fn drop(&mut self) {
        if let Storage::Mapped(map) = &mut self.storage {
            map[..].zeroize();
        }
    }
}

impl fmt::Debug for KeyPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPage")
            .field("len", &self.len)
            .field("protection", &self.protection)
            .finish_non_exhaustive()
    }
}

impl PartialEq for KeyPage {
    /// Constant-time in the bytes' contents.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.expose(), other.expose());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for KeyPage {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test: a failure should panic")]

    use super::*;

    /// The `/proc/self/smaps` entry of the mapping that starts at `address`.
    #[cfg(target_os = "linux")]
    fn smaps_entry(address: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let start = format!("{address:x}-");
        let mut entry = String::new();
        let mut inside = false;
        for line in smaps.lines() {
            let header = line
                .split_once(' ')
                .is_some_and(|(range, _)| range.contains('-') && !range.ends_with(':'));
            if header {
                inside = line.starts_with(&start);
            }
            if inside {
                entry.push_str(line);
                entry.push('\n');
            }
        }
        entry
    }

    #[test]
    fn the_bytes_come_back_and_never_print() {
        let page = KeyPage::new(b"0123456789abcdef0123456789abcdef");
        assert_eq!(page.expose(), b"0123456789abcdef0123456789abcdef");
        assert_eq!(page.clone(), page);
        assert_ne!(KeyPage::new(b"0123456789abcdef0123456789abcdeX"), page);
        let shown = format!("{page:?}");
        assert!(!shown.contains("0123"), "{shown}");
        assert!(KeyPage::new(b"").expose().is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_page_is_locked_and_left_out_of_core_dumps() {
        let page = KeyPage::new(&[7u8; 32]);
        let address = page.expose().as_ptr() as usize;
        let entry = smaps_entry(address);
        assert!(!entry.is_empty(), "the key has a mapping of its own");
        let flags = entry
            .lines()
            .find_map(|l| l.strip_prefix("VmFlags:"))
            .unwrap_or_default();
        assert!(page.protection().excluded_from_dumps);
        assert!(flags.split_whitespace().any(|f| f == "dd"), "{entry}");
        // Locking needs RLIMIT_MEMLOCK room; when granted, the kernel says so.
        if page.protection().locked {
            assert!(flags.split_whitespace().any(|f| f == "lo"), "{entry}");
        } else {
            eprintln!("mlock refused here (RLIMIT_MEMLOCK); the key works unlocked");
        }
    }
}
