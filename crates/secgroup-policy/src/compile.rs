//! From the validated model to per-instance first-match lists.
//!
//! Every reference is resolved once: the addresses of each security group's
//! members, each address set (group) and each service set (group) go into
//! an index before any rule is looked at, and each security group is
//! compiled once and then copied into the list of every instance bound to
//! it. That keeps compilation linear in the size of its output.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use secgroup_model::{
    AddressBlock, AddressSetGroupId, AddressSetId, Direction, Instance, Remote, Rule, RuleSet,
    SecurityGroup, Service, ServiceSetGroupId, ServiceSetId, SgId, Traffic,
};

use crate::compiled::{
    EffectiveRule, GroupPolicy, InstancePolicy, Policy, RuleList, RuleOrigin, Shared,
};
use crate::key::RuleKey;
use crate::port_security::PortSecurity;
use crate::prefix::{normalise, split_range};

/// Compiles a validated rule set.
///
/// Infallible because the model is: ids are unique, references resolve and
/// quotas hold. Should a hand-built `RuleSet` break that anyway, a dangling
/// reference resolves to nothing (the rule matches no packet) and a binding
/// to an unknown group contributes no rules.
pub fn compile(rules: &RuleSet) -> Policy {
    compile_where(rules, |_| true)
}

/// [`compile`], with lists only for the instances bound on this host
/// (those with an `interface`): in a fleet's rule set nearly every
/// instance is another host's, needed here only as its groups' member
/// addresses, which every rule naming a group still gets in full.
pub fn compile_bound(rules: &RuleSet) -> Policy {
    compile_where(rules, |i| i.interface.is_some())
}

fn compile_where(rules: &RuleSet, listed: impl Fn(&Instance) -> bool) -> Policy {
    let resolver = Resolver::new(rules);
    let security_groups: Shared<SgId, GroupPolicy> = rules
        .security_groups
        .values()
        .map(|sg| (sg.id.clone(), resolver.group(sg)))
        .collect();
    let instances = rules
        .instances
        .values()
        .filter(|instance| listed(instance))
        .map(|instance| {
            let policy = instance_policy(instance, &security_groups);
            (instance.id.clone(), policy)
        })
        .collect();
    Policy {
        instances,
        security_groups,
    }
}

/// [`compile`] of `rules`, given `policy`, the compiled form of `previous`:
/// exactly what `compile(rules)` gives, but only the groups and instances
/// whose result can differ are compiled again; the others are shared with
/// `policy`. A group is compiled again when its definition changed or a
/// rule of it names a security group whose members, or an address or
/// service set (group) whose contents, differ; an instance when its
/// definition changed or one of its groups was compiled again (or came or
/// went). One VM's file changed in a thousand: one group and one instance.
pub fn recompile(previous: &RuleSet, policy: &Policy, rules: &RuleSet) -> Policy {
    recompile_where(previous, policy, rules, |_| true)
}

/// [`recompile`] for [`compile_bound`]: `policy` is `compile_bound`'s
/// (or this function's) result for `previous`.
pub fn recompile_bound(previous: &RuleSet, policy: &Policy, rules: &RuleSet) -> Policy {
    recompile_where(previous, policy, rules, |i| i.interface.is_some())
}

fn recompile_where(
    previous: &RuleSet,
    policy: &Policy,
    rules: &RuleSet,
    listed: impl Fn(&Instance) -> bool,
) -> Policy {
    let before = Resolver::new(previous);
    let resolver = Resolver::new(rules);
    let changed = resolver.changed_since(&before);
    let security_groups = Shared::from_shared(rules.security_groups.values().map(|sg| {
        let kept = policy
            .security_groups
            .get_shared(&sg.id)
            .filter(|_| previous.security_groups.get(&sg.id) == Some(sg))
            .filter(|_| !changed.touch(sg));
        let group = match kept {
            Some(group) => Arc::clone(group),
            None => Arc::new(resolver.group(sg)),
        };
        (sg.id.clone(), group)
    }));
    let same_group = |id: &SgId| match (
        security_groups.get_shared(id),
        policy.security_groups.get_shared(id),
    ) {
        (Some(new), Some(old)) => Arc::ptr_eq(new, old),
        (None, None) => true,
        _ => false,
    };
    let listed = rules.instances.values().filter(|instance| listed(instance));
    let instances = Shared::from_shared(listed.map(|instance| {
        let kept = policy
            .instances
            .get_shared(&instance.id)
            .filter(|_| previous.instances.get(&instance.id) == Some(instance))
            .filter(|_| instance.security_groups.iter().all(same_group));
        let compiled = match kept {
            Some(compiled) => Arc::clone(compiled),
            None => Arc::new(instance_policy(instance, &security_groups)),
        };
        (instance.id.clone(), compiled)
    }));
    Policy {
        instances,
        security_groups,
    }
}

/// What a rule may name whose resolution differs between two rule sets.
struct Changed {
    members: HashSet<SgId>,
    address_sets: HashSet<AddressSetId>,
    address_set_groups: HashSet<AddressSetGroupId>,
    service_sets: HashSet<ServiceSetId>,
    service_set_groups: HashSet<ServiceSetGroupId>,
}

impl Changed {
    /// Whether a rule of `sg` names something that changed.
    fn touch(&self, sg: &SecurityGroup) -> bool {
        Direction::ALL.into_iter().any(|direction| {
            sg.rules(direction).iter().any(|rule| {
                let remote = match &rule.remote {
                    Remote::SecurityGroup(id) => self.members.contains(id),
                    Remote::AddressSet(id) => self.address_sets.contains(id),
                    Remote::AddressSetGroup(id) => self.address_set_groups.contains(id),
                    Remote::Block(_) | Remote::Anywhere => false,
                };
                let traffic = match &rule.traffic {
                    Traffic::ServiceSet(id) => self.service_sets.contains(id),
                    Traffic::ServiceSetGroup(id) => self.service_set_groups.contains(id),
                    Traffic::Service(_) => false,
                };
                remote || traffic
            })
        })
    }
}

/// The keys whose values differ between two maps, those present in only
/// one included (a reference to an id that went resolves to nothing now).
fn differing<K: Eq + std::hash::Hash + Clone, V: PartialEq>(
    new: &HashMap<&K, V>,
    old: &HashMap<&K, V>,
) -> HashSet<K> {
    let changed = |(k, v): (&&K, &V), other: &HashMap<&K, V>| {
        (other.get(*k) != Some(v)).then(|| (*k).clone())
    };
    new.iter()
        .filter_map(|entry| changed(entry, old))
        .chain(old.iter().filter_map(|entry| changed(entry, new)))
        .collect()
}

fn instance_policy(instance: &Instance, groups: &Shared<SgId, GroupPolicy>) -> InstancePolicy {
    let concatenate = |direction: Direction| {
        let bound: Vec<&RuleList> = instance
            .security_groups
            .iter()
            .filter_map(|id| groups.get(id))
            .map(|group| group.rules(direction))
            .collect();
        // One group: its list as it is (shared, not copied).
        if let [only] = bound.as_slice() {
            return (*only).clone();
        }
        let mut rules = Vec::with_capacity(bound.iter().map(|list| list.rules.len()).sum());
        for list in bound {
            rules.extend(list.rules.iter().cloned());
        }
        RuleList::from(rules)
    };
    InstancePolicy {
        id: instance.id.clone(),
        interface: instance.interface.clone(),
        mac: instance.mac,
        ips: instance.ips.clone(),
        security_groups: instance.security_groups.clone(),
        port_security: PortSecurity::for_instance(instance),
        log: instance.log,
        enforcement: instance.enforcement,
        ingress: concatenate(Direction::Ingress),
        egress: concatenate(Direction::Egress),
    }
}

/// Every named thing a rule can refer to, resolved up front.
struct Resolver<'a> {
    /// Normalised host prefixes of every instance bound to the group, on
    /// this host or not.
    members: HashMap<&'a SgId, Vec<IpNet>>,
    address_sets: HashMap<&'a AddressSetId, Vec<IpNet>>,
    address_set_groups: HashMap<&'a AddressSetGroupId, Vec<IpNet>>,
    service_sets: HashMap<&'a ServiceSetId, Vec<Service>>,
    service_set_groups: HashMap<&'a ServiceSetGroupId, Vec<Service>>,
}

impl<'a> Resolver<'a> {
    fn new(rules: &'a RuleSet) -> Resolver<'a> {
        let mut member_ips: HashMap<&SgId, Vec<IpNet>> = rules
            .security_groups
            .keys()
            .map(|id| (id, Vec::new()))
            .collect();
        for instance in rules.instances.values() {
            for sg in &instance.security_groups {
                member_ips
                    .entry(sg)
                    .or_default()
                    .extend(instance.ips.iter().map(|&ip| IpNet::from(ip)));
            }
        }
        let members = member_ips
            .into_iter()
            .map(|(id, ips)| (id, normalise(ips)))
            .collect();

        let address_sets: HashMap<&AddressSetId, Vec<IpNet>> = rules
            .address_sets
            .values()
            .map(|set| {
                let nets = set.addresses.iter().flat_map(|&block| block_nets(block));
                (&set.id, normalise(nets))
            })
            .collect();
        let address_set_groups = rules
            .address_set_groups
            .values()
            .map(|group| {
                let nets = group
                    .sets
                    .iter()
                    .filter_map(|id| address_sets.get(id))
                    .flatten()
                    .copied();
                (&group.id, normalise(nets))
            })
            .collect();

        let service_sets: HashMap<&ServiceSetId, Vec<Service>> = rules
            .service_sets
            .values()
            .map(|set| (&set.id, dedupe(&set.services)))
            .collect();
        let service_set_groups = rules
            .service_set_groups
            .values()
            .map(|group| {
                let services = group
                    .sets
                    .iter()
                    .filter_map(|id| service_sets.get(id))
                    .flatten();
                (&group.id, dedupe(services))
            })
            .collect();

        Resolver {
            members,
            address_sets,
            address_set_groups,
            service_sets,
            service_set_groups,
        }
    }

    /// What resolves differently here than in `before`.
    fn changed_since(&self, before: &Resolver<'_>) -> Changed {
        Changed {
            members: differing(&self.members, &before.members),
            address_sets: differing(&self.address_sets, &before.address_sets),
            address_set_groups: differing(&self.address_set_groups, &before.address_set_groups),
            service_sets: differing(&self.service_sets, &before.service_sets),
            service_set_groups: differing(&self.service_set_groups, &before.service_set_groups),
        }
    }

    fn group(&self, sg: &SecurityGroup) -> GroupPolicy {
        let list = |direction: Direction| {
            let rules = sg.rules(direction);
            RuleList {
                rules: rules
                    .iter()
                    .zip(RuleKey::of_list(rules))
                    .enumerate()
                    .map(|(index, (rule, key))| {
                        let origin = RuleOrigin {
                            sg: sg.id.clone(),
                            direction,
                            index,
                            key,
                        };
                        self.rule(origin, rule)
                    })
                    .collect(),
            }
        };
        GroupPolicy {
            id: sg.id.clone(),
            name: sg.name.clone(),
            ingress: list(Direction::Ingress),
            egress: list(Direction::Egress),
        }
    }

    fn rule(&self, origin: RuleOrigin, rule: &Rule) -> EffectiveRule {
        EffectiveRule {
            origin,
            action: rule.action,
            services: self.services(&rule.traffic),
            remotes: self.remotes(&rule.remote),
            log: rule.log,
        }
    }

    fn services(&self, traffic: &Traffic) -> Vec<Service> {
        match traffic {
            Traffic::Service(service) => vec![service.clone()],
            Traffic::ServiceSet(id) => self.service_sets.get(id).cloned().unwrap_or_default(),
            Traffic::ServiceSetGroup(id) => {
                self.service_set_groups.get(id).cloned().unwrap_or_default()
            }
        }
    }

    fn remotes(&self, remote: &Remote) -> Vec<IpNet> {
        let cached = |nets: Option<&Vec<IpNet>>| nets.cloned().unwrap_or_default();
        match remote {
            // A range splits into an already normalised list; a lone CIDR
            // is one trivially.
            Remote::Block(block) => block_nets(*block),
            Remote::Anywhere => vec![
                IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0)),
                IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 0)),
            ],
            Remote::SecurityGroup(id) => cached(self.members.get(id)),
            Remote::AddressSet(id) => cached(self.address_sets.get(id)),
            Remote::AddressSetGroup(id) => cached(self.address_set_groups.get(id)),
        }
    }
}

fn block_nets(block: AddressBlock) -> Vec<IpNet> {
    match block {
        AddressBlock::Net(net) => vec![net.trunc()],
        AddressBlock::Range(range) => split_range(range),
    }
}

/// Keeps the first of exact duplicates, preserving order.
fn dedupe<'s>(services: impl IntoIterator<Item = &'s Service>) -> Vec<Service> {
    let mut seen = HashSet::new();
    services
        .into_iter()
        .filter(|service| seen.insert(*service))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use secgroup_model::{Action, AddressSet, AddressSetGroup, ServiceSet, ServiceSetGroup};

    use super::*;
    use crate::testing::*;

    /// Where a rule came from, without its key.
    fn origin(sg: &str, direction: Direction, index: usize) -> (SgId, Direction, usize) {
        (sg_id(sg), direction, index)
    }

    fn origins(list: &RuleList) -> Vec<(SgId, Direction, usize)> {
        list.rules
            .iter()
            .map(|r| (r.origin.sg.clone(), r.origin.direction, r.origin.index))
            .collect()
    }

    #[test]
    fn concatenates_groups_in_binding_order() {
        let rules = rule_set(
            vec![
                group(
                    "sg-a",
                    vec![accept(tcp("22"), anywhere()), drop(all(), anywhere())],
                    vec![accept(all(), anywhere())],
                ),
                group("sg-b", vec![accept(tcp("80"), anywhere())], vec![]),
                group("sg-unbound", vec![accept(all(), anywhere())], vec![]),
            ],
            vec![
                instance(
                    "ins-ba",
                    Some("tap0"),
                    &["198.51.100.10"],
                    &["sg-b", "sg-a"],
                ),
                instance(
                    "ins-ab",
                    Some("tap1"),
                    &["198.51.100.11"],
                    &["sg-a", "sg-b"],
                ),
            ],
        );
        let policy = compile(&rules);
        let ba = &policy.instances[&instance_id("ins-ba")];
        assert_eq!(
            origins(&ba.ingress),
            vec![
                origin("sg-b", Direction::Ingress, 0),
                origin("sg-a", Direction::Ingress, 0),
                origin("sg-a", Direction::Ingress, 1),
            ]
        );
        assert_eq!(
            origins(&ba.egress),
            vec![origin("sg-a", Direction::Egress, 0)]
        );
        let ab = &policy.instances[&instance_id("ins-ab")];
        assert_eq!(
            origins(&ab.ingress),
            vec![
                origin("sg-a", Direction::Ingress, 0),
                origin("sg-a", Direction::Ingress, 1),
                origin("sg-b", Direction::Ingress, 0),
            ]
        );
        assert_eq!(ab.interface.as_deref(), Some("tap1"));
        assert_eq!(ab.security_groups, vec![sg_id("sg-a"), sg_id("sg-b")]);
        // Every group is compiled, bound or not.
        assert_eq!(policy.security_groups.len(), 3);
        assert_eq!(
            policy.security_groups[&sg_id("sg-unbound")]
                .ingress
                .rules
                .len(),
            1
        );
    }

    #[test]
    fn resolves_security_group_members_everywhere() {
        let rules = rule_set(
            vec![
                group("sg-web", vec![accept(all(), sg_ref("sg-web"))], vec![]),
                group("sg-db", vec![accept(tcp("5432"), sg_ref("sg-web"))], vec![]),
                group("sg-empty", vec![], vec![]),
                group(
                    "sg-ref-empty",
                    vec![accept(all(), sg_ref("sg-empty"))],
                    vec![],
                ),
            ],
            vec![
                instance(
                    "ins-web1",
                    Some("tap0"),
                    &["198.51.100.10", "2001:db8::10"],
                    &["sg-web"],
                ),
                // On another host: lends its addresses, enforces nothing here.
                instance("ins-web2", None, &["203.0.113.20"], &["sg-web"]),
                instance(
                    "ins-db",
                    Some("tap1"),
                    &["198.51.100.30"],
                    &["sg-db", "sg-ref-empty"],
                ),
            ],
        );
        let policy = compile(&rules);
        let web_members = nets(&["198.51.100.10/32", "203.0.113.20/32", "2001:db8::10/128"]);
        let web1 = &policy.instances[&instance_id("ins-web1")];
        assert_eq!(web1.ingress.rules[0].remotes, web_members);
        let db = &policy.instances[&instance_id("ins-db")];
        assert_eq!(db.ingress.rules[0].remotes, web_members);
        assert_eq!(db.ingress.rules[1].remotes, Vec::<IpNet>::new());
        // Remote instances get a policy too, for inspection.
        let web2 = &policy.instances[&instance_id("ins-web2")];
        assert_eq!(web2.interface, None);
        assert_eq!(web2.ingress.rules[0].remotes, web_members);
    }

    #[test]
    fn resolves_address_blocks_and_sets() {
        let mut rules = rule_set(
            vec![group(
                "sg-a",
                vec![
                    accept(all(), block_net("198.51.100.0/24")),
                    accept(all(), block_range("198.51.100.1", "198.51.100.6")),
                    accept(all(), anywhere()),
                    accept(all(), Remote::AddressSet(ipm("ipm-a"))),
                    accept(all(), Remote::AddressSetGroup(ipmg("ipmg-ab"))),
                ],
                vec![],
            )],
            vec![instance(
                "ins-a",
                Some("tap0"),
                &["198.51.100.10"],
                &["sg-a"],
            )],
        );
        rules.address_sets.insert(
            ipm("ipm-a"),
            AddressSet {
                id: ipm("ipm-a"),
                addresses: vec![
                    AddressBlock::Net(net("203.0.113.128/25")),
                    AddressBlock::Net(net("2001:db8::/64")),
                    AddressBlock::Net(net("203.0.113.200/32")),
                    range_block("203.0.113.0", "203.0.113.127"),
                ],
            },
        );
        rules.address_sets.insert(
            ipm("ipm-b"),
            AddressSet {
                id: ipm("ipm-b"),
                addresses: vec![AddressBlock::Net(net("198.51.100.0/25"))],
            },
        );
        rules.address_set_groups.insert(
            ipmg("ipmg-ab"),
            AddressSetGroup {
                id: ipmg("ipmg-ab"),
                sets: vec![ipm("ipm-b"), ipm("ipm-a")],
            },
        );
        let policy = compile(&rules);
        let remotes: Vec<Vec<IpNet>> = policy.instances[&instance_id("ins-a")]
            .ingress
            .rules
            .iter()
            .map(|r| r.remotes.clone())
            .collect();
        assert_eq!(
            remotes,
            vec![
                nets(&["198.51.100.0/24"]),
                nets(&[
                    "198.51.100.1/32",
                    "198.51.100.2/31",
                    "198.51.100.4/31",
                    "198.51.100.6/32"
                ]),
                nets(&["0.0.0.0/0", "::/0"]),
                nets(&["203.0.113.0/24", "2001:db8::/64"]),
                nets(&["198.51.100.0/25", "203.0.113.0/24", "2001:db8::/64"]),
            ]
        );
    }

    #[test]
    fn resolves_services() {
        let mut rules = rule_set(
            vec![group(
                "sg-a",
                vec![
                    accept(tcp("22"), anywhere()),
                    accept(Traffic::ServiceSet(ppm("ppm-web")), anywhere()),
                    accept(Traffic::ServiceSetGroup(ppmg("ppmg-all")), anywhere()),
                    accept(Traffic::ServiceSet(ppm("ppm-empty")), anywhere()),
                ],
                vec![],
            )],
            vec![instance(
                "ins-a",
                Some("tap0"),
                &["198.51.100.10"],
                &["sg-a"],
            )],
        );
        for (id, services) in [
            (
                "ppm-web",
                vec![tcp_service("80"), tcp_service("443"), tcp_service("80")],
            ),
            ("ppm-dns", vec![udp_service("53"), tcp_service("53")]),
            ("ppm-empty", vec![]),
        ] {
            rules.service_sets.insert(
                ppm(id),
                ServiceSet {
                    id: ppm(id),
                    services,
                },
            );
        }
        rules.service_set_groups.insert(
            ppmg("ppmg-all"),
            ServiceSetGroup {
                id: ppmg("ppmg-all"),
                sets: vec![ppm("ppm-dns"), ppm("ppm-web"), ppm("ppm-empty")],
            },
        );
        let policy = compile(&rules);
        let services: Vec<Vec<Service>> = policy.instances[&instance_id("ins-a")]
            .ingress
            .rules
            .iter()
            .map(|r| r.services.clone())
            .collect();
        assert_eq!(
            services,
            vec![
                vec![tcp_service("22")],
                vec![tcp_service("80"), tcp_service("443")],
                vec![
                    udp_service("53"),
                    tcp_service("53"),
                    tcp_service("80"),
                    tcp_service("443"),
                ],
                vec![],
            ]
        );
    }

    #[test]
    fn keeps_actions() {
        let rules = rule_set(
            vec![group(
                "sg-a",
                vec![drop(tcp("22"), anywhere()), accept(all(), anywhere())],
                vec![],
            )],
            vec![instance(
                "ins-a",
                Some("tap0"),
                &["198.51.100.10"],
                &["sg-a"],
            )],
        );
        let policy = compile(&rules);
        let actions: Vec<Action> = policy.instances[&instance_id("ins-a")]
            .ingress
            .rules
            .iter()
            .map(|r| r.action)
            .collect();
        assert_eq!(actions, vec![Action::Drop, Action::Accept]);
    }

    #[test]
    fn recompile_shares_what_cannot_have_changed() {
        let before = rule_set(
            vec![
                group("sg-a", vec![accept(tcp("22"), anywhere())], vec![]),
                group("sg-b", vec![accept(tcp("80"), anywhere())], vec![]),
                group("sg-c", vec![accept(all(), sg_ref("sg-b"))], vec![]),
            ],
            vec![
                instance("ins-a", Some("tap0"), &["198.51.100.10"], &["sg-a"]),
                instance("ins-b", Some("tap1"), &["198.51.100.11"], &["sg-b"]),
                instance("ins-c", Some("tap2"), &["198.51.100.12"], &["sg-c"]),
            ],
        );
        let policy = compile(&before);
        // sg-a's rule changes; ins-b moves, so sg-b's members (which
        // sg-c names) change.
        let mut after = before.clone();
        if let Some(g) = after.security_groups.get_mut(&sg_id("sg-a")) {
            g.ingress = vec![drop(tcp("22"), anywhere())];
        }
        if let Some(i) = after.instances.get_mut(&instance_id("ins-b")) {
            i.ips = vec!["198.51.100.99".parse().unwrap_or_else(|e| panic!("{e}"))];
        }
        let recompiled = recompile(&before, &policy, &after);
        assert_eq!(recompiled, compile(&after));
        let shared_group = |id: &str| {
            policy
                .security_groups
                .shares(&recompiled.security_groups, &sg_id(id))
        };
        let shared_instance = |id: &str| {
            policy
                .instances
                .shares(&recompiled.instances, &instance_id(id))
        };
        assert!(!shared_group("sg-a"), "its rule changed");
        assert!(shared_group("sg-b"), "nothing it names changed");
        assert!(
            !shared_group("sg-c"),
            "the members of the group it names changed"
        );
        assert!(!shared_instance("ins-a"), "its group was compiled again");
        assert!(!shared_instance("ins-b"), "its addresses changed");
        assert!(!shared_instance("ins-c"), "its group was compiled again");
        // Nothing changed: everything shared.
        let again = recompile(&after, &recompiled, &after);
        for id in ["ins-a", "ins-b", "ins-c"] {
            assert!(
                recompiled
                    .instances
                    .shares(&again.instances, &instance_id(id))
            );
        }
    }

    #[test]
    fn empty_rule_set_compiles_to_empty_policy() {
        assert_eq!(compile(&RuleSet::default()), Policy::default());
    }
}
