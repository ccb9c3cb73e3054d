//! Port security in the kernel (BPF_PROG_TEST_RUN on the real XDP
//! program): one table of genuine and spoofed frames per check of
//! `secgroup_policy::PortSecurity::check`, each with the reason the kernel
//! must give, checked against the evaluator too; interfaces without port
//! security; specs replaced, removed and adopted.

#[macro_use]
mod common;

use std::net::{Ipv4Addr, Ipv6Addr};

use aya::maps::{HashMap as BpfHashMap, LpmTrie, Map, MapData};
use common::*;
use secgroup_dataplane::abi::{PsecMacKey, PsecV4KeyData, PsecV6KeyData, Reason};
use secgroup_dataplane::packet::{
    Arp, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, EthFrame, ExtHeader, Fragment,
    Packet, nd, tcp_flags::SYN,
};
use secgroup_dataplane::{Dataplane, Hook, InterfaceBinding, LoadOptions};
use secgroup_model::Direction::Egress;
use secgroup_model::InstanceId;
use secgroup_policy::{Enforcement, LogMode, Policy, PortSecurity, SpoofReason};
use secgroup_testbed::PinDir;

/// The instances of secgroup-policy's port-security tests, with egress
/// open so that what port security passes is accepted by the rules:
/// `vm` has a MAC, both families and three kinds of pairs; `nomac` has no
/// MAC and one pair with one; `open` has port security off.
fn rules(vm_ips: &str) -> String {
    format!(
        r#"{{
  "security_groups": [{{"id": "sg-any", "egress": [{{"action": "accept", "protocol": "all"}}]}}],
  "instances": [
    {{"id": "vm", "interface": "tap-vm", "mac": "52:54:00:12:34:56",
     "ips": [{vm_ips}],
     "allowed_address_pairs": [
       {{"ip": "198.51.100.50"}},
       {{"ip": "198.51.100.64/28", "mac": "00:00:5e:00:01:0a"}},
       {{"ip": "2001:db8:1::/64"}}
     ],
     "security_groups": ["sg-any"]}},
    {{"id": "nomac", "interface": "tap-nomac", "ips": ["198.51.100.6"],
     "allowed_address_pairs": [{{"ip": "198.51.100.70", "mac": "00:00:5e:00:01:0b"}}],
     "security_groups": ["sg-any"]}},
    {{"id": "open", "interface": "tap-open", "mac": "52:54:00:00:00:99", "port_security": false,
     "ips": ["198.51.100.9"], "security_groups": ["sg-any"]}}
  ]
}}"#
    )
}

const VM_IPS: &str = r#""198.51.100.5", "2001:db8::5""#;
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const VRRP: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x0a];
const VRRP_B: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x0b];
const OTHER: [u8; 6] = [0x52, 0x54, 0x00, 0xde, 0xad, 0x01];
/// `vm`'s EUI-64 link-local address.
const LL: &str = "fe80::5054:ff:fe12:3456";

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn spec<'p>(policy: &'p Policy, id: &str) -> &'p PortSecurity {
    &instance(policy, id).port_security
}

fn instance<'p>(policy: &'p Policy, id: &str) -> &'p secgroup_policy::InstancePolicy {
    let id = InstanceId::new(id).unwrap_or_else(|| panic!("bad id {id}"));
    policy
        .instances
        .get(&id)
        .unwrap_or_else(|| panic!("no instance {id}"))
}

/// Binds instance `id` of `policy` to the test interface, with its port
/// security when `enforce`.
fn bind(dp: &mut Dataplane, policy: &Policy, id: &str, enforce: bool) {
    let inst = instance(policy, id);
    dp.apply(&[InterfaceBinding {
        ifindex: TEST_IFINDEX,
        ingress: &inst.ingress,
        egress: &inst.egress,
        keep_established: false,
        instance_uid: 1,
        port_security: enforce.then_some(&inst.port_security),
        log: LogMode::None,
        enforcement: Enforcement::Enforce,
    }])
    .unwrap_or_else(|e| panic!("apply {id}: {}", error_chain(&e)));
}

fn tcp4(mac: [u8; 6], src: &str) -> EthFrame {
    EthFrame::from(Packet::tcp(ip(src), 40000, ip("203.0.113.1"), 443, SYN).with_src_mac(mac))
}

fn udp4(mac: [u8; 6], src: &str, sport: u16, dport: u16) -> EthFrame {
    EthFrame::from(Packet::udp(ip(src), sport, ip("255.255.255.255"), dport).with_src_mac(mac))
}

fn tcp6(mac: [u8; 6], src: &str) -> EthFrame {
    EthFrame::from(Packet::tcp(ip(src), 40000, ip("2001:db8:ff::1"), 443, SYN).with_src_mac(mac))
}

fn udp6(mac: [u8; 6], src: &str, sport: u16, dport: u16) -> EthFrame {
    EthFrame::from(Packet::udp(ip(src), sport, ip("ff02::1:2"), dport).with_src_mac(mac))
}

fn icmp6(mac: [u8; 6], src: &str, icmp_type: u8) -> EthFrame {
    let body = vec![0; 16];
    EthFrame::from(Packet::icmpv6(v6(src), v6("ff02::16"), icmp_type, body).with_src_mac(mac))
}

fn ns(mac: [u8; 6], src: &str, target: &str) -> EthFrame {
    EthFrame::from(Packet::neighbour_solicitation(v6(src), v6(target)).with_src_mac(mac))
}

fn na(mac: [u8; 6], src: &str, target: &str) -> EthFrame {
    EthFrame::from(Packet::neighbour_advertisement(v6(src), v6(target)).with_src_mac(mac))
}

fn arp(mac: [u8; 6], sender_mac: [u8; 6], sender_ip: &str) -> EthFrame {
    EthFrame::arp(Arp::request(sender_mac, v4(sender_ip), v4("198.51.100.1"))).with_src_mac(mac)
}

fn raw(mac: [u8; 6], ethertype: u16, bytes: Vec<u8>) -> EthFrame {
    EthFrame::raw(ethertype, bytes).with_src_mac(mac)
}

fn tagged(tags: &[u16], frame: EthFrame) -> EthFrame {
    frame.with_tags(tags.to_vec())
}

/// (what, instance, frame, the reason the kernel gives it).
type Case = (&'static str, &'static str, EthFrame, Reason);

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Reason::*;
    const Q: u16 = ETH_P_8021Q;
    let later = Fragment { id: 9, offset: 8, more: false };
    let first = Fragment { id: 9, offset: 0, more: true };
    let mut short_na = Packet::neighbour_advertisement(v6(LL), v6(LL)).with_src_mac(MAC);
    short_na.transport = secgroup_dataplane::packet::Transport::Icmp {
        icmp_type: nd::NEIGHBOUR_ADVERTISEMENT, code: 0, body: vec![0; 12],
    };
    let not_ethernet_arp = {
        let mut b = Arp::request(MAC, v4("198.51.100.5"), v4("198.51.100.1")).bytes();
        b[1] = 6; // IEEE 802 hardware
        b
    };
    vec![
        // --- source MAC -----------------------------------------------------
        ("own MAC and address", "vm", tcp4(MAC, "198.51.100.5"), AcceptRule),
        ("foreign MAC", "vm", tcp4(OTHER, "198.51.100.5"), DropSpoofedMac),
        ("foreign MAC on ARP", "vm", arp(OTHER, MAC, "198.51.100.5"), DropSpoofedMac),
        ("foreign MAC before the ethertype", "vm", raw(OTHER, 0x88cc, vec![0; 46]), DropSpoofedMac),
        ("foreign MAC on a truncated IPv4 header", "vm", raw(OTHER, ETH_P_IP, vec![0x45; 10]), DropSpoofedMac),
        ("a pair's MAC with its address", "vm", tcp4(VRRP, "198.51.100.65"), AcceptRule),
        ("a pair's MAC with an own address", "vm", tcp4(VRRP, "198.51.100.5"), DropSpoofedIp),
        ("own MAC with a pair that has its own", "vm", tcp4(MAC, "198.51.100.65"), DropSpoofedIp),
        ("no MAC: any MAC", "nomac", tcp4(OTHER, "198.51.100.6"), AcceptRule),
        ("no MAC: a pair's MAC still binds it", "nomac", tcp4(VRRP_B, "198.51.100.70"), AcceptRule),
        ("no MAC: a pair from another MAC", "nomac", tcp4(OTHER, "198.51.100.70"), DropSpoofedIp),
        // --- source IP ------------------------------------------------------
        ("foreign IPv4", "vm", tcp4(MAC, "203.0.113.9"), DropSpoofedIp),
        ("neighbour's IPv4", "vm", tcp4(MAC, "198.51.100.6"), DropSpoofedIp),
        ("pair address (default MAC)", "vm", udp4(MAC, "198.51.100.50", 5000, 53), AcceptRule),
        ("pair CIDR, last address", "vm", tcp4(VRRP, "198.51.100.79"), AcceptRule),
        ("just past the pair CIDR", "vm", tcp4(VRRP, "198.51.100.80"), DropSpoofedIp),
        ("DHCP discover from 0.0.0.0", "vm", EthFrame::from(Packet::dhcp4_client(v4("0.0.0.0")).with_src_mac(MAC)), AcceptImplicit),
        ("0.0.0.0 to another port", "vm", udp4(MAC, "0.0.0.0", 68, 68), DropSpoofedIp),
        ("0.0.0.0 over TCP", "vm", tcp4(MAC, "0.0.0.0"), DropSpoofedIp),
        ("0.0.0.0 in a later fragment", "vm", EthFrame::from(Packet::dhcp4_client(v4("0.0.0.0")).with_src_mac(MAC).with_fragment(later)), DropSpoofedIp),
        ("own IPv6", "vm", tcp6(MAC, "2001:db8::5"), AcceptRule),
        ("IPv6 pair CIDR", "vm", tcp6(MAC, "2001:db8:1::99"), AcceptRule),
        ("foreign IPv6", "vm", tcp6(MAC, "2001:db8::6"), DropSpoofedIp),
        ("EUI-64 link-local", "vm", udp6(MAC, LL, 546, 547), AcceptImplicit),
        ("another link-local", "vm", tcp6(MAC, "fe80::1"), DropSpoofedIp),
        ("no MAC: any fe80::/64", "nomac", tcp6(OTHER, "fe80::1"), AcceptRule),
        ("no MAC: outside fe80::/64", "nomac", tcp6(OTHER, "fe80:0:0:1::1"), DropSpoofedIp),
        ("no MAC: no global IPv6", "nomac", tcp6(OTHER, "2001:db8::6"), DropSpoofedIp),
        ("DAD from ::", "vm", ns(MAC, "::", "2001:db8::5"), AcceptImplicit),
        ("MLDv2 report from ::", "vm", icmp6(MAC, "::", 143), AcceptImplicit),
        ("MLDv1 report from ::", "vm", icmp6(MAC, "::", 131), AcceptImplicit),
        ("MLD done from ::", "vm", icmp6(MAC, "::", 132), AcceptImplicit),
        ("router solicitation from ::", "vm", icmp6(MAC, "::", nd::ROUTER_SOLICITATION), DropSpoofedIp),
        ("neighbour advertisement from ::", "vm", na(MAC, "::", "2001:db8::5"), DropSpoofedIp),
        ("UDP from ::", "vm", udp6(MAC, "::", 546, 547), DropSpoofedIp),
        // --- ARP ------------------------------------------------------------
        ("ARP for an own address", "vm", arp(MAC, MAC, "198.51.100.5"), PassNonIp),
        ("ARP reply for an own address", "vm", EthFrame::arp(Arp::reply(MAC, v4("198.51.100.5"), v4("198.51.100.1"))), PassNonIp),
        ("ARP probe", "vm", arp(MAC, MAC, "0.0.0.0"), PassNonIp),
        ("gratuitous ARP for a pair", "vm", arp(MAC, MAC, "198.51.100.50"), PassNonIp),
        ("ARP for a pair with its MAC", "vm", arp(VRRP, VRRP, "198.51.100.66"), PassNonIp),
        ("ARP with a foreign sender MAC", "vm", arp(MAC, OTHER, "198.51.100.5"), DropSpoofedArp),
        ("ARP with a foreign sender IP", "vm", arp(MAC, MAC, "198.51.100.6"), DropSpoofedArp),
        ("ARP for a pair without its MAC", "vm", arp(MAC, MAC, "198.51.100.66"), DropSpoofedArp),
        ("ARP probe with a foreign MAC", "vm", arp(MAC, OTHER, "0.0.0.0"), DropSpoofedArp),
        ("ARP that is not Ethernet/IPv4", "vm", raw(MAC, ETH_P_ARP, not_ethernet_arp), DropSpoofedArp),
        ("truncated ARP", "vm", raw(MAC, ETH_P_ARP, vec![0, 1, 8, 0, 6, 4, 0, 1]), DropSpoofedArp),
        ("no MAC: ARP from any MAC", "nomac", arp(OTHER, OTHER, "198.51.100.6"), PassNonIp),
        ("no MAC: ARP for a foreign address", "nomac", arp(OTHER, OTHER, "198.51.100.5"), DropSpoofedArp),
        // --- neighbour discovery -------------------------------------------
        ("NA for an own address", "vm", na(MAC, LL, "2001:db8::5"), AcceptImplicit),
        ("NA for the link-local", "vm", na(MAC, LL, LL), AcceptImplicit),
        ("NA for a pair", "vm", na(MAC, "2001:db8::5", "2001:db8:1::7"), AcceptImplicit),
        ("NA for a foreign address", "vm", na(MAC, LL, "2001:db8::6"), DropSpoofedNd),
        ("NA too short for a target", "vm", EthFrame::from(short_na), DropSpoofedNd),
        ("NA behind a hop-by-hop header", "vm", EthFrame::from(Packet::neighbour_advertisement(v6(LL), v6("2001:db8::6")).with_src_mac(MAC).with_ipv6_ext(vec![ExtHeader::HopByHop])), DropSpoofedNd),
        ("NS for any target", "vm", ns(MAC, LL, "2001:db8::6"), AcceptImplicit),
        ("router solicitation", "vm", icmp6(MAC, LL, nd::ROUTER_SOLICITATION), AcceptImplicit),
        ("MLD report", "vm", icmp6(MAC, LL, 143), AcceptImplicit),
        ("MLD query", "vm", icmp6(MAC, LL, 130), AcceptImplicit),
        ("router advertisement", "vm", EthFrame::from(Packet::router_advertisement(v6(LL)).with_src_mac(MAC)), DropRouterAdvert),
        ("redirect", "vm", EthFrame::from(Packet::redirect(v6("2001:db8::5"), v6("2001:db8::9"), v6(LL), v6("2001:db8:ff::1")).with_src_mac(MAC)), DropRouterAdvert),
        ("RA from a foreign source", "vm", EthFrame::from(Packet::router_advertisement(v6("fe80::1")).with_src_mac(MAC)), DropSpoofedIp),
        ("echo request", "vm", EthFrame::from(Packet::echo(ip("2001:db8::5"), ip("2001:db8:ff::1"), true, 7).with_src_mac(MAC)), AcceptRule),
        // --- DHCP -----------------------------------------------------------
        ("DHCPv4 server", "vm", EthFrame::from(Packet::dhcp4_server(v4("198.51.100.5")).with_src_mac(MAC)), DropDhcpServer),
        ("DHCPv4 server, first fragment", "vm", EthFrame::from(Packet::dhcp4_server(v4("198.51.100.5")).with_src_mac(MAC).with_fragment(first)), DropDhcpServer),
        ("DHCPv4 renewal", "vm", EthFrame::from(Packet::dhcp4_client(v4("198.51.100.5")).with_src_mac(MAC)), AcceptImplicit),
        ("DHCPv6 server", "vm", EthFrame::from(Packet::dhcp6_server(v6(LL), v6("fe80::1")).with_src_mac(MAC)), DropDhcpServer),
        ("DHCPv6 client", "vm", EthFrame::from(Packet::dhcp6_client(v6(LL)).with_src_mac(MAC)), AcceptImplicit),
        ("DHCPv6 ports in IPv4", "vm", udp4(MAC, "198.51.100.5", 547, 546), AcceptRule),
        ("DHCPv4 ports in IPv6", "vm", udp6(MAC, "2001:db8::5", 67, 68), AcceptRule),
        ("DHCPv4 server from a foreign source", "vm", EthFrame::from(Packet::dhcp4_server(v4("203.0.113.1")).with_src_mac(MAC)), DropSpoofedIp),
        ("ICMPv6 in IPv4 is no RA", "vm", EthFrame::from(Packet::other(ip("198.51.100.5"), ip("203.0.113.1"), 58).with_src_mac(MAC)), AcceptRule),
        // --- ethertypes and tags --------------------------------------------
        ("LLDP", "vm", raw(MAC, 0x88cc, vec![0; 46]), DropEthertype),
        ("802.1ad outer tag", "vm", tagged(&[ETH_P_8021AD], tcp4(MAC, "198.51.100.5")), DropEthertype),
        ("one 802.1Q tag", "vm", tagged(&[Q], tcp4(MAC, "198.51.100.5")), AcceptRule),
        ("one tag, ARP", "vm", tagged(&[Q], arp(MAC, MAC, "198.51.100.5")), PassNonIp),
        ("one tag, spoofed source", "vm", tagged(&[Q], tcp4(MAC, "203.0.113.9")), DropSpoofedIp),
        ("two 802.1Q tags", "vm", tagged(&[Q, Q], tcp4(MAC, "198.51.100.5")), DropEthertype),
        ("802.1Q then 802.1ad", "vm", tagged(&[Q, ETH_P_8021AD], tcp4(MAC, "198.51.100.5")), DropEthertype),
        ("truncated IPv4 is the parser's", "vm", raw(MAC, ETH_P_IP, vec![0x45; 10]), DropMalformed),
        ("truncated IPv6 is the parser's", "vm", raw(MAC, ETH_P_IPV6, vec![0x60; 20]), DropMalformed),
        // --- port security off ---------------------------------------------
        ("off: foreign MAC and source", "open", tcp4(OTHER, "203.0.113.9"), AcceptRule),
        ("off: router advertisement", "open", EthFrame::from(Packet::router_advertisement(v6("fe80::1")).with_src_mac(OTHER)), AcceptImplicit),
        ("off: DHCP server", "open", EthFrame::from(Packet::dhcp4_server(v4("198.51.100.9"))), AcceptRule),
        ("off: foreign ARP", "open", arp(OTHER, OTHER, "203.0.113.9"), PassNonIp),
        ("off: LLDP", "open", raw(OTHER, 0x88cc, vec![0; 46]), PassNonIp),
        ("off: double tagged", "open", tagged(&[Q, Q], raw(OTHER, 0x88cc, vec![0; 46])), DropUnsupported),
    ]
}

#[test]
fn what_a_vm_may_send_in_the_kernel() {
    kernel_test!();
    let policy = compile(&rules(VM_IPS));
    let mut dp = load_dataplane();
    let mut failures = Vec::new();
    let mut spoofed = [0u64; Reason::COUNT];
    let mut bound = "";
    let mut rows = 0u64;
    for (what, id, frame, want) in cases() {
        if id != bound {
            bind(&mut dp, &policy, id, true);
            bound = id;
        }
        // Each row is a new flow: conntrack must not decide a repeat.
        dp.flush_conntrack(None)
            .unwrap_or_else(|e| panic!("flush: {}", error_chain(&e)));
        let bytes = frame.bytes();
        let outcome = run_frame(&dp, Egress, &bytes);
        let got = reason(&outcome);
        // The same frame as real traffic (no report request): only this
        // run counts, with the same verdict (a repeat of an accepted flow
        // is accepted by conntrack; every drop here is stateless).
        let real = dp
            .test_runner()
            .run_unrequested(Hook::Xdp, &bytes, None, &[])
            .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN: {}", error_chain(&e)));
        if real.passed != outcome.passed {
            failures.push(format!(
                "{what} ({id}): unrequested run passed {}, requested {}",
                real.passed, outcome.passed
            ));
        }
        rows += 1;
        let spec = spec(&policy, id).check(&frame.to_policy());
        let spec_agrees = match spec {
            Err(r) => Reason::from(r) == want,
            Ok(()) => want.spoof().is_none(),
        };
        if got != want || outcome.passed != got.is_accept() || !spec_agrees {
            failures.push(format!(
                "{what} ({id}): kernel {got} (passed {}), expected {want}, evaluator {spec:?}",
                outcome.passed
            ));
        }
        if got.spoof().is_some() {
            spoofed[got as usize] += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every drop is counted under its own reason, once: by the unrequested
    // run; the requested one (a trace's) counts nowhere.
    let stats = dp
        .interface_stats(TEST_IFINDEX, Egress)
        .unwrap_or_else(|e| panic!("stats: {}", error_chain(&e)));
    assert_eq!(
        stats.packets.iter().sum::<u64>(),
        rows,
        "one count per row: {stats:?}"
    );
    for reason in Reason::ALL.into_iter().filter(|r| r.spoof().is_some()) {
        assert!(spoofed[reason as usize] > 0, "no case for {reason}");
        assert_eq!(
            stats.packets[reason as usize], spoofed[reason as usize],
            "{reason} counted"
        );
    }
}

#[test]
fn without_port_security_foreign_sources_go_to_the_rules() {
    kernel_test!();
    let policy = compile(&rules(VM_IPS));
    let mut dp = load_dataplane();
    bind(&mut dp, &policy, "vm", false);
    for (what, frame, want) in [
        (
            "foreign MAC",
            tcp4(OTHER, "198.51.100.5"),
            Reason::AcceptRule,
        ),
        (
            "foreign source",
            tcp4(MAC, "203.0.113.9"),
            Reason::AcceptRule,
        ),
        (
            "router advertisement",
            icmp6(MAC, "fe80::1", nd::ROUTER_ADVERTISEMENT),
            Reason::AcceptImplicit,
        ),
        ("LLDP", raw(MAC, 0x88cc, vec![0; 46]), Reason::PassNonIp),
        (
            "foreign ARP",
            arp(OTHER, OTHER, "203.0.113.9"),
            Reason::PassNonIp,
        ),
    ] {
        expect(&run_frame(&dp, Egress, &frame.bytes()), want, None, what);
    }
    let iface = dp
        .interface(TEST_IFINDEX)
        .unwrap_or_else(|| panic!("no entry"));
    assert_eq!((iface.flags, iface.psec_set), (0, 0), "nothing to check");
    assert_eq!(dp.psec_set_count(), 0);
}

fn pinned_count(pins: &PinDir) -> (usize, usize, usize) {
    let open = |name: &str| {
        let data = MapData::from_pin(pins.path.join(name))
            .unwrap_or_else(|e| panic!("opening pinned {name}: {e}"));
        Map::from_map_data(data).unwrap_or_else(|e| panic!("typing {name}: {e}"))
    };
    let v4: LpmTrie<MapData, PsecV4KeyData, u32> = open("sg_psec_v4")
        .try_into()
        .unwrap_or_else(|e| panic!("sg_psec_v4: {e}"));
    let v6: LpmTrie<MapData, PsecV6KeyData, u32> = open("sg_psec_v6")
        .try_into()
        .unwrap_or_else(|e| panic!("sg_psec_v6: {e}"));
    let macs: BpfHashMap<MapData, PsecMacKey, u32> = open("sg_psec_macs")
        .try_into()
        .unwrap_or_else(|e| panic!("sg_psec_macs: {e}"));
    (v4.keys().count(), v6.keys().count(), macs.keys().count())
}

/// A changed spec is a new set the interface switches to in one update;
/// the old one is freed, unchanged specs are kept, unbinding frees all,
/// and a restarted process enforces the adopted set until it rewrites it.
#[test]
fn specs_are_replaced_whole_freed_and_adopted() {
    kernel_test!();
    let pins = PinDir::new("psec");
    let options = LoadOptions {
        pin_dir: Some(pins.path.clone()),
        ..LoadOptions::default()
    };
    let load = || {
        Dataplane::load(&options)
            .unwrap_or_else(|e| panic!("load: {}", error_chain(&e)))
            .0
    };
    let old = compile(&rules(VM_IPS));
    let moved = compile(&rules(r#""198.51.100.7", "2001:db8::5""#));
    // Port security's part of the verdict (conntrack accepts repeats).
    let verdict =
        |dp: &Dataplane, src: &str| reason(&run_frame(dp, Egress, &tcp4(MAC, src).bytes())).spoof();
    let spoofed = Some(SpoofReason::SpoofedIp);

    let mut dp = load();
    bind(&mut dp, &old, "vm", true);
    // vm's set: 3 IPv4 and 3 IPv6 sources, one MAC besides its own.
    assert_eq!(pinned_count(&pins), (3, 3, 1));
    assert_eq!(verdict(&dp, "198.51.100.5"), None);

    let inst = instance(&moved, "vm");
    let report = dp
        .apply(&[InterfaceBinding {
            ifindex: TEST_IFINDEX,
            ingress: &inst.ingress,
            egress: &inst.egress,
            keep_established: false,
            instance_uid: 1,
            port_security: Some(&inst.port_security),
            log: LogMode::None,
            enforcement: Enforcement::Enforce,
        }])
        .unwrap_or_else(|e| panic!("apply: {}", error_chain(&e)));
    assert_eq!((report.psec_sets_written, report.psec_sets_freed), (1, 1));
    assert_eq!(report.tables_written, 0, "the rules did not change");
    assert_eq!(verdict(&dp, "198.51.100.5"), spoofed);
    assert_eq!(verdict(&dp, "198.51.100.7"), None);
    assert_eq!(pinned_count(&pins), (3, 3, 1), "the old set is gone");
    let set = dp.interface(TEST_IFINDEX).map(|i| i.psec_set).unwrap_or(0);
    assert_eq!(dp.port_security_set(set), Some(&inst.port_security));

    let again = dp
        .apply(&[InterfaceBinding {
            keep_established: true,
            ifindex: TEST_IFINDEX,
            ingress: &inst.ingress,
            egress: &inst.egress,
            instance_uid: 1,
            port_security: Some(&inst.port_security),
            log: LogMode::None,
            enforcement: Enforcement::Enforce,
        }])
        .unwrap_or_else(|e| panic!("apply: {}", error_chain(&e)));
    assert_eq!((again.psec_sets_written, again.psec_sets_freed), (0, 0));

    // A restart: the adopted entry still enforces the adopted set.
    drop(dp);
    let mut dp = load();
    assert_eq!(verdict(&dp, "198.51.100.5"), spoofed);
    assert_eq!(verdict(&dp, "198.51.100.7"), None);
    bind(&mut dp, &moved, "vm", true);
    assert_eq!(verdict(&dp, "198.51.100.7"), None);
    assert_eq!(pinned_count(&pins), (3, 3, 1), "the adopted set is swept");

    dp.apply(&[])
        .unwrap_or_else(|e| panic!("apply: {}", error_chain(&e)));
    assert_eq!(pinned_count(&pins), (0, 0, 0), "unbinding frees the set");
    assert_eq!(dp.psec_set_count(), 0);
    drop(dp);
    secgroup_dataplane::uninstall(&pins.path)
        .unwrap_or_else(|e| panic!("uninstall: {}", error_chain(&e)));
}
