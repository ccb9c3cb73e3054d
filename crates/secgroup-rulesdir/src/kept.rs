//! The bytes of the files of the last read, kept with what the file
//! system said about each, so that the next read of a directory of a
//! thousand files opens and reads only those that may have changed: one
//! `stat` a file instead of four syscalls and a copy.
//!
//! A file is taken as unchanged only when its device, inode, size, mtime
//! and ctime (to the nanosecond) are what they were when its kept bytes
//! were read, **and** it was not "racily clean" then: its mtime and ctime
//! were at least [`RACY_MARGIN`] older than the moment the read started.
//! Why both:
//! - a rename over the file (how controllers save) gives a new inode; a
//!   write in place changes ctime, which userspace cannot set back (mtime
//!   it can, with `utimensat`);
//! - but a timestamp is only as fine as the file system's clock: a
//!   rewrite of the same size within one tick of the previous write can
//!   leave every field as it was. A file written shortly before it was
//!   read may be written again, unseen, right after; so such a file is
//!   read again next time, until a read starts long enough after its last
//!   change (the rule git applies to its index). Any change after a
//!   trusted read gets a ctime of at least the read's start minus one
//!   tick, later than the kept one by construction.
//!
//! What this cannot see, as git cannot: a clock stepped back to exactly
//! a kept ctime with a same-size rewrite, and writes that bypass the
//! file system (the block device under it).

use foldhash::{HashMap, HashMapExt};
use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How much older than the start of a read a file's timestamps must be for
/// its bytes to be trusted without reading them again: above the kernel's
/// coarse clock tick (a jiffy, ≤ 10 ms) and the 2-second granularity of
/// the coarsest file systems' timestamps (FAT), with room for a network
/// file system's server clock a little ahead.
pub const RACY_MARGIN: Duration = Duration::from_secs(3);

/// What the file system says about a file that matters for its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    pub(crate) fn of(meta: &Metadata) -> Stamp {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether bytes read with this stamp, in a read that started at
    /// `started_ns`, may be trusted while the stamp stays the same.
    fn settled(&self, started_ns: i128, margin: Duration) -> bool {
        let margin = margin.as_nanos() as i128;
        self.mtime_ns < started_ns - margin && self.ctime_ns < started_ns - margin
    }
}

/// Nanoseconds since the epoch (negative before it), as file timestamps.
pub(crate) fn now_ns() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

struct Entry {
    stamp: Stamp,
    bytes: Vec<u8>,
}

/// The files of the last read(s) whose bytes may be reused. Keep one
/// between reads of the same paths (the daemon does); a new one reads
/// everything.
pub struct KeptFiles {
    /// By path as given, as bytes: `Path`'s own hash walks its components.
    files: HashMap<OsString, Entry>,
    margin: Duration,
    /// Of the last read: files whose kept bytes were used, and files read.
    reused_last: usize,
    read_last: usize,
}

impl std::fmt::Debug for KeptFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptFiles")
            .field("files", &self.files.len())
            .field("reused_last", &self.reused_last)
            .field("read_last", &self.read_last)
            .finish()
    }
}

impl Default for KeptFiles {
    fn default() -> KeptFiles {
        KeptFiles::with_margin(RACY_MARGIN)
    }
}

impl KeptFiles {
    /// Trusting files whose timestamps are `margin` older than a read
    /// (instead of [`RACY_MARGIN`]): only for file systems whose clock is
    /// known to be this machine's and finer than `margin` (tests use a
    /// few milliseconds, to see files skipped without waiting seconds).
    pub fn with_margin(margin: Duration) -> KeptFiles {
        KeptFiles {
            files: HashMap::new(),
            margin,
            reused_last: 0,
            read_last: 0,
        }
    }

    /// Files whose bytes are kept.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// How many files the last read took from here without opening them.
    pub fn reused_last(&self) -> usize {
        self.reused_last
    }

    /// How many files the last read opened and read.
    pub fn read_last(&self) -> usize {
        self.read_last
    }

    pub(crate) fn begin(&mut self) {
        self.reused_last = 0;
        self.read_last = 0;
    }

    /// Whether bytes of `path` are kept (worth a `stat` to reuse them).
    pub(crate) fn holds(&self, path: &Path) -> bool {
        self.files.contains_key(path.as_os_str())
    }

    /// The kept bytes of `path` if `meta` (its metadata now, links
    /// followed) says they are still its contents.
    pub(crate) fn reuse(&mut self, path: &Path, meta: &Metadata) -> Option<Vec<u8>> {
        let entry = self.files.get(path.as_os_str())?;
        if entry.stamp != Stamp::of(meta) {
            return None;
        }
        self.reused_last += 1;
        Some(entry.bytes.clone())
    }

    /// Records bytes just read, `stamp` taken from the open file before
    /// reading it, in a read that started at `started_ns`: kept only if
    /// they can be trusted later (else the next read reads the file
    /// again).
    pub(crate) fn record(&mut self, path: &Path, stamp: Stamp, started_ns: i128, bytes: &[u8]) {
        self.read_last += 1;
        if stamp.settled(started_ns, self.margin) {
            self.files.insert(
                path.as_os_str().to_owned(),
                Entry {
                    stamp,
                    bytes: bytes.to_vec(),
                },
            );
        } else {
            self.files.remove(path.as_os_str());
        }
    }

    /// Forgets every file not among `paths` (gone since, or unreadable).
    pub(crate) fn retain(&mut self, paths: &foldhash::HashSet<&OsStr>) {
        self.files
            .retain(|path, _| paths.contains(path.as_os_str()));
    }
}
