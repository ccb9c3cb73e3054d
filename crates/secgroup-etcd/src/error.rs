//! The one error type of this crate.

use std::path::PathBuf;

/// Why talking to etcd, or preparing to, failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// A flag is unusable (no endpoint, a key file without a certificate).
    #[error("{0}")]
    Options(String),
    /// A file named by a flag cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The prefix is not one this layout can use.
    #[error("invalid etcd prefix {prefix:?}: {reason}")]
    Prefix {
        prefix: String,
        reason: &'static str,
    },
    /// Connecting, or a request, failed (unreachable, refused, timed out,
    /// denied).
    #[error("etcd at {endpoints}: {what}: {source}")]
    Request {
        endpoints: String,
        what: &'static str,
        source: etcd_client::Error,
    },
    /// A request did not answer in time.
    #[error("etcd at {endpoints}: {what}: no answer within {seconds:.1} s")]
    Timeout {
        endpoints: String,
        what: &'static str,
        seconds: f64,
    },
    /// The revision a watch or read asked for is compacted: read
    /// everything again.
    #[error("etcd revision {revision} is compacted (oldest kept: {compacted})")]
    Compacted { revision: i64, compacted: i64 },
    /// A publish kept losing the race against other writers.
    #[error(
        "the keys under {prefix} kept changing while publishing ({attempts} attempts); nothing was written"
    )]
    Contended { prefix: String, attempts: u32 },
}
