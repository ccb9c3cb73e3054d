//! The hypervisor path in miniature: a "host" namespace with a Linux
//! bridge, and two VM namespaces joined to it by veth pairs whose host ends
//! play the taps. Only documentation addresses, IPv6 off (no neighbour
//! discovery chatter in the counters), no route out of the namespaces.
//! Every namespace is deleted on drop, panics included, which also removes
//! the veths, the bridge and any nftables table inside.

use std::net::Ipv4Addr;

use anyhow::{Context, Result};
use secgroup_dataplane::netns;
use secgroup_testbed::{Bridge, NetNs, Veth, unique_with};

pub const BRIDGE: &str = "br0";
pub const TAP_A: &str = "tap-a";
pub const TAP_B: &str = "tap-b";
/// The VMs' interface inside their namespaces.
pub const GUEST_IF: &str = "eth0";
pub const VM_A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const VM_B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 3);
/// Names of namespaces, temp dirs and pin directories start with this,
/// then the pid of the benchmark (`secgroup_testbed::unique_with`), so a
/// run killed by a signal is swept by the next one.
pub const PREFIX: &str = "sgb";

/// Removes what earlier benchmark runs that died without cleaning up
/// (killed by a signal) left: namespaces, pins and temp dirs whose pid no
/// longer exists.
pub fn sweep_stale() {
    secgroup_testbed::sweep(PREFIX);
}

/// A fresh namespace `sgb-PID-N-ROLE`, deleted on drop.
pub fn namespace(role: &str) -> Result<NetNs> {
    Ok(NetNs::try_create(&unique_with(PREFIX, role))?)
}

pub struct Topology {
    pub host: NetNs,
    pub vm_a: NetNs,
    pub vm_b: NetNs,
}

impl Topology {
    pub fn new() -> Result<Topology> {
        let topology = Topology {
            host: namespace("host")?,
            vm_a: namespace("vm-a")?,
            vm_b: namespace("vm-b")?,
        };
        for ns in [&topology.host, &topology.vm_a, &topology.vm_b] {
            ns.try_sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
            ns.try_sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
        }
        // Bridged frames skip iptables/nftables unless a variant turns it
        // on for the bridge (`set_bridge_netfilter`); the sysctl is per
        // namespace.
        for key in ["iptables", "ip6tables", "arptables"] {
            topology
                .host
                .try_sysctl(&format!("net.bridge.bridge-nf-call-{key}"), "0")?;
        }
        let host = &topology.host;
        Bridge::new(host, BRIDGE).try_create()?;
        Veth::try_create_all(&[
            Veth::new(host, TAP_A, &topology.vm_a, GUEST_IF)
                .master(BRIDGE)
                .peer_addr(&format!("{VM_A}/24")),
            Veth::new(host, TAP_B, &topology.vm_b, GUEST_IF)
                .master(BRIDGE)
                .peer_addr(&format!("{VM_B}/24")),
        ])?;
        Ok(topology)
    }

    /// br_netfilter for this bridge only: bridged IPv4 then traverses the
    /// inet hooks, conntrack included (what libvirt and Neutron's
    /// iptables driver rely on).
    pub fn set_bridge_netfilter(&self, on: bool) -> Result<()> {
        self.host.try_ip(&[
            "link",
            "set",
            BRIDGE,
            "type",
            "bridge",
            "nf_call_iptables",
            if on { "1" } else { "0" },
        ])?;
        Ok(())
    }

    /// Packets VM B's interface has received.
    pub fn received_by_b(&self) -> Result<u64> {
        let text = netns::run_in(&self.vm_b.path(), || {
            std::fs::read_to_string("/proc/thread-self/net/dev")
        })?
        .context("reading /proc/net/dev in VM B's namespace")?;
        rx_packets(&text, GUEST_IF)
            .with_context(|| format!("no {GUEST_IF} in VM B's /proc/net/dev"))
    }
}

/// The received-packets column of `interface` in /proc/net/dev.
fn rx_packets(dev: &str, interface: &str) -> Option<u64> {
    dev.lines().find_map(|line| {
        let (name, counters) = line.split_once(':')?;
        (name.trim() == interface).then(|| counters.split_whitespace().nth(1)?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rx_packet_column() {
        let dev = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 5123456   81234    0    7    0     0          0         0     1234      12    0    0    0     0       0          0
";
        for (interface, want) in [
            ("eth0", Some(81234)),
            ("lo", Some(0)),
            ("eth1", None),
            ("face", None),
        ] {
            assert_eq!(rx_packets(dev, interface), want, "{interface}");
        }
    }
}
