//! The hot swap: making a set of interface bindings the enforced policy,
//! all or nothing, and noticing when someone else wrote the maps.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use secgroup_policy::{PortSecurity, RuleList};

use super::{ApplyReport, Dataplane, InterfaceBinding, Tampering, adopt};
use crate::abi::*;
use crate::error::{DataplaneError, map_err};
use crate::maps::names;
use crate::{portsec, slots, tables};

/// One `sg_ifaces` change made during an apply, with what was there
/// before, so that a failure can put it back.
struct Switched {
    ifindex: u32,
    before: Option<Iface>,
}

impl Dataplane {
    /// Makes exactly `bindings` the enforced policy, atomically per
    /// interface: every packet sees either its old tables and port
    /// security or its new ones.
    ///
    /// 1. Tables for rule lists not yet in the kernel are built and written
    ///    under fresh ids (nobody reads them yet), and so are port-security
    ///    sets for specs not yet in the kernel; the id counter in `sg_meta`
    ///    moves past them before any interface may name them.
    /// 2. Each interface whose tables changed gets its `sg_ifaces` entry
    ///    replaced in one update; interfaces not in `bindings` lose theirs
    ///    (their hooks then drop IP traffic: fail closed).
    /// 3. If some tables or sets lost their last user: one RCU barrier,
    ///    after which no program can still hold their ids, then their
    ///    entries go.
    ///
    /// A changed port-security spec is therefore a new set: a packet judged
    /// during the switch is judged wholly by the old spec (MAC, flags and
    /// sources) or wholly by the new one, so the VM is never allowed a
    /// source neither allows, and never refused one both allow.
    ///
    /// A failure in 1 or 2 restores every entry changed so far and removes
    /// the new tables: the kernel is as it was, and the error says why. If
    /// even that fails, the view is re-read from the kernel and the error
    /// is [`DataplaneError::ApplyNotUndone`]. A failure in 3 only leaks
    /// unused entries, freed by a later apply.
    pub fn apply(
        &mut self,
        bindings: &[InterfaceBinding<'_>],
    ) -> Result<ApplyReport, DataplaneError> {
        self.apply_guarded(bindings, &[])
    }

    /// [`apply`](Self::apply), plus `guarded` interfaces: hooked, bound by
    /// no instance, given an entry without tables (they drop IP traffic)
    /// and with port security that allows no source (of everything else,
    /// only ARP probes leave), flagged [`IFACE_F_GUARD`].
    pub fn apply_guarded(
        &mut self,
        bindings: &[InterfaceBinding<'_>],
        guarded: &[u32],
    ) -> Result<ApplyReport, DataplaneError> {
        let started = Instant::now();
        let mut report = ApplyReport::default();
        // Until this apply has freed what it replaces, the kernel may hold
        // tables no interface names: a restart must not trust it.
        self.mark_clean(false)?;

        // Where each rule sits, as the tables in force say: put back if
        // this apply fails, so counters are still read at the positions
        // of the rules the kernel enforces.
        let placement = self.uids.placement();
        let mut written: Vec<u32> = Vec::new();
        let wanted = match self.write_tables(bindings, guarded, &mut written) {
            Ok(wanted) => wanted,
            Err(e) => {
                self.drop_new_tables(&written);
                self.uids.restore(placement);
                return Err(e);
            }
        };
        report.tables_written = written
            .iter()
            .filter(|id| self.store.get(**id).is_some())
            .count();
        report.psec_sets_written = written.len() - report.tables_written;

        let mut switched: Vec<Switched> = Vec::new();
        if let Err(e) = self.switch_interfaces(&wanted, &mut switched, &mut report) {
            self.uids.restore(placement);
            return Err(self.undo(e, switched, &written));
        }
        self.uids.settle(placement);
        // Interfaces whose entry went keep their counts, under their ifindex.
        for change in &switched {
            if let Some(before) = &change.before
                && !self.ifaces.contains_key(&change.ifindex)
            {
                slots::retire(&mut self.maps, change.ifindex, before);
            }
        }

        // What the load offered and this apply did not claim is swept by
        // step 3 (its ids are unknown and, once unnamed, garbage).
        self.candidates = super::adopt::Candidates::default();
        if self.defer_frees {
            self.free_pending = true;
        } else {
            self.free_unused(&mut report);
        }
        report.duration = started.elapsed();
        Ok(report)
    }

    /// Step 1: the `sg_ifaces` value of every binding, writing the tables
    /// and port-security sets it needs that are not in the kernel yet
    /// (their ids into `written`).
    fn write_tables(
        &mut self,
        bindings: &[InterfaceBinding<'_>],
        guarded: &[u32],
        written: &mut Vec<u32>,
    ) -> Result<Vec<(u32, Iface)>, DataplaneError> {
        let mut wanted: Vec<(u32, Iface)> = Vec::with_capacity(bindings.len() + guarded.len());
        for ifindex in guarded {
            if bindings.iter().any(|b| b.ifindex == *ifindex) {
                continue; // bound after all: its instance's policy applies
            }
            // Port security with nothing allowed: besides IP (no table),
            // only what a booting VM sends without an address (ARP
            // probes) leaves it.
            let closed = PortSecurity {
                enabled: true,
                mac: None,
                allowed: Vec::new(),
            };
            let mut guard = Iface {
                table: [NO_TABLE; DIR_MAX],
                flags: IFACE_F_GUARD,
                psec_set: self.psec_set_for(&closed, written)?,
                ..Iface::default()
            };
            portsec::set_iface_fields(&mut guard, &closed);
            wanted.push((*ifindex, guard));
        }
        for binding in bindings {
            let mut iface = Iface {
                table: [NO_TABLE; DIR_MAX],
                flags: binding.event_flags()
                    | if binding.keep_established {
                        IFACE_F_KEEP_ESTABLISHED
                    } else {
                        0
                    },
                instance_uid: binding.instance_uid,
                ..Iface::default()
            };
            let current = self.ifaces.get(&binding.ifindex).copied();
            for (dir, list) in [(DIR_INGRESS, binding.ingress), (DIR_EGRESS, binding.egress)] {
                // Most bindings of an apply are as they were: comparing
                // with the table in force is half the cost of hashing the
                // list to find its table (a thousand interfaces).
                let in_force = current
                    .map(|i| i.table[dir as usize])
                    .filter(|id| self.table_rules(*id) == Some(list));
                if let Some(id) = in_force
                    && !self.store.share(id, list)
                {
                    self.adopted.share(id, list);
                }
                let found = in_force.or_else(|| self.table_id_of(list));
                let id = match found.or_else(|| self.adopt_table(list)) {
                    Some(id) => id,
                    None => {
                        let id = self.write_new_table(list, binding.ifindex)?;
                        written.push(id);
                        id
                    }
                };
                iface.table[dir as usize] = id;
            }
            if let Some(spec) = binding.port_security.filter(|s| s.enabled) {
                let in_force = current
                    .map(|i| i.psec_set)
                    .filter(|set| self.psec.get(*set) == Some(spec));
                iface.psec_set = match in_force {
                    Some(set) => set,
                    None => self.psec_set_for(spec, written)?,
                };
                portsec::set_iface_fields(&mut iface, spec);
            }
            wanted.push((binding.ifindex, iface));
        }
        let fresh = slots::assign(&self.ifaces, &mut wanted);
        slots::zero(&mut self.maps, &fresh)?;
        if !written.is_empty() {
            let mut meta = self.meta;
            meta.next_table_id = meta.next_table_id.max(u64::from(self.store.next_id()));
            self.write_meta(meta)?;
        }
        Ok(wanted)
    }

    /// The id of the allowed-source set for `spec`, written under a fresh
    /// id (into `written`) if the kernel does not hold it yet.
    fn psec_set_for(
        &mut self,
        spec: &PortSecurity,
        written: &mut Vec<u32>,
    ) -> Result<u32, DataplaneError> {
        if let Some(set) = self.psec.id_of(spec) {
            return Ok(set);
        }
        if !self.candidates.psec.is_empty()
            && let Some(set) = self.candidates.psec.remove(&adopt::psec_digest(spec))
        {
            self.psec.insert(set, spec.clone());
            return Ok(set);
        }
        let set = self.write_new_psec(spec)?;
        written.push(set);
        Ok(set)
    }

    /// Step 2: replaces the entries that differ and removes those of
    /// interfaces no binding names, recording each change in `switched`.
    fn switch_interfaces(
        &mut self,
        wanted: &[(u32, Iface)],
        switched: &mut Vec<Switched>,
        report: &mut ApplyReport,
    ) -> Result<(), DataplaneError> {
        for (ifindex, iface) in wanted {
            let before = self.ifaces.get(ifindex).copied();
            if before == Some(*iface) {
                continue;
            }
            self.maps
                .ifaces
                .insert(*ifindex, *iface, 0)
                .map_err(map_err(names::IFACES))?;
            switched.push(Switched {
                ifindex: *ifindex,
                before,
            });
            self.set_view(*ifindex, Some(*iface));
            report.interfaces_changed += 1;
        }
        let keep: HashSet<u32> = wanted.iter().map(|(i, _)| *i).collect();
        let gone: Vec<u32> = self
            .ifaces
            .keys()
            .filter(|i| !keep.contains(i))
            .copied()
            .collect();
        for ifindex in gone {
            match self.maps.ifaces.remove(&ifindex) {
                Ok(()) => {}
                // Already gone from the kernel: nothing to switch.
                Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(names::IFACES)(e)),
            }
            let before = self.ifaces.get(&ifindex).copied();
            switched.push(Switched { ifindex, before });
            self.set_view(ifindex, None);
            report.interfaces_removed += 1;
        }
        Ok(())
    }

    /// Puts back every entry `switched` changed, newest first, then drops
    /// the new tables once no program can still be reading them.
    fn undo(
        &mut self,
        error: DataplaneError,
        switched: Vec<Switched>,
        written: &[u32],
    ) -> DataplaneError {
        let mut undo_error = None;
        for change in switched.into_iter().rev() {
            let restored = match change.before {
                Some(old) => self
                    .maps
                    .ifaces
                    .insert(change.ifindex, old, 0)
                    .map_err(map_err(names::IFACES)),
                None => match self.maps.ifaces.remove(&change.ifindex) {
                    Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
                    Err(e) => Err(map_err(names::IFACES)(e)),
                },
            };
            match restored {
                Ok(()) => self.set_view(change.ifindex, change.before),
                Err(e) => {
                    undo_error.get_or_insert(e);
                }
            }
        }
        if let Some(undo) = undo_error {
            // The truth is in the kernel now: read it back, and let the
            // next apply rewrite everything.
            let reread = self.resync_from_kernel();
            return DataplaneError::ApplyNotUndone {
                apply: crate::error::chain(&error),
                undo: match reread {
                    Ok(()) => crate::error::chain(&undo),
                    Err(e) => format!(
                        "{}; re-reading the kernel failed too: {}",
                        crate::error::chain(&undo),
                        crate::error::chain(&e)
                    ),
                },
            };
        }
        // A program may have read a new entry between switch and undo.
        let _ = self.rcu_barrier();
        self.drop_new_tables(written);
        error
    }

    fn drop_new_tables(&mut self, written: &[u32]) {
        for id in written {
            if self.refs.get(id).copied().unwrap_or(0) == 0 {
                self.forget_id(*id);
            }
        }
    }

    /// The tables and port-security sets this process knows that no
    /// interface names.
    pub(super) fn unused_ids(&self) -> Vec<u32> {
        self.store
            .ids()
            .chain(self.adopted.ids())
            .chain(self.psec.ids())
            .filter(|id| self.refs.get(id).copied().unwrap_or(0) == 0)
            .collect()
    }

    /// Step 3: frees tables and port-security sets nobody uses after one
    /// grace period, and after an adoption sweeps every entry this process
    /// did not write.
    pub(super) fn free_unused(&mut self, report: &mut ApplyReport) {
        let unused = self.unused_ids();
        // An id some interface named before and nobody knows the content
        // of (adopted but not verified): only a sweep finds its entries.
        if self
            .refs
            .iter()
            .any(|(id, refs)| *refs == 0 && !self.knows(*id))
        {
            self.sweep_pending = true;
        }
        if unused.is_empty() && !self.sweep_pending {
            self.mark_clean_if_reaped();
            return;
        }
        if self.rcu_barrier().is_err() {
            // Without the grace period nothing may be freed: a later apply
            // tries again.
            return;
        }
        report.rcu_barriers = 1;
        for id in unused {
            if self.store.get(id).is_some() || self.adopted.get(id).is_some() {
                report.tables_freed += 1;
            } else {
                report.psec_sets_freed += 1;
            }
            self.forget_id(id);
        }
        if self.sweep_pending {
            let tables: HashSet<u32> = self.store.ids().chain(self.adopted.ids()).collect();
            let sets: HashSet<u32> = self.psec.ids().collect();
            // Sets keep their headers in a table map, and the marker sits
            // under table id 0.
            let mut keep: HashSet<u32> = tables.union(&sets).copied().collect();
            keep.insert(NO_TABLE);
            let swept = tables::sweep(&mut self.maps, &keep)
                .and_then(|swept| Ok(swept + portsec::sweep(&mut self.maps, &sets)?));
            if let Ok(swept) = swept {
                report.stale_entries_swept = swept;
                self.refs
                    .retain(|id, _| tables.contains(id) || sets.contains(id));
                self.sweep_pending = false;
            }
        }
        if !self.sweep_pending {
            self.mark_clean_if_reaped();
        }
    }

    /// Records in the pins' marker whether the kernel holds only what
    /// interfaces name (see `adopt.rs`); written only when it changes.
    pub(super) fn mark_clean(&mut self, clean: bool) -> Result<(), DataplaneError> {
        if self.clean != clean {
            adopt::write_marker(&mut self.maps, self.meta.owner_token, clean)?;
            self.clean = clean;
        }
        Ok(())
    }

    /// The id of a table a previous owner wrote for exactly `list`, now
    /// this process's, if the load found one (see `adopt.rs`).
    fn adopt_table(&mut self, list: &RuleList) -> Option<u32> {
        if self.candidates.tables.is_empty() {
            return None;
        }
        let digest = adopt::table_digest(&mut self.uids, list);
        let id = self.candidates.tables.remove(&digest)?;
        self.adopted.insert(id, list.clone());
        self.origins_adopted = true;
        Some(id)
    }

    /// Updates the in-memory view of one interface and the refcounts of
    /// the tables and set it names.
    fn set_view(&mut self, ifindex: u32, value: Option<Iface>) {
        let old = match value {
            Some(v) => self.ifaces.insert(ifindex, v),
            None => self.ifaces.remove(&ifindex),
        };
        if let Some(old) = old {
            for id in tables::ids_of(&old) {
                if let Some(refs) = self.refs.get_mut(&id) {
                    *refs = refs.saturating_sub(1);
                }
            }
        }
        if let Some(new) = value {
            for id in tables::ids_of(&new) {
                *self.refs.entry(id).or_default() += 1;
            }
        }
    }

    fn write_new_table(&mut self, list: &RuleList, ifindex: u32) -> Result<u32, DataplaneError> {
        let table =
            secgroup_classifier::build(list).map_err(|source| DataplaneError::Classifier {
                what: format!("interface {ifindex}"),
                source,
            })?;
        let id = self.store.allocate()?;
        let digest = adopt::table_digest(&mut self.uids, list);
        self.making_room(|dp| {
            // The header last: it says the table is complete.
            let written = tables::write(&mut dp.maps, &mut dp.uids, id, &table)
                .and_then(|()| adopt::write_header(&mut dp.maps, id, true, digest));
            if written.is_err() {
                let _ = adopt::delete_header(&mut dp.maps, id);
                tables::delete(&mut dp.maps, id, &table);
            }
            written
        })?;
        self.store.insert(id, list.clone(), &table);
        Ok(id)
    }

    /// Writes `spec`'s allowed sources under a fresh set id.
    fn write_new_psec(&mut self, spec: &PortSecurity) -> Result<u32, DataplaneError> {
        let set = self.store.allocate()?;
        self.making_room(|dp| {
            let written = portsec::write(&mut dp.maps, set, spec).and_then(|()| {
                adopt::write_header(&mut dp.maps, set, false, adopt::psec_digest(spec))
            });
            if written.is_err() {
                let _ = adopt::delete_header(&mut dp.maps, set);
                portsec::delete(&mut dp.maps, set, spec);
            }
            written
        })?;
        self.psec.insert(set, spec.clone());
        Ok(set)
    }

    /// Deletes the table or port-security set under `id`.
    fn forget_id(&mut self, id: u32) {
        // The header first: a half-deleted table must never look complete.
        // If it cannot go, neither may the rest (a later sweep finds it).
        if adopt::delete_header(&mut self.maps, id).is_err() {
            self.sweep_pending = true;
            self.store.remove(id);
            self.adopted.remove(id);
            self.psec.remove(id);
            self.refs.remove(&id);
            return;
        }
        if let Some(stored) = self.store.remove(id) {
            stored.keys.delete(&mut self.maps);
        }
        if let Some(list) = self.adopted.remove(id) {
            // An adopted table's keys: those this build writes for its list
            // (its header says the previous owner's build was this one).
            match secgroup_classifier::build(&list) {
                Ok(table) => tables::delete(&mut self.maps, id, &table),
                Err(_) => self.sweep_pending = true,
            }
        }
        if let Some(spec) = self.psec.remove(id) {
            portsec::delete(&mut self.maps, id, &spec);
        }
        self.refs.remove(&id);
    }

    /// Waits until no BPF program can still be using a value it read
    /// before this call. The kernel waits for an RCU grace period after
    /// every map-in-map update made through the syscall, so updating the
    /// one slot of sg_rcu_barrier is exactly that wait (~ms); nothing reads
    /// the slot.
    pub fn rcu_barrier(&mut self) -> Result<(), DataplaneError> {
        self.maps
            .rcu_barrier
            .set(0, &self.barrier_inner, 0)
            .map_err(map_err(names::RCU_BARRIER))
    }

    /// Compares the pins with what this process wrote: the owner and
    /// layout in `sg_meta` and every `sg_ifaces` entry. An empty list means
    /// nobody else has written them. Cheap enough to run periodically (one
    /// lookup plus one walk of `sg_ifaces`).
    pub fn check_pins(&self) -> Result<Vec<Tampering>, DataplaneError> {
        let mut found = Vec::new();
        let meta = self.maps.meta.get(&0, 0).map_err(map_err(names::META))?;
        if meta.abi_version != ABI_VERSION {
            found.push(Tampering::AbiChanged {
                version: meta.abi_version,
            });
        }
        if meta.owner_token != self.meta.owner_token {
            found.push(Tampering::OwnerChanged {
                pid: meta.owner_pid,
                socket: meta.socket(),
            });
        }
        let mut seen: HashMap<u32, Iface> = HashMap::new();
        for entry in self.maps.ifaces.iter() {
            let (ifindex, iface) = entry.map_err(map_err(names::IFACES))?;
            seen.insert(ifindex, iface);
        }
        let mut ifindexes: Vec<u32> = seen.keys().chain(self.ifaces.keys()).copied().collect();
        ifindexes.sort_unstable();
        ifindexes.dedup();
        for ifindex in ifindexes {
            match (self.ifaces.get(&ifindex), seen.get(&ifindex)) {
                (Some(ours), Some(theirs)) if ours != theirs => {
                    found.push(Tampering::InterfaceChanged { ifindex })
                }
                (None, Some(_)) => found.push(Tampering::InterfaceAdded { ifindex }),
                (Some(_), None) => found.push(Tampering::InterfaceRemoved { ifindex }),
                _ => {}
            }
        }
        Ok(found)
    }

    /// Takes the pins back after someone else wrote them: this process is
    /// the owner in `sg_meta` again, the view of `sg_ifaces` is re-read,
    /// and, since no table can be trusted any more, the next
    /// [`apply`](Self::apply) writes every table afresh under new ids and
    /// sweeps everything else. Call `apply` with the full policy right
    /// after.
    pub fn reclaim(&mut self) -> Result<(), DataplaneError> {
        let kernel = self.maps.meta.get(&0, 0).map_err(map_err(names::META))?;
        let mut meta = self.meta;
        meta.abi_version = ABI_VERSION;
        meta.next_table_id = meta.next_table_id.max(kernel.next_table_id);
        meta.generation = meta.generation.max(kernel.generation);
        self.write_meta(meta)?;
        self.resync_from_kernel()
    }

    /// Re-reads `sg_ifaces` into the view and forgets every table, so the
    /// next apply rewrites all of them and sweeps the rest.
    fn resync_from_kernel(&mut self) -> Result<(), DataplaneError> {
        let mut ifaces = HashMap::new();
        for entry in self.maps.ifaces.iter() {
            let (ifindex, iface) = entry.map_err(map_err(names::IFACES))?;
            ifaces.insert(ifindex, iface);
        }
        let ids = tables::ids_in_kernel(&self.maps)?;
        let sets = portsec::ids_in_kernel(&self.maps)?;
        let next = ids
            .max()
            .max(sets.into_iter().max())
            .map_or(1, |m| m.saturating_add(1));
        self.refs = tables::refs_of(ifaces.values());
        self.ifaces = ifaces;
        self.store.forget_all(next);
        self.adopted.clear();
        self.candidates = super::adopt::Candidates::default();
        self.psec.forget_all();
        self.sweep_pending = true;
        self.mark_clean(false)?;
        Ok(())
    }
}
