//! What a compromised guest forges, each dropped on its tap before any
//! other machine sees it, and counted under its reason.

use std::net::IpAddr;

use secgroup_policy::SpoofReason;
use secgroup_testbed::Expect::Accepted;
use secgroup_testbed::{
    CLIENT_A6, Endpoint, Frame, RawSocket, RuleFile, TestBed, Vm, accept, ping, root_or_skip,
};

use super::{
    ALL_NODES, ALL_NODES_MAC, ArpFrame, BROADCAST, FOREIGN_MAC, Inbox, counted, guest,
    icmpv6_frame, nd_target, neighbour, neighbour_advert, neighbour_kept, never_arrived,
    reaches_no_one, secured, udp_frame, v4, v6, watch, world,
};
use crate::start;

/// Three VMs on one bridge: VM1 the victim whose identity is stolen,
/// VM2 the one deceived, VM3 the attacker.
fn three(bed: &TestBed) -> [Vm<'_>; 3] {
    [bed.vm("vm1", 21), bed.vm("vm2", 22), bed.vm("vm3", 23)]
}

fn ids(vms: &[Vm<'_>]) -> Vec<String> {
    vms.iter().map(Vm::instance).collect()
}

/// Every VM port-secured with its MAC in `sg-open`: pings and UDP 5000
/// in from the VMs' subnet, everything out.
fn open_rules(vms: &[Vm<'_>]) -> RuleFile {
    let mut rules = RuleFile::new().group(
        "sg-open",
        vec![
            accept("icmp", "", "198.51.100.0/24"),
            accept("icmpv6", "", "2001:db8:1::/64"),
            accept("udp", "5000", "198.51.100.0/24"),
        ],
        vec![accept("all", "", "")],
    );
    for vm in vms {
        rules = rules.instance_with(vm, &["sg-open"], secured(vm));
    }
    rules
}

#[test]
fn a_datagram_from_another_vms_address_never_reaches_the_vm_that_trusts_it() {
    if !root_or_skip("a_datagram_from_another_vms_address_never_reaches_the_vm_that_trusts_it") {
        return;
    }
    let bed = TestBed::new("ps-ip");
    let vms = three(&bed);
    let [vm1, vm2, vm3] = &vms;
    // VM2's only ingress rule admits VM1 (both families) on UDP 5000.
    let rules = RuleFile::new()
        .group("sg-out", vec![], vec![accept("all", "", "")])
        .group(
            "sg-trusts-vm1",
            vec![
                accept("udp", "5000", &vm1.ip4),
                accept("udp", "5000", &vm1.ip6),
            ],
            vec![accept("all", "", "")],
        )
        .instance_with(vm1, &["sg-out"], secured(vm1))
        .instance_with(vm2, &["sg-trusts-vm1"], secured(vm2))
        .instance_with(vm3, &["sg-out"], secured(vm3));
    let (_daemon, control) = start(&bed, &rules, &ids(&vms));

    for v6 in [false, true] {
        let inbox = Inbox::bind(&vm2.ns, &vm2.ip(v6).to_string(), 5000);
        let (victim, target) = (vm1.ip(v6), vm2.ip(v6));
        // VM3 as VM1 (its own MAC, VM1's address), then VM1 itself.
        guest(vm3).send(&udp_frame(
            vm3.mac,
            victim,
            40000,
            vm2.mac,
            target,
            5000,
            b"forged by vm3",
        ));
        guest(vm1).send(&udp_frame(
            vm1.mac,
            victim,
            40000,
            vm2.mac,
            target,
            5000,
            b"sent by vm1",
        ));
        let got = inbox.watch("sent by vm1");
        assert!(
            !got.iter().any(|(_, m)| m == "forged by vm3"),
            "VM3's datagram from VM1's address {victim} reached {}, whose rule admits VM1 only: \
             port security should drop it (drop-spoofed-ip); got {got:?}; VM3 egress {:?}",
            inbox.addr,
            control.verdicts(&vm3.instance(), secgroup_api::Direction::Egress)
        );
    }
    counted(&control, vm3, SpoofReason::SpoofedIp, 2);
}

#[test]
fn a_frame_from_a_foreign_or_another_vms_mac_is_dropped() {
    if !root_or_skip("a_frame_from_a_foreign_or_another_vms_mac_is_dropped") {
        return;
    }
    let bed = TestBed::new("ps-mac");
    let vms = three(&bed);
    let [vm1, vm2, vm3] = &vms;
    let (_daemon, control) = start(&bed, &open_rules(&vms), &ids(&vms));
    let inbox = Inbox::bind(&vm2.ns, &vm2.ip4, 5000);
    let (src, dst) = (vm3.ip(false), vm2.ip(false));
    // VM3's own address, from a made-up MAC and from VM1's.
    let attacker = guest(vm3);
    for (mac, marker) in [
        (FOREIGN_MAC, "foreign mac"),
        (vm1.mac, "vm1's mac"),
        (vm3.mac, "vm3's own mac"),
    ] {
        attacker.send(&udp_frame(
            mac,
            src,
            40000,
            vm2.mac,
            dst,
            5000,
            marker.as_bytes(),
        ));
    }
    let got = inbox.watch("vm3's own mac");
    for forged in ["foreign mac", "vm1's mac"] {
        assert!(
            !got.iter().any(|(_, m)| m == forged),
            "VM3's datagram from {forged:?} reached VM2: port security should drop it \
             (drop-spoofed-mac); got {got:?}"
        );
    }
    counted(&control, vm3, SpoofReason::SpoofedMac, 2);
}

#[test]
fn a_gratuitous_arp_for_another_vms_address_reaches_no_one() {
    if !root_or_skip("a_gratuitous_arp_for_another_vms_address_reaches_no_one") {
        return;
    }
    let bed = TestBed::new("ps-arp");
    let vms = three(&bed);
    let [vm1, vm2, vm3] = &vms;
    let (_daemon, control) = start(&bed, &open_rules(&vms), &ids(&vms));
    // VM2 knows VM1 at VM1's MAC.
    control.expect(
        ping(
            Endpoint::new(&vm2.ns, &vm2.ip4),
            Endpoint::new(&vm1.ns, &vm1.ip4),
        ),
        Accepted,
        "sg-open ingress #0",
    );
    let before = neighbour(&vm2.ns, &vm1.ip4);
    assert!(
        before.contains(&vm1.mac_text()),
        "VM2 resolved VM1: {before:?}"
    );

    let observers = [guest(vm2), world(&bed.world)];
    let victim = v4(&vm1.ip4);
    let forgeries = [
        // "VM1 is at VM3's MAC", to everyone, as a reply and as a request.
        ArpFrame::gratuitous(vm3.mac, victim),
        ArpFrame {
            op: 1,
            ..ArpFrame::gratuitous(vm3.mac, victim)
        },
        // The same, told to VM2 alone.
        ArpFrame {
            eth_dst: vm2.mac,
            target_mac: vm2.mac,
            target_ip: v4(&vm2.ip4),
            ..ArpFrame::gratuitous(vm3.mac, victim)
        },
    ];
    let attacker = guest(vm3);
    for forgery in &forgeries {
        attacker.send(&forgery.bytes());
    }
    // VM3 announcing its own address: allowed.
    let own = v4(&vm3.ip4);
    attacker.send(&ArpFrame::gratuitous(vm3.mac, own).bytes());
    let is_control = |f: &Frame| f.arp().is_some_and(|a| a.sender_ip == own);
    let is_forgery = |f: &Frame| {
        f.arp()
            .is_some_and(|a| a.sender_ip == victim && a.sender_mac == vm3.mac)
    };
    reaches_no_one(
        &control,
        vm3,
        &observers,
        "VM3's ARP announcement of its own address",
        is_control,
        "an ARP claiming VM1's address at VM3's MAC",
        SpoofReason::SpoofedArp,
        is_forgery,
    );
    counted(&control, vm3, SpoofReason::SpoofedArp, 3);
    neighbour_kept(&vm2.ns, &vm1.ip4, &before, vm1, vm3);
}

#[test]
fn a_neighbour_advertisement_for_another_vms_address_reaches_no_one() {
    if !root_or_skip("a_neighbour_advertisement_for_another_vms_address_reaches_no_one") {
        return;
    }
    let bed = TestBed::new("ps-na");
    let vms = three(&bed);
    let [vm1, vm2, vm3] = &vms;
    let (_daemon, control) = start(&bed, &open_rules(&vms), &ids(&vms));
    control.expect(
        ping(
            Endpoint::new(&vm2.ns, &vm2.ip6),
            Endpoint::new(&vm1.ns, &vm1.ip6),
        ),
        Accepted,
        "sg-open ingress #1",
    );
    let before = neighbour(&vm2.ns, &vm1.ip6);
    assert!(
        before.contains(&vm1.mac_text()),
        "VM2 resolved VM1: {before:?}"
    );

    let observers = [guest(vm2), world(&bed.world)];
    let attacker = guest(vm3);
    let victims = [v6(&vm1.ip6), vm1.link_local()];
    for victim in victims {
        attacker.send(&neighbour_advert(vm3.mac, vm3.link_local(), victim));
    }
    let own = v6(&vm3.ip6);
    attacker.send(&neighbour_advert(vm3.mac, vm3.link_local(), own));
    let is_control = |f: &Frame| nd_target(f) == Some(own);
    let is_forgery = |f: &Frame| {
        f.src_mac() == Some(vm3.mac) && nd_target(f).is_some_and(|t| victims.contains(&t))
    };
    reaches_no_one(
        &control,
        vm3,
        &observers,
        "VM3's advertisement of its own address",
        is_control,
        "a neighbour advertisement for VM1's address at VM3's MAC",
        SpoofReason::SpoofedNd,
        is_forgery,
    );
    counted(&control, vm3, SpoofReason::SpoofedNd, 2);
    neighbour_kept(&vm2.ns, &vm1.ip6, &before, vm1, vm3);
}

#[test]
fn router_advertisements_and_redirects_from_a_vm_reach_no_one() {
    if !root_or_skip("router_advertisements_and_redirects_from_a_vm_reach_no_one") {
        return;
    }
    let bed = TestBed::new("ps-ra");
    let vms = three(&bed);
    let [_, vm2, vm3] = &vms;
    let (_daemon, control) = start(&bed, &open_rules(&vms), &ids(&vms));
    // VM2 would take addresses from an advertisement that reached it.
    vm2.ns.sysctl("net/ipv6/conf/eth0/accept_ra", "2");
    let observers = [guest(vm2), world(&bed.world)];
    let attacker = guest(vm3);
    let me = vm3.link_local();

    // "I am your router; take an address in 2001:db8:99::/64."
    let mut ra = vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    ra.extend_from_slice(&[3, 4, 64, 0xc0]); // prefix information, on-link, autonomous
    ra.extend_from_slice(&3600u32.to_be_bytes());
    ra.extend_from_slice(&1800u32.to_be_bytes());
    ra.extend_from_slice(&[0; 4]);
    ra.extend_from_slice(&v6("2001:db8:99::").octets());
    attacker.send(&icmpv6_frame(vm3.mac, me, ALL_NODES_MAC, ALL_NODES, ra));
    // "To reach ClientA6, go through me."
    let mut redirect = vec![137, 0, 0, 0, 0, 0, 0, 0];
    redirect.extend_from_slice(&me.octets());
    redirect.extend_from_slice(&v6(CLIENT_A6).octets());
    attacker.send(&icmpv6_frame(
        vm3.mac,
        me,
        vm2.mac,
        vm2.link_local(),
        redirect,
    ));
    // A router solicitation: a VM may ask.
    let all_routers = v6("ff02::2");
    attacker.send(&icmpv6_frame(
        vm3.mac,
        me,
        [0x33, 0x33, 0, 0, 0, 2],
        all_routers,
        vec![133, 0, 0, 0, 0, 0, 0, 0],
    ));
    let is_control = |f: &Frame| f.icmpv6().is_some_and(|(t, _)| t == 133);
    let is_forgery = |f: &Frame| {
        f.src_mac() == Some(vm3.mac) && f.icmpv6().is_some_and(|(t, _)| t == 134 || t == 137)
    };
    reaches_no_one(
        &control,
        vm3,
        &observers,
        "VM3's router solicitation",
        is_control,
        "a router advertisement or redirect",
        SpoofReason::RouterAdvert,
        is_forgery,
    );
    counted(&control, vm3, SpoofReason::RouterAdvert, 2);
    let addrs = vm2.ns.output(&["ip", "-6", "addr", "show", "dev", "eth0"]);
    let addrs = String::from_utf8_lossy(&addrs.stdout);
    assert!(
        !addrs.contains("2001:db8:99:"),
        "VM2 took an address from VM3's advertisement: {addrs}"
    );
}

#[test]
fn dhcp_server_replies_from_a_vm_reach_no_one() {
    if !root_or_skip("dhcp_server_replies_from_a_vm_reach_no_one") {
        return;
    }
    let bed = TestBed::new("ps-dhcps");
    let vms = three(&bed);
    let [_, vm2, vm3] = &vms;
    let (_daemon, control) = start(&bed, &open_rules(&vms), &ids(&vms));
    let observers = [guest(vm2), world(&bed.world)];
    let attacker = guest(vm3);
    let everyone: IpAddr = v4("255.255.255.255").into();
    // A DHCPv4 offer to everyone, a DHCPv6 advertise to VM2.
    attacker.send(&udp_frame(
        vm3.mac,
        vm3.ip(false),
        67,
        BROADCAST,
        everyone,
        68,
        b"dhcp offer from vm3",
    ));
    attacker.send(&udp_frame(
        vm3.mac,
        vm3.link_local().into(),
        547,
        vm2.mac,
        vm2.link_local().into(),
        546,
        b"dhcpv6 advertise from vm3",
    ));
    // A DHCPv4 discover (a VM may be a client), which the world sees;
    // and a datagram VM2's rules admit, which VM2 sees.
    attacker.send(&udp_frame(
        vm3.mac,
        v4("0.0.0.0").into(),
        68,
        BROADCAST,
        everyone,
        67,
        b"dhcp discover from vm3",
    ));
    attacker.send(&udp_frame(
        vm3.mac,
        vm3.ip(false),
        40000,
        vm2.mac,
        vm2.ip(false),
        5000,
        b"udp 5000 from vm3",
    ));
    let is_forgery = |f: &Frame| {
        f.src_mac() == Some(vm3.mac)
            && f.udp()
                .is_some_and(|(s, d, _)| (s, d) == (67, 68) || (s, d) == (547, 546))
    };
    let [vm2_eth0, world_eth0] = &observers;
    let checks: [(&RawSocket, &str, &[u8]); 2] = [
        (
            vm2_eth0,
            "VM3's datagram to VM2's UDP 5000",
            b"udp 5000 from vm3",
        ),
        (world_eth0, "VM3's DHCP discover", b"dhcp discover from vm3"),
    ];
    for (observer, what, marker) in checks {
        let seen = watch(observer, what, |f| f.contains(marker));
        never_arrived(
            &control,
            vm3,
            observer,
            &seen,
            "a DHCP server's reply",
            SpoofReason::DhcpServer,
            is_forgery,
        );
    }
    counted(&control, vm3, SpoofReason::DhcpServer, 2);
}

#[test]
fn other_ethertypes_and_stacked_vlan_tags_reach_no_one() {
    if !root_or_skip("other_ethertypes_and_stacked_vlan_tags_reach_no_one") {
        return;
    }
    let bed = TestBed::new("ps-eth");
    let vms = three(&bed);
    let [_, _, vm3] = &vms;
    let (_daemon, control) = start(&bed, &open_rules(&vms), &ids(&vms));
    let observer = world(&bed.world);
    let attacker = guest(vm3);
    let everyone: IpAddr = v4("255.255.255.255").into();
    let broadcast = |marker: &[u8]| {
        udp_frame(
            vm3.mac,
            vm3.ip(false),
            40000,
            BROADCAST,
            everyone,
            9,
            marker,
        )
    };
    // Tags go after the two MACs.
    let tagged = |marker: &[u8], tags: &[[u8; 4]]| {
        let mut frame = broadcast(marker);
        for tag in tags.iter().rev() {
            frame.splice(12..12, tag.iter().copied());
        }
        frame
    };
    const Q: [u8; 4] = [0x81, 0x00, 0x00, 0x64];
    const AD: [u8; 4] = [0x88, 0xa8, 0x00, 0xc8];
    let mut local_experimental = Vec::new();
    local_experimental.extend_from_slice(&BROADCAST);
    local_experimental.extend_from_slice(&vm3.mac);
    local_experimental.extend_from_slice(&[0x88, 0xb5]);
    local_experimental.extend_from_slice(b"ethertype 88b5 from vm3");
    let forgeries: [(&[u8], Vec<u8>); 3] = [
        (b"ethertype 88b5 from vm3", local_experimental),
        (b"two 802.1Q tags", tagged(b"two 802.1Q tags", &[Q, Q])),
        (b"an 802.1ad tag", tagged(b"an 802.1ad tag", &[AD])),
    ];
    for (_, frame) in &forgeries {
        attacker.send(frame);
    }
    attacker.send(&tagged(b"one 802.1Q tag", &[Q]));
    attacker.send(&broadcast(b"untagged"));
    let seen = watch(&observer, "VM3's untagged broadcast", |f| {
        f.contains(b"untagged")
    });
    for (marker, _) in &forgeries {
        never_arrived(
            &control,
            vm3,
            &observer,
            &seen,
            &String::from_utf8_lossy(marker),
            SpoofReason::Ethertype,
            |f| f.contains(marker),
        );
    }
    assert!(
        seen.iter().any(|f| f.contains(b"one 802.1Q tag")),
        "a frame with one 802.1Q tag is allowed (and sg-open lets it out), but it did not reach \
         the world"
    );
    counted(&control, vm3, SpoofReason::Ethertype, 3);
}
