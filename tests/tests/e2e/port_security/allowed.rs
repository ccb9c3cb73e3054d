//! What a port-secured VM legitimately sends still goes: a DHCP client
//! before it has an address, duplicate address detection, neighbour
//! discovery and link-local IPv6, ARP probes, and its ordinary traffic,
//! as its rules allow.

use std::time::Duration;

use secgroup_testbed::Expect::{Accepted, Blocked};
use secgroup_testbed::{
    ACCEPT_TIMEOUT, CLIENT_A6, CLIENT_C6, Endpoint, Frame, NetNs, RawSocket, RuleFile, TestBed,
    accept, ping, poll, root_or_skip, tcp, udp,
};
use serde_json::json;

use super::{ArpFrame, BROADCAST, guest, neighbour, secured, udp_frame, v4, v6, watch, world};
use crate::start;

/// How long duplicate address detection may take (one probe, 1 s).
const DAD: Duration = Duration::from_secs(10);

#[test]
fn a_dhcp_client_sends_from_the_unspecified_address_with_no_rule_for_it() {
    if !root_or_skip("a_dhcp_client_sends_from_the_unspecified_address_with_no_rule_for_it") {
        return;
    }
    let bed = TestBed::new("ps-dhcpc");
    let vm = bed.vm("vm1", 31);
    // Egress opens HTTPS only: DHCP goes out as an implicit allow.
    let rules = RuleFile::new()
        .group("sg-web", vec![], vec![accept("tcp", "443", "")])
        .instance_with(&vm, &["sg-web"], secured(&vm));
    let (_daemon, _control) = start(&bed, &rules, &[vm.instance()]);
    // The host's bridge and the world see what the bridge floods.
    let observers = [RawSocket::open(&bed.host.ns, "br0"), world(&bed.world)];
    let sender = guest(&vm);
    // DHCPDISCOVER: 0.0.0.0:68 -> 255.255.255.255:67, before the guest
    // has an address; SOLICIT: link-local:546 -> ff02::1:2 port 547.
    sender.send(&udp_frame(
        vm.mac,
        v4("0.0.0.0").into(),
        68,
        BROADCAST,
        v4("255.255.255.255").into(),
        67,
        b"dhcp discover from vm1",
    ));
    sender.send(&udp_frame(
        vm.mac,
        vm.link_local().into(),
        546,
        [0x33, 0x33, 0, 1, 0, 2],
        v6("ff02::1:2").into(),
        547,
        b"dhcpv6 solicit from vm1",
    ));
    for observer in &observers {
        let seen = watch(observer, "VM1's DHCPv4 discover", |f| {
            f.contains(b"dhcp discover from vm1")
        });
        assert!(
            seen.iter().any(|f| f.contains(b"dhcpv6 solicit from vm1")),
            "VM1's DHCPv6 solicit from its link-local address did not reach {}",
            observer.place
        );
    }
}

/// The IPv6 addresses of `eth0` in `ns`, one line each, with their flags
/// (`tentative`, `dadfailed`).
fn addresses(ns: &NetNs) -> String {
    let out = ns.output(&["ip", "-6", "-o", "addr", "show", "dev", "eth0"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn address_line(ns: &NetNs, addr: &str) -> Option<String> {
    let needle = format!("inet6 {addr}/");
    addresses(ns)
        .lines()
        .find(|l| l.contains(&needle))
        .map(str::to_owned)
}

/// Waits until `addr` on `ns`'s `eth0` has finished duplicate address
/// detection one way or the other; its line then.
fn after_dad(ns: &NetNs, addr: &str) -> String {
    poll(DAD, || {
        address_line(ns, addr).filter(|l| l.contains("dadfailed") || !l.contains("tentative"))
    })
    .unwrap_or_else(|| {
        panic!(
            "{addr} on {} still tentative after {DAD:?}: {}",
            ns.name,
            addresses(ns)
        )
    })
}

#[test]
fn duplicate_address_detection_neighbour_discovery_and_link_local_ipv6_work() {
    if !root_or_skip("duplicate_address_detection_neighbour_discovery_and_link_local_ipv6_work") {
        return;
    }
    let bed = TestBed::new("ps-nd");
    let vm1 = bed.vm("vm1", 41);
    let vm2 = bed.vm("vm2", 42);
    const PAIR: &str = "2001:db8:1::141";
    let rules = RuleFile::new()
        .group(
            "sg-v6",
            vec![accept("icmpv6", "", "")],
            vec![accept("all", "", "")],
        )
        .instance_with(
            &vm1,
            &["sg-v6"],
            json!({ "mac": vm1.mac_text(), "allowed_address_pairs": [{ "ip": PAIR }] }),
        )
        .instance_with(&vm2, &["sg-v6"], secured(&vm2));
    let (_daemon, control) = start(&bed, &rules, &[vm1.instance(), vm2.instance()]);
    for vm in [&vm1, &vm2] {
        let ll = vm.link_local().to_string();
        let line = after_dad(&vm.ns, &ll);
        assert!(
            !line.contains("dadfailed"),
            "{}'s link-local {ll}: {line}",
            vm.name
        );
        vm.ns.sysctl("net/ipv6/conf/eth0/accept_dad", "1");
        vm.ns.ip(&["-6", "neigh", "flush", "dev", "eth0"]);
    }

    // Link-local ping: solicitation from VM1's EUI-64 address, VM2's
    // advertisement for its own, echo both ways.
    let target = format!("{}%eth0", vm2.link_local());
    let pinged = vm1
        .ns
        .output(&["ping", "-6", "-n", "-c", "1", "-W", "3", &target]);
    assert!(
        pinged.status.success(),
        "VM1 could not ping VM2's link-local address {target}: {}{}\n{}",
        String::from_utf8_lossy(&pinged.stdout),
        String::from_utf8_lossy(&pinged.stderr),
        neighbour(&vm1.ns, &vm2.link_local().to_string())
    );
    // Global addresses, resolved afresh.
    let (me, peer) = (
        Endpoint::new(&vm1.ns, &vm1.ip6),
        Endpoint::new(&vm2.ns, &vm2.ip6),
    );
    control.expect_all(&[
        (ping(me, peer), Accepted, "sg-v6 ingress #0"),
        (ping(peer, me), Accepted, "sg-v6 ingress #0"),
    ]);
    for (ns, vm, ip) in [(&vm1.ns, &vm2, &vm2.ip6), (&vm2.ns, &vm1, &vm1.ip6)] {
        let entry = neighbour(ns, ip);
        assert!(
            entry.contains(&vm.mac_text()),
            "{ip} resolved by neighbour discovery to {}: {entry:?}",
            vm.mac_text()
        );
    }

    // DAD of a new address: the probe (from ::) leaves VM1, so an
    // address the world already has is found to be a duplicate...
    vm1.ns.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{CLIENT_C6}/64"),
        "dev",
        "eth0",
    ]);
    let line = after_dad(&vm1.ns, CLIENT_C6);
    assert!(
        line.contains("dadfailed"),
        "the world owns {CLIENT_C6}: VM1's duplicate address detection should have failed, \
         so its probe never left: {line}"
    );
    vm1.ns.ip(&[
        "-6",
        "addr",
        "del",
        &format!("{CLIENT_C6}/64"),
        "dev",
        "eth0",
    ]);
    // ...and a free one, its address pair, passes and is used at once.
    vm1.ns
        .ip(&["-6", "addr", "add", &format!("{PAIR}/64"), "dev", "eth0"]);
    let line = after_dad(&vm1.ns, PAIR);
    assert!(!line.contains("dadfailed"), "{PAIR}: {line}");
    control.expect(
        ping(
            Endpoint::new(&vm1.ns, PAIR),
            Endpoint::new(&bed.world, CLIENT_A6),
        ),
        Accepted,
        "sg-v6 egress #0, from VM1's address pair once DAD passed",
    );
}

#[test]
fn arp_probes_and_ordinary_traffic_between_vms_work_as_the_rules_allow() {
    if !root_or_skip("arp_probes_and_ordinary_traffic_between_vms_work_as_the_rules_allow") {
        return;
    }
    let bed = TestBed::new("ps-ok");
    let vm1 = bed.vm("vm1", 51);
    let vm2 = bed.vm("vm2", 52);
    let vm3 = bed.vm("vm3", 53);
    let rules = RuleFile::new()
        .group(
            "sg-app",
            vec![
                accept("tcp", "22", "198.51.100.0/24"),
                accept("tcp", "22", "2001:db8:1::/64"),
                accept("udp", "53", &vm1.ip4),
                accept("icmp", "", &vm1.ip4),
            ],
            vec![accept("all", "", "")],
        )
        .instance_with(&vm1, &["sg-app"], secured(&vm1))
        .instance_with(&vm2, &["sg-app"], secured(&vm2))
        .instance_with(&vm3, &["sg-app"], secured(&vm3));
    let (_daemon, control) = start(
        &bed,
        &rules,
        &[vm1.instance(), vm2.instance(), vm3.instance()],
    );

    // An ARP probe (sender 0.0.0.0) for VM2's address: VM2 answers it.
    let prober = guest(&vm1);
    let probe = ArpFrame {
        op: 1,
        eth_src: vm1.mac,
        eth_dst: BROADCAST,
        sender_mac: vm1.mac,
        sender_ip: v4("0.0.0.0"),
        target_mac: [0; 6],
        target_ip: v4(&vm2.ip4),
    };
    prober.send(&probe.bytes());
    let answer = prober.recv(ACCEPT_TIMEOUT, |f: &Frame| {
        f.arp()
            .is_some_and(|a| a.op == 2 && a.sender_ip == v4(&vm2.ip4))
    });
    let Some(answer) = answer.and_then(|f| f.arp()) else {
        panic!("VM1's ARP probe for {} got no answer from VM2", vm2.ip4);
    };
    assert_eq!(answer.sender_mac, vm2.mac, "{answer:?}");

    // Ordinary traffic, every neighbour resolved afresh.
    for vm in [&vm1, &vm2, &vm3] {
        vm.ns.ip(&["neigh", "flush", "dev", "eth0"]);
    }
    let one = Endpoint::new(&vm1.ns, &vm1.ip4);
    let two = Endpoint::new(&vm2.ns, &vm2.ip4);
    let three = Endpoint::new(&vm3.ns, &vm3.ip4);
    let one6 = Endpoint::new(&vm1.ns, &vm1.ip6);
    let two6 = Endpoint::new(&vm2.ns, &vm2.ip6);
    control.expect_all(&[
        (tcp(one, two, 22), Accepted, "sg-app ingress #0"),
        (tcp(three, two, 22), Accepted, "sg-app ingress #0"),
        (tcp(one6, two6, 22), Accepted, "sg-app ingress #1"),
        (udp(one, two, 53), Accepted, "sg-app ingress #2"),
        (udp(three, two, 53), Blocked, "ingress #2 is VM1 only"),
        (ping(one, two), Accepted, "sg-app ingress #3"),
        (ping(three, two), Blocked, "ingress #3 is VM1 only"),
        (tcp(one, two, 80), Blocked, "no rule for 80: default drop"),
    ]);
    for (vm, peer) in [(&vm1, &vm2), (&vm3, &vm2)] {
        let entry = neighbour(&vm.ns, &peer.ip4);
        assert!(
            entry.contains(&peer.mac_text()),
            "{} resolved {} by ARP: {entry:?}",
            vm.name,
            peer.ip4
        );
    }
}
