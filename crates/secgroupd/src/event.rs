//! Everything the main loop reacts to. The sources (rules watcher, link
//! monitor, signals, pin checks, mutating API calls) run in their own tasks
//! or threads and only send these; the engine, which owns the data plane,
//! consumes them on its own thread, so kernel state has a single writer and
//! needs no lock.

use secgroup_api::{ErrorBody, TraceRequest};
use tokio::sync::oneshot;

#[derive(Debug)]
pub enum Event {
    /// Something changed in the rules directory (after debouncing).
    RulesChanged,
    /// An interface appeared or changed (RTM_NEWLINK).
    LinkAppeared {
        name: String,
        ifindex: u32,
        /// Its link kind (`tun`, `veth`, ...), `None` for physical
        /// devices.
        kind: Option<String>,
    },
    /// An interface went away (RTM_DELLINK).
    LinkVanished {
        ifindex: u32,
    },
    /// Link notifications were lost (socket overrun) or unreadable: look at
    /// every interface again.
    LinksResync,
    /// An API call that changes something, answered by the engine.
    Mutate(Mutation, oneshot::Sender<ApiReply>),
    Signal(Signal),
    /// Time to compare the pins with what this daemon wrote.
    CheckPins,
    /// Time to try the interfaces that failed to attach again.
    RetryAttach,
    /// A grace period passed after the retirement of replaced tables
    /// (`engine/grace.rs`): they may go.
    GraceElapsed(secgroup_dataplane::GraceToken),
    /// Waiting for that grace period failed: the engine waits itself.
    GraceFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Reload the rules.
    Hup,
    /// Stop; the pinned hooks keep filtering.
    Term,
    Int,
}

/// The API calls the engine answers: those that change what is enforced or
/// tracked. Everything else is answered from the snapshot in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    Reload,
    /// `None` flushes every interface.
    FlushConntrack {
        instance: Option<String>,
    },
}

/// A parsed, authorised API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRequest {
    Status,
    SecurityGroups,
    SecurityGroup(String),
    Instances,
    Instance(String),
    Conntrack {
        instance: Option<String>,
        limit: usize,
    },
    /// `None` flushes every interface.
    FlushConntrack {
        instance: Option<String>,
    },
    Trace(TraceRequest),
    Reload,
}

/// The JSON body of a successful answer (serialised by the main loop, in
/// the field order of the wire types), or the error to send.
pub type ApiReply = Result<Vec<u8>, ApiError>;

/// An error answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub body: ErrorBody,
    /// For 405: the methods the path accepts.
    pub allow: Option<&'static str>,
}

impl ApiError {
    fn new(status: u16, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                known: None,
            },
            allow: None,
        }
    }

    pub fn bad_request(error: impl Into<String>) -> ApiError {
        ApiError::new(400, error)
    }

    pub fn forbidden(error: impl Into<String>) -> ApiError {
        ApiError::new(403, error)
    }

    /// An unknown `kind` (`security group`, `instance`) `id`; lists the
    /// ids that exist.
    pub fn unknown(kind: &str, id: &str, known: Vec<String>) -> ApiError {
        let mut e = ApiError::new(404, format!("no {kind} {id:?}"));
        e.body.known = Some(known);
        e
    }

    pub fn no_such_path(path: &str) -> ApiError {
        ApiError::new(
            404,
            format!(
                "no endpoint {path:?}; see /v1/status, /v1/security-groups, /v1/instances, /v1/conntrack, /v1/trace, /v1/reload, /v1/events"
            ),
        )
    }

    pub fn method_not_allowed(method: &str, path: &str, allow: &'static str) -> ApiError {
        let mut e = ApiError::new(
            405,
            format!("{method} is not allowed on {path}; use {allow}"),
        );
        e.allow = Some(allow);
        e
    }

    /// The request is fine but the daemon's state does not allow it now.
    pub fn conflict(error: impl Into<String>) -> ApiError {
        ApiError::new(409, error)
    }

    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(413, format!("request body larger than {limit} bytes"))
    }

    pub fn internal(error: impl Into<String>) -> ApiError {
        ApiError::new(500, error)
    }

    pub fn unavailable(error: impl Into<String>) -> ApiError {
        ApiError::new(503, error)
    }
}
