//! The checks across files, over the [`FileCheck`]s of every file: the
//! first definition of an id (or binding of an interface) wins and later
//! ones are reported, so the order of the files decides where a conflict
//! is reported. Two instances of this host (with an `interface`) may not
//! share an address in `ips`: port security would let both send from it
//! and the host could not tell them apart. The same address on an
//! instance of this host and one elsewhere is only a warning (an inventory
//! that is a little out of date, a migration under way).
//!
//! Only borrows the checks: a reload of a thousand files runs this, not
//! the per-file checks, for every file that did not change.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::diagnostic::{Diagnostic, Limits};
use crate::location::quote;
use crate::model::{Direction, RuleSet, SgId};
use crate::raw::Loc;

use super::{Claim, FileCheck, Id};

/// Per address: the first instance of this host and the first instance
/// elsewhere that list it in `ips`, with where they list it.
#[derive(Default)]
struct Claims<'c> {
    local: Option<&'c Claim>,
    remote: Option<&'c Claim>,
}

struct Merge<'c> {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    defined: HashMap<&'c Id, &'c Loc>,
    rule_counts: HashMap<&'c SgId, [usize; 2]>,
    /// Interface name → instance id as written and where it was bound.
    interfaces: HashMap<&'c str, (&'c str, &'c Loc)>,
    addresses: BTreeMap<IpAddr, Claims<'c>>,
}

/// Merges the checks of every file, in the order given (the earlier
/// definition wins): the errors of the files and of the merge, the
/// warnings, and the rule set when there is no error.
pub(crate) fn merge(
    files: &[&FileCheck],
    limits: &Limits,
) -> (Option<RuleSet>, Vec<Diagnostic>, Vec<Diagnostic>) {
    let mut merge = Merge {
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
        unite(&mut rules.instances, &objects.instances);
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
        for (name, instance, loc) in &file.interfaces {
            if let Some((owner, at)) = self.interfaces.get(name.as_str()) {
                let message = format!(
                    "interface {} is already bound to instance {} at {}; an interface belongs to one instance",
                    quote(name),
                    quote(owner),
                    at.position()
                );
                self.errors.push(loc.diagnostic(message));
            } else {
                self.interfaces.insert(name, (instance, loc));
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
        let claims = self.addresses.entry(claim.ip).or_default();
        let address = quote(&claim.written);
        let name = quote(&claim.instance);
        let (same, other) = if claim.local {
            (&claims.local, &claims.remote)
        } else {
            (&claims.remote, &claims.local)
        };
        if claim.local
            && let Some(first) = same
        {
            let message = format!(
                "address {address} of instance {name} is already an address of instance {} at {}; two instances on this host cannot share an address (a shared virtual address belongs in allowed_address_pairs)",
                quote(&first.instance),
                first.loc.position()
            );
            self.errors.push(claim.loc.diagnostic(message));
            return;
        }
        if let Some(first) = other {
            let (here, there) = if claim.local {
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
        let slot = if claim.local {
            &mut claims.local
        } else {
            &mut claims.remote
        };
        if slot.is_none() {
            *slot = Some(claim);
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
