//! Raw files → the validated model. Every problem in every file is
//! collected (one bad rule must not hide the next), then the checks that
//! need all files at once run: duplicate ids, dangling references, an
//! interface bound twice, an address shared by two instances of this host,
//! per-instance quotas. `instance` checks instances, `parse` turns strings
//! into ids, remotes and service references.

mod instance;
mod parse;

use std::collections::BTreeMap;
use std::fmt::Display;

use crate::diagnostic::{Diagnostic, HostView, Limits};
use crate::location::quote;
use crate::model::{
    AddressSet, AddressSetGroup, AddressSetGroupId, AddressSetId, Direction, InstanceId, Ports,
    Remote, Rule, RuleId, RuleSet, SecurityGroup, ServiceSet, ServiceSetGroup, ServiceSetGroupId,
    ServiceSetId, SgId, Traffic,
};
use crate::raw::{
    Dialect, Loc, Located, RawAddressSet, RawFile, RawRule, RawSecurityGroup, RawServiceSet,
    RawSetGroup,
};
use crate::values::{self, Case};

use instance::Addresses;
use parse::{PrefixedId, parse_id, parse_remote, parse_rule_id, parse_service_ref};

/// Something a rule or instance refers to by id.
#[derive(Debug, Clone)]
enum Target {
    SecurityGroup(SgId),
    AddressSet(AddressSetId),
    AddressSetGroup(AddressSetGroupId),
    ServiceSet(ServiceSetId),
    ServiceSetGroup(ServiceSetGroupId),
}

/// Where each id was first defined.
#[derive(Default)]
struct Definitions {
    security_groups: BTreeMap<SgId, Loc>,
    instances: BTreeMap<InstanceId, Loc>,
    address_sets: BTreeMap<AddressSetId, Loc>,
    address_set_groups: BTreeMap<AddressSetGroupId, Loc>,
    service_sets: BTreeMap<ServiceSetId, Loc>,
    service_set_groups: BTreeMap<ServiceSetGroupId, Loc>,
}

/// An instance's group list, kept for the quota check once every group's
/// size is known.
struct Binding {
    instance: String,
    groups: Vec<SgId>,
    loc: Loc,
}

pub(crate) struct Validator<'l> {
    limits: &'l Limits,
    /// Which instances are bound here (see `instance.rs`).
    view: HostView<'l>,
    errors: Vec<Diagnostic>,
    /// Questionable but valid: they never fail a load.
    warnings: Vec<Diagnostic>,
    set: RuleSet,
    defined: Definitions,
    references: Vec<(Target, Loc)>,
    /// Rules per direction of each group as written, for instance quotas.
    rule_counts: BTreeMap<SgId, [usize; 2]>,
    bindings: Vec<Binding>,
    /// (Host, interface name) → instance id and where it was bound; the
    /// host is `""` but in the fleet view (interfaces are per host).
    interfaces: BTreeMap<(String, String), (String, Loc)>,
    /// Which instances claim each address in their `ips`.
    addresses: Addresses,
}

impl<'l> Validator<'l> {
    pub(crate) fn new(limits: &'l Limits, view: HostView<'l>) -> Validator<'l> {
        Validator {
            limits,
            view,
            errors: Vec::new(),
            warnings: Vec::new(),
            set: RuleSet::default(),
            defined: Definitions::default(),
            references: Vec::new(),
            rule_counts: BTreeMap::new(),
            bindings: Vec::new(),
            interfaces: BTreeMap::new(),
            addresses: Addresses::default(),
        }
    }

    /// Validates one file's definitions. The first definition of an id (or
    /// binding of an interface) wins and later ones are reported, so the
    /// order of the calls decides where a conflict is reported.
    pub(crate) fn file(&mut self, file: &RawFile) {
        for g in &file.security_groups {
            self.security_group(g);
        }
        for i in &file.instances {
            self.instance(i);
        }
        for s in &file.address_sets {
            self.address_set(s);
        }
        for g in &file.address_set_groups {
            self.address_set_group(g);
        }
        for s in &file.service_sets {
            self.service_set(s);
        }
        for g in &file.service_set_groups {
            self.service_set_group(g);
        }
    }

    /// Runs the checks across files and hands back the rule set (complete
    /// only when no errors were reported), the errors and the warnings.
    pub(crate) fn finish(mut self) -> (RuleSet, Vec<Diagnostic>, Vec<Diagnostic>) {
        for (target, loc) in std::mem::take(&mut self.references) {
            let defined = match &target {
                Target::SecurityGroup(id) => self.defined.security_groups.contains_key(id),
                Target::AddressSet(id) => self.defined.address_sets.contains_key(id),
                Target::AddressSetGroup(id) => self.defined.address_set_groups.contains_key(id),
                Target::ServiceSet(id) => self.defined.service_sets.contains_key(id),
                Target::ServiceSetGroup(id) => self.defined.service_set_groups.contains_key(id),
            };
            if !defined {
                let (kind, id) = match &target {
                    Target::SecurityGroup(id) => (SgId::KIND, id.to_string()),
                    Target::AddressSet(id) => (AddressSetId::KIND, id.to_string()),
                    Target::AddressSetGroup(id) => (AddressSetGroupId::KIND, id.to_string()),
                    Target::ServiceSet(id) => (ServiceSetId::KIND, id.to_string()),
                    Target::ServiceSetGroup(id) => (ServiceSetGroupId::KIND, id.to_string()),
                };
                self.error(
                    &loc,
                    format!("unknown {kind} {}: no rule file defines it", quote(&id)),
                );
            }
        }
        for binding in std::mem::take(&mut self.bindings) {
            for (d, direction) in Direction::ALL.into_iter().enumerate() {
                let total: usize = binding
                    .groups
                    .iter()
                    .filter_map(|g| self.rule_counts.get(g))
                    .map(|counts| counts[d])
                    .sum();
                if total > self.limits.max_effective_rules {
                    let message = format!(
                        "instance {} would enforce {total} {direction} rules (the sum over its security groups), over the limit of {} (max_effective_rules)",
                        quote(&binding.instance),
                        self.limits.max_effective_rules
                    );
                    self.error(&binding.loc, message);
                }
            }
        }
        (self.set, self.errors, self.warnings)
    }

    fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        self.errors.push(loc.diagnostic(message));
    }

    /// The value, or `None` after reporting the message at `loc`.
    fn check<T>(&mut self, loc: &Loc, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.error(loc, message)).ok()
    }

    /// Records the first definition of `id`; reports later ones. Returns
    /// whether this is the first.
    fn define<K: Ord + Clone + Display>(
        errors: &mut Vec<Diagnostic>,
        map: &mut BTreeMap<K, Loc>,
        id: &K,
        loc: &Loc,
        kind: &str,
    ) -> bool {
        if let Some(first) = map.get(id) {
            errors.push(loc.diagnostic(format!(
                "duplicate {kind} id {}; first defined at {}",
                quote(&id.to_string()),
                first.position()
            )));
            false
        } else {
            map.insert(id.clone(), loc.clone());
            true
        }
    }

    fn refer(&mut self, target: Target, loc: &Loc) {
        self.references.push((target, loc.clone()));
    }

    fn security_group(&mut self, raw: &Located<RawSecurityGroup>) {
        let g = &raw.value;
        let id: Option<SgId> = self.check(&g.id.loc, parse_id(&g.id.value));
        let first = id.as_ref().is_some_and(|id| {
            Self::define(
                &mut self.errors,
                &mut self.defined.security_groups,
                id,
                &g.id.loc,
                SgId::KIND,
            )
        });
        let ingress = self.rules(g.ingress.as_ref(), Direction::Ingress);
        let egress = self.rules(g.egress.as_ref(), Direction::Egress);
        let (Some(id), true) = (id, first) else {
            return;
        };
        let count = |list: &Option<Located<Vec<Located<RawRule>>>>| {
            list.as_ref().map_or(0, |l| l.value.len())
        };
        self.rule_counts
            .insert(id.clone(), [count(&g.ingress), count(&g.egress)]);
        if let (Some(ingress), Some(egress)) = (ingress, egress) {
            let group = SecurityGroup {
                id: id.clone(),
                name: non_empty(g.name.as_ref()),
                description: non_empty(g.description.as_ref()),
                ingress,
                egress,
            };
            self.set.security_groups.insert(id, group);
        }
    }

    fn rules(
        &mut self,
        list: Option<&Located<Vec<Located<RawRule>>>>,
        direction: Direction,
    ) -> Option<Vec<Rule>> {
        let Some(list) = list else {
            return Some(Vec::new());
        };
        let max = self.limits.max_rules_per_direction;
        if list.value.len() > max {
            self.error(
                &list.loc,
                format!(
                    "{} {direction} rules, over the limit of {max} per direction (max_rules_per_direction)",
                    list.value.len()
                ),
            );
        }
        // Validate every rule even after a failure, to report them all.
        let rules: Vec<Option<Rule>> = list.value.iter().map(|r| self.rule(r)).collect();
        let ids_unique = self.rule_ids_unique(&list.value, direction);
        let rules: Option<Vec<Rule>> = rules.into_iter().collect();
        rules.filter(|_| ids_unique)
    }

    /// Reports every rule id that repeats an earlier one of the same list
    /// (group and direction); returns whether there was none.
    fn rule_ids_unique(&mut self, rules: &[Located<RawRule>], direction: Direction) -> bool {
        let mut first: BTreeMap<RuleId, Loc> = BTreeMap::new();
        let mut unique = true;
        for raw in rules {
            let Some(written) = &raw.value.id else {
                continue;
            };
            let Ok(id) = parse_rule_id(&written.value) else {
                continue;
            };
            if let Some(at) = first.get(&id) {
                let message = format!(
                    "duplicate rule id {} in this group's {direction} rules; first defined at {}",
                    quote(id.as_str()),
                    at.position()
                );
                self.error(&written.loc, message);
                unique = false;
            } else {
                first.insert(id, written.loc.clone());
            }
        }
        unique
    }

    fn rule(&mut self, raw: &Located<RawRule>) -> Option<Rule> {
        let r = &raw.value;
        let case = match r.dialect {
            Dialect::Native => Case::Exact,
            Dialect::Tencent => Case::Insensitive,
        };
        let id = match &r.id {
            None => Some(None),
            Some(id) => self.check(&id.loc, parse_rule_id(&id.value)).map(Some),
        };
        let action = self.check(&r.action.loc, values::action(&r.action.value, case));
        let traffic = self.traffic(raw, case);
        let remote = match &r.remote {
            None if r.dialect == Dialect::Native => Some(Remote::Anywhere),
            // Tencent rules must name a remote; the decoder reported it.
            None => None,
            Some(remote) => {
                let parsed = self.check(&remote.loc, parse_remote(&remote.value, r.remote_field));
                if let Some(target) = parsed.as_ref().and_then(remote_target) {
                    self.refer(target, &remote.loc);
                }
                parsed
            }
        };
        Some(Rule {
            id: id?,
            action: action?,
            traffic: traffic?,
            remote: remote?,
            description: non_empty(r.description.as_ref()),
            log: r.log.as_ref().is_some_and(|l| l.value),
        })
    }

    fn traffic(&mut self, raw: &Located<RawRule>, case: Case) -> Option<Traffic> {
        let r = &raw.value;
        let (protocol_key, port_key, service_key) = match r.dialect {
            Dialect::Native => ("\"protocol\"", "\"port\"", "\"service\""),
            Dialect::Tencent => ("Protocol", "Port", "ServiceTemplate"),
        };
        match (&r.service, &r.protocol) {
            (Some(_), Some(protocol)) => {
                self.error(
                    &protocol.loc,
                    format!(
                        "{protocol_key} cannot be combined with {service_key}; a rule matches either a protocol (and port) or a service set"
                    ),
                );
                None
            }
            (Some(service), None) => {
                if let Some(port) = &r.port {
                    self.error(
                        &port.loc,
                        format!(
                            "{port_key} cannot be combined with {service_key}; the service set brings its own ports"
                        ),
                    );
                    return None;
                }
                let traffic = self.check(
                    &service.loc,
                    parse_service_ref(&service.value, r.service_field),
                )?;
                let target = match &traffic {
                    Traffic::ServiceSet(id) => Target::ServiceSet(id.clone()),
                    Traffic::ServiceSetGroup(id) => Target::ServiceSetGroup(id.clone()),
                    Traffic::Service(_) => return Some(traffic),
                };
                self.refer(target, &service.loc);
                Some(traffic)
            }
            (None, Some(protocol)) => {
                let parsed = self.check(&protocol.loc, values::protocol(&protocol.value, case));
                let ports = match &r.port {
                    None => Some(Ports::All),
                    Some(port) => self.check(&port.loc, values::ports(&port.value, case)),
                };
                let (protocol_value, ports) = (parsed?, ports?);
                if ports != Ports::All && !protocol_value.has_ports() {
                    if let Some(port) = &r.port {
                        self.error(
                            &port.loc,
                            format!(
                                "port {} given for protocol {protocol_value}; only tcp and udp (6, 17) have ports (omit {port_key} or write \"all\")",
                                port.value.display()
                            ),
                        );
                    }
                    return None;
                }
                Some(Traffic::Service(crate::model::Service {
                    protocol: protocol_value,
                    ports,
                }))
            }
            (None, None) => {
                if r.intact {
                    self.error(
                        &raw.loc,
                        format!(
                            "missing {protocol_key} (or {service_key}); a rule matches either a protocol (and port) or a service set"
                        ),
                    );
                }
                None
            }
        }
    }

    /// Parses every element of a list, reporting bad and repeated ones.
    /// Returns the good elements with their locations (so references in
    /// them can still be checked) and whether all were good.
    fn unique_list<'r, T: PartialEq>(
        &mut self,
        list: &'r Located<Vec<Located<String>>>,
        what: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> (Vec<(T, &'r Loc)>, bool) {
        let mut out: Vec<(T, &Loc)> = Vec::new();
        let mut ok = true;
        for item in &list.value {
            match parse(&item.value) {
                Err(message) => {
                    self.error(&item.loc, message);
                    ok = false;
                }
                Ok(value) => {
                    if let Some((_, first)) = out.iter().find(|(v, _)| *v == value) {
                        let message = format!(
                            "{what} {} is listed twice (first at {})",
                            quote(&item.value),
                            first.position()
                        );
                        self.error(&item.loc, message);
                        ok = false;
                    } else {
                        out.push((value, &item.loc));
                    }
                }
            }
        }
        (out, ok)
    }

    fn address_set(&mut self, raw: &Located<RawAddressSet>) {
        let s = &raw.value;
        let id: Option<AddressSetId> = self.check(&s.id.loc, parse_id(&s.id.value));
        let first = id.as_ref().is_some_and(|id| {
            Self::define(
                &mut self.errors,
                &mut self.defined.address_sets,
                id,
                &s.id.loc,
                AddressSetId::KIND,
            )
        });
        let addresses = all_good(self.unique_list(&s.addresses, "address", values::address_block));
        if let (Some(id), true, Some(addresses)) = (id, first, addresses) {
            let set = AddressSet {
                id: id.clone(),
                addresses,
            };
            self.set.address_sets.insert(id, set);
        }
    }

    fn service_set(&mut self, raw: &Located<RawServiceSet>) {
        let s = &raw.value;
        let id: Option<ServiceSetId> = self.check(&s.id.loc, parse_id(&s.id.value));
        let first = id.as_ref().is_some_and(|id| {
            Self::define(
                &mut self.errors,
                &mut self.defined.service_sets,
                id,
                &s.id.loc,
                ServiceSetId::KIND,
            )
        });
        let services = all_good(self.unique_list(&s.services, "service", values::service));
        if let (Some(id), true, Some(services)) = (id, first, services) {
            let set = ServiceSet {
                id: id.clone(),
                services,
            };
            self.set.service_sets.insert(id, set);
        }
    }

    fn address_set_group(&mut self, raw: &Located<RawSetGroup>) {
        let g = &raw.value;
        let Some((id, first, sets)) = self.set_group::<AddressSetGroupId, AddressSetId>(
            g,
            |validator| &mut validator.defined.address_set_groups,
            Target::AddressSet,
        ) else {
            return;
        };
        if first {
            let group = AddressSetGroup {
                id: id.clone(),
                sets,
            };
            self.set.address_set_groups.insert(id, group);
        }
    }

    fn service_set_group(&mut self, raw: &Located<RawSetGroup>) {
        let g = &raw.value;
        let Some((id, first, sets)) = self.set_group::<ServiceSetGroupId, ServiceSetId>(
            g,
            |validator| &mut validator.defined.service_set_groups,
            Target::ServiceSet,
        ) else {
            return;
        };
        if first {
            let group = ServiceSetGroup {
                id: id.clone(),
                sets,
            };
            self.set.service_set_groups.insert(id, group);
        }
    }

    /// The common part of address and service set groups. Groups hold sets
    /// only, which makes cycles impossible; a group naming itself or another
    /// group is reported as such.
    fn set_group<G: PrefixedId, S: PrefixedId>(
        &mut self,
        g: &RawSetGroup,
        definitions: impl Fn(&mut Self) -> &mut BTreeMap<G, Loc>,
        target: impl Fn(S) -> Target,
    ) -> Option<(G, bool, Vec<S>)> {
        let id: Option<G> = self.check(&g.id.loc, parse_id(&g.id.value));
        let first = match &id {
            Some(id) => {
                let mut errors = std::mem::take(&mut self.errors);
                let first = Self::define(&mut errors, definitions(self), id, &g.id.loc, G::KIND);
                self.errors = errors;
                first
            }
            None => false,
        };
        let (members, members_ok) = self.unique_list(&g.sets, "set", |s| {
            if s == g.id.value {
                return Err(format!(
                    "{} is this group itself; {} {} holds {}s (\"{}…\"), never groups",
                    quote(s),
                    G::ARTICLE,
                    G::KIND,
                    S::KIND,
                    S::PREFIX
                ));
            }
            if s.starts_with(G::PREFIX) {
                return Err(format!(
                    "{} is {} {} id; {} {} holds {}s (\"{}…\"), never groups",
                    quote(s),
                    G::ARTICLE,
                    G::KIND,
                    G::ARTICLE,
                    G::KIND,
                    S::KIND,
                    S::PREFIX
                ));
            }
            parse_id::<S>(s)
        });
        for (member, loc) in &members {
            self.refer(target(member.clone()), loc);
        }
        let members = all_good((members, members_ok))?;
        Some((id?, first, members))
    }
}

/// The values of a [`Validator::unique_list`] if every element was good.
fn all_good<T>((items, ok): (Vec<(T, &Loc)>, bool)) -> Option<Vec<T>> {
    ok.then(|| items.into_iter().map(|(v, _)| v).collect())
}

fn remote_target(remote: &Remote) -> Option<Target> {
    match remote {
        Remote::SecurityGroup(id) => Some(Target::SecurityGroup(id.clone())),
        Remote::AddressSet(id) => Some(Target::AddressSet(id.clone())),
        Remote::AddressSetGroup(id) => Some(Target::AddressSetGroup(id.clone())),
        Remote::Block(_) | Remote::Anywhere => None,
    }
}

/// Blank names and descriptions mean none (Tencent exports `""` for them).
fn non_empty(value: Option<&Located<String>>) -> Option<String> {
    value.map(|l| l.value.clone()).filter(|s| !s.is_empty())
}
