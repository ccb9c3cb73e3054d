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
    /// 2^32 table ids have been used: restart the daemon with fresh pins.
    #[error("table ids exhausted")]
    TableIdsExhausted,
}

pub(crate) fn map_err(name: &'static str) -> impl FnOnce(aya::maps::MapError) -> DataplaneError {
    move |source| DataplaneError::Map { name, source }
}
