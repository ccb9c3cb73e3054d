//! The daemon's state and the one task that changes it.
//!
//! [`Daemon`] owns the [`Dataplane`] (which is not `Sync`) and everything
//! derived from it; [`Daemon::run`] consumes [`Event`]s, so every kernel
//! operation has a single writer. Events that pile up while one is handled
//! are merged: any number of rule-file changes and SIGHUPs make one reload,
//! any number of link events one resync.
//!
//! Two rules shape the code:
//! - **All or nothing.** A reload validates and compiles the whole
//!   directory, then switches every interface in one [`Dataplane::apply`];
//!   any failure leaves the previous policy in force, in the kernel too.
//! - **Never unprotected.** Hooks, once attached, stay (pinned) until the
//!   kernel says their interface is gone (a netlink deletion or ENODEV:
//!   never a transient lookup error) or `--uninstall`: an interface whose
//!   instance left the rules keeps its hooks and, with no policy, drops IP
//!   traffic. A daemon that starts on invalid rules keeps enforcing what a
//!   previous one pinned.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secgroup_api::{ReloadError, ReloadOutcome, ReloadReport, ReloadTrigger};
use secgroup_dataplane::{AdoptReport, AttachInfo, Dataplane};
use secgroup_model::InstanceId;
use tokio::sync::mpsc;
use tracing::{error, info};

use crate::event::{ApiError, ApiReply, ApiRequest, Event, Signal};
use crate::rules::Loaded;

pub struct Settings {
    pub rules_dir: PathBuf,
    pub pin_dir: PathBuf,
    pub keep_established: bool,
    pub state_dir: PathBuf,
    /// `--allow-private-bpffs` was given (and needed).
    pub private_bpffs: bool,
}

/// Hooks on an interface, attached or adopted by this daemon.
pub(crate) struct Hooked {
    /// The interface's name when attached (or last seen).
    pub name: String,
    pub info: AttachInfo,
}

/// Why an interface has no hooks although an instance binds it.
pub(crate) struct Failure {
    pub ifindex: u32,
    pub error: String,
}

/// Writes to the pins by someone else, as last found.
pub(crate) struct Tampered {
    pub at: secgroup_api::Timestamp,
    pub findings: Vec<String>,
}

/// The backoff between attach retries: 1 s, doubling up to a minute, reset
/// once nothing fails.
pub(crate) struct Retry {
    pub delay: Duration,
    pub scheduled: bool,
}

pub struct Daemon {
    pub(crate) dp: Dataplane,
    pub(crate) settings: Settings,
    /// The rules in force, as this daemon loaded them.
    pub(crate) loaded: Option<Arc<Loaded>>,
    /// The rules a previous daemon last applied to these pins (from the
    /// state directory), until this one applies its own: what the first
    /// reload is compared with.
    pub(crate) previous: Option<Arc<Loaded>>,
    /// The rule files of the last successful load, for attributing
    /// conflicts to the file that introduced them.
    pub(crate) known_files: Vec<PathBuf>,
    /// The maps hold a previous daemon's policy that this one has not
    /// replaced (it has not loaded a valid rules directory yet).
    pub(crate) pinned: bool,
    pub(crate) generation: u64,
    pub(crate) reloads: u64,
    pub(crate) last_reload: Option<ReloadReport>,
    pub(crate) last_error: Option<ReloadError>,
    /// ifindex → instance, as the last successful apply bound them.
    pub(crate) bound: BTreeMap<u32, InstanceId>,
    pub(crate) hooks: BTreeMap<u32, Hooked>,
    /// Attach failures by interface name, until the next success.
    pub(crate) failures: BTreeMap<String, Failure>,
    /// Someone else wrote the pins; kept until the next successful reload
    /// so that the operator sees it.
    pub(crate) tampered: Option<Tampered>,
    /// The kernel holds a mix of two policies (an apply failed and could
    /// not be undone) until the next successful apply.
    pub(crate) diverged: Option<String>,
    /// Interfaces whose lookup failed for a reason that says nothing about
    /// them (EMFILE...): kept as they were, reported, retried.
    pub(crate) lookup_errors: BTreeMap<String, String>,
    pub(crate) retry: Retry,
    pub(crate) next_trace_port: u16,
    /// To schedule our own events (attach retries).
    pub(crate) events: mpsc::Sender<Event>,
}

/// What a batch of events asks for, merged.
#[derive(Default)]
struct Batch {
    reload: Option<ReloadTrigger>,
    resync: bool,
    check_pins: bool,
    retry: bool,
    stop: Option<Signal>,
}

impl Daemon {
    pub fn new(
        dp: Dataplane,
        settings: Settings,
        adopted: &AdoptReport,
        events: mpsc::Sender<Event>,
    ) -> Daemon {
        let previous = crate::applied::read(&settings.state_dir, &settings.pin_dir, adopted);
        Daemon {
            generation: dp.generation(),
            dp,
            settings,
            loaded: None,
            previous,
            known_files: Vec::new(),
            pinned: adopted.interfaces > 0,
            reloads: 0,
            last_reload: None,
            last_error: None,
            bound: BTreeMap::new(),
            hooks: BTreeMap::new(),
            failures: BTreeMap::new(),
            tampered: None,
            diverged: None,
            lookup_errors: BTreeMap::new(),
            retry: Retry {
                delay: Duration::from_secs(1),
                scheduled: false,
            },
            next_trace_port: crate::trace::FIRST_TRACE_PORT,
            events,
        }
    }

    /// The first reload, and loud words if it failed.
    pub fn start(&mut self) {
        let report = self.reload(ReloadTrigger::Startup);
        if report.outcome == ReloadOutcome::Failed {
            if self.pinned {
                error!(
                    dir = %self.settings.rules_dir.display(),
                    "STARTED WITHOUT A VALID RULES DIRECTORY: keeping the policy a previous secgroupd pinned \\
                     in force, unchanged, until the rules directory is fixed"
                );
            } else {
                error!(
                    dir = %self.settings.rules_dir.display(),
                    "STARTED WITHOUT A VALID RULES DIRECTORY and nothing pinned: NO INTERFACE IS PROTECTED \\
                     until the rules directory is fixed"
                );
            }
        }
    }

    /// One line for systemd's status.
    pub fn status_line(&self) -> String {
        let attached = self
            .hooks
            .keys()
            .filter(|i| self.bound.contains_key(i))
            .count();
        let degraded = crate::health::reasons(self);
        let health = if degraded.is_empty() {
            String::new()
        } else {
            format!(
                "; DEGRADED: {}",
                degraded
                    .iter()
                    .map(|r| r.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        match (&self.loaded, self.pinned) {
            (Some(_), _) => format!(
                "generation {}, {attached} interfaces attached{health}",
                self.generation
            ),
            (None, true) => "invalid rules directory; enforcing the pinned policy".to_owned(),
            (None, false) => "invalid rules directory; enforcing nothing".to_owned(),
        }
    }

    /// Consumes events until told to stop. Whatever queued up meanwhile is
    /// taken in one go and merged.
    pub async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        while let Some(first) = events.recv().await {
            let mut batch = Batch::default();
            let mut next = Some(first);
            while let Some(event) = next.take() {
                self.absorb(event, &mut batch);
                if batch.stop.is_some() {
                    break;
                }
                next = events.try_recv().ok();
            }
            if let Some(signal) = batch.stop {
                info!(
                    ?signal,
                    "stopping; the pinned hooks keep filtering until the next secgroupd takes over"
                );
                return;
            }
            self.handle_batch(batch);
        }
    }

    /// Answers API calls at once (in order), folds everything else into
    /// `batch`.
    fn absorb(&mut self, event: Event, batch: &mut Batch) {
        match event {
            Event::RulesChanged => {
                batch.reload.get_or_insert(ReloadTrigger::Watch);
            }
            Event::Signal(Signal::Hup) => batch.reload = Some(ReloadTrigger::Signal),
            Event::Signal(signal @ (Signal::Term | Signal::Int)) => batch.stop = Some(signal),
            Event::LinkAppeared { name, ifindex } => {
                if self.concerns(&name, ifindex) {
                    batch.resync = true;
                }
            }
            Event::LinkVanished { ifindex } => {
                if self.bound.contains_key(&ifindex)
                    || self.hooks.contains_key(&ifindex)
                    || self.dp.pinned_interfaces().contains(&ifindex)
                {
                    // The kernel said so: this one may be released.
                    self.release(ifindex, "deleted");
                    batch.resync = true;
                }
            }
            Event::LinksResync => batch.resync = true,
            Event::CheckPins => batch.check_pins = true,
            Event::RetryAttach => {
                self.retry.scheduled = false;
                batch.retry = true;
            }
            Event::Api(request, reply) => {
                // Pending rule changes first: an API reload or a read right
                // after a write sees the write.
                self.handle_batch(std::mem::take(batch));
                let answer = self.api(request);
                // The client may have hung up; nothing to do then.
                let _ = reply.send(answer);
            }
        }
    }

    fn handle_batch(&mut self, batch: Batch) {
        if batch.check_pins {
            self.check_pins();
        }
        if let Some(trigger) = batch.reload {
            self.reload(trigger);
        } else if batch.resync || batch.retry {
            self.sync();
        }
    }

    fn concerns(&self, name: &str, ifindex: u32) -> bool {
        let bound_name = self.loaded.as_ref().is_some_and(|l| {
            l.policy
                .instances
                .values()
                .any(|i| i.interface.as_deref() == Some(name))
        });
        bound_name
            || self.hooks.get(&ifindex).is_some_and(|h| h.name != name)
            || self.bound.contains_key(&ifindex)
            || self.failures.contains_key(name)
            || self.lookup_errors.contains_key(name)
    }

    fn api(&mut self, request: ApiRequest) -> ApiReply {
        fn json<T: serde::Serialize>(value: &T) -> ApiReply {
            let mut body = serde_json::to_vec_pretty(value)
                .map_err(|e| ApiError::internal(format!("encoding the answer: {e}")))?;
            body.push(b'\n');
            Ok(body)
        }
        match request {
            ApiRequest::Status => json(&self.status()),
            ApiRequest::SecurityGroups => json(&self.security_groups()?),
            ApiRequest::SecurityGroup(id) => json(&self.security_group(&id)?),
            ApiRequest::Instances => json(&self.instances()?),
            ApiRequest::Instance(id) => json(&self.instance(&id)?),
            ApiRequest::Conntrack { instance, limit } => {
                json(&self.conntrack(instance.as_deref(), limit)?)
            }
            ApiRequest::FlushConntrack { instance } => {
                json(&self.flush_conntrack(instance.as_deref())?)
            }
            ApiRequest::Trace(request) => json(&self.trace(&request)?),
            ApiRequest::Reload => json(&self.reload(ReloadTrigger::Api)),
        }
    }

    /// Interfaces with hooks, attached by us or pinned by a predecessor.
    pub(crate) fn hooked_interfaces(&self) -> BTreeSet<u32> {
        self.hooks
            .keys()
            .copied()
            .chain(self.dp.pinned_interfaces())
            .collect()
    }
}

/// The opaque instance id stored in `sg_ifaces`: FNV-1a of the instance
/// id, stable across restarts, never 0.
pub fn instance_uid(id: &InstanceId) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in id.as_str().bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.max(1)
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `error: cause: cause`, the whole chain on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
