//! Raw files → the validated model, in two steps. [`check_file`] checks
//! one file by itself and keeps what it defines, refers to and claims (a
//! [`FileCheck`]): every problem of the file alone is collected there (one
//! bad rule must not hide the next). `merge` then runs the checks that
//! need all files at once: duplicate ids, dangling references, an
//! interface bound twice, an address shared by two instances of this host,
//! per-instance quotas. A file's check depends on nothing but its bytes
//! and the limits, so a reload keeps it for every file that did not
//! change and runs only the merge again (see `cache.rs`). `instance`
//! checks instances, `parse` turns strings into ids, remotes and service
//! references.

mod instance;
mod merge;
mod parse;

use std::collections::BTreeMap;

use crate::diagnostic::{Diagnostic, Limits};
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

pub(crate) use merge::merge;
use parse::{PrefixedId, parse_id, parse_remote, parse_rule_id, parse_service_ref};

/// Something defined by id, or referred to by a rule or an instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Id {
    SecurityGroup(SgId),
    Instance(InstanceId),
    AddressSet(AddressSetId),
    AddressSetGroup(AddressSetGroupId),
    ServiceSet(ServiceSetId),
    ServiceSetGroup(ServiceSetGroupId),
}

impl Id {
    /// How messages name the kind and the id.
    fn describe(&self) -> (&'static str, String) {
        match self {
            Id::SecurityGroup(id) => (SgId::KIND, id.to_string()),
            Id::Instance(id) => ("instance", id.to_string()),
            Id::AddressSet(id) => (AddressSetId::KIND, id.to_string()),
            Id::AddressSetGroup(id) => (AddressSetGroupId::KIND, id.to_string()),
            Id::ServiceSet(id) => (ServiceSetId::KIND, id.to_string()),
            Id::ServiceSetGroup(id) => (ServiceSetGroupId::KIND, id.to_string()),
        }
    }
}

/// An instance's group list, kept for the quota check once every group's
/// size is known.
struct Binding {
    instance: String,
    groups: Vec<SgId>,
    loc: Loc,
}

/// An address an instance lists in `ips`, for the merge to check against
/// every other instance's. Counted only if the instance's definition
/// (`def`, an index into [`FileCheck::definitions`]) is the first of its
/// id.
struct Claim {
    def: usize,
    ip: std::net::IpAddr,
    /// As written, for messages.
    written: String,
    instance: String,
    /// Where the instance is bound, as far as its file tells (the merge
    /// decides, with the host view, whether that is here).
    placement: Placement,
    loc: Loc,
}

/// An instance's `interface` and `"host"` as written: what the merge needs
/// to tell, for a host view, whether it is bound here (see `merge.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placement {
    has_interface: bool,
    host: Option<String>,
}

/// One file checked by itself: its own problems, the objects that are
/// valid as far as the file alone can tell, and everything the merge
/// needs to check it against the others, in the order written.
#[derive(Default)]
pub(crate) struct FileCheck {
    pub(crate) errors: Vec<Diagnostic>,
    /// Complete only when neither this file nor the merge finds a problem
    /// (then every object of the file is valid).
    pub(crate) objects: RuleSet,
    definitions: Vec<(Id, Loc)>,
    references: Vec<(Id, Loc)>,
    /// Rules per direction of each group as written (`def`: its
    /// definition), for instance quotas.
    rule_counts: Vec<(usize, SgId, [usize; 2])>,
    bindings: Vec<Binding>,
    /// Interface name, the instance id as written, where, and the host
    /// written beside it.
    interfaces: Vec<(String, String, Loc, Option<String>)>,
    claims: Vec<Claim>,
}

/// Checks one decoded file by itself.
pub(crate) fn check_file(file: &RawFile, limits: &Limits) -> FileCheck {
    let mut validator = Validator {
        limits,
        out: FileCheck::default(),
    };
    validator.file(file);
    validator.out
}

struct Validator<'l> {
    limits: &'l Limits,
    out: FileCheck,
}

impl<'l> Validator<'l> {
    /// Checks every object of the file, in the order the merge replays
    /// their definitions.
    fn file(&mut self, file: &RawFile) {
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

    fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        self.out.errors.push(loc.diagnostic(message));
    }

    /// The value, or `None` after reporting the message at `loc`.
    fn check<T>(&mut self, loc: &Loc, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.error(loc, message)).ok()
    }

    /// Records a definition of `id` at `loc`; returns its index, by which
    /// what depends on it being the first (the merge decides) refers to it.
    fn define(&mut self, id: Id, loc: &Loc) -> usize {
        self.out.definitions.push((id, loc.clone()));
        self.out.definitions.len() - 1
    }

    fn refer(&mut self, target: Id, loc: &Loc) {
        self.out.references.push((target, loc.clone()));
    }

    fn security_group(&mut self, raw: &Located<RawSecurityGroup>) {
        let g = &raw.value;
        let id: Option<SgId> = self.check(&g.id.loc, parse_id(&g.id.value));
        let def = id
            .as_ref()
            .map(|id| self.define(Id::SecurityGroup(id.clone()), &g.id.loc));
        let ingress = self.rules(g.ingress.as_ref(), Direction::Ingress);
        let egress = self.rules(g.egress.as_ref(), Direction::Egress);
        let (Some(id), Some(def)) = (id, def) else {
            return;
        };
        let count = |list: &Option<Located<Vec<Located<RawRule>>>>| {
            list.as_ref().map_or(0, |l| l.value.len())
        };
        self.out
            .rule_counts
            .push((def, id.clone(), [count(&g.ingress), count(&g.egress)]));
        if let (Some(ingress), Some(egress)) = (ingress, egress) {
            let group = SecurityGroup {
                id: id.clone(),
                name: non_empty(g.name.as_ref()),
                description: non_empty(g.description.as_ref()),
                ingress,
                egress,
            };
            self.out.objects.security_groups.insert(id, group);
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
                    Traffic::ServiceSet(id) => Id::ServiceSet(id.clone()),
                    Traffic::ServiceSetGroup(id) => Id::ServiceSetGroup(id.clone()),
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
        if let Some(id) = &id {
            self.define(Id::AddressSet(id.clone()), &s.id.loc);
        }
        let addresses = all_good(self.unique_list(&s.addresses, "address", values::address_block));
        if let (Some(id), Some(addresses)) = (id, addresses) {
            let set = AddressSet {
                id: id.clone(),
                addresses,
            };
            self.out.objects.address_sets.insert(id, set);
        }
    }

    fn service_set(&mut self, raw: &Located<RawServiceSet>) {
        let s = &raw.value;
        let id: Option<ServiceSetId> = self.check(&s.id.loc, parse_id(&s.id.value));
        if let Some(id) = &id {
            self.define(Id::ServiceSet(id.clone()), &s.id.loc);
        }
        let services = all_good(self.unique_list(&s.services, "service", values::service));
        if let (Some(id), Some(services)) = (id, services) {
            let set = ServiceSet {
                id: id.clone(),
                services,
            };
            self.out.objects.service_sets.insert(id, set);
        }
    }

    fn address_set_group(&mut self, raw: &Located<RawSetGroup>) {
        let g = &raw.value;
        let Some((id, sets)) = self.set_group::<AddressSetGroupId, AddressSetId>(
            g,
            Id::AddressSetGroup,
            Id::AddressSet,
        ) else {
            return;
        };
        let group = AddressSetGroup {
            id: id.clone(),
            sets,
        };
        self.out.objects.address_set_groups.insert(id, group);
    }

    fn service_set_group(&mut self, raw: &Located<RawSetGroup>) {
        let g = &raw.value;
        let Some((id, sets)) = self.set_group::<ServiceSetGroupId, ServiceSetId>(
            g,
            Id::ServiceSetGroup,
            Id::ServiceSet,
        ) else {
            return;
        };
        let group = ServiceSetGroup {
            id: id.clone(),
            sets,
        };
        self.out.objects.service_set_groups.insert(id, group);
    }

    /// The common part of address and service set groups. Groups hold sets
    /// only, which makes cycles impossible; a group naming itself or another
    /// group is reported as such.
    fn set_group<G: PrefixedId, S: PrefixedId>(
        &mut self,
        g: &RawSetGroup,
        definition: impl Fn(G) -> Id,
        target: impl Fn(S) -> Id,
    ) -> Option<(G, Vec<S>)> {
        let id: Option<G> = self.check(&g.id.loc, parse_id(&g.id.value));
        if let Some(id) = &id {
            self.define(definition(id.clone()), &g.id.loc);
        }
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
        Some((id?, members))
    }
}

/// The values of a [`Validator::unique_list`] if every element was good.
fn all_good<T>((items, ok): (Vec<(T, &Loc)>, bool)) -> Option<Vec<T>> {
    ok.then(|| items.into_iter().map(|(v, _)| v).collect())
}

fn remote_target(remote: &Remote) -> Option<Id> {
    match remote {
        Remote::SecurityGroup(id) => Some(Id::SecurityGroup(id.clone())),
        Remote::AddressSet(id) => Some(Id::AddressSet(id.clone())),
        Remote::AddressSetGroup(id) => Some(Id::AddressSetGroup(id.clone())),
        Remote::Block(_) | Remote::Anywhere => None,
    }
}

/// Blank names and descriptions mean none (Tencent exports `""` for them).
fn non_empty(value: Option<&Located<String>>) -> Option<String> {
    value.map(|l| l.value.clone()).filter(|s| !s.is_empty())
}
