//! Which interfaces a sync looks at: all of them (a reload, a retry, an
//! overrun of the link notifications), or only those a batch of link
//! events named. With a thousand VMs a link event for one interface
//! looked every bound name up again (a thousand `SIOCGIFINDEX` calls and
//! as many `SIOCGIFNAME` for the hooks) before the new one was bound.

use std::collections::{BTreeMap, BTreeSet};

use secgroup_dataplane::{DataplaneError, error_chain};
use secgroup_model::InstanceId;
use secgroup_policy::Policy;
use tracing::warn;

use super::Engine;
use crate::iface::Lookups;

/// The interfaces a sync looks up.
#[derive(Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// Every interface the policy names and every hooked one.
    All,
    /// Only these interface names (and the interfaces hooked or bound
    /// under them); every other binding is kept as it is bound.
    Named(&'a BTreeSet<String>),
}

impl Scope<'_> {
    fn covers(self, name: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Named(names) => names.contains(name),
        }
    }
}

/// How an interface name resolved.
pub(super) enum Lookup {
    Found(u32),
    /// The kernel says there is no such interface.
    Absent,
    /// The lookup failed for another reason: nothing is known.
    Unknown(String),
}

pub(super) fn lookup(lookups: &Lookups, name: &str) -> Lookup {
    match lookups.index(name) {
        Ok(ifindex) => Lookup::Found(ifindex),
        Err(DataplaneError::UnknownInterface { .. }) => Lookup::Absent,
        Err(e) => Lookup::Unknown(error_chain(&e)),
    }
}

impl Engine {
    /// ifindex → the instance that should be bound there, for the
    /// interfaces in `scope` as the kernel says they are now, and for the
    /// others as they are bound. An interface whose lookup fails keeps
    /// the binding it had (if any) and is never assumed present.
    pub(super) fn desired_bindings(
        &mut self,
        policy: &Policy,
        scope: Scope<'_>,
    ) -> BTreeMap<u32, InstanceId> {
        let interface_of = |id: &InstanceId| {
            policy
                .instances
                .get(id)
                .and_then(|i| i.interface.as_deref())
        };
        let mut desired: BTreeMap<u32, InstanceId> = match scope {
            Scope::All => {
                self.now.lookup_errors.clear();
                BTreeMap::new()
            }
            Scope::Named(names) => {
                for name in names {
                    self.now.lookup_errors.remove(name);
                }
                self.now
                    .bound
                    .iter()
                    .filter(|(_, id)| interface_of(id).is_some_and(|n| !names.contains(n)))
                    .map(|(ifindex, id)| (*ifindex, id.clone()))
                    .collect()
            }
        };
        let lookups = Lookups::new();
        for instance in policy.instances.values() {
            let Some(name) = &instance.interface else {
                continue;
            };
            if !scope.covers(name) {
                continue;
            }
            match lookup(&lookups, name) {
                Lookup::Found(ifindex) => {
                    desired.insert(ifindex, instance.id.clone());
                }
                Lookup::Absent => {
                    // Waiting for the interface; an old failure is moot.
                    self.now.failures.remove(name);
                }
                Lookup::Unknown(error) => {
                    // Keep whatever binding it had: a failed lookup says
                    // nothing about the interface.
                    warn!(interface = %name, %error, "looking the interface up failed; its binding stays as it was");
                    if let Some((ifindex, _)) =
                        self.now.bound.iter().find(|(_, id)| **id == instance.id)
                    {
                        desired.insert(*ifindex, instance.id.clone());
                    }
                    self.now.lookup_errors.insert(name.clone(), error);
                }
            }
        }
        desired
    }

    /// The hooked interfaces whose kernel link `scope` asks about: every
    /// one, or those hooked or bound under a named interface.
    pub(super) fn hooked_in(&self, policy: &Policy, scope: Scope<'_>) -> BTreeSet<u32> {
        let Scope::Named(names) = scope else {
            return self.hooked_interfaces();
        };
        let hooked = self
            .now
            .hooks
            .iter()
            .filter(|(_, h)| names.contains(&h.name))
            .map(|(ifindex, _)| *ifindex);
        let bound = self
            .now
            .bound
            .iter()
            .filter(|(_, id)| {
                policy
                    .instances
                    .get(*id)
                    .and_then(|i| i.interface.as_deref())
                    .is_some_and(|n| names.contains(n))
            })
            .map(|(ifindex, _)| *ifindex)
            .filter(|ifindex| self.now.hooks.contains_key(ifindex));
        hooked.chain(bound).collect()
    }

    /// The interface names a link event at `ifindex` may change the
    /// binding of: `name` itself and whatever is hooked, bound or guarded
    /// there now (a rename, or an ifindex the kernel gave again).
    pub(super) fn names_at(&self, ifindex: u32, name: Option<&str>) -> Vec<String> {
        let loaded = self.now.loaded.as_ref();
        let bound = self
            .now
            .bound
            .get(&ifindex)
            .and_then(|id| loaded.and_then(|l| l.policy.instances.get(id)))
            .and_then(|instance| instance.interface.clone());
        name.map(str::to_owned)
            .into_iter()
            .chain(self.now.hooks.get(&ifindex).map(|h| h.name.clone()))
            .chain(bound)
            .chain(self.now.guarded.get(&ifindex).cloned())
            .collect()
    }
}
