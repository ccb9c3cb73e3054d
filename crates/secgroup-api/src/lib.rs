//! secgroupd's local API: HTTP/1.1 and JSON over a Unix socket.
//!
//! This crate is the contract between the daemon and its clients
//! (`secgroupctl`, tests, scripts): the request and response types with
//! their serde derives (the internal model derives none), the paths, and a
//! small blocking client. It knows nothing about the kernel or the rules.
//!
//! Every path is versioned (`/v1/...`); see [`paths`]. Errors come back as
//! [`ErrorBody`] with a 4xx or 5xx status.

mod client;
mod events;
pub mod paths;
mod stream;
mod time;
mod types;

pub use client::{Client, ClientError, RawResponse, exchange};
pub use events::{EventFilter, EventFlow, EventRule, EventVerdict, StreamLine, VerdictEvent};
pub use stream::EventLines;
pub use time::rfc3339;
pub use types::*;

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/secgroup/secgroupd.sock";

/// The group whose members may call the mutating endpoints (POST); root
/// always may.
pub const ADMIN_GROUP: &str = "secgroup";
