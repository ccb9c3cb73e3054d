//! Instances: their own fields, their allowed address pairs, and the
//! addresses they claim across all files. Two instances of this host (with
//! an `interface`) may not share an address in `ips`: port security would
//! let both send from it and the host could not tell them apart. The same
//! address on an instance of this host and one elsewhere is only a warning
//! (an inventory that is a little out of date, a migration under way).
//!
//! An instance's `"host"` says whose interface it has. Seen from one host
//! (`HostView::Host`), an instance of another host is bound nowhere here:
//! it only lends its addresses, like one without an interface. Seen as a
//! fleet (`HostView::Fleet`), each instance is bound on its own host, and
//! interfaces and addresses must be unique per host.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::location::quote;
use crate::model::{AllowedAddressPair, Enforcement, Instance, LogMode, MacAddr, SgId};
use crate::raw::{Loc, Located, RawAddressPair, RawInstance};
use crate::values;

use super::parse::{parse_id, parse_instance_id, parse_pair_net};
use super::{Binding, Target, Validator, all_good};
use crate::diagnostic::HostView;

/// Per address: the first instance of this host and the first instance
/// elsewhere that list it in `ips`, with where they list it.
#[derive(Default)]
pub(super) struct Addresses(BTreeMap<IpAddr, Claims>);

#[derive(Default)]
struct Claims {
    /// Per host (`""`: this one), the first bound instance.
    local: BTreeMap<String, (String, Loc)>,
    remote: Option<(String, Loc)>,
}

impl Validator<'_> {
    pub(super) fn instance(&mut self, raw: &Located<RawInstance>) {
        let i = &raw.value;
        let id = self.check(&i.id.loc, parse_instance_id(&i.id.value));
        let first = id.as_ref().is_some_and(|id| {
            Self::define(
                &mut self.errors,
                &mut self.defined.instances,
                id,
                &i.id.loc,
                "instance",
            )
        });
        let mut ok = true;
        let host = match &i.host {
            None => Some(None),
            Some(h) => self
                .check(&h.loc, values::host_name(&h.value))
                .map(|()| Some(h.value.clone())),
        };
        let written_host = i.host.as_ref().map(|h| h.value.as_str());
        let (bound_here, scope) = match self.view {
            HostView::Fleet => (true, written_host.unwrap_or("")),
            HostView::Host(me) => (written_host.is_none_or(|h| h == me), ""),
        };
        let bound_here = bound_here && i.interface.is_some();
        if let Some(iface) = &i.interface {
            let key = (scope.to_owned(), iface.value.clone());
            match values::interface_name(&iface.value) {
                Err(message) => {
                    self.error(&iface.loc, message);
                    ok = false;
                }
                Ok(()) if !bound_here => {}
                Ok(()) => {
                    if let Some((owner, loc)) = self.interfaces.get(&key) {
                        let message = format!(
                            "interface {} is already bound to instance {} at {}; an interface belongs to one instance",
                            quote(&iface.value),
                            quote(owner),
                            loc.position()
                        );
                        self.error(&iface.loc, message);
                        ok = false;
                    } else {
                        self.interfaces
                            .insert(key, (i.id.value.clone(), iface.loc.clone()));
                    }
                }
            }
        }
        let mac = match &i.mac {
            None => Some(None),
            Some(mac) => self.check(&mac.loc, values::mac(&mac.value)).map(Some),
        };
        let (ips, ips_ok) = self.unique_list(&i.ips, "address", values::ip);
        if first {
            let local = bound_here.then_some(scope);
            for (ip, loc) in &ips {
                // Quoted as written: the item at that location.
                let written = i.ips.value.iter().find(|w| w.loc == **loc);
                let written = written.map_or_else(|| ip.to_string(), |w| w.value.clone());
                self.claim_address(*ip, &written, &i.id.value, local, loc);
            }
        }
        let ips: Option<Vec<IpAddr>> = all_good((ips, ips_ok));
        let pairs = self.address_pairs(i.allowed_address_pairs.as_ref(), mac.flatten());
        let (groups, groups_ok) =
            self.unique_list(&i.security_groups, "security group", parse_id::<SgId>);
        for (group, loc) in &groups {
            self.refer(Target::SecurityGroup(group.clone()), loc);
        }
        let groups: Vec<SgId> = groups.into_iter().map(|(g, _)| g).collect();
        self.bindings.push(Binding {
            instance: i.id.value.clone(),
            groups: groups.clone(),
            loc: i.security_groups.loc.clone(),
        });
        let groups = groups_ok.then_some(groups);
        if i.security_groups.value.is_empty() {
            self.error(
                &i.security_groups.loc,
                "no security group; an instance needs at least one (with none it would match no rule and drop everything silently)",
            );
            ok = false;
        }
        let log = match &i.log {
            None => Some(LogMode::default()),
            Some(log) => self.check(&log.loc, values::log_mode(&log.value)),
        };
        let enforcement = match &i.enforcement {
            None => Some(Enforcement::default()),
            Some(e) => self.check(&e.loc, values::enforcement(&e.value)),
        };
        let (Some(id), true, true, Some(mac), Some(ips), Some(pairs), Some(groups)) =
            (id, first, ok, mac, ips, pairs, groups)
        else {
            return;
        };
        let (Some(log), Some(enforcement), Some(host)) = (log, enforcement, host) else {
            return;
        };
        let instance = Instance {
            id: id.clone(),
            host,
            // Another host's interface means nothing here.
            interface: i
                .interface
                .as_ref()
                .filter(|_| bound_here)
                .map(|l| l.value.clone()),
            mac,
            ips,
            allowed_address_pairs: pairs,
            port_security: i.port_security.as_ref().is_none_or(|l| l.value),
            security_groups: groups,
            log,
            enforcement,
        };
        self.set.instances.insert(id, instance);
    }

    /// Records that `instance` lists `ip` (written as `written` at `loc`);
    /// `local`: the host it is bound on (`""` for this one), `None` when
    /// bound nowhere here. Reports a second instance bound on the same
    /// host with it, and warns when one bound and one elsewhere have it.
    fn claim_address(
        &mut self,
        ip: IpAddr,
        written: &str,
        instance: &str,
        local: Option<&str>,
        loc: &Loc,
    ) {
        let claims = self.addresses.0.entry(ip).or_default();
        let address = quote(written);
        let name = quote(instance);
        if let Some(host) = local
            && let Some((first, at)) = claims.local.get(host)
        {
            let message = format!(
                "address {address} of instance {name} is already an address of instance {} at {}; two instances on this host cannot share an address (a shared virtual address belongs in allowed_address_pairs)",
                quote(first),
                at.position()
            );
            self.errors.push(loc.diagnostic(message));
            return;
        }
        let other = match local {
            Some(_) => claims.remote.as_ref(),
            None => claims.local.values().next(),
        };
        if let Some((first, at)) = other {
            let (here, there) = if local.is_some() {
                ("on this host", "on another host")
            } else {
                ("on another host", "on this host")
            };
            let message = format!(
                "address {address} of instance {name}, {here}, is also an address of instance {}, {there}, at {}; one of the two is probably out of date",
                quote(first),
                at.position()
            );
            self.warnings.push(loc.diagnostic(message));
        }
        match local {
            Some(host) => {
                claims
                    .local
                    .entry(host.to_owned())
                    .or_insert_with(|| (instance.to_owned(), loc.clone()));
            }
            None => {
                claims
                    .remote
                    .get_or_insert_with(|| (instance.to_owned(), loc.clone()));
            }
        }
    }

    /// An instance's `allowed_address_pairs`, or `None` after reporting
    /// what is wrong. Two pairs of the same address and (effective) MAC
    /// are an error, as repeats are in every list.
    fn address_pairs(
        &mut self,
        list: Option<&Located<Vec<Located<RawAddressPair>>>>,
        instance_mac: Option<MacAddr>,
    ) -> Option<Vec<AllowedAddressPair>> {
        let Some(list) = list else {
            return Some(Vec::new());
        };
        let mut pairs: Vec<(AllowedAddressPair, &Loc)> = Vec::new();
        let mut ok = true;
        for raw in &list.value {
            let RawAddressPair { ip, mac } = &raw.value;
            let net = self.check(&ip.loc, parse_pair_net(&ip.value));
            let mac = match mac {
                None => Some(None),
                Some(mac) => self.check(&mac.loc, values::mac(&mac.value)).map(Some),
            };
            let (Some(net), Some(mac)) = (net, mac) else {
                ok = false;
                continue;
            };
            let pair = AllowedAddressPair { net, mac };
            let effective = |p: &AllowedAddressPair| (p.net, p.mac.or(instance_mac));
            if let Some((_, first)) = pairs.iter().find(|(p, _)| effective(p) == effective(&pair)) {
                let message = match effective(&pair).1 {
                    None => format!(
                        "address pair {} is listed twice (first at {})",
                        quote(&ip.value),
                        first.position()
                    ),
                    Some(mac) => format!(
                        "address pair {} with MAC {} is listed twice (first at {}; a pair without \"mac\" has the instance's)",
                        quote(&ip.value),
                        quote(&mac.to_string()),
                        first.position()
                    ),
                };
                self.error(&ip.loc, message);
                ok = false;
            } else {
                pairs.push((pair, &ip.loc));
            }
        }
        all_good((pairs, ok))
    }
}
