//! Attaching to real interfaces, inside network namespaces this test
//! creates and always removes: a veth pair whose far end sits in a "guest"
//! namespace (real ping through both hooks), and a real tap device.

mod common;

use common::*;
use secgroup_dataplane::{InterfaceBinding, netns};
use secgroup_policy::{Enforcement, LogMode};
use secgroup_testbed::{NetNs, PinDir, Tap, Veth};

/// A "host" namespace holding `vm0` (198.51.100.1), the stand-in for a
/// VM's tap, and a "guest" namespace holding its peer `eth0`
/// (198.51.100.2), the VM's NIC.
fn host_and_guest(tag: &str) -> (NetNs, NetNs) {
    let host = NetNs::new(&format!("{tag}-host"));
    let guest = NetNs::new(&format!("{tag}-guest"));
    Veth::new(&host, "vm0", &guest, "eth0")
        .addr("198.51.100.1/24")
        .peer_addr("198.51.100.2/24")
        .create();
    (host, guest)
}

/// Names of the programs attached to `dev` in `ns`: XDP (from the link's
/// program id) and TCX egress, asked of the kernel. (bpftool 7.1 shows
/// neither names nor TCX.)
fn attached_programs(ns: &NetNs, dev: &str) -> Vec<String> {
    let mut names = Vec::new();
    let link = ns.output(&["ip", "-d", "link", "show", "dev", dev]);
    let link = String::from_utf8_lossy(&link.stdout);
    let xdp_id = link
        .split("prog/xdp id ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse::<u32>().ok());
    if let Some(id) = xdp_id {
        let info = aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .find(|p| p.id() == id)
            .unwrap_or_else(|| panic!("XDP program id {id} on {dev} is not loaded"));
        names.push(format!("xdp:{}", info.name_as_str().unwrap_or("?")));
    }
    let tcx = netns::run_in(&ns.path(), || {
        aya::programs::SchedClassifier::query_tcx(dev, aya::programs::TcAttachType::Egress)
    })
    .unwrap_or_else(|e| panic!("entering {}: {}", ns.name, error_chain(&e)));
    if let Ok((_, programs)) = tcx {
        for p in programs {
            names.push(format!("tcx:{}", p.name_as_str().unwrap_or("?")));
        }
    }
    names.sort();
    names
}

const BOTH_HOOKS: [&str; 2] = ["tcx:sg_tc_ingress", "xdp:sg_xdp_egress"];

fn policy(ingress: &str, egress: &str) -> secgroup_policy::Policy {
    compile(&format!(
        r#"{{
  "security_groups": [ {{ "id": "sg-test", "ingress": [{ingress}], "egress": [{egress}] }} ],
  "instances": [ {{ "id": "ins-vm", "interface": "vm0", "ips": ["198.51.100.2"], "security_groups": ["sg-test"] }} ]
}}"#
    ))
}

fn bind(dp: &mut secgroup_dataplane::Dataplane, ifindex: u32, policy: &secgroup_policy::Policy) {
    let inst = policy
        .instances
        .values()
        .next()
        .unwrap_or_else(|| panic!("no instance"));
    dp.apply(&[InterfaceBinding {
        ifindex,
        ingress: &inst.ingress,
        egress: &inst.egress,
        keep_established: false,
        instance_uid: 1,
        port_security: None,
        log: LogMode::None,
        enforcement: Enforcement::Enforce,
    }])
    .unwrap_or_else(|e| panic!("apply: {}", error_chain(&e)));
}

/// One echo request answered within a second: what a denial must fail.
fn ping(ns: &NetNs, target: &str) -> bool {
    ns.succeeds(&["ping", "-c", "1", "-W", "1", "-q", target])
}

/// An allowed ping gets three tries: the first can miss on a loaded
/// machine while ARP resolves on a fresh link.
fn pings(ns: &NetNs, target: &str) -> bool {
    (0..3).any(|_| ping(ns, target))
}

#[test]
fn hooks_on_a_veth_filter_real_traffic_both_ways() {
    if !kernel_tests_enabled("hooks_on_a_veth_filter_real_traffic_both_ways") {
        return;
    }
    let (host, guest) = host_and_guest("veth");
    assert!(
        pings(&guest, "198.51.100.1"),
        "without hooks the guest reaches the host"
    );

    let mut dp = load_dataplane();
    let info = dp
        .attach_in(&host.path(), "vm0")
        .unwrap_or_else(|e| panic!("attach: {}", error_chain(&e)));
    assert_eq!(
        attached_programs(&host, "vm0"),
        BOTH_HOOKS,
        "both hooks attached"
    );

    // Attached but no policy yet: fail closed.
    assert!(
        !ping(&guest, "198.51.100.1"),
        "an interface without policy drops"
    );

    // The VM may send ICMP; nothing may come in unsolicited.
    bind(
        &mut dp,
        info.ifindex,
        &policy("", r#"{"action":"accept","protocol":"icmp"}"#),
    );
    assert!(
        pings(&guest, "198.51.100.1"),
        "guest's ping goes out and its reply comes back (stateful)"
    );
    assert!(
        !ping(&host, "198.51.100.2"),
        "the host's ping to the guest is dropped by ingress"
    );

    // Swap: the guest may no longer send anything.
    bind(
        &mut dp,
        info.ifindex,
        &policy(r#"{"action":"accept","protocol":"icmp"}"#, ""),
    );
    assert!(
        !ping(&guest, "198.51.100.1"),
        "egress closed after the swap"
    );
    assert!(pings(&host, "198.51.100.2"), "ingress open after the swap");

    dp.detach(info.ifindex)
        .unwrap_or_else(|e| panic!("detach: {}", error_chain(&e)));
    assert!(attached_programs(&host, "vm0").is_empty(), "detached");
    assert!(
        pings(&guest, "198.51.100.1"),
        "after detach traffic flows unfiltered again"
    );
}

#[test]
fn hooks_attach_to_a_real_tap_device() {
    if !kernel_tests_enabled("hooks_attach_to_a_real_tap_device") {
        return;
    }
    let host = NetNs::new("tap");
    Tap::new(&host, "tap-vm").create();
    let mut dp = load_dataplane();
    let info = dp
        .attach_in(&host.path(), "tap-vm")
        .unwrap_or_else(|e| panic!("attach to tap: {}", error_chain(&e)));
    assert_eq!(
        attached_programs(&host, "tap-vm"),
        BOTH_HOOKS,
        "both hooks on the tap"
    );
    dp.detach(info.ifindex)
        .unwrap_or_else(|e| panic!("detach: {}", error_chain(&e)));
    assert!(
        attached_programs(&host, "tap-vm").is_empty(),
        "detached from the tap"
    );
}

#[test]
fn pinned_state_outlives_the_process_and_is_adopted_by_the_next() {
    if !kernel_tests_enabled("pinned_state_outlives_the_process_and_is_adopted_by_the_next") {
        return;
    }
    let (host, guest) = host_and_guest("pin");
    let pins = PinDir::new("pin");
    let options = secgroup_dataplane::LoadOptions {
        pin_dir: Some(pins.path.clone()),
        ..Default::default()
    };
    let egress_icmp = policy("", r#"{"action":"accept","protocol":"icmp"}"#);

    let ifindex = {
        let (mut first, adopted) = secgroup_dataplane::Dataplane::load(&options)
            .unwrap_or_else(|e| panic!("first load: {}", error_chain(&e)));
        assert_eq!(
            adopted,
            secgroup_dataplane::AdoptReport::default(),
            "nothing to adopt at first"
        );
        let info = first
            .attach_in(&host.path(), "vm0")
            .unwrap_or_else(|e| panic!("attach: {}", error_chain(&e)));
        bind(&mut first, info.ifindex, &egress_icmp);
        assert!(pings(&guest, "198.51.100.1"), "the guest's ping is allowed");
        info.ifindex
        // `first` is dropped here: the process's handles go, the pins stay.
    };
    // Nobody holds the programs now but the pinned links.
    assert!(
        pings(&guest, "198.51.100.1"),
        "still enforcing with no process: allowed traffic flows"
    );
    assert!(
        !ping(&host, "198.51.100.2"),
        "still enforcing with no process: denied traffic stays denied"
    );

    let (mut second, adopted) = secgroup_dataplane::Dataplane::load(&options)
        .unwrap_or_else(|e| panic!("second load: {}", error_chain(&e)));
    assert_eq!(
        adopted.interfaces, 1,
        "the interface binding is adopted: {adopted:?}"
    );
    assert_eq!(adopted.tables, 2, "both tables are adopted: {adopted:?}");
    assert!(
        adopted.conntrack_entries >= 1,
        "conntrack survives: {adopted:?}"
    );
    assert_eq!(second.interface(ifindex).map(|i| i.instance_uid), Some(1));
    let info = second
        .attach_in(&host.path(), "vm0")
        .unwrap_or_else(|e| panic!("re-attach: {}", error_chain(&e)));
    assert!(info.adopted, "the pinned links are reused, not duplicated");
    assert_eq!(
        attached_programs(&host, "vm0"),
        BOTH_HOOKS,
        "the pinned links are re-pointed, not duplicated"
    );
    let report = second
        .apply(&[InterfaceBinding {
            ifindex,
            ingress: &egress_icmp
                .instances
                .values()
                .next()
                .unwrap_or_else(|| panic!("no instance"))
                .ingress,
            egress: &egress_icmp
                .instances
                .values()
                .next()
                .unwrap_or_else(|| panic!("no instance"))
                .egress,
            keep_established: false,
            instance_uid: 1,
            port_security: None,
            log: LogMode::None,
            enforcement: Enforcement::Enforce,
        }])
        .unwrap_or_else(|e| panic!("converging: {}", error_chain(&e)));
    assert_eq!(
        (report.tables_written, report.stale_entries_swept),
        (0, 0),
        "the previous process's tables are adopted as they are: {report:?}"
    );
    assert!(pings(&guest, "198.51.100.1"), "allowed after adoption");
    assert!(!ping(&host, "198.51.100.2"), "denied after adoption");
    drop(second);
    secgroup_dataplane::uninstall(&pins.path)
        .unwrap_or_else(|e| panic!("uninstall: {}", error_chain(&e)));
    assert!(
        attached_programs(&host, "vm0").is_empty(),
        "uninstall detaches"
    );
}

fn load_pinned(pins: &PinDir) -> secgroup_dataplane::Dataplane {
    let (dp, _) = secgroup_dataplane::Dataplane::load(&secgroup_dataplane::LoadOptions {
        pin_dir: Some(pins.path.clone()),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("loading with pins: {}", error_chain(&e)));
    dp
}

#[test]
fn the_xdp_mode_reported_is_the_kernels_also_after_adoption() {
    if !kernel_tests_enabled("the_xdp_mode_reported_is_the_kernels_also_after_adoption") {
        return;
    }
    let ns = NetNs::new("mode");
    // A bridge has no native XDP: the hook runs in generic mode.
    ns.ip(&["link", "add", "d0", "type", "bridge"]);
    ns.ip(&["link", "set", "d0", "up"]);
    let pins = PinDir::new("mode");
    {
        let mut dp = load_pinned(&pins);
        let info = dp
            .attach_in(&ns.path(), "d0")
            .unwrap_or_else(|e| panic!("attach: {}", error_chain(&e)));
        assert_eq!(info.xdp_mode, secgroup_dataplane::XdpAttachMode::Generic);
        assert!(!info.adopted);
    }
    let mut dp = load_pinned(&pins);
    let info = dp
        .attach_in(&ns.path(), "d0")
        .unwrap_or_else(|e| panic!("re-attach: {}", error_chain(&e)));
    assert!(info.adopted, "the pinned links are adopted");
    assert_eq!(
        info.xdp_mode,
        secgroup_dataplane::XdpAttachMode::Generic,
        "adoption reports the mode the kernel runs, not driver"
    );
    drop(dp);
    let _ = secgroup_dataplane::uninstall(&pins.path);
}

#[test]
fn a_hook_pair_whose_second_pin_fails_leaves_no_hook_behind() {
    if !kernel_tests_enabled("a_hook_pair_whose_second_pin_fails_leaves_no_hook_behind") {
        return;
    }
    let (host, _guest) = host_and_guest("pair");
    let pins = PinDir::new("pair");
    let mut dp = load_pinned(&pins);
    let ifindex = host
        .ifindex("vm0")
        .unwrap_or_else(|| panic!("no vm0 in {}", host.name));
    // Something in the way of the TC link's pin: pinning it fails.
    let blocker = pins.path.join("links").join(format!("{ifindex}_tcx"));
    std::fs::create_dir_all(&blocker).unwrap_or_else(|e| panic!("{e}"));
    let result = dp.attach_in(&host.path(), "vm0");
    assert!(result.is_err(), "attach succeeded with the TC pin blocked");
    assert!(
        attached_programs(&host, "vm0").is_empty(),
        "no hook may stay without its pair: {:?}",
        attached_programs(&host, "vm0")
    );
    assert!(
        !pins
            .path
            .join("links")
            .join(format!("{ifindex}_xdp"))
            .exists(),
        "the XDP pin is gone too"
    );
    std::fs::remove_dir(&blocker).unwrap_or_else(|e| panic!("{e}"));
    let info = dp
        .attach_in(&host.path(), "vm0")
        .unwrap_or_else(|e| panic!("attach once unblocked: {}", error_chain(&e)));
    assert_eq!(info.xdp_mode, secgroup_dataplane::XdpAttachMode::Driver);
    assert_eq!(attached_programs(&host, "vm0"), BOTH_HOOKS);
    drop(dp);
    let _ = secgroup_dataplane::uninstall(&pins.path);
}
