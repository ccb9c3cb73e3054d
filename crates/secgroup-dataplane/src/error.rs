use std::io;
use std::path::PathBuf;

/// Everything that can go wrong between secgroup and the kernel.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// The kernel refused the object; for verifier rejections the source
    /// carries the verifier log.
    #[error("loading the eBPF object")]
    Load(#[source] aya::EbpfError),
    /// The embedded object lacks a program this crate expects: the C and
    /// Rust sides are out of step.
    #[error("program {name} is missing from the eBPF object")]
    MissingProgram { name: &'static str },
    /// The embedded object lacks a map this crate expects.
    #[error("map {name} is missing from the eBPF object")]
    MissingMap { name: &'static str },
    /// A map operation failed.
    #[error("map {name}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    /// Loading, attaching or running a program failed.
    #[error("program {name}: {action}")]
    Program {
        name: &'static str,
        action: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A pinned link could not be opened.
    #[error("pinned link {path}")]
    Link {
        path: PathBuf,
        #[source]
        source: aya::programs::links::LinkError,
    },
    /// Pinning an object on bpffs failed.
    #[error("pinning {path}")]
    Pin {
        path: PathBuf,
        #[source]
        source: aya::pin::PinError,
    },
    /// A file-system operation on bpffs or /proc failed.
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A rule list does not fit a classifier table.
    #[error("building classifier table for {what}")]
    Classifier {
        what: String,
        #[source]
        source: secgroup_classifier::ClassifierError,
    },
    /// An event rate limit out of range.
    #[error("event {what} {value} is out of range 1..={max}")]
    EventLimit {
        what: &'static str,
        value: u32,
        max: u32,
    },
    /// No interface of that name in the namespace we looked in.
    #[error("no interface named {name:?}")]
    UnknownInterface { name: String },
    /// Entering a network namespace failed.
    #[error("entering network namespace {path}")]
    Netns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The worker thread that acts inside a network namespace panicked.
    #[error("the thread acting in network namespace {path} panicked")]
    NetnsThread { path: PathBuf },
    /// BPF_PROG_TEST_RUN failed.
    #[error("test run of program {name}")]
    TestRun {
        name: &'static str,
        #[source]
        source: io::Error,
    },
    /// Looking an interface up failed for a reason that says nothing about
    /// the interface (EMFILE, ENOBUFS, ...): it may well exist.
    #[error("looking up interface {name:?}")]
    InterfaceLookup {
        name: String,
        #[source]
        source: io::Error,
    },
    /// 2^32 table ids have been used: restart the daemon with fresh pins.
    #[error("table ids exhausted")]
    TableIdsExhausted,
    /// Another process holds the pin directory's lock.
    #[error(
        "pin directory {} is owned by {}: one secgroupd per pin directory; stop that one first, or give this \
         one another --bpffs",
        dir.display(),
        holder.as_ref().map_or_else(
            || "another process".to_owned(),
            |h| format!("secgroupd pid {} (socket {})", h.pid, h.socket)
        )
    )]
    PinDirLocked {
        dir: PathBuf,
        holder: Option<crate::Owner>,
    },
    /// The pins were made with a layout this build would misread.
    #[error(
        "the pins in {} have a layout this build cannot read ({found}; this build reads layout version \
         {expected}): run the secgroupd that made them, or remove them with `secgroupd --uninstall --bpffs {}` \
         (every hook detaches until the next start) and start this one again",
        dir.display(),
        dir.display()
    )]
    IncompatiblePins {
        dir: PathBuf,
        found: String,
        expected: u32,
    },
    /// [`LoadOptions`](crate::LoadOptions) that contradict each other.
    #[error("invalid load options: {what}")]
    InvalidOptions { what: &'static str },
    /// The embedded object could not be parsed.
    #[error("parsing the eBPF object: {message}")]
    Object { message: String },
    /// An apply failed half-way and putting the previous entries back
    /// failed too: the in-memory view was re-read from the kernel, which
    /// now holds a mix of old and new bindings.
    #[error(
        "applying the policy failed ({apply}) and restoring the previous one failed too ({undo}); the \
         kernel state was re-read and holds part of each"
    )]
    ApplyNotUndone { apply: String, undo: String },
    /// The pin directory is on a bpffs private to this process's mount
    /// namespace: every pin (and so every hook) would die with the process.
    #[error(
        "{} is on a bpffs private to this process's mount namespace (mounted by it, or under `ip netns exec`, \
         which remounts /sys): pinned hooks would detach when it exits. Run secgroupd in the host's mount \
         namespace (for another network namespace: `nsenter --net=/run/netns/NAME secgroupd ...`, not \
         `ip netns exec`), with the host's /sys/fs/bpf mounted",
        dir.display()
    )]
    PrivateBpffs { dir: PathBuf },
}

pub(crate) fn map_err(name: &'static str) -> impl FnOnce(aya::maps::MapError) -> DataplaneError {
    move |source| DataplaneError::Map { name, source }
}

impl DataplaneError {
    /// A map had no room for an entry: a hash map at its `max_entries`
    /// answers E2BIG, an LPM trie ENOSPC.
    pub fn is_map_full(&self) -> bool {
        match self {
            DataplaneError::Map {
                source: aya::maps::MapError::SyscallError(e),
                ..
            } => matches!(e.io_error.raw_os_error(), Some(libc::E2BIG | libc::ENOSPC)),
            _ => false,
        }
    }
}

/// `error: cause: cause`, the whole chain on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
