//! A fleet of simulated hypervisors sharing one etcd: each host is a
//! [`Host`] (namespace, files, pins, its own secgroupd) with a bridge
//! `br0` and its VMs, as in the [`TestBed`](crate::TestBed); a "fabric"
//! namespace joins the hosts twice:
//!
//! ```text
//!  host A ns: VMs ── tap-* ─┐ br0 ── uplink ═══ ul-A ─┐ ul0   (fabric ns:
//!  host B ns: VMs ── tap-* ─┐ br0 ── uplink ═══ ul-B ─┤        the underlay,
//!  host C ns: ...                                  ...─┘        one L2 segment)
//!  host A ns: mgmt 203.0.113.11 ═══ mg-A ─┐ mgmt0 203.0.113.1   (fabric ns:
//!  host B ns: mgmt 203.0.113.12 ═══ mg-B ─┘  etcd listens here   management)
//! ```
//!
//! - the **underlay** bridge `ul0` puts every host's `br0` on one L2
//!   segment, so VMs on different hosts (198.51.100.N, 2001:db8:1::N,
//!   N unique across the fleet) reach each other through their own
//!   host's hooks and the other's;
//! - the **management** bridge `mgmt0` carries the hosts' daemons to
//!   etcd, which listens only on 203.0.113.1 inside the fabric namespace
//!   (the daemons' namespaces have loopbacks of their own, so etcd on
//!   this namespace's 127.0.0.1 would be out of their reach). The hosts'
//!   management addresses are not on `br0`: VM traffic never sees them.
//!
//! Everything goes on drop: etcd, the hosts (namespaces, pins, files),
//! the fabric. The daemons belong to the test, declared after the fleet,
//! so they stop first.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::bed::Vm;
use crate::binary::secgroupd_binary;
use crate::daemon::{Daemon, Secgroupd};
use crate::etcd::{Etcd, EtcdOptions};
use crate::host::Host;
use crate::link::{Bridge, Veth};
use crate::netns::NetNs;

/// etcd's address on the management bridge.
pub const ETCD_IP: &str = "203.0.113.1";
/// The key prefix the fleet's daemons watch.
pub const FLEET_PREFIX: &str = "/secgroup/";

/// One hypervisor of a [`Fleet`].
pub struct FleetHost {
    /// Its `--host-name`, what instances' `"host"` names.
    pub name: String,
    pub host: Host,
    /// Its address on the management network (203.0.113.10+i).
    pub mgmt_ip: String,
}

impl FleetHost {
    /// `binary` on this host's namespace, files and pins, fed from
    /// `etcd` under [`FLEET_PREFIX`] as host [`FleetHost::name`].
    pub fn secgroupd(&self, binary: impl Into<PathBuf>, etcd: &Etcd) -> Secgroupd {
        self.host
            .secgroupd(binary)
            .arg("--etcd-endpoints")
            .arg(etcd.endpoint())
            .arg("--etcd-prefix")
            .arg(FLEET_PREFIX)
            .arg("--host-name")
            .arg(&self.name)
    }

    /// A VM of this host (see [`TestBed::vm`](crate::TestBed::vm));
    /// `n` must be unique across the fleet, which is one L2 segment.
    pub fn vm(&self, name: &str, n: u8) -> Vm<'_> {
        Vm::new(&self.host.ns, name, n)
    }
}

/// Hosts, their underlay and management network, and one etcd.
pub struct Fleet {
    // Field order is drop order: etcd first (it runs in the fabric), the
    // hosts, then the fabric.
    pub etcd: Etcd,
    pub hosts: Vec<FleetHost>,
    pub fabric: NetNs,
}

impl Fleet {
    /// Hosts named `names` (at most 12 bytes each: `ul-NAME` is an
    /// interface name; at most 40 hosts), joined, with etcd started.
    pub fn new(tag: &str, names: &[&str]) -> Fleet {
        Fleet::with_etcd(tag, names, |options| options)
    }

    /// [`Fleet::new`] with etcd's options changed by `etcd` (more
    /// flags).
    pub fn with_etcd(
        tag: &str,
        names: &[&str],
        etcd: impl FnOnce(EtcdOptions) -> EtcdOptions,
    ) -> Fleet {
        assert!(names.len() <= 40, "at most 40 hosts in a fleet");
        let fabric = NetNs::new(&format!("{tag}-fab"));
        Bridge::new(&fabric, "ul0")
            .option("mcast_snooping", "0")
            .create();
        Bridge::new(&fabric, "mgmt0")
            .addr(&format!("{ETCD_IP}/24"))
            .create();
        let mut hosts = Vec::new();
        for (i, name) in names.iter().enumerate() {
            assert!(name.len() <= 12, "host name {name:?} too long");
            let host = Host::new(&format!("{tag}-{name}"));
            Bridge::new(&host.ns, "br0")
                .option("mcast_snooping", "0")
                .create();
            let mgmt_ip = format!("203.0.113.{}", 10 + i);
            Veth::new(&host.ns, "uplink", &fabric, &format!("ul-{name}"))
                .master("br0")
                .peer_master("ul0")
                .create();
            Veth::new(&host.ns, "mgmt", &fabric, &format!("mg-{name}"))
                .addr(&format!("{mgmt_ip}/24"))
                .peer_master("mgmt0")
                .create();
            hosts.push(FleetHost {
                name: (*name).to_owned(),
                host,
                mgmt_ip,
            });
        }
        let etcd = etcd(Etcd::options().netns(&fabric, ETCD_IP)).start();
        Fleet {
            etcd,
            hosts,
            fabric,
        }
    }

    /// Host `name`.
    pub fn host(&self, name: &str) -> &FleetHost {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name:?} in the fleet"))
    }

    /// The workspace's secgroupd on host `name`, fed from the fleet's
    /// etcd, with `flags`; started and ready.
    pub fn start_daemon(&self, name: &str, flags: &[&str]) -> Daemon {
        self.host(name)
            .secgroupd(secgroupd_binary(), &self.etcd)
            .args(flags)
            .start()
    }

    /// Puts `object` (one JSON object, as one element of a rule file's
    /// `kind` array: `security_groups`, `instances`, ...) at
    /// `/secgroup/KIND/ID`; the revision it made.
    pub fn put(&self, kind: &str, object: &Value) -> i64 {
        let id = object
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{kind} object without an id: {object}"));
        self.etcd.put(&key(kind, id), &object.to_string())
    }

    /// Deletes `/secgroup/KIND/ID`; the revision after it.
    pub fn delete(&self, kind: &str, id: &str) -> i64 {
        assert!(
            self.etcd.delete(&key(kind, id)),
            "no key {} to delete",
            key(kind, id)
        );
        self.etcd.revision()
    }
}

/// The key of object `id` of `kind` under [`FLEET_PREFIX`].
pub fn key(kind: &str, id: &str) -> String {
    format!("{FLEET_PREFIX}{kind}/{id}")
}

/// An instance document for etcd: `vm` (its tap, both addresses, its
/// MAC) on host `host`, bound to `groups` in order.
pub fn instance_on(vm: &Vm<'_>, host: &str, groups: &[&str]) -> Value {
    json!({
        "id": vm.instance(),
        "host": host,
        "interface": vm.tap(),
        "ips": [vm.ip4, vm.ip6],
        "mac": vm.mac_text(),
        "security_groups": groups,
    })
}

/// A security group document: `{"id", "ingress", "egress"}`.
pub fn group(id: &str, ingress: Vec<Value>, egress: Vec<Value>) -> Value {
    json!({ "id": id, "ingress": ingress, "egress": egress })
}
