//! Warnings: rule sets that are valid but probably not what their author
//! meant. They never fail a load; `secgroupctl validate --deny-warnings`
//! makes them fatal for a controller's CI.
//!
//! - a security group bound to no instance;
//! - a rule that never decides a packet: shadowed by earlier rules of its
//!   list (exactly, see `reach`), or matching nothing at all;
//! - a rule naming an IPv6 extension header as its protocol;
//! - a list over Tencent Cloud's quota of rules per direction per group;
//! - an instance whose groups have no rule in a direction, unless one of
//!   them says so on purpose (`"egress": []` rather than no key).
//!
//! Shadowing is judged on each group's own list first: that is what its
//! author wrote, the same for every instance. A rule that decides packets
//! in its group may still be dead in an instance's concatenated list
//! because a group bound earlier decides its traffic; that is reported too,
//! once per binding order, naming the instances.

mod memo;
mod reach;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use secgroup_model::{
    Diagnostic, Direction, Index, InstanceId, Location, ObjectKind, Protocol, Remote, RuleSet, SgId,
};

use crate::compiled::{GroupPolicy, InstancePolicy, Policy, RuleList, RuleOrigin};
use memo::Memo;

pub use reach::{Reach, reach};

/// Tencent Cloud's quota of rules per direction per security group. The
/// data plane holds far more; a longer list only cannot go back to Tencent.
pub const TENCENT_RULES_PER_DIRECTION: usize = 100;

/// IPv6 extension headers the data plane walks over to reach the
/// upper-layer protocol (`sg_ipv6_is_ext` in ebpf/lib/proto.h): hop-by-hop
/// options, routing, fragment, authentication header, destination options.
/// An IPv6 packet is never classified with one of these as its protocol.
pub const IPV6_EXTENSION_HEADERS: [(u8, &str); 5] = [
    (0, "hop-by-hop options"),
    (43, "routing"),
    (44, "fragment"),
    (51, "authentication header"),
    (60, "destination options"),
];

/// Every warning about `rules` (compiled as `policy`, files as `index`),
/// sorted like the loader's diagnostics.
pub fn lint(rules: &RuleSet, policy: &Policy, index: &Index) -> Vec<Diagnostic> {
    Linter::default().lint(rules, policy, index)
}

/// [`lint`] that keeps each list's reach for the next lint (see
/// `memo.rs`): the same warnings, but after a reload that recompiled a
/// few groups and instances, only their lists are analysed again. Keep
/// one across the lints of successive policies (the daemon does).
#[derive(Default)]
pub struct Linter {
    groups: Memo<SgId, GroupPolicy>,
    instances: Memo<InstanceId, InstancePolicy>,
}

impl std::fmt::Debug for Linter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Linter")
    }
}

impl Linter {
    /// [`lint`], through what the last call kept.
    pub fn lint(&mut self, rules: &RuleSet, policy: &Policy, index: &Index) -> Vec<Diagnostic> {
        let places = Places { index };
        let mut out = Vec::new();
        unbound_groups(rules, &places, &mut out);
        let group_reach = group_lists(policy, &mut self.groups, &places, &mut out);
        instance_lists(policy, &mut self.instances, &group_reach, &places, &mut out);
        deny_all(policy, &places, &mut out);
        self.groups.finish();
        self.instances.finish();
        out.sort();
        out.dedup();
        out
    }
}

/// Where things are, from the loader's index.
struct Places<'a> {
    index: &'a Index,
}

impl Places<'_> {
    fn definition(&self, kind: ObjectKind, id: &str) -> Option<&secgroup_model::Definition> {
        self.index.defining(kind, id).map(|(_, d)| d)
    }

    fn rule(&self, origin: &RuleOrigin) -> Option<&Location> {
        self.definition(ObjectKind::SecurityGroup, origin.sg.as_str())?
            .parts
            .list(origin.direction)?
            .rules
            .get(origin.index)
    }

    /// `sg-web ingress #0 (a.json:4:9)`.
    fn name(&self, origin: &RuleOrigin) -> String {
        let name = format!("{} {} #{}", origin.sg, origin.direction, origin.index);
        match self.rule(origin) {
            Some(at) => format!("{name} ({at})"),
            None => name,
        }
    }
}

fn warning(at: &Location, message: String) -> Diagnostic {
    Diagnostic {
        file: at.file.clone(),
        line: at.line,
        column: at.column,
        path: at.path.clone(),
        message,
    }
}

fn unbound_groups(rules: &RuleSet, places: &Places<'_>, out: &mut Vec<Diagnostic>) {
    let bound: BTreeSet<&SgId> = rules
        .instances
        .values()
        .flat_map(|i| &i.security_groups)
        .collect();
    let referenced: BTreeSet<&SgId> = rules
        .security_groups
        .values()
        .flat_map(|g| g.ingress.iter().chain(&g.egress))
        .filter_map(|r| match &r.remote {
            Remote::SecurityGroup(id) => Some(id),
            _ => None,
        })
        .collect();
    for id in rules
        .security_groups
        .keys()
        .filter(|id| !bound.contains(id))
    {
        let Some(def) = places.definition(ObjectKind::SecurityGroup, id.as_str()) else {
            continue;
        };
        let mut message =
            format!("security group {id} is bound to no instance: its rules are enforced nowhere");
        if referenced.contains(id) {
            message.push_str(", and rules naming it as remote match no address");
        }
        out.push(warning(&def.at, message));
    }
}

/// Warnings about each group's own lists; returns every rule's reach
/// there, by origin (without the key).
fn group_lists(
    policy: &Policy,
    memo: &mut Memo<SgId, GroupPolicy>,
    places: &Places<'_>,
    out: &mut Vec<Diagnostic>,
) -> BTreeMap<(SgId, Direction, usize), bool> {
    let mut decisive = BTreeMap::new();
    for (id, group) in policy.security_groups.shared() {
        let Some(def) = places.definition(ObjectKind::SecurityGroup, group.id.as_str()) else {
            continue;
        };
        for direction in Direction::ALL {
            let list = group.rules(direction);
            if list.rules.len() > TENCENT_RULES_PER_DIRECTION
                && let Some(at) = def.parts.list(direction)
            {
                out.push(warning(
                    &at.at,
                    format!(
                        "{} {direction} rules, over Tencent Cloud's quota of {TENCENT_RULES_PER_DIRECTION} per direction per security group: enforced here, but this group cannot be applied in Tencent Cloud as it is",
                        list.rules.len()
                    ),
                ));
            }
            extension_headers(list, places, out);
            for (rule, reach) in list
                .rules
                .iter()
                .zip(memo.reach(id, group, direction).iter())
            {
                let o = &rule.origin;
                decisive.insert(
                    (o.sg.clone(), o.direction, o.index),
                    matches!(reach, Reach::Decides(_)),
                );
                let Some(at) = places.rule(o) else { continue };
                match reach {
                    Reach::Decides(_) => {}
                    Reach::Shadowed(deciders) => out.push(warning(
                        at,
                        format!(
                            "this rule never decides a packet: {} first",
                            deciders_text(list, deciders, places)
                        ),
                    )),
                    Reach::Empty => out.push(warning(at, empty_text(rule))),
                }
            }
        }
    }
    decisive
}

fn deciders_text(list: &RuleList, deciders: &[usize], places: &Places<'_>) -> String {
    let names: Vec<String> = deciders
        .iter()
        .map(|&j| places.name(&list.rules[j].origin))
        .collect();
    match names.as_slice() {
        [one] => format!("{one} decides all of its traffic"),
        _ => format!("{} together decide all of its traffic", names.join(", ")),
    }
}

fn empty_text(rule: &crate::compiled::EffectiveRule) -> String {
    if rule.services.is_empty() {
        "this rule matches no packet: its service set names no service".to_owned()
    } else {
        "this rule matches no packet: its remote stands for no address (an empty set, or a security group no instance with addresses is bound to)".to_owned()
    }
}

fn extension_headers(list: &RuleList, places: &Places<'_>, out: &mut Vec<Diagnostic>) {
    for rule in list.rules.iter() {
        if !rule
            .remotes
            .iter()
            .any(|n| matches!(n, ipnet::IpNet::V6(_)))
        {
            continue;
        }
        let Some(at) = places.rule(&rule.origin) else {
            continue;
        };
        for service in &rule.services {
            let Protocol::Number(n) = service.protocol else {
                continue;
            };
            if let Some((_, header)) = IPV6_EXTENSION_HEADERS.iter().find(|(p, _)| *p == n) {
                out.push(warning(
                    at,
                    format!(
                        "protocol {n} is an IPv6 extension header ({header}): the data plane walks over it to the protocol behind it, so this rule never matches IPv6 traffic"
                    ),
                ));
            }
        }
    }
}

/// Rules that decide packets in their group but none in the concatenated
/// list of the instances (of this host) bound in some order.
fn instance_lists(
    policy: &Policy,
    memo: &mut Memo<InstanceId, InstancePolicy>,
    group_reach: &BTreeMap<(SgId, Direction, usize), bool>,
    places: &Places<'_>,
    out: &mut Vec<Diagnostic>,
) {
    // Each order with the first instance bound in it (every instance of
    // one order has the same lists) and all of them.
    type Bound<'p> = ((&'p InstanceId, &'p Arc<InstancePolicy>), Vec<&'p str>);
    let mut orders: BTreeMap<&[SgId], Bound<'_>> = BTreeMap::new();
    for (id, instance) in policy.instances.shared() {
        if instance.interface.is_some() && instance.security_groups.len() > 1 {
            orders
                .entry(&instance.security_groups)
                .or_insert_with(|| ((id, instance), Vec::new()))
                .1
                .push(instance.id.as_str());
        }
    }
    for (order, ((id, instance), instances)) in orders {
        let groups: Vec<&str> = order.iter().map(SgId::as_str).collect();
        let whose = match instances.as_slice() {
            [one] => format!("instance {one}"),
            _ => format!("instances {}", instances.join(", ")),
        };
        for direction in Direction::ALL {
            let list = instance.rules(direction);
            for (rule, reach) in list
                .rules
                .iter()
                .zip(memo.reach(id, instance, direction).iter())
            {
                let o = &rule.origin;
                let Reach::Shadowed(deciders) = reach else {
                    continue;
                };
                let alone = group_reach.get(&(o.sg.clone(), o.direction, o.index));
                let Some(at) = places.rule(o).filter(|_| alone == Some(&true)) else {
                    continue;
                };
                out.push(warning(
                    at,
                    format!(
                        "for {whose} (bound to {} in this order) this rule never decides a packet: {} first",
                        groups.join(", "),
                        deciders_text(list, deciders, places)
                    ),
                ));
            }
        }
    }
}

fn deny_all(policy: &Policy, places: &Places<'_>, out: &mut Vec<Diagnostic>) {
    for instance in policy.instances.values() {
        if instance.interface.is_none() {
            continue;
        }
        let Some(def) = places.definition(ObjectKind::Instance, instance.id.as_str()) else {
            continue;
        };
        for direction in Direction::ALL {
            if !instance.rules(direction).rules.is_empty() {
                continue;
            }
            let on_purpose = instance.security_groups.iter().any(|sg| {
                places
                    .definition(ObjectKind::SecurityGroup, sg.as_str())
                    .is_some_and(|d| d.parts.list(direction).is_some())
            });
            if on_purpose {
                continue;
            }
            let groups: Vec<&str> = instance.security_groups.iter().map(SgId::as_str).collect();
            out.push(warning(
                &def.at,
                format!(
                    "instance {} drops all its {direction} traffic: none of its security groups ({}) has {direction} rules; write \"{direction}\": [] in one of them if that is meant",
                    instance.id,
                    groups.join(", ")
                ),
            ));
        }
    }
}
