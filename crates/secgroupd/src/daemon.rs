//! The daemon's state and the one task that changes it.
//!
//! [`Daemon`] owns the [`Dataplane`] (which is not `Sync`) and everything
//! derived from it; [`Daemon::run`] consumes [`Event`]s one at a time, so
//! every kernel operation has a single writer. Kernel operations are
//! blocking and take milliseconds; they run right here.
//!
//! Two rules shape the code:
//! - **All or nothing.** A reload validates and compiles the whole
//!   directory, then switches every interface in one [`Dataplane::apply`];
//!   any failure leaves the previous policy in force. A reload that
//!   compiles to the policy in force touches no map at all.
//! - **Never unprotected.** Hooks, once attached, stay (pinned) until their
//!   interface disappears or `--uninstall`: an interface whose instance
//!   left the rules keeps its hooks and, with no policy, drops IP traffic.
//!   A daemon that starts on invalid rules keeps enforcing what a previous
//!   one pinned.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use secgroup_api::{ReloadError, ReloadOutcome, ReloadReport, ReloadTrigger, Timestamp};
use secgroup_dataplane::{AttachInfo, Dataplane, DataplaneError, InterfaceBinding, netns};
use secgroup_model::InstanceId;
use secgroup_policy::Policy;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::event::{ApiError, ApiReply, ApiRequest, Event, Signal};
use crate::rules::{self, Loaded};

pub struct Settings {
    pub rules_dir: PathBuf,
    pub pin_dir: PathBuf,
    pub keep_established: bool,
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

pub struct Daemon {
    pub(crate) dp: Dataplane,
    pub(crate) settings: Settings,
    /// The rules in force, as this daemon loaded them.
    pub(crate) loaded: Option<Arc<Loaded>>,
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
    pub(crate) next_trace_port: u16,
}

impl Daemon {
    /// `adopted_interfaces`: interfaces a previous daemon left in the maps.
    pub fn new(dp: Dataplane, settings: Settings, adopted_interfaces: usize) -> Daemon {
        Daemon {
            dp,
            settings,
            loaded: None,
            pinned: adopted_interfaces > 0,
            generation: 0,
            reloads: 0,
            last_reload: None,
            last_error: None,
            bound: BTreeMap::new(),
            hooks: BTreeMap::new(),
            failures: BTreeMap::new(),
            next_trace_port: crate::trace::FIRST_TRACE_PORT,
        }
    }

    /// The first reload, and loud words if it failed.
    pub fn start(&mut self) {
        let report = self.reload(ReloadTrigger::Startup);
        if report.outcome == ReloadOutcome::Failed {
            if self.pinned {
                error!(
                    dir = %self.settings.rules_dir.display(),
                    "STARTED WITHOUT A VALID RULES DIRECTORY: keeping the policy a previous secgroupd pinned \
                     in force, unchanged, until the rules directory is fixed"
                );
            } else {
                error!(
                    dir = %self.settings.rules_dir.display(),
                    "STARTED WITHOUT A VALID RULES DIRECTORY and nothing pinned: NO INTERFACE IS PROTECTED \
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
        let failed = match &self.last_error {
            Some(e) => format!("; last reload FAILED: {}", e.message),
            None => String::new(),
        };
        match (&self.loaded, self.pinned) {
            (Some(_), _) => format!(
                "generation {}, {attached} interfaces attached{failed}",
                self.generation
            ),
            (None, true) => "invalid rules directory; enforcing the pinned policy".to_owned(),
            (None, false) => "invalid rules directory; enforcing nothing".to_owned(),
        }
    }

    /// Consumes events until told to stop.
    pub async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        while let Some(event) = events.recv().await {
            match event {
                Event::Signal(signal @ (Signal::Term | Signal::Int)) => {
                    info!(
                        ?signal,
                        "stopping; the pinned hooks keep filtering until the next secgroupd takes over"
                    );
                    return;
                }
                other => self.handle(other),
            }
        }
    }

    pub fn handle(&mut self, event: Event) {
        match event {
            Event::RulesChanged => {
                self.reload(ReloadTrigger::Watch);
            }
            Event::Signal(Signal::Hup) => {
                self.reload(ReloadTrigger::Signal);
            }
            Event::Signal(Signal::Term | Signal::Int) => {}
            Event::LinkAppeared { name, ifindex } => {
                if self.concerns(&name, ifindex) {
                    debug!(%name, ifindex, "bound interface appeared or changed");
                    self.sync();
                }
            }
            Event::LinkVanished { ifindex } => {
                if self.bound.contains_key(&ifindex)
                    || self.hooks.contains_key(&ifindex)
                    || self.dp.pinned_interfaces().contains(&ifindex)
                {
                    debug!(ifindex, "interface with hooks vanished");
                    self.sync();
                }
            }
            Event::LinksResync => self.sync(),
            Event::Api(request, reply) => {
                let answer = self.api(request);
                // The client may have hung up; nothing to do then.
                let _ = reply.send(answer);
            }
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

    // ---- Reloading -------------------------------------------------------

    /// Reads, validates and compiles the rules directory and makes it the
    /// policy in force, or changes nothing.
    pub fn reload(&mut self, trigger: ReloadTrigger) -> ReloadReport {
        let started = Instant::now();
        self.reloads += 1;
        let dir = self.settings.rules_dir.display().to_string();
        let (outcome, summary) = match rules::load(&self.settings.rules_dir) {
            Err(failure) => {
                error!(?trigger, %dir, error = %failure.message, "reload failed: the rules directory was rejected; the policy in force stays");
                for diagnostic in &failure.diagnostics {
                    error!(%diagnostic, "invalid rule file");
                }
                let summary = failure.message.clone();
                self.last_error = Some(ReloadError {
                    at: Timestamp::from_unix_ms(unix_ms()),
                    message: failure.message,
                    diagnostics: failure.diagnostics,
                });
                (ReloadOutcome::Failed, summary)
            }
            Ok(loaded)
                if self
                    .loaded
                    .as_ref()
                    .is_some_and(|l| l.policy == loaded.policy) =>
            {
                // Same policy (perhaps new descriptions or formatting): keep
                // the new text for the API, touch no map.
                self.loaded = Some(Arc::new(loaded));
                self.last_error = None;
                (ReloadOutcome::Unchanged, "no changes".to_owned())
            }
            Ok(loaded) => {
                let empty = Policy::default();
                let before = self.loaded.as_ref().map_or(&empty, |l| &l.policy);
                let diff = secgroup_policy::diff(before, &loaded.policy);
                let loaded = Arc::new(loaded);
                match self.sync_with(&loaded.policy, true) {
                    Ok(()) => {
                        self.loaded = Some(loaded);
                        self.pinned = false;
                        self.generation += 1;
                        self.last_error = None;
                        (ReloadOutcome::Applied, diff.to_string())
                    }
                    Err(e) => {
                        let message =
                            format!("applying the new policy failed: {}", error_chain(&e));
                        error!(?trigger, %dir, error = %message, "reload failed; the policy in force stays");
                        self.last_error = Some(ReloadError {
                            at: Timestamp::from_unix_ms(unix_ms()),
                            message: message.clone(),
                            diagnostics: Vec::new(),
                        });
                        (ReloadOutcome::Failed, message)
                    }
                }
            }
        };
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            ReloadOutcome::Applied => info!(
                ?trigger,
                generation = self.generation,
                duration_ms = format!("{duration_ms:.1}"),
                changes = %summary,
                "reload applied"
            ),
            ReloadOutcome::Unchanged => info!(
                ?trigger,
                generation = self.generation,
                duration_ms = format!("{duration_ms:.1}"),
                "reload: no changes"
            ),
            ReloadOutcome::Failed => {}
        }
        let report = ReloadReport {
            trigger,
            outcome,
            finished: Timestamp::from_unix_ms(unix_ms()),
            duration_ms,
            generation: self.generation,
            summary,
        };
        self.last_reload = Some(report.clone());
        // `systemctl status` shows it; nobody to tell outside systemd.
        let _ = crate::sdnotify::notify(&format!("STATUS={}", self.status_line()));
        report
    }

    // ---- Interfaces ------------------------------------------------------

    /// Brings the kernel in line with the policy in force after a link
    /// event.
    fn sync(&mut self) {
        match self.loaded.clone() {
            Some(loaded) => {
                if let Err(e) = self.sync_with(&loaded.policy, false) {
                    let error = error_chain(&e);
                    error!(%error, "updating interface bindings failed; retried on the next link event or reload");
                    // Interfaces that exist but could not be bound say why
                    // in the status instead of "waiting".
                    for instance in loaded.policy.instances.values() {
                        let Some(name) = &instance.interface else {
                            continue;
                        };
                        if let Ok(ifindex) = netns::ifindex(name)
                            && !self.bound.contains_key(&ifindex)
                        {
                            let error = format!("binding failed: {error}");
                            self.failures
                                .insert(name.clone(), Failure { ifindex, error });
                        }
                    }
                }
            }
            // Without a policy of our own nothing may be applied: only
            // clean up after interfaces that are gone.
            None => self.release_vanished(),
        }
    }

    /// Makes `policy` the enforced one on every interface that exists:
    /// releases interfaces that are gone, applies the bindings (always
    /// when `policy_changed`, else only if the set of interfaces changed),
    /// then attaches the hooks where missing. Fails, changing nothing, if
    /// the apply fails; attach failures are per interface and only
    /// recorded.
    fn sync_with(&mut self, policy: &Policy, policy_changed: bool) -> Result<(), DataplaneError> {
        self.release_vanished();

        let mut desired: BTreeMap<u32, InstanceId> = BTreeMap::new();
        for instance in policy.instances.values() {
            let Some(name) = &instance.interface else {
                continue;
            };
            match netns::ifindex(name) {
                Ok(ifindex) => {
                    desired.insert(ifindex, instance.id.clone());
                }
                Err(_) => {
                    // Waiting for the interface; an old failure is moot.
                    self.failures.remove(name);
                }
            }
        }

        if policy_changed || desired != self.bound {
            let bindings: Vec<InterfaceBinding<'_>> = desired
                .iter()
                .filter_map(|(ifindex, id)| {
                    let instance = policy.instances.get(id)?;
                    Some(InterfaceBinding {
                        ifindex: *ifindex,
                        ingress: &instance.ingress,
                        egress: &instance.egress,
                        keep_established: self.settings.keep_established,
                        instance_uid: instance_uid(id),
                    })
                })
                .collect();
            let report = self.dp.apply(&bindings)?;
            debug!(?report, "applied");
            for (ifindex, id) in &desired {
                if self.bound.get(ifindex) != Some(id) {
                    info!(instance = %id, ifindex, "interface bound");
                }
            }
            for (ifindex, id) in &self.bound {
                if !desired.contains_key(ifindex) && self.hooks.contains_key(ifindex) {
                    warn!(
                        instance = %id,
                        ifindex,
                        "interface no longer bound by any instance: its hooks stay and drop all IP traffic \
                         (fail closed) until it is bound again or removed"
                    );
                }
            }
            self.bound = desired;
        }

        // Failures of interfaces no instance binds any more are moot.
        self.failures.retain(|name, _| {
            policy
                .instances
                .values()
                .any(|i| i.interface.as_deref() == Some(name))
        });

        let wanted: Vec<(u32, InstanceId)> =
            self.bound.iter().map(|(i, id)| (*i, id.clone())).collect();
        for (ifindex, id) in wanted {
            let Some(name) = policy.instances.get(&id).and_then(|i| i.interface.clone()) else {
                continue;
            };
            if let Some(hooked) = self.hooks.get_mut(&ifindex) {
                hooked.name = name; // a rename keeps the hooks
                continue;
            }
            match self.dp.attach(&name) {
                Ok(info) => {
                    info!(
                        instance = %id,
                        interface = %name,
                        ifindex = info.ifindex,
                        xdp_mode = ?info.xdp_mode,
                        adopted = info.adopted,
                        "attached"
                    );
                    self.failures.remove(&name);
                    if info.ifindex != ifindex {
                        // Re-created between lookup and attach: the link
                        // event that follows binds the new one.
                        warn!(interface = %name, expected = ifindex, got = info.ifindex, "interface changed while attaching");
                    }
                    self.hooks.insert(info.ifindex, Hooked { name, info });
                }
                Err(e) => {
                    let error = error_chain(&e);
                    error!(instance = %id, interface = %name, ifindex, %error, "attaching failed");
                    self.failures.insert(name, Failure { ifindex, error });
                }
            }
        }
        Ok(())
    }

    /// Detaches and forgets every interface with hooks that no longer
    /// exists.
    fn release_vanished(&mut self) {
        let with_hooks: BTreeSet<u32> = self
            .hooks
            .keys()
            .copied()
            .chain(self.dp.pinned_interfaces())
            .collect();
        for ifindex in with_hooks {
            if crate::iface::name_of(ifindex).is_some() {
                continue;
            }
            let name = self.hooks.remove(&ifindex).map(|h| h.name);
            if let Err(e) = self.dp.detach(ifindex) {
                warn!(ifindex, error = %error_chain(&e), "removing the pins of a vanished interface failed");
            }
            if let Err(e) = self.dp.forget_interface(ifindex) {
                warn!(ifindex, error = %error_chain(&e), "forgetting the state of a vanished interface failed");
            }
            info!(
                ifindex,
                interface = name.as_deref().unwrap_or("?"),
                "interface gone: hooks, conntrack and counters released"
            );
        }
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
