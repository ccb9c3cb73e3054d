//! The one error type of the fallible (`try_*`) half of the API, which
//! the benchmarks and `cargo xtask demo` use; tests call the panicking
//! half, whose messages are these errors' messages.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command could not be started.
    #[error("starting `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    /// A network namespace could not be opened or entered.
    #[error("entering network namespace {name}: {source}")]
    Netns {
        name: String,
        #[source]
        source: std::io::Error,
    },
    /// A file-system or socket operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A raw (`AF_PACKET`) socket could not be opened, bound or written.
    #[error("{what} {place}: {source}")]
    Socket {
        what: &'static str,
        /// `NAMESPACE/IFNAME`.
        place: String,
        #[source]
        source: std::io::Error,
    },
    /// The daemon exited before it reported READY=1.
    #[error("secgroupd exited before READY=1 ({status}); log {}:\n{log}", path.display())]
    ExitedEarly {
        status: std::process::ExitStatus,
        path: PathBuf,
        log: String,
    },
    /// A QEMU guest (or its image) could not be built, booted or driven.
    #[error("guest {name}: {what}")]
    Guest { name: String, what: String },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
}

/// `Err(Error)` to a panic with the error's message: how the panicking
/// half of the API is made from the fallible one.
pub(crate) fn or_panic<T>(result: Result<T, Error>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}
