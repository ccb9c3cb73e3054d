//! The checks across files, over the [`FileCheck`]s of every file: the
//! first definition of an id (or binding of an interface) wins and later
//! ones are reported, so the order of the files decides where a conflict
//! is reported. Two instances of this host (with an `interface`) may not
//! share an address in `ips`: port security would let both send from it
//! and the host could not tell them apart. The same address on an
//! instance of this host and one elsewhere is only a warning (an inventory
//! that is a little out of date, a migration under way).
//!
//! An instance's `"host"` says whose interface it has. Seen from one host
//! (`HostView::Host`), an instance of another host is bound nowhere here:
//! it only lends its addresses, like one without an interface, and the
//! merged rule set gives it no interface. Seen as a fleet
//! (`HostView::Fleet`), each instance is bound on its own host, and
//! interfaces and addresses must be unique per host.
//!
//! Only borrows the checks: a reload of a thousand files runs this, not
//! the per-file checks, for every file that did not change.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt};
use std::net::IpAddr;

use crate::diagnostic::{Diagnostic, HostView, Limits};
use crate::location::quote;
use crate::model::{Direction, RuleSet, SgId};
use crate::raw::Loc;

use super::{Claim, FileCheck, Id};

/// Per address: per host (`""`: this one, but in the fleet view), the
/// first instance bound there, and the first instance bound nowhere here
/// that list it in `ips`, with where they list it.
#[derive(Default)]
struct Claims<'c> {
    local: BTreeMap<&'c str, &'c Claim>,
    remote: Option<&'c Claim>,
}

/// The host an instance is bound on in `view` (`""` for this host, or for
/// the one host of a rules directory in the fleet view), or `None` when it
/// is bound nowhere here (no interface, or another host's).
fn bound_on<'h>(view: HostView<'_>, has_interface: bool, host: Option<&'h str>) -> Option<&'h str> {
    if !has_interface {
        return None;
    }
    match view {
        HostView::Fleet => Some(host.unwrap_or("")),
        HostView::Host(me) => host.is_none_or(|h| h == me).then_some(""),
    }
}

struct Merge<'c> {
    view: HostView<'c>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    defined: HashMap<&'c Id, &'c Loc>,
    rule_counts: HashMap<&'c SgId, [usize; 2]>,
    /// (Host, interface name) → instance id as written and where it was
    /// bound; the host is `""` but in the fleet view.
    interfaces: HashMap<(&'c str, &'c str), (&'c str, &'c Loc)>,
    addresses: BTreeMap<IpAddr, Claims<'c>>,
}

/// Merges the checks of every file, in the order given (the earlier
/// definition wins): the errors of the files and of the merge, the
/// warnings, and the rule set when there is no error.
pub(crate) fn merge<'c>(
    files: &[&'c FileCheck],
    limits: &Limits,
    view: HostView<'c>,
) -> (Option<RuleSet>, Vec<Diagnostic>, Vec<Diagnostic>) {
    let mut merge = Merge {
        view,
        errors: Vec::new(),
        warnings: Vec::new(),
        defined: HashMap::new(),
        rule_counts: HashMap::new(),
        interfaces: HashMap::new(),
        addresses: BTreeMap::new(),
    };
    for file in files {
        merge.file(file);
    }
    for file in files {
        merge.references(file);
        merge.quotas(file, limits);
    }
    let Merge {
        mut errors,
        warnings,
        ..
    } = merge;
    for file in files {
        errors.extend_from_slice(&file.errors);
    }
    if !errors.is_empty() {
        return (None, errors, warnings);
    }
    // No error anywhere: every object of every file is valid and the
    // first of its id.
    let mut rules = RuleSet::default();
    for file in files {
        let objects = &file.objects;
        unite(&mut rules.security_groups, &objects.security_groups);
        rules
            .instances
            .extend(objects.instances.iter().map(|(k, v)| {
                let mut instance = v.clone();
                // Another host's interface means nothing here.
                if view != HostView::Fleet
                    && bound_on(view, instance.interface.is_some(), instance.host.as_deref())
                        .is_none()
                {
                    instance.interface = None;
                }
                (k.clone(), instance)
            }));
        unite(&mut rules.address_sets, &objects.address_sets);
        unite(&mut rules.address_set_groups, &objects.address_set_groups);
        unite(&mut rules.service_sets, &objects.service_sets);
        unite(&mut rules.service_set_groups, &objects.service_set_groups);
    }
    (Some(rules), errors, warnings)
}

/// Adds copies of `from`'s objects to `into`.
fn unite<K: Ord + Clone, V: Clone>(into: &mut BTreeMap<K, V>, from: &BTreeMap<K, V>) {
    into.extend(from.iter().map(|(k, v)| (k.clone(), v.clone())));
}

impl<'c> Merge<'c> {
    /// Definitions, interfaces and addresses of one file.
    fn file(&mut self, file: &'c FileCheck) {
        let first: Vec<bool> = file
            .definitions
            .iter()
            .map(|(id, loc)| self.define(id, loc))
            .collect();
        for (def, id, counts) in &file.rule_counts {
            if first[*def] {
                self.rule_counts.insert(id, *counts);
            }
        }
        for (name, instance, loc, host) in &file.interfaces {
            let Some(scope) = bound_on(self.view, true, host.as_deref()) else {
                continue;
            };
            let key = (scope, name.as_str());
            if let Some((owner, at)) = self.interfaces.get(&key) {
                let message = format!(
                    "interface {} is already bound to instance {} at {}; an interface belongs to one instance",
                    quote(name),
                    quote(owner),
                    at.position()
                );
                self.errors.push(loc.diagnostic(message));
            } else {
                self.interfaces.insert(key, (instance, loc));
            }
        }
        for claim in &file.claims {
            if first[claim.def] {
                self.claim(claim);
            }
        }
    }

    /// Records the first definition of `id`; reports later ones. Returns
    /// whether this is the first.
    fn define(&mut self, id: &'c Id, loc: &'c Loc) -> bool {
        if let Some(first) = self.defined.get(id) {
            let (kind, id) = id.describe();
            self.errors.push(loc.diagnostic(format!(
                "duplicate {kind} id {}; first defined at {}",
                quote(&id),
                first.position()
            )));
            false
        } else {
            self.defined.insert(id, loc);
            true
        }
    }

    /// Records that an instance lists an address; reports a second
    /// instance of this host with it, and warns when one instance here and
    /// one elsewhere have it.
    fn claim(&mut self, claim: &'c Claim) {
        let placement = &claim.placement;
        let local = bound_on(
            self.view,
            placement.has_interface,
            placement.host.as_deref(),
        );
        let claims = self.addresses.entry(claim.ip).or_default();
        let address = quote(&claim.written);
        let name = quote(&claim.instance);
        if let Some(host) = local
            && let Some(first) = claims.local.get(host)
        {
            let message = format!(
                "address {address} of instance {name} is already an address of instance {} at {}; two instances on this host cannot share an address (a shared virtual address belongs in allowed_address_pairs)",
                quote(&first.instance),
                first.loc.position()
            );
            self.errors.push(claim.loc.diagnostic(message));
            return;
        }
        let other = match local {
            Some(_) => claims.remote,
            None => claims.local.values().next().copied(),
        };
        if let Some(first) = other {
            let (here, there) = if local.is_some() {
                ("on this host", "on another host")
            } else {
                ("on another host", "on this host")
            };
            let message = format!(
                "address {address} of instance {name}, {here}, is also an address of instance {}, {there}, at {}; one of the two is probably out of date",
                quote(&first.instance),
                first.loc.position()
            );
            self.warnings.push(claim.loc.diagnostic(message));
        }
        match local {
            Some(host) => {
                claims.local.entry(host).or_insert(claim);
            }
            None => {
                claims.remote.get_or_insert(claim);
            }
        }
    }

    /// Every reference of a file must name something some file defines.
    fn references(&mut self, file: &FileCheck) {
        for (target, loc) in &file.references {
            if !self.defined.contains_key(target) {
                let (kind, id) = target.describe();
                self.errors.push(loc.diagnostic(format!(
                    "unknown {kind} {}: no rule file defines it",
                    quote(&id)
                )));
            }
        }
    }

    /// An instance may not enforce more rules than the limit, summed over
    /// its groups (wherever they are defined).
    fn quotas(&mut self, file: &FileCheck, limits: &Limits) {
        for binding in &file.bindings {
            for (d, direction) in Direction::ALL.into_iter().enumerate() {
                let total: usize = binding
                    .groups
                    .iter()
                    .filter_map(|g| self.rule_counts.get(g))
                    .map(|counts| counts[d])
                    .sum();
                if total > limits.max_effective_rules {
                    let message = format!(
                        "instance {} would enforce {total} {direction} rules (the sum over its security groups), over the limit of {} (max_effective_rules)",
                        quote(&binding.instance),
                        limits.max_effective_rules
                    );
                    self.errors.push(binding.loc.diagnostic(message));
                }
            }
        }
    }
}
