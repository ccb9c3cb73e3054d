//! The simulated hypervisor: a host namespace with a Linux bridge, one
//! namespace per VM joined to the bridge by a veth pair whose host end
//! plays the VM's tap, and a "world" namespace on the same bridge that
//! holds every outside address (clients, a load balancer's VIP). The
//! host's files and pins are those of [`Host`].
//!
//! Layout (all on one L2 segment, so no router is needed):
//!
//! ```text
//!  VM ns (eth0: 198.51.100.N, 2001:db8:1::N) ── tap-NAME ─┐
//!  VM ns ...                                  ── tap-... ─┤ br0 (host ns)
//!  world ns (eth0: 203.0.113.10-13, 198.51.100.100,      ── world ─┘
//!            2001:db8:2::10-13)
//! ```
//!
//! Each side routes the other's prefix on-link, so ARP and neighbour
//! discovery resolve across the bridge.

use std::net::{IpAddr, Ipv6Addr};

use crate::host::Host;
use crate::link::{Bridge, Veth};
use crate::netns::NetNs;

/// The outside addresses the world namespace owns.
pub const CLIENT_A: &str = "203.0.113.10";
pub const CLIENT_B: &str = "203.0.113.11";
pub const CLIENT_C: &str = "203.0.113.12";
pub const CLIENT_D: &str = "203.0.113.13";
/// A load balancer's virtual IP, inside the VMs' subnet.
pub const LB_VIP: &str = "198.51.100.100";
pub const CLIENT_A6: &str = "2001:db8:2::10";
pub const CLIENT_B6: &str = "2001:db8:2::11";
pub const CLIENT_C6: &str = "2001:db8:2::12";
const WORLD_V4: [&str; 4] = [CLIENT_A, CLIENT_B, CLIENT_C, CLIENT_D];
const WORLD_V6: [&str; 4] = [CLIENT_A6, CLIENT_B6, CLIENT_C6, "2001:db8:2::13"];
/// The world's MAC, fixed so a tap guest can address it.
pub const WORLD_MAC: [u8; 6] = [0x02, 0x5e, 0, 0, 0, 0x01];

/// The host with its bridge, and the world.
pub struct TestBed {
    // Field order is drop order: the world goes after the host.
    pub host: Host,
    pub world: NetNs,
}

impl TestBed {
    /// Builds the host (sweeping leftovers of dead runs first) with `br0`
    /// and the world attached to it.
    pub fn new(tag: &str) -> TestBed {
        let bed = TestBed {
            host: Host::new(tag),
            world: NetNs::new(&format!("{tag}-w")),
        };
        let host = &bed.host.ns;
        Bridge::new(host, "br0")
            .option("mcast_snooping", "0")
            .create();
        let mut world = Veth::new(host, "world", &bed.world, "eth0")
            .master("br0")
            .peer_mac(&mac_text(WORLD_MAC));
        for ip in WORLD_V4 {
            world = world.peer_addr(&format!("{ip}/24"));
        }
        world = world.peer_addr(&format!("{LB_VIP}/24"));
        for ip in WORLD_V6 {
            world = world.peer_addr(&format!("{ip}/64"));
        }
        world.create();
        bed.world
            .ip(&["route", "add", "2001:db8:1::/64", "dev", "eth0"]);
        bed
    }

    /// A VM `name` (at most 10 bytes: its tap is `tap-NAME`) with the
    /// addresses 198.51.100.`n` and 2001:db8:1::`n` and the MAC
    /// 02:00:00:00:02:`n` (see [`Vm::mac`]).
    pub fn vm(&self, name: &str, n: u8) -> Vm<'_> {
        Vm::new(&self.host.ns, name, n)
    }
}

/// A VM: its own namespace, `eth0` inside, `tap-NAME` on the bridge.
pub struct Vm<'a> {
    pub ns: NetNs,
    host: &'a NetNs,
    pub name: String,
    pub ip4: String,
    pub ip6: String,
    /// Its `eth0`'s MAC, fixed so rule files can name it (`"mac"`) and
    /// raw frames address it: 02:00:00:00:02:`n`.
    pub mac: [u8; 6],
}

impl<'a> Vm<'a> {
    /// A VM `name` whose tap is on `host`'s bridge `br0` (see
    /// [`TestBed::vm`]; the fleet's hosts each have one too).
    pub(crate) fn new(host: &'a NetNs, name: &str, n: u8) -> Vm<'a> {
        assert!(name.len() <= 10, "VM name {name:?} too long for an ifname");
        assert!((2..100).contains(&n), "VM number {n} outside 2..100");
        let vm = Vm {
            ns: NetNs::new(name),
            host,
            name: name.to_owned(),
            ip4: format!("198.51.100.{n}"),
            ip6: format!("2001:db8:1::{n:x}"),
            mac: [0x02, 0x00, 0x00, 0x00, 0x02, n],
        };
        vm.add_link();
        vm
    }

    /// The host end of its veth pair: what the rules call its interface.
    pub fn tap(&self) -> String {
        format!("tap-{}", self.name)
    }

    /// Its instance id in rule files.
    pub fn instance(&self) -> String {
        format!("ins-{}", self.name)
    }

    pub fn ip(&self, v6: bool) -> IpAddr {
        let text = if v6 { &self.ip6 } else { &self.ip4 };
        text.parse()
            .unwrap_or_else(|e| panic!("VM address {text}: {e}"))
    }

    /// Its MAC as rule files write it.
    pub fn mac_text(&self) -> String {
        mac_text(self.mac)
    }

    /// The IPv6 link-local address its kernel derives from its MAC
    /// ([`link_local`]).
    pub fn link_local(&self) -> Ipv6Addr {
        link_local(self.mac)
    }

    /// Creates the veth pair and configures both ends (the VM's tap
    /// reappearing, as when a VM restarts).
    pub fn add_link(&self) {
        Veth::new(self.host, &self.tap(), &self.ns, "eth0")
            .master("br0")
            .peer_mac(&self.mac_text())
            .peer_addr(&format!("{}/24", self.ip4))
            .peer_addr(&format!("{}/64", self.ip6))
            .create();
        self.ns
            .ip(&["route", "add", "203.0.113.0/24", "dev", "eth0"]);
        self.ns
            .ip(&["route", "add", "2001:db8:2::/64", "dev", "eth0"]);
    }

    /// Deletes the veth pair (the VM's tap disappearing).
    pub fn del_link(&self) {
        self.host.ip(&["link", "del", &self.tap()]);
    }
}

/// The EUI-64 link-local address of `mac`, as the kernel derives it by
/// default (the port-security spec's own function).
pub use secgroup_policy::link_local;

pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_is_eui64() {
        assert_eq!(
            link_local([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            "fe80::5054:ff:fe12:3456"
                .parse::<Ipv6Addr>()
                .unwrap_or_else(|e| panic!("{e}"))
        );
        assert_eq!(
            mac_text([0x02, 0, 0, 0, 2, 0x0b]),
            "02:00:00:00:02:0b".to_owned()
        );
    }
}
