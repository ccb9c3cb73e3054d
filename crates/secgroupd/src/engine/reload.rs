//! Reloads and interface syncs: the only code that changes what the kernel
//! enforces.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secgroup_api::{ReloadError, ReloadOutcome, ReloadReport, ReloadTrigger, Timestamp};
use secgroup_dataplane::{DataplaneError, InterfaceBinding};
use secgroup_model::InstanceId;
use secgroup_policy::Policy;
use tracing::{debug, error, info, warn};

use secgroup_dataplane::error_chain;

use super::scope::{Lookup, Scope, lookup};
use super::{Engine, instance_uid};
use crate::event::Event;
use crate::iface::Lookups;
use crate::rules::{self, Loaded};
use crate::state::{Failure, Hooked, Tampered};
use crate::wire::unix_ms;

const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

impl Engine {
    /// Reads, validates and compiles the rules directory and makes it the
    /// policy in force, or changes nothing. Either way the interfaces are
    /// synced again, so a failed attach is retried on every reload.
    pub fn reload(&mut self, trigger: ReloadTrigger) -> ReloadReport {
        let started = Instant::now();
        if !self.settings.reload_delay.is_zero() {
            std::thread::sleep(self.settings.reload_delay);
        }
        self.now.reloads += 1;
        let dir = self.settings.rules_dir.display().to_string();
        let mut warnings = Vec::new();
        let mut tables_before = None;
        // Only our own last load is compiled incrementally from (a
        // predecessor's record is compared with, never built upon).
        let own = self.now.loaded.clone();
        let (outcome, summary) = match self.settings.source.load(
            &self.known_files,
            &mut self.decoded,
            own.as_deref(),
        ) {
            Err(failure) => {
                error!(?trigger, %dir, error = %failure.message, "reload failed: the rules directory was rejected; the policy in force stays");
                for diagnostic in &failure.diagnostics {
                    error!(%diagnostic, "invalid rule file");
                }
                let summary = failure.message.clone();
                self.now.last_error = Some(ReloadError {
                    at: Timestamp::from_unix_ms(unix_ms()),
                    message: failure.message,
                    diagnostics: failure.diagnostics,
                });
                self.sync(Scope::All);
                (ReloadOutcome::Failed, summary)
            }
            Ok((loaded, lint_input)) => {
                let (outcome, summary, before) = self.apply_loaded(trigger, loaded);
                tables_before = before;
                if outcome != ReloadOutcome::Failed
                    && let Some(applied) = self.settings.source.applied()
                {
                    self.now.etcd_applied = Some(applied);
                }
                // After the apply, off this thread: the new policy is in
                // force before its warnings are worked out (they change
                // nothing enforced), and the next change need not wait
                // for them. An API reload's answer carries them.
                if outcome != ReloadOutcome::Failed
                    && let Some(loaded) = self.now.loaded.clone()
                    && let Some(lint) = rules::lint_in_background(loaded, lint_input)
                    && trigger == ReloadTrigger::Api
                {
                    warnings = lint.join().unwrap_or_default();
                }
                (outcome, summary)
            }
        };
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            ReloadOutcome::Applied => info!(
                ?trigger,
                generation = self.now.generation,
                duration_ms = format!("{duration_ms:.1}"),
                changes = %summary,
                "reload applied"
            ),
            ReloadOutcome::Unchanged => info!(
                ?trigger,
                generation = self.now.generation,
                duration_ms = format!("{duration_ms:.1}"),
                "reload: {summary}"
            ),
            ReloadOutcome::Failed => {}
        }
        let report = ReloadReport {
            trigger,
            outcome,
            finished: Timestamp::from_unix_ms(unix_ms()),
            duration_ms,
            generation: self.now.generation,
            summary,
            warnings,
        };
        self.now.reload_stats.record(&report);
        self.now.last_reload = Some(report.clone());
        // `systemctl status` shows it; nobody to tell outside systemd.
        let _ = crate::sdnotify::notify(&format!("STATUS={}", self.status_line()));
        if let Some(before) = tables_before {
            // In force in the kernel: published before the work that no
            // longer changes what is enforced (the run loop publishes
            // again after the batch, harmlessly).
            self.publish();
            // The old tables' grace period, on the grace thread, and
            // their deletion when the engine is idle (`apply_loaded`
            // deferred them; `grace.rs`).
            self.retire_replaced();
            if let Some(loaded) = self.now.loaded.clone() {
                super::cuts::log_cut_flows(self, &before, &loaded.policy, trigger);
            }
        }
        report
    }

    /// Makes `loaded` the policy in force, or changes nothing. Returns the
    /// outcome, its summary and, when tables changed, each interface's
    /// tables before, for [`cuts::log_cut_flows`](super::cuts) once the
    /// change is published. Replaced tables are left for
    /// `free_unused_now`.
    fn apply_loaded(
        &mut self,
        trigger: ReloadTrigger,
        loaded: Loaded,
    ) -> (ReloadOutcome, String, Option<BTreeMap<u32, [u32; 2]>>) {
        self.known_files = loaded.files.clone();
        // What the kernel enforces now: our own last load, else what the
        // previous daemon last applied to these pins.
        let compare_started = Instant::now();
        let before = match &self.now.loaded {
            Some(own) => Some(Arc::clone(own)),
            None => self.previous.get().cloned(),
        };
        let same = before.as_ref().is_some_and(|b| b.policy == loaded.policy);
        // A restart must rewrite the adopted tables even when nothing
        // changed; a daemon's own unchanged reload touches no map.
        let must_apply =
            self.now.loaded.is_none() || self.now.diverged.is_some() || self.tampered_now();
        if same && !must_apply {
            // Same policy (perhaps new descriptions or formatting): keep the
            // new text for the API, touch no map, but retry what failed.
            self.now.loaded = Some(Arc::new(loaded));
            self.now.last_error = None;
            self.now.tampered = None;
            self.sync(Scope::All);
            return (ReloadOutcome::Unchanged, "no changes".to_owned(), None);
        }
        let empty = Policy::default();
        let diff = secgroup_policy::diff(
            before.as_ref().map_or(&empty, |b| &b.policy),
            &loaded.policy,
        );
        if self.now.loaded.is_none() {
            match self.previous.get() {
                Some(_) => info!(
                    changes = %diff,
                    "compared with the rules the previous secgroupd applied to these pins"
                ),
                None if self.now.pinned => warn!(
                    "the rules the previous secgroupd applied are unknown (no state in {}): cannot say what \
                     changed while no daemon ran",
                    self.settings.state_dir.display()
                ),
                None => {}
            }
        }
        let loaded = Arc::new(loaded);
        let tables_before = self.interface_tables();
        let compared = compare_started.elapsed();
        // Garbage of earlier reloads not deleted yet (the engine deletes it
        // while idle) stays while it holds fewer entries than the tables
        // in use, so a small change after a large one need not wait for
        // it; beyond, it goes first, which bounds the memory it holds. A
        // table that finds no room beside it makes it go too (the apply
        // then deletes it first; both counted in make_room_ms).
        let reap_started = Instant::now();
        let _ = self.dp.take_time_making_room();
        if self.dp.retired_entries() > self.dp.table_entries() {
            self.dp.reap_all_now();
        }
        let made_room = reap_started.elapsed();
        let apply_started = Instant::now();
        // The grace period before the old tables can go, and their
        // deletion, wait until the change is published (see `reload`).
        self.dp.set_deferred_frees(true);
        let applied = self.sync_with(&loaded.policy, true, Scope::All);
        self.dp.set_deferred_frees(false);
        match applied {
            Ok(()) => {
                let applied = apply_started.elapsed();
                let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
                info!(
                    read_validate_ms = ms(loaded.timings.read_validate),
                    compile_ms = ms(loaded.timings.compile),
                    compare_ms = ms(compared),
                    apply_ms = ms(applied),
                    make_room_ms = ms(made_room + self.dp.take_time_making_room()),
                    "reload phases"
                );
                self.now.loaded = Some(loaded.clone());
                self.previous.forget();
                self.now.pinned = false;
                self.now.diverged = None;
                self.now.tampered = None;
                self.now.last_error = None;
                if same {
                    // A restart on the rules already in force.
                    super::applied::write(self, &loaded);
                    return (
                        ReloadOutcome::Unchanged,
                        "same rules as the previous secgroupd applied; its tables re-adopted"
                            .to_owned(),
                        Some(tables_before),
                    );
                }
                self.now.generation += 1;
                if let Err(e) = self.dp.set_generation(self.now.generation) {
                    warn!(error = %error_chain(&e), "recording the generation in the pins failed");
                }
                super::applied::write(self, &loaded);
                (
                    ReloadOutcome::Applied,
                    diff.to_string(),
                    Some(tables_before),
                )
            }
            Err(e) => {
                let message = format!("applying the new policy failed: {}", error_chain(&e));
                error!(?trigger, error = %message, "reload failed; the policy in force stays");
                if let DataplaneError::ApplyNotUndone { .. } = e {
                    self.now.diverged = Some(message.clone());
                }
                self.now.last_error = Some(ReloadError {
                    at: Timestamp::from_unix_ms(unix_ms()),
                    message: message.clone(),
                    diagnostics: Vec::new(),
                });
                (ReloadOutcome::Failed, message, None)
            }
        }
    }

    /// Retires the tables and sets the last apply replaced and asks for
    /// their grace period (inline without a grace thread).
    pub(super) fn retire_replaced(&mut self) {
        if let Some(token) = self.dp.retire_unused() {
            let asked = self.grace.as_ref().is_some_and(|g| g.wait_for(token));
            if !asked {
                self.dp.reap_all_now();
            }
        }
    }

    fn tampered_now(&self) -> bool {
        self.now.tampered.is_some()
    }

    /// ifindex → the table ids its `sg_ifaces` entry names.
    pub(crate) fn interface_tables(&self) -> BTreeMap<u32, [u32; 2]> {
        self.dp
            .interfaces()
            .map(|(i, iface)| (i, iface.table))
            .collect()
    }

    /// Brings the kernel in line with the policy in force after a link
    /// event or a retry, for the interfaces in `scope`.
    pub(crate) fn sync(&mut self, scope: Scope<'_>) {
        match self.now.loaded.clone() {
            Some(loaded) => {
                if let Err(e) = self.sync_with(&loaded.policy, false, scope) {
                    let error = error_chain(&e);
                    error!(%error, "updating interface bindings failed; retried on the next link event or reload");
                    if let DataplaneError::ApplyNotUndone { .. } = e {
                        self.now.diverged = Some(error.clone());
                    }
                    let lookups = Lookups::new();
                    for instance in loaded.policy.instances.values() {
                        let Some(name) = &instance.interface else {
                            continue;
                        };
                        if let Lookup::Found(ifindex) = lookup(&lookups, name)
                            && !self.now.bound.contains_key(&ifindex)
                        {
                            let error = format!("binding failed: {error}");
                            self.now
                                .failures
                                .insert(name.clone(), Failure { ifindex, error });
                        }
                    }
                    self.schedule_retry();
                }
            }
            // Without a policy of our own nothing may be applied: only
            // clean up after interfaces the kernel says are gone.
            // With nothing pinned there is nothing to keep: the guarded
            // interfaces get their guard.
            None if !self.now.pinned => {
                if let Err(e) = self.sync_with(&Policy::default(), false, Scope::All) {
                    error!(error = %error_chain(&e), "guarding interfaces failed; retried on the next link event");
                    self.schedule_retry();
                }
            }
            None => self.release_vanished(&Policy::default(), Scope::All),
        }
    }

    /// Makes `policy` the enforced one on every interface that exists:
    /// releases interfaces that are gone, applies the bindings (always
    /// when `policy_changed`, else only if the set of interfaces changed),
    /// then attaches the hooks where missing. Only the interfaces in
    /// `scope` are looked up; the others keep their bindings (see
    /// [`Scope`]). Fails, changing nothing, if the apply fails; attach
    /// failures are per interface, recorded and retried with backoff.
    pub(crate) fn sync_with(
        &mut self,
        policy: &Policy,
        policy_changed: bool,
        scope: Scope<'_>,
    ) -> Result<(), DataplaneError> {
        self.release_vanished(policy, scope);

        let desired = self.desired_bindings(policy, scope);

        let guarded = self.guarded_interfaces(&desired);
        if policy_changed
            || desired != self.now.bound
            || !guarded.keys().eq(self.now.guarded.keys())
        {
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
                        port_security: Some(&instance.port_security),
                        log: instance.log,
                        enforcement: instance.enforcement,
                    })
                })
                .collect();
            let guard_list: Vec<u32> = guarded.keys().copied().collect();
            let report = self.dp.apply_guarded(&bindings, &guard_list)?;
            debug!(?report, "applied");
            self.refresh_rule_origins();
            for (ifindex, id) in &desired {
                if self.now.bound.get(ifindex) != Some(id) {
                    info!(instance = %id, ifindex, "interface bound");
                }
            }
            for (ifindex, id) in &self.now.bound {
                if !desired.contains_key(ifindex) && self.now.hooks.contains_key(ifindex) {
                    warn!(
                        instance = %id,
                        ifindex,
                        "interface no longer bound by any instance: its hooks stay and drop all IP traffic \\
                         (fail closed) until it is bound again or removed"
                    );
                }
            }
            for (ifindex, name) in &guarded {
                if !self.now.guarded.contains_key(ifindex) {
                    info!(interface = %name, ifindex, "interface guarded: no instance binds it yet, its IP traffic is dropped");
                }
            }
            self.now.bound = desired;
            self.now.bound_index.clear();
            self.now.guarded = guarded;
        }

        // Failures of interfaces no instance binds any more are moot.
        self.now.failures.retain(|name, _| {
            policy
                .instances
                .values()
                .any(|i| i.interface.as_deref() == Some(name))
        });

        // Bound interfaces by their instance's interface name, guarded ones
        // by their own.
        // Interfaces already hooked keep their hooks (a rename keeps them);
        // the others are attached together: one by one, a thousand took
        // seconds of kernel waits (see the data plane's `attach_many`).
        let bound = self.now.bound.iter().filter_map(|(ifindex, id)| {
            let name = policy.instances.get(id)?.interface.as_deref()?;
            Some((*ifindex, name, Some(id)))
        });
        let guarded = self
            .now
            .guarded
            .iter()
            .map(|(ifindex, name)| (*ifindex, name.as_str(), None));
        let mut missing: Vec<(u32, String, String)> = Vec::new();
        for (ifindex, name, id) in bound.chain(guarded) {
            match self.now.hooks.get_mut(&ifindex) {
                Some(hooked) if hooked.name == name => {}
                Some(hooked) => hooked.name = name.to_owned(),
                None => missing.push((
                    ifindex,
                    name.to_owned(),
                    id.map_or_else(|| "(guarded)".to_owned(), ToString::to_string),
                )),
            }
        }
        let names: Vec<String> = missing.iter().map(|(_, name, _)| name.clone()).collect();
        let attached = self.dp.attach_many(&names);
        for ((ifindex, name, id), result) in missing.into_iter().zip(attached) {
            match result {
                Ok(info) => {
                    info!(
                        instance = %id,
                        interface = %name,
                        ifindex = info.ifindex,
                        xdp_mode = info.xdp_mode.as_str(),
                        adopted = info.adopted,
                        "attached"
                    );
                    self.now.failures.remove(&name);
                    if info.ifindex != ifindex {
                        // Re-created between lookup and attach: the link
                        // event that follows binds the new one.
                        warn!(interface = %name, expected = ifindex, got = info.ifindex, "interface changed while attaching");
                    }
                    self.now.hooks.insert(
                        info.ifindex,
                        Hooked {
                            name,
                            xdp_mode: info.xdp_mode,
                            adopted: info.adopted,
                        },
                    );
                }
                Err(e) => {
                    let error = error_chain(&e);
                    error!(instance = %id, interface = %name, ifindex, %error, "attaching failed; retried with backoff and on every reload");
                    self.now.failures.insert(name, Failure { ifindex, error });
                }
            }
        }
        if self.now.failures.is_empty() && self.now.lookup_errors.is_empty() {
            self.retry.delay = Duration::from_secs(1);
        } else {
            self.schedule_retry();
        }
        Ok(())
    }

    /// Interfaces whose name matches a guarded pattern and that no binding
    /// in `desired` covers, as the kernel lists them now.
    fn guarded_interfaces(&mut self, desired: &BTreeMap<u32, InstanceId>) -> BTreeMap<u32, String> {
        if self.settings.interface_patterns.is_empty() {
            return BTreeMap::new();
        }
        match secgroup_dataplane::list_links() {
            Ok(links) => links
                .into_iter()
                .filter(|l| !desired.contains_key(&l.ifindex) && self.guards(&l.name))
                .map(|l| (l.ifindex, l.name))
                .collect(),
            Err(e) => {
                // Cannot tell which interfaces exist: keep the guards as
                // they were (never drop one on a failed lookup).
                warn!(error = %e, "listing interfaces for the guarded patterns failed; guards stay as they were");
                self.now.guarded.clone()
            }
        }
    }

    /// Asks for a [`Event::RetryAttach`] after the current backoff delay,
    /// then doubles it (up to a minute). One retry is pending at a time.
    fn schedule_retry(&mut self) {
        if self.retry.scheduled {
            return;
        }
        self.retry.scheduled = true;
        let delay = self.retry.delay;
        self.retry.delay = (delay * 2).min(MAX_RETRY_DELAY);
        let events = self.events.clone();
        debug!(?delay, "attach retry scheduled");
        self.runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = events.send(Event::RetryAttach).await;
        });
    }

    /// Releases every interface with hooks in `scope` that the kernel
    /// says is gone (ENODEV / ENXIO). Any other lookup error keeps the
    /// hooks.
    fn release_vanished(&mut self, policy: &Policy, scope: Scope<'_>) {
        let lookups = Lookups::new();
        for ifindex in self.hooked_in(policy, scope) {
            match lookups.name(ifindex) {
                Ok(_) => {}
                Err(DataplaneError::UnknownInterface { .. }) => self.release(ifindex, "gone"),
                Err(e) => warn!(
                    ifindex,
                    error = %error_chain(&e),
                    "looking the interface up failed; its hooks stay"
                ),
            }
        }
    }

    /// Detaches and forgets an interface the kernel deleted.
    pub(crate) fn release(&mut self, ifindex: u32, why: &str) {
        let name = self.now.hooks.remove(&ifindex).map(|h| h.name);
        if let Err(e) = self.dp.detach(ifindex) {
            warn!(ifindex, error = %error_chain(&e), "removing the pins of a vanished interface failed");
        }
        if let Err(e) = self.dp.forget_interface(ifindex) {
            warn!(ifindex, error = %error_chain(&e), "forgetting the state of a vanished interface failed");
        }
        info!(
            ifindex,
            interface = name.as_deref().unwrap_or("?"),
            "interface {why}: hooks, conntrack and counters released"
        );
    }

    /// Compares the pins with what this daemon wrote; on any difference,
    /// says so loudly, takes them back and re-applies the policy in force.
    pub(crate) fn check_pins(&mut self) {
        let findings = match self.dp.check_pins() {
            Ok(findings) => findings,
            Err(e) => {
                warn!(error = %error_chain(&e), "reading the pins to check them failed");
                return;
            }
        };
        if findings.is_empty() {
            return;
        }
        let findings: Vec<String> = findings.iter().map(ToString::to_string).collect();
        error!(
            findings = %findings.join("; "),
            pin_dir = %self.settings.pin_dir.display(),
            "THE PINS WERE CHANGED BY SOMEONE ELSE: taking them back and re-applying the policy in force"
        );
        self.now.tampered = Some(Tampered {
            at: Timestamp::from_unix_ms(unix_ms()),
            findings,
        });
        if let Err(e) = self.dp.reclaim() {
            error!(error = %error_chain(&e), "taking the pins back failed");
            return;
        }
        if let Some(loaded) = self.now.loaded.clone() {
            if let Err(e) = self.sync_with(&loaded.policy, true, Scope::All) {
                error!(error = %error_chain(&e), "re-applying the policy after foreign writes failed");
                self.now.diverged = Some(error_chain(&e));
            } else {
                info!(
                    generation = self.now.generation,
                    "policy re-applied after foreign writes"
                );
            }
        }
    }
}
