//! The simulated hypervisor: a host namespace with a Linux bridge, one
//! namespace per VM joined to the bridge by a veth pair whose host end
//! plays the VM's tap, and a "world" namespace on the same bridge that
//! holds every outside address (clients, a load balancer's VIP). A temp
//! dir holds the rules directory, the daemon's socket and its logs; the
//! pin directory is unique under /sys/fs/bpf.
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

use std::net::IpAddr;
use std::path::PathBuf;

use crate::names::{sweep_leftovers, unique};
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

/// The host namespace, the bridge, the world, and the files.
pub struct TestBed {
    // Field order is drop order: namespaces go before the files.
    pub host: NetNs,
    pub world: NetNs,
    pub dir: PathBuf,
    pub rules: PathBuf,
    pub pin_dir: PathBuf,
}

impl TestBed {
    /// Sweeps leftovers of dead runs, then builds the host namespace with
    /// `br0` and the world attached to it.
    pub fn new(tag: &str) -> TestBed {
        sweep_leftovers();
        let dir = std::env::temp_dir().join(unique(tag));
        let rules = dir.join("rules");
        std::fs::create_dir_all(&rules)
            .unwrap_or_else(|e| panic!("creating {}: {e}", rules.display()));
        let bed = TestBed {
            host: NetNs::new(&format!("{tag}-h")),
            world: NetNs::new(&format!("{tag}-w")),
            pin_dir: PathBuf::from("/sys/fs/bpf").join(unique(tag)),
            dir,
            rules,
        };
        let host = &bed.host;
        host.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        host.ip(&["link", "set", "br0", "up"]);
        host.ip(&[
            "link",
            "add",
            "world",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &bed.world.name,
        ]);
        host.ip(&["link", "set", "world", "master", "br0"]);
        host.ip(&["link", "set", "world", "up"]);
        let world = &bed.world;
        world.ip(&["link", "set", "eth0", "address", &mac_text(WORLD_MAC)]);
        for ip in WORLD_V4 {
            world.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        }
        world.ip(&["addr", "add", &format!("{LB_VIP}/24"), "dev", "eth0"]);
        for ip in WORLD_V6 {
            world.ip(&["addr", "add", &format!("{ip}/64"), "dev", "eth0", "nodad"]);
        }
        world.ip(&["link", "set", "eth0", "up"]);
        world.ip(&["route", "add", "2001:db8:1::/64", "dev", "eth0"]);
        bed
    }

    /// A VM `name` (at most 10 bytes: its tap is `tap-NAME`) with the
    /// addresses 198.51.100.`n` and 2001:db8:1::`n`.
    pub fn vm(&self, name: &str, n: u8) -> Vm {
        assert!(name.len() <= 10, "VM name {name:?} too long for an ifname");
        assert!((2..100).contains(&n), "VM number {n} outside 2..100");
        let vm = Vm {
            ns: NetNs::new(name),
            host_ns: self.host.name.clone(),
            name: name.to_owned(),
            ip4: format!("198.51.100.{n}"),
            ip6: format!("2001:db8:1::{n:x}"),
        };
        vm.add_link();
        vm
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// Writes a rule file in place.
    pub fn write_rules(&self, file: &str, json: &str) {
        std::fs::write(self.rules.join(file), json)
            .unwrap_or_else(|e| panic!("writing {file}: {e}"));
    }

    /// Replaces a rule file the way controllers do: a temp file renamed
    /// over the old one.
    pub fn replace_rules(&self, file: &str, json: &str) {
        let tmp = self.rules.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, json).unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
        std::fs::rename(&tmp, self.rules.join(file))
            .unwrap_or_else(|e| panic!("renaming onto {file}: {e}"));
    }

    pub fn remove_rules(&self, file: &str) {
        std::fs::remove_file(self.rules.join(file))
            .unwrap_or_else(|e| panic!("removing {file}: {e}"));
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        // Unpinning the links detaches the hooks; the maps go with the
        // files. The daemon guard, declared after the bed, is gone by now.
        let _ = secgroup_dataplane::uninstall(&self.pin_dir);
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A VM: its own namespace, `eth0` inside, `tap-NAME` on the bridge.
pub struct Vm {
    pub ns: NetNs,
    host_ns: String,
    pub name: String,
    pub ip4: String,
    pub ip6: String,
}

impl Vm {
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

    fn host(&self, args: &[&str]) {
        let mut full = vec!["ip", "-n", &self.host_ns];
        full.extend_from_slice(args);
        crate::netns::sh(&full);
    }

    /// Creates the veth pair and configures both ends (the VM's tap
    /// reappearing, as when a VM restarts).
    pub fn add_link(&self) {
        let tap = self.tap();
        self.host(&[
            "link",
            "add",
            &tap,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &self.ns.name,
        ]);
        self.host(&["link", "set", &tap, "master", "br0"]);
        self.host(&["link", "set", &tap, "up"]);
        let ns = &self.ns;
        ns.ip(&["addr", "add", &format!("{}/24", self.ip4), "dev", "eth0"]);
        ns.ip(&[
            "addr",
            "add",
            &format!("{}/64", self.ip6),
            "dev",
            "eth0",
            "nodad",
        ]);
        ns.ip(&["link", "set", "eth0", "up"]);
        ns.ip(&["route", "add", "203.0.113.0/24", "dev", "eth0"]);
        ns.ip(&["route", "add", "2001:db8:2::/64", "dev", "eth0"]);
    }

    /// Deletes the veth pair (the VM's tap disappearing).
    pub fn del_link(&self) {
        self.host(&["link", "del", &self.tap()]);
    }
}

pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
