//! Attaching to real interfaces, inside network namespaces this test
//! creates and always removes: a veth pair whose far end sits in a "guest"
//! namespace (real ping through both hooks), and a real tap device.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use common::*;
use secgroup_dataplane::{InterfaceBinding, netns};

/// A network namespace that is deleted on drop.
struct NetNs {
    name: String,
}

static NEXT_NS: AtomicU32 = AtomicU32::new(0);

impl NetNs {
    fn new(tag: &str) -> NetNs {
        let name = format!("sgt-{tag}-{}-{}", std::process::id(), NEXT_NS.fetch_add(1, Ordering::Relaxed));
        sh(&["ip", "netns", "add", &name]);
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn path(&self) -> PathBuf {
        netns::named(&self.name)
    }

    fn ip(&self, args: &[&str]) {
        let mut full = vec!["ip", "-n", &self.name];
        full.extend_from_slice(args);
        sh(&full);
    }

    fn exec_ok(&self, args: &[&str]) -> bool {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        Command::new(full[0])
            .args(&full[1..])
            .output()
            .unwrap_or_else(|e| panic!("running {full:?}: {e}"))
            .status
            .success()
    }

    fn output(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        let out = Command::new(full[0])
            .args(&full[1..])
            .output()
            .unwrap_or_else(|e| panic!("running {full:?}: {e}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn policy(ingress: &str, egress: &str) -> secgroup_policy::Policy {
    compile(&format!(
        r#"{{
  "security_groups": [ {{ "id": "sg-test", "ingress": [{ingress}], "egress": [{egress}] }} ],
  "instances": [ {{ "id": "ins-vm", "interface": "vm0", "ips": ["198.51.100.2"], "security_groups": ["sg-test"] }} ]
}}"#
    ))
}

fn bind(dp: &mut secgroup_dataplane::Dataplane, ifindex: u32, policy: &secgroup_policy::Policy) {
    let inst = policy.instances.values().next().unwrap_or_else(|| panic!("no instance"));
    dp.apply(&[InterfaceBinding {
        ifindex,
        ingress: &inst.ingress,
        egress: &inst.egress,
        keep_established: false,
        instance_uid: 1,
    }])
    .unwrap_or_else(|e| panic!("apply: {}", error_chain(&e)));
}

fn ping(ns: &NetNs, target: &str) -> bool {
    ns.exec_ok(&["ping", "-c", "1", "-W", "1", "-q", target])
}

#[test]
fn hooks_on_a_veth_filter_real_traffic_both_ways() {
    if !kernel_tests_enabled("hooks_on_a_veth_filter_real_traffic_both_ways") {
        return;
    }
    let host = NetNs::new("host");
    let guest = NetNs::new("guest");
    // vm0 is the "tap" in the host namespace; its peer is the guest's NIC.
    host.ip(&["link", "add", "vm0", "type", "veth", "peer", "name", "eth0", "netns", &guest.name]);
    host.ip(&["addr", "add", "198.51.100.1/24", "dev", "vm0"]);
    host.ip(&["link", "set", "vm0", "up"]);
    guest.ip(&["addr", "add", "198.51.100.2/24", "dev", "eth0"]);
    guest.ip(&["link", "set", "eth0", "up"]);
    assert!(ping(&guest, "198.51.100.1"), "without hooks the guest reaches the host");

    let mut dp = load_dataplane();
    let info = dp
        .attach_in(&host.path(), "vm0")
        .unwrap_or_else(|e| panic!("attach: {}", error_chain(&e)));
    let shown = host.output(&["bpftool", "net", "show", "dev", "vm0"]);
    assert!(shown.contains("sg_xdp_egress"), "XDP program attached: {shown}");
    assert!(shown.contains("sg_tc_ingress"), "TCX program attached: {shown}");

    // Attached but no policy yet: fail closed.
    assert!(!ping(&guest, "198.51.100.1"), "an interface without policy drops");

    // The VM may send ICMP; nothing may come in unsolicited.
    bind(&mut dp, info.ifindex, &policy("", r#"{"action":"accept","protocol":"icmp"}"#));
    assert!(ping(&guest, "198.51.100.1"), "guest's ping goes out and its reply comes back (stateful)");
    assert!(!ping(&host, "198.51.100.2"), "the host's ping to the guest is dropped by ingress");

    // Swap: the guest may no longer send anything.
    bind(&mut dp, info.ifindex, &policy(r#"{"action":"accept","protocol":"icmp"}"#, ""));
    assert!(!ping(&guest, "198.51.100.1"), "egress closed after the swap");
    assert!(ping(&host, "198.51.100.2"), "ingress open after the swap");

    dp.detach(info.ifindex).unwrap_or_else(|e| panic!("detach: {}", error_chain(&e)));
    let shown = host.output(&["bpftool", "net", "show", "dev", "vm0"]);
    assert!(!shown.contains("sg_"), "detached: {shown}");
    assert!(ping(&guest, "198.51.100.1"), "after detach traffic flows unfiltered again");
}

#[test]
fn hooks_attach_to_a_real_tap_device() {
    if !kernel_tests_enabled("hooks_attach_to_a_real_tap_device") {
        return;
    }
    let host = NetNs::new("tap");
    host.ip(&["tuntap", "add", "dev", "tap-vm", "mode", "tap"]);
    host.ip(&["link", "set", "tap-vm", "up"]);
    let mut dp = load_dataplane();
    let info = dp
        .attach_in(&host.path(), "tap-vm")
        .unwrap_or_else(|e| panic!("attach to tap: {}", error_chain(&e)));
    let shown = host.output(&["bpftool", "net", "show", "dev", "tap-vm"]);
    assert!(
        shown.contains("sg_xdp_egress") && shown.contains("sg_tc_ingress"),
        "both hooks on the tap: {shown}"
    );
    dp.detach(info.ifindex).unwrap_or_else(|e| panic!("detach: {}", error_chain(&e)));
    let shown = host.output(&["bpftool", "net", "show", "dev", "tap-vm"]);
    assert!(!shown.contains("sg_"), "detached from the tap: {shown}");
}
