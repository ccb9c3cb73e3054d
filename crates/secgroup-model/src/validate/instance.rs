//! Instances: their own fields, their allowed address pairs, and the
//! addresses and interface they claim (checked across all files by the
//! merge). An instance's `"host"` says whose interface it has; whether
//! that is this host depends on the host view, which only the merge
//! knows (see `merge.rs`).

use std::net::IpAddr;

use crate::location::quote;
use crate::model::{AllowedAddressPair, Enforcement, Instance, LogMode, MacAddr, SgId};
use crate::raw::{Loc, Located, RawAddressPair, RawInstance};
use crate::values;

use super::parse::{parse_id, parse_instance_id, parse_pair_net};
use super::{Binding, Claim, Id, Placement, Validator, all_good};

impl Validator<'_> {
    pub(super) fn instance(&mut self, raw: &Located<RawInstance>) {
        let i = &raw.value;
        let id = self.check(&i.id.loc, parse_instance_id(&i.id.value));
        let def = id
            .as_ref()
            .map(|id| self.define(Id::Instance(id.clone()), &i.id.loc));
        let mut ok = true;
        let host = match &i.host {
            None => Some(None),
            Some(h) => self
                .check(&h.loc, values::host_name(&h.value))
                .map(|()| Some(h.value.clone())),
        };
        let written_host = i.host.as_ref().map(|h| h.value.clone());
        if let Some(iface) = &i.interface {
            match values::interface_name(&iface.value) {
                Err(message) => {
                    self.error(&iface.loc, message);
                    ok = false;
                }
                Ok(()) => self.out.interfaces.push((
                    iface.value.clone(),
                    i.id.value.clone(),
                    iface.loc.clone(),
                    written_host.clone(),
                )),
            }
        }
        let mac = match &i.mac {
            None => Some(None),
            Some(mac) => self.check(&mac.loc, values::mac(&mac.value)).map(Some),
        };
        let (ips, ips_ok) = self.unique_list(&i.ips, "address", values::ip);
        if let Some(def) = def {
            let placement = Placement {
                has_interface: i.interface.is_some(),
                host: written_host,
            };
            for (ip, loc) in &ips {
                // Quoted as written: the item at that location.
                let written = i.ips.value.iter().find(|w| w.loc == **loc);
                let written = written.map_or_else(|| ip.to_string(), |w| w.value.clone());
                self.out.claims.push(Claim {
                    def,
                    ip: *ip,
                    written,
                    instance: i.id.value.clone(),
                    placement: placement.clone(),
                    loc: (*loc).clone(),
                });
            }
        }
        let ips: Option<Vec<IpAddr>> = all_good((ips, ips_ok));
        let pairs = self.address_pairs(i.allowed_address_pairs.as_ref(), mac.flatten());
        let (groups, groups_ok) =
            self.unique_list(&i.security_groups, "security group", parse_id::<SgId>);
        for (group, loc) in &groups {
            self.refer(Id::SecurityGroup(group.clone()), loc);
        }
        let groups: Vec<SgId> = groups.into_iter().map(|(g, _)| g).collect();
        self.out.bindings.push(Binding {
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
        let (Some(id), true, Some(mac), Some(ips), Some(pairs), Some(groups)) =
            (id, ok, mac, ips, pairs, groups)
        else {
            return;
        };
        let (Some(log), Some(enforcement), Some(host)) = (log, enforcement, host) else {
            return;
        };
        // The interface as written: the merge takes it away from an
        // instance another host runs (the host view is not known here).
        let instance = Instance {
            id: id.clone(),
            host,
            interface: i.interface.as_ref().map(|l| l.value.clone()),
            mac,
            ips,
            allowed_address_pairs: pairs,
            port_security: i.port_security.as_ref().is_none_or(|l| l.value),
            security_groups: groups,
            log,
            enforcement,
        };
        self.out.objects.instances.insert(id, instance);
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
