//! The hypervisor path in miniature: a "host" namespace with a Linux
//! bridge, and two VM namespaces joined to it by veth pairs whose host ends
//! play the taps. Only documentation addresses, IPv6 off (no neighbour
//! discovery chatter in the counters), no route out of the namespaces.
//! Every namespace is deleted on drop, panics included, which also removes
//! the veths, the bridge and any nftables table inside.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use secgroup_dataplane::netns;

pub const BRIDGE: &str = "br0";
pub const TAP_A: &str = "tap-a";
pub const TAP_B: &str = "tap-b";
/// The VMs' interface inside their namespaces.
pub const GUEST_IF: &str = "eth0";
pub const VM_A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const VM_B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 3);
/// Namespace names start with this, then the pid of the benchmark.
const PREFIX: &str = "sgb-";

/// A network namespace deleted on drop.
pub struct NetNs {
    name: String,
}

impl NetNs {
    fn new(role: &str) -> Result<NetNs> {
        let name = format!("{PREFIX}{}-{role}", std::process::id());
        run(&["ip", "netns", "add", &name], None)?;
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> PathBuf {
        netns::named(&self.name)
    }

    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let mut full = vec!["ip", "-n", &self.name];
        full.extend_from_slice(args);
        run(&full, None)
    }

    /// Runs a command inside the namespace, `stdin` fed to it.
    pub fn exec(&self, args: &[&str], stdin: Option<&str>) -> Result<()> {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        run(&full, stdin)
    }

    fn sysctl(&self, settings: &[&str]) -> Result<()> {
        let mut args = vec!["sysctl", "-q", "-w"];
        args.extend_from_slice(settings);
        self.exec(&args, None)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs a command to completion, feeding `stdin` if given; its stderr
/// becomes the error when it fails.
pub(crate) fn run(args: &[&str], stdin: Option<&str>) -> Result<()> {
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", args[0]))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .with_context(|| format!("feeding {}", args.join(" ")))?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Deletes namespaces of earlier benchmark runs that died without cleaning
/// up (killed by a signal): those whose pid no longer exists.
pub fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists() {
            eprintln!("secgroup-bench: removing namespace {name} left by a dead run");
            let _ = run(&["ip", "netns", "del", &name], None);
        }
    }
}

pub struct Topology {
    pub host: NetNs,
    pub vm_a: NetNs,
    pub vm_b: NetNs,
}

impl Topology {
    pub fn new() -> Result<Topology> {
        let topology = Topology {
            host: NetNs::new("host")?,
            vm_a: NetNs::new("vm-a")?,
            vm_b: NetNs::new("vm-b")?,
        };
        for ns in [&topology.host, &topology.vm_a, &topology.vm_b] {
            ns.sysctl(&[
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ])?;
        }
        // Bridged frames skip iptables/nftables unless a variant turns it
        // on for the bridge (`set_bridge_netfilter`); the sysctl is per
        // namespace.
        topology.host.sysctl(&[
            "net.bridge.bridge-nf-call-iptables=0",
            "net.bridge.bridge-nf-call-ip6tables=0",
            "net.bridge.bridge-nf-call-arptables=0",
        ])?;
        let host = &topology.host;
        host.ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        host.ip(&["link", "set", BRIDGE, "up"])?;
        for (tap, vm, addr) in [(TAP_A, &topology.vm_a, VM_A), (TAP_B, &topology.vm_b, VM_B)] {
            host.ip(&[
                "link",
                "add",
                tap,
                "type",
                "veth",
                "peer",
                "name",
                GUEST_IF,
                "netns",
                vm.name(),
            ])?;
            host.ip(&["link", "set", tap, "master", BRIDGE])?;
            host.ip(&["link", "set", tap, "up"])?;
            vm.ip(&["addr", "add", &format!("{addr}/24"), "dev", GUEST_IF])?;
            vm.ip(&["link", "set", GUEST_IF, "up"])?;
        }
        Ok(topology)
    }

    /// br_netfilter for this bridge only: bridged IPv4 then traverses the
    /// inet hooks, conntrack included (what libvirt and Neutron's
    /// iptables driver rely on).
    pub fn set_bridge_netfilter(&self, on: bool) -> Result<()> {
        self.host.ip(&[
            "link",
            "set",
            BRIDGE,
            "type",
            "bridge",
            "nf_call_iptables",
            if on { "1" } else { "0" },
        ])
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
