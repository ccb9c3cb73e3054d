//! The engine: the one owner of the [`Dataplane`] and the only code that
//! changes what the kernel enforces. It runs on a thread of its own
//! (kernel calls block for milliseconds, a reload for seconds: never on the
//! async runtime's workers), consumes [`Event`]s, and after every change
//! publishes a fresh [`InForce`] snapshot that API reads use without
//! waiting for it.
//!
//! Events that pile up while one is handled are merged: any number of
//! rule-file changes and SIGHUPs make one reload, any number of link events
//! one resync, of only the interfaces they name.
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

mod applied;
mod cuts;
mod grace;
mod recorder;
mod reload;
mod scope;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secgroup_api::{FlushResult, ReloadOutcome, ReloadTrigger};
use secgroup_dataplane::{AdoptReport, Dataplane, error_chain};
use secgroup_model::Direction;
use tokio::sync::{mpsc, watch};
use tracing::{error, info};

use crate::event::{ApiError, ApiReply, Event, Mutation, Signal};
use crate::state::InForce;
use crate::wire::json;

pub struct Settings {
    /// What the source is, for messages (the rules directory's path, or
    /// etcd's endpoints and prefix).
    pub rules_dir: PathBuf,
    /// Where the rules come from.
    pub source: crate::source::Source,
    pub pin_dir: PathBuf,
    pub keep_established: bool,
    pub state_dir: PathBuf,
    /// `--allow-private-bpffs` was given (and needed).
    pub private_bpffs: bool,
    /// Interfaces guarded before any rule names them.
    pub interface_patterns: Vec<crate::patterns::Pattern>,
    /// A pause at the start of every reload, for tests that need the engine
    /// busy (`SECGROUPD_TEST_RELOAD_DELAY_MS`); zero otherwise.
    pub reload_delay: Duration,
}

/// The backoff between attach retries: 1 s, doubling up to a minute, reset
/// once nothing fails.
struct Retry {
    delay: Duration,
    scheduled: bool,
}

pub struct Engine {
    dp: Dataplane,
    settings: Settings,
    /// What is in force, as this engine last changed it; published whole.
    now: InForce,
    /// The rules a previous daemon last applied to these pins (from the
    /// state directory), until this one applies its own: what the first
    /// reload is compared with.
    previous: applied::Previous,
    /// The rule files of the last successful load, for attributing
    /// conflicts to the file that introduced them.
    known_files: Vec<PathBuf>,
    retry: Retry,
    /// To schedule our own events (attach retries).
    events: mpsc::Sender<Event>,
    runtime: tokio::runtime::Handle,
    publisher: watch::Sender<Arc<InForce>>,
    /// Writes the record of the applied rules off this thread.
    recorder: recorder::Recorder,
    /// The rule files as decoded by the last reload: the next decodes
    /// only those that changed.
    decoded: secgroup_model::DecodeCache,
    /// What the snapshot says of the interfaces, kept up to date from the
    /// link events rather than asked of the kernel on every publish.
    links: LinkView,
    /// The data plane's rule-origin version `now.rule_origins` was copied
    /// at (tens of thousands of entries on a big host: copied only when
    /// they changed).
    origins_version: Option<u64>,
    /// Waits for the grace period of replaced tables off this thread.
    grace: Option<grace::GraceWaiter>,
}

/// The VM-like interfaces of the host and the names of the hooked ones,
/// as link events left them: a publish then costs no syscall per
/// interface. Read from the kernel whole at start and whenever events
/// were lost.
#[derive(Default)]
struct LinkView {
    /// `tun`, `veth` and `macvtap` links by ifindex.
    vm_like: BTreeMap<u32, secgroup_dataplane::Link>,
    /// `vm_like` must be read from the kernel again.
    stale: bool,
    /// Ifindexes an event named since the last publish: their names are
    /// looked up again.
    touched: BTreeSet<u32>,
}

impl LinkView {
    fn is_vm_like(kind: Option<&str>) -> bool {
        matches!(kind, Some("tun" | "veth" | "macvtap"))
    }

    fn appeared(&mut self, name: &str, ifindex: u32, kind: Option<&str>) {
        self.touched.insert(ifindex);
        if Self::is_vm_like(kind) {
            self.vm_like.insert(
                ifindex,
                secgroup_dataplane::Link {
                    ifindex,
                    name: name.to_owned(),
                    kind: kind.map(str::to_owned),
                },
            );
        } else {
            self.vm_like.remove(&ifindex);
        }
    }

    fn vanished(&mut self, ifindex: u32) {
        self.touched.insert(ifindex);
        self.vm_like.remove(&ifindex);
    }

    /// Reads the links from the kernel if events were lost (or at start).
    /// A failed read keeps the view and tries again next time.
    fn refresh(&mut self) {
        if !self.stale {
            return;
        }
        if let Ok(links) = secgroup_dataplane::list_links() {
            self.vm_like = links
                .into_iter()
                .filter(|l| Self::is_vm_like(l.kind.as_deref()))
                .map(|l| (l.ifindex, l))
                .collect();
            self.stale = false;
        }
    }
}

/// What a batch of events asks for, merged.
#[derive(Default)]
struct Batch {
    reload: Option<ReloadTrigger>,
    resync: Resync,
    check_pins: bool,
    stop: Option<Signal>,
}

/// Which interfaces a batch's link events ask to look at again.
#[derive(Default)]
enum Resync {
    #[default]
    Nothing,
    /// The interfaces of these names (see [`scope::Scope::Named`]).
    Named(BTreeSet<String>),
    /// Every interface: a retry, or notifications lost.
    All,
}

impl Resync {
    fn add(&mut self, names: Vec<String>) {
        match self {
            Resync::All => {}
            Resync::Named(named) => named.extend(names),
            Resync::Nothing => *self = Resync::Named(names.into_iter().collect()),
        }
    }
}

impl Engine {
    /// The engine and the receiving end of its snapshots.
    pub fn new(
        dp: Dataplane,
        settings: Settings,
        adopted: &AdoptReport,
        events: mpsc::Sender<Event>,
        runtime: tokio::runtime::Handle,
    ) -> (Engine, watch::Receiver<Arc<InForce>>) {
        let previous = applied::Previous::start(
            settings.state_dir.clone(),
            settings.pin_dir.clone(),
            adopted.generation,
        );
        let now = InForce {
            rules_dir: settings.rules_dir.display().to_string(),
            pin_dir: settings.pin_dir.display().to_string(),
            keep_established: settings.keep_established,
            pinned: adopted.interfaces > 0,
            generation: dp.generation(),
            private_bpffs: settings.private_bpffs,
            owner: dp.owner(),
            source: Some(settings.source.clone()),
            ..InForce::default()
        };
        let (publisher, snapshots) = watch::channel(Arc::new(now.clone()));
        let grace = match dp.grace_barrier() {
            Ok(barrier) => grace::GraceWaiter::start(barrier, events.clone()),
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "no grace-period handle: replaced tables are freed inline");
                None
            }
        };
        let engine = Engine {
            dp,
            settings,
            now,
            previous,
            known_files: Vec::new(),
            retry: Retry {
                delay: Duration::from_secs(1),
                scheduled: false,
            },
            events,
            runtime,
            publisher,
            recorder: recorder::Recorder::new(),
            decoded: secgroup_model::DecodeCache::default(),
            links: LinkView {
                stale: true,
                ..LinkView::default()
            },
            origins_version: None,
            grace,
        };
        (engine, snapshots)
    }

    /// The first reload, loud words if it failed, `READY=1`, then events
    /// until told to stop. Blocks: run it on its own thread.
    pub fn run(mut self, mut events: mpsc::Receiver<Event>) {
        self.start();
        let ready = format!("READY=1\nSTATUS={}", self.status_line());
        if let Err(e) = crate::sdnotify::notify(&ready) {
            tracing::warn!(error = %e, "telling systemd we are ready failed");
        }
        loop {
            // Replaced tables past their grace period are deleted one by
            // one while nothing else waits.
            let first = match events.try_recv() {
                Ok(event) => event,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if self.dp.reap_step() {
                        continue;
                    }
                    match events.blocking_recv() {
                        Some(event) => event,
                        None => break,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            let mut batch = Batch::default();
            // A batch of grace-period notices changes nothing the
            // snapshot shows: no publish for it.
            let mut grace_only = true;
            let mut next = Some(first);
            while let Some(event) = next.take() {
                grace_only &= matches!(event, Event::GraceElapsed(_));
                self.absorb(event, &mut batch);
                if batch.stop.is_some() {
                    break;
                }
                next = events.try_recv().ok();
            }
            if let Some(signal) = batch.stop {
                // Leave the pins clean for the next daemon.
                self.dp.reap_all_now();
                info!(
                    ?signal,
                    "stopping; the pinned hooks keep filtering until the next secgroupd takes over"
                );
                return;
            }
            if grace_only {
                continue;
            }
            self.handle_batch(batch);
            self.publish();
        }
    }

    fn start(&mut self) {
        let report = self.reload(ReloadTrigger::Startup);
        self.publish();
        if report.outcome == ReloadOutcome::Failed {
            if self.now.pinned {
                error!(
                    dir = %self.settings.rules_dir.display(),
                    "STARTED WITHOUT VALID RULES (a rules directory or etcd revision that is invalid, or etcd unreachable): keeping the policy a previous secgroupd pinned \
                     in force, unchanged, until valid rules are read"
                );
            } else {
                error!(
                    dir = %self.settings.rules_dir.display(),
                    "STARTED WITHOUT VALID RULES (a rules directory or etcd revision that is invalid, or etcd unreachable) and nothing pinned: NO INTERFACE IS PROTECTED \
                     until valid rules are read"
                );
            }
        }
    }

    /// Makes what is in force now the snapshot API reads see.
    fn publish(&mut self) {
        // A restart that adopted its predecessor's tables wrote none, yet
        // their rules have uids now (hit counters are read through them).
        if self.dp.take_origins_adopted() {
            self.origins_version = None;
            self.refresh_rule_origins();
        }
        if let Some(failure) = self.dp.take_expedite_failure() {
            error!(%failure, "--expedite-grace-periods: could not expedite; interfaces were hooked at the normal pace");
        }
        // Names of hooked interfaces no event named since: as they were.
        let touched = std::mem::take(&mut self.links.touched);
        let stale = self.links.stale;
        let before = std::mem::take(&mut self.now.hooked);
        self.now.hooked = self
            .hooked_interfaces()
            .into_iter()
            .map(|i| match before.get(&i) {
                Some(name) if !stale && !touched.contains(&i) => (i, name.clone()),
                _ => (i, crate::iface::name_of(i)),
            })
            .collect();
        let mut tables = HashMap::new();
        for (ifindex, iface) in self.dp.interfaces() {
            if let Some(id) = self.now.bound.get(&ifindex) {
                tables.insert(iface.table[0], (id.clone(), Direction::Ingress));
                tables.insert(iface.table[1], (id.clone(), Direction::Egress));
            }
        }
        self.now.tables = tables;
        self.now.unprotected = self.unprotected_interfaces();
        self.publisher.send_replace(Arc::new(self.now.clone()));
    }

    /// Copies the rules' origins (what hit counters are shown under) into
    /// the snapshot if they changed since the last copy.
    fn refresh_rule_origins(&mut self) {
        let version = self.dp.rule_origins_version();
        if self.origins_version != Some(version) {
            self.now.rule_origins = Arc::new(self.dp.rule_origins());
            self.origins_version = Some(version);
        }
    }

    /// One line for systemd's status.
    pub fn status_line(&self) -> String {
        let degraded = crate::health::reasons(&self.now);
        let health = if degraded.is_empty() {
            String::new()
        } else {
            let reasons: Vec<&str> = degraded.iter().map(|r| r.message.as_str()).collect();
            format!("; DEGRADED: {}", reasons.join("; "))
        };
        match (&self.now.loaded, self.now.pinned) {
            (Some(_), _) => format!(
                "generation {}, {} interfaces attached{health}",
                self.now.generation,
                self.now.attached()
            ),
            (None, true) => "no valid rules yet; enforcing the pinned policy".to_owned(),
            (None, false) => "no valid rules yet; enforcing nothing".to_owned(),
        }
    }

    /// Answers mutations at once (in order, after what queued before
    /// them), folds everything else into `batch`.
    fn absorb(&mut self, event: Event, batch: &mut Batch) {
        match event {
            Event::RulesChanged => {
                batch.reload.get_or_insert(ReloadTrigger::Watch);
            }
            Event::Signal(Signal::Hup) => batch.reload = Some(ReloadTrigger::Signal),
            Event::Signal(signal @ (Signal::Term | Signal::Int)) => batch.stop = Some(signal),
            Event::LinkAppeared {
                name,
                ifindex,
                kind,
            } => {
                self.links.appeared(&name, ifindex, kind.as_deref());
                if self.concerns(&name, ifindex) {
                    batch.resync.add(self.names_at(ifindex, Some(&name)));
                }
            }
            Event::LinkVanished { ifindex } => {
                self.links.vanished(ifindex);
                if self.now.bound.contains_key(&ifindex)
                    || self.now.hooks.contains_key(&ifindex)
                    || self.dp.pinned_interfaces().contains(&ifindex)
                {
                    let names = self.names_at(ifindex, None);
                    // The kernel said so: this one may be released.
                    self.release(ifindex, "deleted");
                    if names.is_empty() {
                        // Pinned by a predecessor under a name we never knew.
                        batch.resync = Resync::All;
                    } else {
                        batch.resync.add(names);
                    }
                }
            }
            Event::LinksResync => {
                self.links.stale = true;
                batch.resync = Resync::All;
            }
            Event::CheckPins => batch.check_pins = true,
            Event::RetryAttach => {
                self.retry.scheduled = false;
                batch.resync = Resync::All;
            }
            Event::GraceElapsed(token) => self.dp.grace_elapsed(token),
            Event::GraceFailed => self.dp.reap_all_now(),
            Event::Mutate(mutation, reply) => {
                // Pending changes first: a reload or flush right after a
                // write sees the write.
                self.handle_batch(std::mem::take(batch));
                let answer = self.mutate(mutation);
                self.publish();
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
            return;
        }
        match &batch.resync {
            Resync::Nothing => {}
            // Without a policy of our own, `sync` looks at everything.
            Resync::Named(names) if self.now.loaded.is_some() => {
                self.sync(scope::Scope::Named(names));
            }
            Resync::Named(_) | Resync::All => self.sync(scope::Scope::All),
        }
    }

    /// Whether a link event for `name` at `ifindex` may change what this
    /// daemon enforces. Not for an interface already hooked under that
    /// name and bound to the instance that names it (or guarded under it):
    /// that is a state change (up, carrier, its own hook's notification),
    /// and a resync of a thousand bindings for each would delay the
    /// interfaces that are really new.
    fn concerns(&self, name: &str, ifindex: u32) -> bool {
        let settled = self.now.hooks.get(&ifindex).is_some_and(|h| h.name == name)
            && !self.now.failures.contains_key(name)
            && !self.now.lookup_errors.contains_key(name)
            && match self.now.bound.get(&ifindex) {
                Some(id) => self.now.loaded.as_ref().is_some_and(|l| {
                    l.policy
                        .instances
                        .get(id)
                        .is_some_and(|i| i.interface.as_deref() == Some(name))
                }),
                None => self.now.guarded.get(&ifindex).is_some_and(|g| g == name),
            };
        if settled {
            return false;
        }
        let bound_name = self.now.loaded.as_ref().is_some_and(|l| {
            l.policy
                .instances
                .values()
                .any(|i| i.interface.as_deref() == Some(name))
        });
        bound_name
            || self.now.hooks.get(&ifindex).is_some_and(|h| h.name != name)
            || self.now.bound.contains_key(&ifindex)
            || self.now.failures.contains_key(name)
            || self.now.lookup_errors.contains_key(name)
            || self.guards(name)
    }

    /// Whether `name` matches a guarded pattern.
    fn guards(&self, name: &str) -> bool {
        self.settings
            .interface_patterns
            .iter()
            .any(|p| p.matches(name))
    }

    fn mutate(&mut self, mutation: Mutation) -> ApiReply {
        match mutation {
            Mutation::Reload => json(&self.reload(ReloadTrigger::Api)),
            Mutation::FlushConntrack { instance } => json(&self.flush_conntrack(instance)?),
        }
    }

    /// `None` flushes every interface.
    fn flush_conntrack(&mut self, instance: Option<String>) -> Result<FlushResult, ApiError> {
        let scope = match &instance {
            None => None,
            Some(id) => Some(self.now.find_instance(id).map(|i| {
                let id = i.id.clone();
                self.now.bound_ifindex(&id)
            })?),
        };
        let flushed = match scope {
            None => self.dp.flush_conntrack(None),
            Some(Some(ifindex)) => self.dp.flush_conntrack(Some(ifindex)),
            Some(None) => Ok(0),
        }
        .map_err(|e| ApiError::internal(format!("flushing conntrack: {}", error_chain(&e))))?;
        info!(
            instance = instance.as_deref().unwrap_or("(all)"),
            flushed, "conntrack flushed"
        );
        Ok(FlushResult { flushed })
    }

    /// VM-like interfaces nothing hooks and no pattern covers.
    fn unprotected_interfaces(&mut self) -> Vec<secgroup_dataplane::Link> {
        self.links.refresh();
        let hooked = &self.now.hooked;
        self.links
            .vm_like
            .values()
            .filter(|l| !hooked.contains_key(&l.ifindex) && !self.guards(&l.name))
            .cloned()
            .collect()
    }

    /// Interfaces with hooks, attached by us or pinned by a predecessor.
    fn hooked_interfaces(&self) -> std::collections::BTreeSet<u32> {
        self.now
            .hooks
            .keys()
            .copied()
            .chain(self.dp.pinned_interfaces())
            .collect()
    }
}

/// The opaque instance id stored in `sg_ifaces`: FNV-1a of the instance
/// id, stable across restarts, never 0.
pub fn instance_uid(id: &secgroup_model::InstanceId) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in id.as_str().bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.max(1)
}
