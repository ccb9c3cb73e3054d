//! The nftables baseline: the same ordered rules as secgroup's lists,
//! written the way an iptables-era hypervisor host has them (libvirt's
//! nwfilter, Neutron's iptables driver): conntrack first, then one chain
//! per VM and direction walked rule by rule.
//!
//! Family: `inet` with br_netfilter. The kernel here lacks
//! nf_conntrack_bridge, so a `bridge` family chain could not use `ct
//! state`; br_netfilter hands bridged IPv4 to the inet hooks with
//! conntrack, exactly the path Neutron's iptables driver uses. iptables
//! dispatches to per-port chains with `-m physdev`; nftables has no
//! physdev match, so the dispatch here is by VM address, which costs the
//! same one comparison per VM.
//!
//! An accept rule `return`s from the VM's chain (so both the sender's
//! egress and the receiver's ingress chains are walked, first match
//! winning in each); falling off a chain drops, like secgroup's default.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use anyhow::Result;

use crate::rules::{LAST_PORTS, LAST_REMOTE};
use secgroup_testbed::NetNs;

pub const TABLE: &str = "sgbench";

/// A VM as the ruleset sees it: a chain-name stem and its address.
pub struct NftVm<'a> {
    pub name: &'a str,
    pub addr: Ipv4Addr,
}

/// The filler rules of a list of `rules` (all but the last), as the
/// benchmark's lists have them: (host of 203.0.113.0/24, protocol, port).
fn fillers(rules: usize) -> impl Iterator<Item = (usize, &'static str, usize)> {
    (0..rules.max(1) - 1).map(|i| {
        let protocol = if i.is_multiple_of(2) { "tcp" } else { "udp" };
        (i % 256, protocol, 1024 + i / 256)
    })
}

/// The ruleset for `rules` rules per VM and direction, mirroring
/// `ListSpec { rules, last_action: Accept, last_remote: Subnet }`.
pub fn ruleset(rules: usize, vms: &[NftVm<'_>]) -> String {
    let mut out = format!("table inet {TABLE} {{\n");
    for vm in vms {
        for (direction, field) in [("egress", "daddr"), ("ingress", "saddr")] {
            let _ = writeln!(out, "  chain {}_{direction} {{", vm.name);
            for (host, protocol, port) in fillers(rules) {
                let _ = writeln!(
                    out,
                    "    ip {field} 203.0.113.{host} {protocol} dport {port} return"
                );
            }
            let _ = writeln!(
                out,
                "    ip {field} {LAST_REMOTE} udp dport {}-{} return",
                LAST_PORTS.start(),
                LAST_PORTS.end()
            );
            out.push_str("    drop\n  }\n");
        }
    }
    forward_chain(&mut out, vms);
    out
}

/// The same lists at nftables' strongest: every rule of a list accepts,
/// so their order does not matter and each chain becomes one lookup in a
/// set of (address, protocol, port) intervals (the concatenated interval
/// set nftables matches with its pipapo algorithm) instead of a walk.
/// A list with a drop rule above an accept could not be written this way;
/// the benchmark's lists accept only.
pub fn ruleset_sets(rules: usize, vms: &[NftVm<'_>]) -> String {
    let mut out = format!("table inet {TABLE} {{\n");
    for vm in vms {
        for (direction, field) in [("egress", "daddr"), ("ingress", "saddr")] {
            let _ = writeln!(
                out,
                "  set {}_{direction}_allow {{\n    type ipv4_addr . inet_proto . inet_service\n    flags interval\n    elements = {{",
                vm.name
            );
            for (host, protocol, port) in fillers(rules) {
                let _ = writeln!(out, "      203.0.113.{host} . {protocol} . {port},");
            }
            let _ = writeln!(
                out,
                "      {LAST_REMOTE} . udp . {}-{}\n    }}\n  }}",
                LAST_PORTS.start(),
                LAST_PORTS.end()
            );
            let _ = writeln!(
                out,
                "  chain {0}_{direction} {{\n    ip {field} . meta l4proto . th dport @{0}_{direction}_allow return\n    drop\n  }}",
                vm.name
            );
        }
    }
    forward_chain(&mut out, vms);
    out
}

/// The forward hook: conntrack first, then a jump per VM and direction.
fn forward_chain(out: &mut String, vms: &[NftVm<'_>]) {
    out.push_str(
        "  chain forward {\n    type filter hook forward priority filter; policy accept;\n",
    );
    out.push_str("    ct state established,related accept\n    ct state invalid drop\n");
    for (direction, field) in [("egress", "saddr"), ("ingress", "daddr")] {
        for vm in vms {
            let _ = writeln!(
                out,
                "    ip {field} {} jump {}_{direction}",
                vm.addr, vm.name
            );
        }
    }
    out.push_str("  }\n}\n");
}

/// The table loaded in a namespace; deleted on drop.
pub struct NftTable<'a> {
    ns: &'a NetNs,
}

impl<'a> NftTable<'a> {
    pub fn load(ns: &'a NetNs, ruleset: &str) -> Result<NftTable<'a>> {
        ns.try_exec(&["nft", "-f", "-"], Some(ruleset))?;
        Ok(NftTable { ns })
    }
}

impl Drop for NftTable<'_> {
    fn drop(&mut self) {
        if let Err(e) = self
            .ns
            .try_exec(&["nft", "delete", "table", "inet", TABLE], None)
        {
            eprintln!("secgroup-bench: removing the nftables table: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_mirrors_the_benchmark_lists() {
        let vms = [NftVm {
            name: "vm_a",
            addr: Ipv4Addr::new(198, 51, 100, 2),
        }];
        let want = "\
table inet sgbench {
  chain vm_a_egress {
    ip daddr 203.0.113.0 tcp dport 1024 return
    ip daddr 203.0.113.1 udp dport 1024 return
    ip daddr 198.51.100.0/24 udp dport 20000-59999 return
    drop
  }
  chain vm_a_ingress {
    ip saddr 203.0.113.0 tcp dport 1024 return
    ip saddr 203.0.113.1 udp dport 1024 return
    ip saddr 198.51.100.0/24 udp dport 20000-59999 return
    drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    ct state invalid drop
    ip saddr 198.51.100.2 jump vm_a_egress
    ip daddr 198.51.100.2 jump vm_a_ingress
  }
}
";
        assert_eq!(ruleset(3, &vms), want);
    }

    #[test]
    fn sets_hold_every_rule_of_a_list() {
        let vms = [NftVm {
            name: "vm_a",
            addr: Ipv4Addr::new(198, 51, 100, 2),
        }];
        let text = ruleset_sets(3, &vms);
        assert!(text.contains(
            "  set vm_a_egress_allow {\n    type ipv4_addr . inet_proto . inet_service\n    flags interval\n    elements = {\n      203.0.113.0 . tcp . 1024,\n      203.0.113.1 . udp . 1024,\n      198.51.100.0/24 . udp . 20000-59999\n    }\n  }\n"
        ), "{text}");
        assert!(text.contains(
            "  chain vm_a_ingress {\n    ip saddr . meta l4proto . th dport @vm_a_ingress_allow return\n    drop\n  }\n"
        ), "{text}");
        assert!(text.ends_with(
            "    ct state established,related accept\n    ct state invalid drop\n    ip saddr 198.51.100.2 jump vm_a_egress\n    ip daddr 198.51.100.2 jump vm_a_ingress\n  }\n}\n"
        ), "{text}");
        for rules in [1, 10, 1000] {
            let text = ruleset_sets(rules, &vms);
            assert_eq!(
                text.matches(" . udp . ").count() + text.matches(" . tcp . ").count(),
                rules * 2
            );
        }
    }

    #[test]
    fn every_rule_count_gets_that_many_rules_per_chain() {
        let vms = [
            NftVm {
                name: "a",
                addr: Ipv4Addr::new(198, 51, 100, 2),
            },
            NftVm {
                name: "b",
                addr: Ipv4Addr::new(198, 51, 100, 3),
            },
        ];
        for rules in [1, 10, 257, 1000] {
            let text = ruleset(rules, &vms);
            let returns = text.lines().filter(|l| l.ends_with(" return")).count();
            assert_eq!(returns, rules * 4, "{rules} rules × 2 VMs × 2 directions");
            assert_eq!(
                text.matches(" jump ").count(),
                4,
                "{rules} rules: one dispatch per VM and direction"
            );
        }
    }
}
