//! Port security as specified: instances written as rule files, compiled,
//! and a table of frames they send with the verdict each must get, one
//! group of rows per rule of `port_security.rs`'s documentation, genuine
//! and spoofed.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use secgroup_model::{InstanceId, Limits, SourceFile};
use secgroup_policy::{
    AllowedSource, Frame, L4, Payload, Policy, PortSecurity, SpoofReason, compile, ethertype,
    icmpv6, link_local,
};

/// `vm` has a MAC, both families and three kinds of pairs; `nomac` has
/// no MAC and one pair with one; `open` has port security off.
const RULES: &str = r#"{
  "security_groups": [{"id": "sg-any"}],
  "instances": [
    {"id": "vm", "interface": "tap-vm", "mac": "52:54:00:12:34:56",
     "ips": ["198.51.100.5", "2001:db8::5"],
     "allowed_address_pairs": [
       {"ip": "198.51.100.50"},
       {"ip": "198.51.100.64/28", "mac": "00:00:5e:00:01:0a"},
       {"ip": "2001:db8:1::/64"}
     ],
     "security_groups": ["sg-any"]},
    {"id": "nomac", "interface": "tap-nomac", "ips": ["198.51.100.6"],
     "allowed_address_pairs": [{"ip": "198.51.100.70", "mac": "00:00:5e:00:01:0b"}],
     "security_groups": ["sg-any"]},
    {"id": "open", "interface": "tap-open", "mac": "52:54:00:00:00:99", "port_security": false,
     "ips": ["198.51.100.9"], "security_groups": ["sg-any"]}
  ]
}"#;

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// The MAC of `vm`'s /28 pair (a VRRP virtual MAC).
const VRRP: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x0a];
/// The MAC of `nomac`'s pair.
const VRRP_B: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x0b];
const OTHER: [u8; 6] = [0x52, 0x54, 0x00, 0xde, 0xad, 0x01];

fn policy() -> Policy {
    let sources = [SourceFile {
        name: "r.json",
        bytes: RULES.as_bytes(),
    }];
    let rules = secgroup_model::load(&sources, &Limits::default())
        .unwrap_or_else(|e| panic!("the test rules do not load:\n{e}"));
    compile(&rules)
}

fn spec<'p>(policy: &'p Policy, id: &str) -> &'p PortSecurity {
    let id = InstanceId::new(id).unwrap_or_else(|| panic!("bad id {id}"));
    &policy
        .instances
        .get(&id)
        .unwrap_or_else(|| panic!("no instance {id}"))
        .port_security
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn frame(src_mac: [u8; 6], payload: Payload) -> Frame {
    Frame {
        src_mac,
        vlan_tags: 0,
        payload,
    }
}

fn ipv4(src_mac: [u8; 6], src: &str, l4: L4) -> Frame {
    frame(src_mac, Payload::Ipv4 { src: v4(src), l4 })
}

fn ipv6(src_mac: [u8; 6], src: &str, l4: L4) -> Frame {
    frame(src_mac, Payload::Ipv6 { src: v6(src), l4 })
}

fn arp(src_mac: [u8; 6], sender_mac: [u8; 6], sender_ip: &str) -> Frame {
    frame(
        src_mac,
        Payload::Arp {
            sender_mac,
            sender_ip: v4(sender_ip),
        },
    )
}

fn other(src_mac: [u8; 6], ethertype: u16) -> Frame {
    frame(src_mac, Payload::Other { ethertype })
}

fn tagged(tags: u8, frame: Frame) -> Frame {
    Frame {
        vlan_tags: tags,
        ..frame
    }
}

const TCP: L4 = L4::Other { protocol: 6 };

fn udp(src_port: u16, dst_port: u16) -> L4 {
    L4::Udp { src_port, dst_port }
}

fn icmp6(icmp_type: u8) -> L4 {
    L4::Icmpv6 {
        icmp_type,
        target: None,
    }
}

fn nd(icmp_type: u8, target: &str) -> L4 {
    L4::Icmpv6 {
        icmp_type,
        target: Some(v6(target)),
    }
}

/// `vm`'s EUI-64 link-local address.
const LL: &str = "fe80::5054:ff:fe12:3456";

/// (what, instance, frame, verdict): one row a line.
type Case = (&'static str, &'static str, Frame, Result<(), SpoofReason>);

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use SpoofReason::*;
    use icmpv6::*;
    let ok = Ok(());
    vec![
        // --- source MAC -----------------------------------------------------
        ("own MAC and address", "vm", ipv4(MAC, "198.51.100.5", TCP), ok),
        ("foreign MAC", "vm", ipv4(OTHER, "198.51.100.5", TCP), Err(SpoofedMac)),
        ("foreign MAC on ARP", "vm", arp(OTHER, MAC, "198.51.100.5"), Err(SpoofedMac)),
        ("foreign MAC before the ethertype", "vm", other(OTHER, 0x88cc), Err(SpoofedMac)),
        ("a pair's MAC with its address", "vm", ipv4(VRRP, "198.51.100.65", TCP), ok),
        ("a pair's MAC with an own address", "vm", ipv4(VRRP, "198.51.100.5", TCP), Err(SpoofedIp)),
        ("own MAC with a pair that has its own", "vm", ipv4(MAC, "198.51.100.65", TCP), Err(SpoofedIp)),
        ("no MAC: any MAC", "nomac", ipv4(OTHER, "198.51.100.6", TCP), ok),
        ("no MAC: a pair's MAC still binds it", "nomac", ipv4(VRRP_B, "198.51.100.70", TCP), ok),
        ("no MAC: a pair from another MAC", "nomac", ipv4(OTHER, "198.51.100.70", TCP), Err(SpoofedIp)),
        // --- source IP ------------------------------------------------------
        ("foreign IPv4", "vm", ipv4(MAC, "203.0.113.9", TCP), Err(SpoofedIp)),
        ("neighbour's IPv4", "vm", ipv4(MAC, "198.51.100.6", TCP), Err(SpoofedIp)),
        ("pair address (default MAC)", "vm", ipv4(MAC, "198.51.100.50", udp(5000, 53)), ok),
        ("pair CIDR, last address", "vm", ipv4(VRRP, "198.51.100.79", TCP), ok),
        ("just past the pair CIDR", "vm", ipv4(VRRP, "198.51.100.80", TCP), Err(SpoofedIp)),
        ("DHCP discover from 0.0.0.0", "vm", ipv4(MAC, "0.0.0.0", udp(68, 67)), ok),
        ("0.0.0.0 to another port", "vm", ipv4(MAC, "0.0.0.0", udp(68, 68)), Err(SpoofedIp)),
        ("0.0.0.0 over TCP", "vm", ipv4(MAC, "0.0.0.0", TCP), Err(SpoofedIp)),
        ("own IPv6", "vm", ipv6(MAC, "2001:db8::5", TCP), ok),
        ("IPv6 pair CIDR", "vm", ipv6(MAC, "2001:db8:1::99", TCP), ok),
        ("foreign IPv6", "vm", ipv6(MAC, "2001:db8::6", TCP), Err(SpoofedIp)),
        ("EUI-64 link-local", "vm", ipv6(MAC, LL, udp(546, 547)), ok),
        ("another link-local", "vm", ipv6(MAC, "fe80::1", TCP), Err(SpoofedIp)),
        ("no MAC: any fe80::/64", "nomac", ipv6(OTHER, "fe80::1", TCP), ok),
        ("no MAC: outside fe80::/64", "nomac", ipv6(OTHER, "fe80:0:0:1::1", TCP), Err(SpoofedIp)),
        ("no MAC: no global IPv6", "nomac", ipv6(OTHER, "2001:db8::6", TCP), Err(SpoofedIp)),
        ("DAD from ::", "vm", ipv6(MAC, "::", nd(NEIGHBOUR_SOLICITATION, "2001:db8::5")), ok),
        ("MLDv2 report from ::", "vm", ipv6(MAC, "::", icmp6(MLD2_REPORT)), ok),
        ("MLDv1 report from ::", "vm", ipv6(MAC, "::", icmp6(MLD_REPORT)), ok),
        ("router solicitation from ::", "vm", ipv6(MAC, "::", icmp6(ROUTER_SOLICITATION)), Err(SpoofedIp)),
        ("neighbour advertisement from ::", "vm", ipv6(MAC, "::", nd(NEIGHBOUR_ADVERTISEMENT, "2001:db8::5")), Err(SpoofedIp)),
        ("UDP from ::", "vm", ipv6(MAC, "::", udp(546, 547)), Err(SpoofedIp)),
        // --- ARP ------------------------------------------------------------
        ("ARP for an own address", "vm", arp(MAC, MAC, "198.51.100.5"), ok),
        ("ARP probe", "vm", arp(MAC, MAC, "0.0.0.0"), ok),
        ("gratuitous ARP for a pair", "vm", arp(MAC, MAC, "198.51.100.50"), ok),
        ("ARP for a pair with its MAC", "vm", arp(VRRP, VRRP, "198.51.100.66"), ok),
        ("ARP with a foreign sender MAC", "vm", arp(MAC, OTHER, "198.51.100.5"), Err(SpoofedArp)),
        ("ARP with a foreign sender IP", "vm", arp(MAC, MAC, "198.51.100.6"), Err(SpoofedArp)),
        ("ARP for a pair without its MAC", "vm", arp(MAC, MAC, "198.51.100.66"), Err(SpoofedArp)),
        ("ARP probe with a foreign MAC", "vm", arp(MAC, OTHER, "0.0.0.0"), Err(SpoofedArp)),
        ("ARP that is not Ethernet/IPv4", "vm", other(MAC, ethertype::ARP), Err(SpoofedArp)),
        ("no MAC: ARP from any MAC", "nomac", arp(OTHER, OTHER, "198.51.100.6"), ok),
        ("no MAC: ARP for a foreign address", "nomac", arp(OTHER, OTHER, "198.51.100.5"), Err(SpoofedArp)),
        // --- neighbour discovery -------------------------------------------
        ("NA for an own address", "vm", ipv6(MAC, LL, nd(NEIGHBOUR_ADVERTISEMENT, "2001:db8::5")), ok),
        ("NA for the link-local", "vm", ipv6(MAC, LL, nd(NEIGHBOUR_ADVERTISEMENT, LL)), ok),
        ("NA for a pair", "vm", ipv6(MAC, "2001:db8::5", nd(NEIGHBOUR_ADVERTISEMENT, "2001:db8:1::7")), ok),
        ("NA for a foreign address", "vm", ipv6(MAC, LL, nd(NEIGHBOUR_ADVERTISEMENT, "2001:db8::6")), Err(SpoofedNd)),
        ("NA without a target", "vm", ipv6(MAC, LL, icmp6(NEIGHBOUR_ADVERTISEMENT)), Err(SpoofedNd)),
        ("NS for any target", "vm", ipv6(MAC, LL, nd(NEIGHBOUR_SOLICITATION, "2001:db8::6")), ok),
        ("router solicitation", "vm", ipv6(MAC, LL, icmp6(ROUTER_SOLICITATION)), ok),
        ("MLD report", "vm", ipv6(MAC, LL, icmp6(MLD2_REPORT)), ok),
        ("MLD query", "vm", ipv6(MAC, LL, icmp6(MLD_QUERY)), ok),
        ("router advertisement", "vm", ipv6(MAC, LL, icmp6(ROUTER_ADVERTISEMENT)), Err(RouterAdvert)),
        ("redirect", "vm", ipv6(MAC, "2001:db8::5", icmp6(REDIRECT)), Err(RouterAdvert)),
        ("RA from a foreign source", "vm", ipv6(MAC, "fe80::1", icmp6(ROUTER_ADVERTISEMENT)), Err(SpoofedIp)),
        ("echo request", "vm", ipv6(MAC, "2001:db8::5", icmp6(128)), ok),
        // --- DHCP -----------------------------------------------------------
        ("DHCPv4 server", "vm", ipv4(MAC, "198.51.100.5", udp(67, 68)), Err(DhcpServer)),
        ("DHCPv4 renewal", "vm", ipv4(MAC, "198.51.100.5", udp(68, 67)), ok),
        ("DHCPv6 server", "vm", ipv6(MAC, LL, udp(547, 546)), Err(DhcpServer)),
        ("DHCPv6 client", "vm", ipv6(MAC, LL, udp(546, 547)), ok),
        ("DHCPv6 ports in IPv4", "vm", ipv4(MAC, "198.51.100.5", udp(547, 546)), ok),
        ("DHCPv4 ports in IPv6", "vm", ipv6(MAC, "2001:db8::5", udp(67, 68)), ok),
        ("DHCPv4 server from a foreign source", "vm", ipv4(MAC, "203.0.113.1", udp(67, 68)), Err(SpoofedIp)),
        ("ICMPv6 type 134 in IPv4 is no RA", "vm", ipv4(MAC, "198.51.100.5", L4::Other { protocol: 58 }), ok),
        // --- ethertypes and tags --------------------------------------------
        ("LLDP", "vm", other(MAC, 0x88cc), Err(Ethertype)),
        ("802.1ad outer tag", "vm", other(MAC, 0x88a8), Err(Ethertype)),
        ("a stray 802.1Q ethertype", "vm", other(MAC, ethertype::VLAN), Err(Ethertype)),
        ("one 802.1Q tag", "vm", tagged(1, ipv4(MAC, "198.51.100.5", TCP)), ok),
        ("one tag, ARP", "vm", tagged(1, arp(MAC, MAC, "198.51.100.5")), ok),
        ("two 802.1Q tags", "vm", tagged(2, ipv4(MAC, "198.51.100.5", TCP)), Err(Ethertype)),
        ("truncated IPv4 is the parser's", "vm", other(MAC, ethertype::IPV4), ok),
        ("truncated IPv6 is the parser's", "vm", other(MAC, ethertype::IPV6), ok),
        // --- port security off ---------------------------------------------
        ("off: foreign MAC", "open", ipv4(OTHER, "203.0.113.9", TCP), ok),
        ("off: router advertisement", "open", ipv6(OTHER, "fe80::1", icmp6(ROUTER_ADVERTISEMENT)), ok),
        ("off: DHCP server", "open", ipv4(OTHER, "198.51.100.9", udp(67, 68)), ok),
        ("off: foreign ARP", "open", arp(OTHER, OTHER, "203.0.113.9"), ok),
        ("off: LLDP, double tagged", "open", tagged(2, other(OTHER, 0x88cc)), ok),
    ]
}

#[test]
fn what_a_vm_may_send() {
    let cases = cases();
    let policy = policy();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, instance, frame, expected)| {
            let got = spec(&policy, instance).check(frame);
            (got != *expected).then(|| {
                format!("{name} ({instance}): got {got:?}, expected {expected:?}\n  {frame:?}")
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn source(net: &str, mac: Option<[u8; 6]>) -> AllowedSource {
    AllowedSource {
        net: net
            .parse::<IpNet>()
            .unwrap_or_else(|e| panic!("{net}: {e}")),
        mac,
    }
}

#[test]
fn compiled_specs() {
    let policy = policy();
    assert_eq!(
        *spec(&policy, "vm"),
        PortSecurity {
            enabled: true,
            mac: Some(MAC),
            allowed: vec![
                source("198.51.100.5/32", Some(MAC)),
                source("2001:db8::5/128", Some(MAC)),
                source("198.51.100.50/32", Some(MAC)),
                source("198.51.100.64/28", Some(VRRP)),
                source("2001:db8:1::/64", Some(MAC)),
                source("fe80::5054:ff:fe12:3456/128", Some(MAC)),
            ],
        }
    );
    assert_eq!(
        *spec(&policy, "nomac"),
        PortSecurity {
            enabled: true,
            mac: None,
            allowed: vec![
                source("198.51.100.6/32", None),
                source("198.51.100.70/32", Some(VRRP_B)),
                source("fe80::/64", None),
            ],
        }
    );
    assert!(!spec(&policy, "open").enabled);
    let shown: Vec<String> = ["vm", "nomac", "open"]
        .iter()
        .map(|id| spec(&policy, id).to_string())
        .collect();
    assert_eq!(
        shown,
        [
            "mac 52:54:00:12:34:56; sources 198.51.100.5/32, 2001:db8::5/128, 198.51.100.50/32, \
             198.51.100.64/28 (00:00:5e:00:01:0a), 2001:db8:1::/64, fe80::5054:ff:fe12:3456/128",
            "any mac; sources 198.51.100.6/32, 198.51.100.70/32 (00:00:5e:00:01:0b), fe80::/64",
            "off",
        ]
    );
}

#[test]
fn eui64_link_local() {
    let cases = [
        (MAC, "fe80::5054:ff:fe12:3456"),
        (
            [0x00, 0x00, 0x5e, 0x00, 0x01, 0x0a],
            "fe80::200:5eff:fe00:10a",
        ),
        ([0x02; 6], "fe80::2:2ff:fe02:202"),
        (
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
            "fe80::fdff:ffff:feff:fffe",
        ),
    ];
    for (mac, expected) in cases {
        assert_eq!(link_local(mac), v6(expected), "mac {mac:02x?}");
    }
}

#[test]
fn reason_names() {
    let names: Vec<&str> = SpoofReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        names,
        [
            "drop-spoofed-mac",
            "drop-spoofed-ip",
            "drop-spoofed-arp",
            "drop-spoofed-nd",
            "drop-router-advert",
            "drop-dhcp-server",
            "drop-ethertype",
        ]
    );
    assert_eq!(SpoofReason::DhcpServer.to_string(), "drop-dhcp-server");
}
