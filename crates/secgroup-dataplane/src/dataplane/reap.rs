//! Replaced tables freed off the owner's critical path.
//!
//! After an apply, the tables and port-security sets no interface names
//! any more must stay in the maps until an RCU grace period has passed (a
//! program may still be reading them), then go. Done inline, the grace
//! period (10–15 ms here) and the deletions (a few milliseconds a table)
//! sat between one change being in force and the next one starting: a VM
//! whose group changed twice in a row waited for the first change's
//! garbage.
//!
//! Instead, [`Dataplane::retire_unused`] takes the unused ids out of the
//! books at once (a list that comes back gets a fresh table: a retired id
//! is never named again) and queues their contents under an epoch. A
//! [`GraceBarrier`], a handle any thread can wait on, says when a grace
//! period that began after the retirement has passed
//! ([`Dataplane::grace_elapsed`]); the owner then deletes what is safe one
//! table at a time ([`Dataplane::reap_step`]) whenever it has nothing
//! better to do, or all at once ([`Dataplane::reap_all_now`]) before it
//! stops, and when a table being written finds a map full while garbage
//! waits (the write is undone, the garbage deleted, the write tried
//! again). So a change that comes while the last one's garbage is still
//! being deleted waits for it only if it needs its room: a small change
//! after a large one does not. Until the queue is empty the pins' marker
//! says "not clean", so a restart in between sweeps what was left.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use aya::maps::IterableMap;
use secgroup_policy::{PortSecurity, RuleList};

use super::{ApplyReport, Dataplane, adopt};
use crate::error::DataplaneError;
use crate::maps::names;
use crate::tables::TableKeys;
use crate::{batch, portsec, tables};

/// What a retired id held.
enum Contents {
    /// A table this process wrote: only its keys are kept.
    Table(TableKeys),
    /// Adopted from a previous owner: its keys are those this build writes
    /// for the list.
    Adopted(RuleList),
    PortSecurity(PortSecurity),
}

struct Retired {
    id: u32,
    contents: Contents,
    /// Safe to delete once a grace period of this epoch has passed.
    epoch: u64,
    /// Its entries in the maps, for [`Dataplane::retired_entries`]: exact
    /// for a table this process built, its rule count (a lower bound) for
    /// an adopted one, whose classifier table is built only to delete it.
    entries: usize,
}

/// The queue of retired ids.
#[derive(Default)]
pub(crate) struct Reaping {
    queue: VecDeque<Retired>,
    /// The epoch of the next retirement.
    next_epoch: u64,
    /// Every retirement of an epoch below this is past a grace period.
    safe_below: u64,
    entries: usize,
    /// Time writes spent waiting for garbage to make room, since the
    /// owner last asked ([`Dataplane::take_time_making_room`]).
    making_room: Duration,
}

/// A retirement's ticket: what to wait a grace period for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraceToken(u64);

/// Waits for an RCU grace period from any thread: a map-in-map update
/// (the kernel waits for a grace period after each one made through the
/// syscall) of the barrier map's only slot, through duplicates of the
/// descriptors.
#[derive(Debug)]
pub struct GraceBarrier {
    outer: OwnedFd,
    inner: OwnedFd,
}

impl GraceBarrier {
    /// Returns once a grace period that began during the call has passed.
    pub fn wait(&self) -> std::io::Result<()> {
        let inner_fd = std::os::fd::AsRawFd::as_raw_fd(&self.inner) as u32;
        batch::update_fd(self.outer.as_fd(), &0u32, &inner_fd)
    }
}

impl Dataplane {
    /// Takes every table and port-security set no interface names out of
    /// the books and queues it for deletion after a grace period. `None`:
    /// nothing new to wait for. Falls back to the inline
    /// [`free_unused_now`](Self::free_unused_now) when a sweep is due
    /// (after an adoption that could not be verified: rare).
    pub fn retire_unused(&mut self) -> Option<GraceToken> {
        if !std::mem::take(&mut self.free_pending) {
            return None;
        }
        let unknown_unused = self
            .refs
            .iter()
            .any(|(id, refs)| *refs == 0 && !self.knows(*id));
        if self.sweep_pending || unknown_unused {
            self.reap_all_now();
            let mut report = ApplyReport::default();
            self.free_unused(&mut report);
            return None;
        }
        let unused = self.unused_ids();
        if unused.is_empty() {
            self.mark_clean_if_reaped();
            return None;
        }
        let epoch = self.reaping.next_epoch;
        self.reaping.next_epoch += 1;
        for id in unused {
            let (contents, entries) = if let Some(stored) = self.store.remove(id) {
                let entries = stored.keys.entries();
                (Contents::Table(stored.keys), entries)
            } else if let Some(list) = self.adopted.remove(id) {
                let entries = list.rules.len();
                (Contents::Adopted(RuleList::clone(&list)), entries)
            } else if let Some(spec) = self.psec.remove(id) {
                let entries = spec.allowed.len() + 1;
                (Contents::PortSecurity(spec), entries)
            } else {
                continue;
            };
            self.refs.remove(&id);
            self.reaping.entries += entries;
            self.reaping.queue.push_back(Retired {
                id,
                contents,
                epoch,
                entries,
            });
        }
        Some(GraceToken(epoch))
    }

    /// A handle to wait for grace periods on another thread.
    pub fn grace_barrier(&self) -> Result<GraceBarrier, DataplaneError> {
        let dup = |fd: std::os::fd::BorrowedFd<'_>| {
            fd.try_clone_to_owned()
                .map_err(|source| DataplaneError::Io {
                    action: "duplicating the descriptor of",
                    path: names::RCU_BARRIER.into(),
                    source,
                })
        };
        Ok(GraceBarrier {
            outer: dup(self.maps.rcu_barrier_fd.as_fd())?,
            inner: dup(self.barrier_inner.map().fd().as_fd())?,
        })
    }

    /// A grace period began after `token`'s retirement and has passed.
    pub fn grace_elapsed(&mut self, token: GraceToken) {
        self.reaping.safe_below = self.reaping.safe_below.max(token.0 + 1);
    }

    /// Deletes one retired id whose grace period has passed; `false` when
    /// there is none.
    pub fn reap_step(&mut self) -> bool {
        let Some(front) = self.reaping.queue.front() else {
            return false;
        };
        if front.epoch >= self.reaping.safe_below {
            return false;
        }
        if let Some(retired) = self.reaping.queue.pop_front() {
            self.delete_retired(retired);
        }
        if self.reaping.queue.is_empty() {
            self.mark_clean_if_reaped();
        }
        true
    }

    /// Waits a grace period here and deletes everything retired. If the
    /// wait fails, nothing is deleted (tried again next time).
    pub fn reap_all_now(&mut self) {
        if self.reaping.queue.is_empty() {
            return;
        }
        if self.rcu_barrier().is_err() {
            return;
        }
        self.reaping.safe_below = self.reaping.next_epoch;
        while self.reap_step() {}
    }

    /// Runs `write`, which undoes itself when it fails; if it failed on a
    /// full map while retired garbage waits, deletes the garbage (after a
    /// grace period) and runs it once more.
    pub(super) fn making_room(
        &mut self,
        mut write: impl FnMut(&mut Dataplane) -> Result<(), DataplaneError>,
    ) -> Result<(), DataplaneError> {
        match write(self) {
            Err(e) if e.is_map_full() && self.reaping_pending() => {
                let started = Instant::now();
                self.reap_all_now();
                self.reaping.making_room += started.elapsed();
                write(self)
            }
            written => written,
        }
    }

    /// Time writes spent deleting earlier garbage to make room since the
    /// last call.
    pub fn take_time_making_room(&mut self) -> Duration {
        std::mem::take(&mut self.reaping.making_room)
    }

    /// Entries of the maps that retired ids still hold.
    pub fn retired_entries(&self) -> usize {
        self.reaping.entries
    }

    /// Entries of the maps the tables in use hold (for an adopted table,
    /// its rule count: a lower bound).
    pub fn table_entries(&self) -> usize {
        self.store.entries() + self.adopted.rules()
    }

    /// Whether retired ids wait for deletion.
    pub fn reaping_pending(&self) -> bool {
        !self.reaping.queue.is_empty()
    }

    fn delete_retired(&mut self, retired: Retired) {
        self.reaping.entries = self.reaping.entries.saturating_sub(retired.entries);
        let id = retired.id;
        // The header first: a half-deleted table must never look complete.
        // If it cannot go, neither may the rest (a later sweep finds it).
        if adopt::delete_header(&mut self.maps, id).is_err() {
            self.sweep_pending = true;
            return;
        }
        match retired.contents {
            Contents::Table(keys) => keys.delete(&mut self.maps),
            Contents::Adopted(list) => match secgroup_classifier::build(&list) {
                Ok(table) => tables::delete(&mut self.maps, id, &table),
                Err(_) => self.sweep_pending = true,
            },
            Contents::PortSecurity(spec) => portsec::delete(&mut self.maps, id, &spec),
        }
    }

    /// Marks the pins clean unless retired ids still wait (a restart in
    /// between must sweep them).
    pub(super) fn mark_clean_if_reaped(&mut self) {
        if self.reaping.queue.is_empty() && !self.sweep_pending && !self.free_pending {
            let _ = self.mark_clean(true);
        }
    }
}
