//! Synthetic rule files. Every benchmark policy goes through the real
//! pipeline (rule-file JSON → `secgroup_model::load` → `compile`), written
//! the way a controller would write it: security groups within Tencent's
//! quota of 100 rules per direction, longer lists made of several groups
//! bound in order (the concatenation is the same first-match list).
//!
//! Addresses: rules name 203.0.113.0/24 and 198.51.100.0/24 (IPv4
//! documentation ranges) and 2001:db8::/32. Ten thousand group members do
//! not fit in the IPv4 documentation ranges, so members are IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

use anyhow::{Context, Result};
use ipnet::{IpNet, Ipv4Net};
use secgroup_model::{Action, Limits, SourceFile};
use secgroup_policy::Policy;

/// Tencent's quota of rules per direction of one security group.
pub const GROUP_QUOTA: usize = 100;

/// Destination ports of the last rule of every benchmark list; new flows of
/// the throughput benchmark draw their destination ports from it.
pub const LAST_PORTS: RangeInclusive<u16> = 20000..=59999;
/// The last rule's remote in the IPv4 shapes; the VMs live in it.
pub const LAST_REMOTE: &str = "198.51.100.0/24";
/// The security group whose members the `sg-reference` shape names.
pub const MEMBERS_GROUP: &str = "sg-members";

/// A remote that only the last rule's remote contains.
pub const LAST_RULE_REMOTE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
/// A remote that filler rules name, probed on a port none of them has: both
/// lookups find entries and the AND of their rule sets is empty, the most
/// work a default drop can cost.
pub const DEFAULT_DROP_REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// The destination port of probes: inside [`LAST_PORTS`], outside every
/// filler's port.
pub const PROBE_PORT: u16 = 30000;
pub const PROBE_SRC_PORT: u16 = 40000;

/// A VM on this host: an instance with an interface.
#[derive(Debug, Clone)]
pub struct Vm {
    pub id: String,
    pub interface: String,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
    /// Its `mac`; `None`: the rule file names none.
    pub mac: Option<[u8; 6]>,
    /// Its `allowed_address_pairs`: a prefix and the MAC it is sent from
    /// (`None`: the VM's own).
    pub address_pairs: Vec<(IpNet, Option<[u8; 6]>)>,
}

impl Vm {
    /// A VM without a MAC or address pairs.
    pub fn new(id: &str, interface: &str, v4: Ipv4Addr, v6: Ipv6Addr) -> Vm {
        Vm {
            id: id.to_owned(),
            interface: interface.to_owned(),
            v4,
            v6,
            mac: None,
            address_pairs: Vec::new(),
        }
    }

    /// The VM of the per-packet benchmark, with the port-security spec of
    /// a typical cloud VM: its MAC, two addresses (one per family) and one
    /// address pair, a keepalived /28 sent from a VRRP MAC. Only the
    /// port-security figures enforce the spec.
    pub fn bench() -> Vm {
        Vm {
            mac: Some(BENCH_VM_MAC),
            address_pairs: vec![(
                IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(198, 51, 100, 64), 28)),
                Some([0x00, 0x00, 0x5e, 0x00, 0x01, 0x0a]),
            )],
            ..Vm::new(
                "ins-bench",
                "vm0",
                Ipv4Addr::new(198, 51, 100, 2),
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
            )
        }
    }

    /// Its instance entry in a rule file, bound to `groups` (quoted ids,
    /// comma-separated).
    fn instance_json(&self, groups: &str) -> String {
        let mut fields = vec![
            format!(r#""id":"{}""#, self.id),
            format!(r#""interface":"{}""#, self.interface),
        ];
        if let Some(mac) = self.mac {
            fields.push(format!(r#""mac":"{}""#, mac_text(mac)));
        }
        fields.push(format!(r#""ips":["{}","{}"]"#, self.v4, self.v6));
        if !self.address_pairs.is_empty() {
            let pairs: Vec<String> = self
                .address_pairs
                .iter()
                .map(|(net, mac)| match mac {
                    Some(mac) => format!(r#"{{"ip":"{net}","mac":"{}"}}"#, mac_text(*mac)),
                    None => format!(r#"{{"ip":"{net}"}}"#),
                })
                .collect();
            fields.push(format!(r#""allowed_address_pairs":[{}]"#, pairs.join(",")));
        }
        fields.push(format!(r#""security_groups":[{groups}]"#));
        format!("{{{}}}", fields.join(","))
    }
}

/// The MAC of [`Vm::bench`], which its frames come from.
pub const BENCH_VM_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x5b, 0x00, 0x02];

fn mac_text(mac: [u8; 6]) -> String {
    let octets: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    octets.join(":")
}

/// Filler rule `i`: accept TCP (even `i`) or UDP (odd) to port
/// `1024 + i / 256` from host `203.0.113.(i % 256)`. No two fillers match
/// the same packet, and both lookup fields hold many entries whose rule
/// sets overlap, as real lists do.
fn filler(i: usize) -> String {
    let protocol = if i.is_multiple_of(2) { "tcp" } else { "udp" };
    format!(
        r#"{{"action":"accept","protocol":"{protocol}","port":{},"remote":"203.0.113.{}"}}"#,
        1024 + i / 256,
        i % 256
    )
}

/// Who the last rule of a [`ListSpec`] names as its remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastRemote {
    /// [`LAST_REMOTE`], a /24.
    Subnet,
    /// [`MEMBERS_GROUP`], a security group with this many members (IPv6
    /// hosts, instances on other hosts).
    Members(usize),
}

/// A first-match list of `rules` rules per direction, the same in both
/// directions: `rules - 1` fillers, then the rule that probes hit, UDP to
/// [`LAST_PORTS`] from `last_remote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListSpec {
    pub rules: usize,
    pub last_action: Action,
    pub last_remote: LastRemote,
}

impl ListSpec {
    /// One rule file binding the list to each of `vms`.
    pub fn rule_file(&self, vms: &[Vm]) -> String {
        let rules = self.rules.max(1);
        let remote = match self.last_remote {
            LastRemote::Subnet => LAST_REMOTE,
            LastRemote::Members(_) => MEMBERS_GROUP,
        };
        let mut list: Vec<String> = (0..rules - 1).map(filler).collect();
        list.push(format!(
            r#"{{"action":"{}","protocol":"udp","port":"{}-{}","remote":"{remote}"}}"#,
            self.last_action.as_str(),
            LAST_PORTS.start(),
            LAST_PORTS.end()
        ));
        let mut groups: Vec<String> = Vec::new();
        let mut group_ids: Vec<String> = Vec::new();
        for (g, chunk) in list.chunks(GROUP_QUOTA).enumerate() {
            let id = format!("sg-list-{g:03}");
            let rules = chunk.join(",");
            groups.push(format!(
                r#"{{"id":"{id}","ingress":[{rules}],"egress":[{rules}]}}"#
            ));
            group_ids.push(format!(r#""{id}""#));
        }
        let groups_bound = group_ids.join(",");
        let mut instances: Vec<String> = vms
            .iter()
            .map(|vm| vm.instance_json(&groups_bound))
            .collect();
        if let LastRemote::Members(count) = self.last_remote {
            groups.push(format!(r#"{{"id":"{MEMBERS_GROUP}"}}"#));
            instances.extend((0..count).map(|i| {
                format!(
                    r#"{{"id":"ins-member-{i}","ips":["{}"],"security_groups":["{MEMBERS_GROUP}"]}}"#,
                    member(i)
                )
            }));
        }
        format!(
            "{{\"security_groups\":[\n{}\n],\"instances\":[\n{}\n]}}\n",
            groups.join(",\n"),
            instances.join(",\n")
        )
    }

    pub fn compile(&self, vms: &[Vm]) -> Result<Policy> {
        compile(&[("bench.json".to_owned(), self.rule_file(vms))])
    }
}

/// Member `i` of [`MEMBERS_GROUP`]: a host in 2001:db8:5::/64 whose
/// interface id is `i` times an odd constant. Distinct members, scattered so
/// that the compiler cannot merge neighbours into shorter prefixes (which
/// would flatter the lookup).
pub fn member(i: usize) -> Ipv6Addr {
    let low = (i as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    Ipv6Addr::from(0x2001_0db8_0005_0000_u128 << 64 | u128::from(low))
}

/// Loads and compiles rule files with the default limits except the file
/// size (a 100,000-rule corpus is split, but generously).
pub fn compile(files: &[(String, String)]) -> Result<Policy> {
    let rules = load(files)?;
    Ok(secgroup_policy::compile(&rules))
}

pub fn load(files: &[(String, String)]) -> Result<secgroup_model::RuleSet> {
    let sources: Vec<SourceFile<'_>> = files
        .iter()
        .map(|(name, text)| SourceFile {
            name,
            bytes: text.as_bytes(),
        })
        .collect();
    secgroup_model::load(&sources, &Limits::default())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("a generated rule file does not validate (a bug in the generator)")
}

/// A host's worth of VMs for the control-plane figures: `instances` VMs,
/// each bound to `groups_per_instance` groups of `rules_per_group` rules per
/// direction. With `shared_base`, every VM's first group is one shared
/// `sg-base` (a change to it touches every VM); the other groups are the
/// VM's own. Rules vary the way real ones do: hosts, /28s, a referenced
/// group of 250 members, single ports, a port range, ICMP, some drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corpus {
    pub instances: usize,
    pub groups_per_instance: usize,
    pub rules_per_group: usize,
    pub shared_base: bool,
}

/// Members of `sg-peers`, the group corpus rules reference.
const PEERS: usize = 250;
/// Groups per generated file, keeping each file far below the 4 MiB limit.
const GROUPS_PER_FILE: usize = 100;

impl Corpus {
    /// `total` effective rules (instances × directions × rules per list),
    /// in lists of 500 rules per direction: 10 groups of 50.
    pub fn for_compile(total: usize) -> Corpus {
        Corpus {
            instances: (total / 1000).max(1),
            groups_per_instance: 10,
            rules_per_group: 50,
            shared_base: false,
        }
    }

    /// 100 VMs with 1,000 rules per direction each: a shared base group
    /// and nine of their own, 100 rules each.
    pub fn for_apply() -> Corpus {
        Corpus {
            instances: 100,
            groups_per_instance: 10,
            rules_per_group: GROUP_QUOTA,
            shared_base: true,
        }
    }

    pub fn rules_per_list(&self) -> usize {
        self.groups_per_instance * self.rules_per_group
    }

    /// Rules the classifier compiles: every VM's list in both directions.
    pub fn effective_rules(&self) -> usize {
        self.instances * 2 * self.rules_per_list()
    }

    pub fn instance_id(i: usize) -> String {
        format!("ins-{i:03}")
    }

    /// The rule files: groups in files of 100, then the instances.
    pub fn files(&self) -> Vec<(String, String)> {
        self.files_with_flipped_base_rule(None)
    }

    /// [`files`](Self::files) with the action of rule `flip` of the shared
    /// base group inverted: the edit an operator makes to a group bound
    /// to every VM.
    pub fn files_with_flipped_base_rule(&self, flip: Option<usize>) -> Vec<(String, String)> {
        let own_per_instance = self.groups_per_instance - usize::from(self.shared_base);
        let mut groups: Vec<String> = Vec::new();
        if self.shared_base {
            groups.push(self.group("sg-base", 0, flip));
        }
        for i in 0..self.instances {
            for g in 0..own_per_instance {
                let n = i * own_per_instance + g;
                groups.push(self.group(&format!("sg-g{n:05}"), n + 1, None));
            }
        }
        groups.push(r#"{"id":"sg-peers"}"#.to_owned());
        let mut files: Vec<(String, String)> = groups
            .chunks(GROUPS_PER_FILE)
            .enumerate()
            .map(|(f, chunk)| {
                (
                    format!("groups-{f:04}.json"),
                    format!("{{\"security_groups\":[\n{}\n]}}\n", chunk.join(",\n")),
                )
            })
            .collect();
        let mut instances: Vec<String> = (0..self.instances)
            .map(|i| {
                let mut bound: Vec<String> = Vec::new();
                if self.shared_base {
                    bound.push(r#""sg-base""#.to_owned());
                }
                bound.extend((0..own_per_instance).map(|g| format!(r#""sg-g{:05}""#, i * own_per_instance + g)));
                format!(
                    r#"{{"id":"{}","interface":"tap{i:03}","ips":["2001:db8:1::{:x}"],"security_groups":[{}]}}"#,
                    Corpus::instance_id(i),
                    i + 1,
                    bound.join(",")
                )
            })
            .collect();
        instances.extend((0..PEERS).map(|p| {
            format!(
                r#"{{"id":"ins-peer-{p}","ips":["192.0.2.{}"],"security_groups":["sg-peers"]}}"#,
                p + 1
            )
        }));
        files.push((
            "instances.json".to_owned(),
            format!("{{\"instances\":[\n{}\n]}}\n", instances.join(",\n")),
        ));
        files
    }

    /// Group number `n`'s rules, the same list in both directions, rule
    /// `flip`'s action inverted.
    fn group(&self, id: &str, n: usize, flip: Option<usize>) -> String {
        let rules: Vec<String> = (0..self.rules_per_group)
            .map(|j| corpus_rule(n * self.rules_per_group + j, j, flip == Some(j)))
            .collect();
        let rules = rules.join(",");
        format!(r#"{{"id":"{id}","ingress":[{rules}],"egress":[{rules}]}}"#)
    }
}

/// Rule `j` of a corpus group, `k` its number over the whole corpus; every
/// 25th drops (the other way round when `flipped`).
fn corpus_rule(k: usize, j: usize, flipped: bool) -> String {
    let action = if (j % 25 == 24) != flipped {
        "drop"
    } else {
        "accept"
    };
    let remote = match j % 10 {
        9 => "sg-peers".to_owned(),
        7 => format!("203.0.113.{}/28", k % 16 * 16),
        _ => format!("203.0.113.{}", k % 256),
    };
    let traffic = match j % 10 {
        3 => r#""protocol":"icmp""#.to_owned(),
        4 => r#""protocol":"tcp","port":"8000-8999""#.to_owned(),
        _ => {
            let protocol = if k.is_multiple_of(2) { "tcp" } else { "udp" };
            format!(
                r#""protocol":"{protocol}","port":{}"#,
                1024 + (k / 256) % 4096
            )
        }
    };
    format!(r#"{{"action":"{action}",{traffic},"remote":"{remote}"}}"#)
}

/// The remote of a probe for `spec` in the sg-reference shape: a member in
/// the middle of the group.
pub fn member_probe(spec: &ListSpec) -> Option<IpAddr> {
    match spec.last_remote {
        LastRemote::Members(count) if count > 0 => Some(IpAddr::V6(member(count / 2))),
        _ => None,
    }
}

/// The apply corpus, compiled once for all tests of the crate (it is the
/// slow one in a debug build).
#[cfg(test)]
pub(crate) fn apply_policy() -> &'static Policy {
    static POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| compile(&Corpus::for_apply().files()).unwrap_or_else(|e| panic!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secgroup_model::{Direction, InstanceId};
    use secgroup_policy::{Matched, Packet};

    fn probe(remote: IpAddr, local: IpAddr) -> Packet {
        Packet {
            protocol: 17,
            remote,
            local,
            src_port: PROBE_SRC_PORT,
            dst_port: PROBE_PORT,
            icmp_type: 0,
            icmp_code: 0,
        }
    }

    /// Compiles `spec` and checks what the reference evaluator says about
    /// each probe, in both directions.
    #[track_caller]
    fn check(spec: ListSpec, probes: &[(IpAddr, Option<usize>)]) {
        let vm = Vm::bench();
        let policy = spec
            .compile(std::slice::from_ref(&vm))
            .unwrap_or_else(|e| panic!("{spec:?}: {e:#}"));
        let id = InstanceId::new(&vm.id).unwrap_or_else(|| panic!("bad id {}", vm.id));
        let instance = policy
            .instances
            .get(&id)
            .unwrap_or_else(|| panic!("{spec:?}: no instance"));
        for direction in Direction::ALL {
            let list = instance.rules(direction);
            assert_eq!(
                list.rules.len(),
                spec.rules,
                "{spec:?} {direction}: list length"
            );
            for &(remote, want) in probes {
                let local = if remote.is_ipv4() {
                    IpAddr::V4(vm.v4)
                } else {
                    IpAddr::V6(vm.v6)
                };
                let verdict = list.evaluate(direction, &probe(remote, local));
                let got = match verdict.matched {
                    Matched::Rule { position, .. } => Some(position),
                    Matched::DefaultDrop => None,
                    Matched::Implicit(i) => {
                        panic!("{spec:?} {direction} {remote}: implicit allow {i:?}")
                    }
                };
                assert_eq!(
                    got, want,
                    "{spec:?} {direction}: rule matching a probe from {remote}"
                );
                if want.is_some() {
                    assert_eq!(
                        verdict.action, spec.last_action,
                        "{spec:?} {direction}: action"
                    );
                }
            }
        }
    }

    #[test]
    fn probes_hit_exactly_the_last_rule_or_nothing() {
        let last = IpAddr::V4(LAST_RULE_REMOTE);
        let nothing = IpAddr::V4(DEFAULT_DROP_REMOTE);
        for rules in [1, 2, 16, 99, 100, 101, 257, 1024, 4096] {
            for last_action in [Action::Accept, Action::Drop] {
                let spec = ListSpec {
                    rules,
                    last_action,
                    last_remote: LastRemote::Subnet,
                };
                check(spec, &[(last, Some(rules - 1)), (nothing, None)]);
            }
        }
    }

    #[test]
    fn a_member_of_the_referenced_group_hits_the_last_rule() {
        for rules in [1, 300] {
            let spec = ListSpec {
                rules,
                last_action: Action::Drop,
                last_remote: LastRemote::Members(10_000),
            };
            let member = member_probe(&spec).unwrap_or_else(|| panic!("no member probe"));
            let stranger = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 5, 0, 0, 0, 0, 1));
            let subnet = IpAddr::V4(LAST_RULE_REMOTE);
            check(
                spec,
                &[(member, Some(rules - 1)), (stranger, None), (subnet, None)],
            );
        }
    }

    #[test]
    fn the_bench_vm_has_a_typical_port_security_spec_its_frames_pass() {
        use secgroup_policy::{Frame, L4, Payload, SpoofReason};

        let vm = Vm::bench();
        let spec = ListSpec {
            rules: 1,
            last_action: Action::Drop,
            last_remote: LastRemote::Subnet,
        };
        let policy = spec
            .compile(std::slice::from_ref(&vm))
            .unwrap_or_else(|e| panic!("{e:#}"));
        let id = InstanceId::new(&vm.id).unwrap_or_else(|| panic!("bad id {}", vm.id));
        let psec = &policy
            .instances
            .get(&id)
            .unwrap_or_else(|| panic!("no instance"))
            .port_security;
        assert!(psec.enabled, "{psec:?}");
        assert_eq!(psec.mac, Some(BENCH_VM_MAC));
        // Two addresses, one pair, the link-local address.
        assert_eq!(psec.allowed.len(), 4, "{psec:?}");
        let frame = |src_mac, src| Frame {
            src_mac,
            vlan_tags: 0,
            payload: Payload::Ipv4 {
                src,
                l4: L4::Udp {
                    src_port: PROBE_SRC_PORT,
                    dst_port: PROBE_PORT,
                },
            },
        };
        assert_eq!(psec.check(&frame(BENCH_VM_MAC, vm.v4)), Ok(()));
        let spoofed = Ipv4Addr::new(198, 51, 100, 3);
        assert_eq!(
            psec.check(&frame(BENCH_VM_MAC, spoofed)),
            Err(SpoofReason::SpoofedIp),
            "the spec must check something"
        );
    }

    #[test]
    fn members_are_distinct_and_not_adjacent_to_each_other() {
        let mut seen: Vec<u128> = (0..10_000).map(|i| u128::from(member(i))).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 10_000, "members collide");
        let adjacent = seen.windows(2).filter(|w| w[1] - w[0] == 1).count();
        assert_eq!(
            adjacent, 0,
            "neighbouring members would aggregate into shorter prefixes"
        );
    }

    #[test]
    fn corpora_have_the_advertised_size() {
        #[track_caller]
        fn check(corpus: Corpus, want_effective: usize) {
            assert_eq!(corpus.effective_rules(), want_effective, "{corpus:?}");
            let policy = compile(&corpus.files()).unwrap_or_else(|e| panic!("{corpus:?}: {e:#}"));
            let with_interface: Vec<_> = policy
                .instances
                .values()
                .filter(|i| i.interface.is_some())
                .collect();
            assert_eq!(with_interface.len(), corpus.instances, "{corpus:?}: VMs");
            let effective: usize = with_interface
                .iter()
                .map(|i| i.ingress.rules.len() + i.egress.rules.len())
                .sum();
            assert_eq!(
                effective, want_effective,
                "{corpus:?}: effective rules after compiling"
            );
        }
        check(Corpus::for_compile(1000), 1000);
        check(Corpus::for_compile(10_000), 10_000);
        let apply = Corpus::for_apply();
        assert_eq!(apply.effective_rules(), 200_000);
        let effective: usize = apply_policy()
            .instances
            .values()
            .filter(|i| i.interface.is_some())
            .map(|i| i.ingress.rules.len() + i.egress.rules.len())
            .sum();
        assert_eq!(
            effective, 200_000,
            "apply corpus: effective rules after compiling"
        );
    }

    #[test]
    fn flipping_a_base_rule_changes_that_rule_on_every_vm_and_nothing_else() {
        let corpus = Corpus::for_apply();
        let changed = compile(&corpus.files_with_flipped_base_rule(Some(3)))
            .unwrap_or_else(|e| panic!("{e:#}"));
        for (id, before) in apply_policy()
            .instances
            .iter()
            .filter(|(_, i)| i.interface.is_some())
        {
            let after = changed
                .instances
                .get(id)
                .unwrap_or_else(|| panic!("{id} vanished"));
            for (direction, old, new) in [
                (Direction::Ingress, &before.ingress, &after.ingress),
                (Direction::Egress, &before.egress, &after.egress),
            ] {
                let differing: Vec<usize> = (0..old.rules.len())
                    .filter(|&p| old.rules[p].action != new.rules[p].action)
                    .collect();
                assert_eq!(
                    differing,
                    [3],
                    "{id} {direction}: positions whose action changed"
                );
                let same_otherwise = old
                    .rules
                    .iter()
                    .zip(new.rules.iter())
                    .all(|(o, n)| o.remotes == n.remotes && o.services == n.services);
                assert!(
                    same_otherwise,
                    "{id} {direction}: only the action may change"
                );
            }
        }
    }

    #[test]
    fn a_shared_base_group_comes_first_in_every_list() {
        for instance in apply_policy()
            .instances
            .values()
            .filter(|i| i.interface.is_some())
        {
            let first = &instance.ingress.rules[0].origin;
            assert_eq!(
                first.sg.as_str(),
                "sg-base",
                "{}: first rule's group",
                instance.id
            );
            let last_base = &instance.ingress.rules[GROUP_QUOTA - 1].origin;
            assert_eq!(
                last_base.sg.as_str(),
                "sg-base",
                "{}: rule 99's group",
                instance.id
            );
        }
    }
}
