//! Port security: what a VM on this host may send at all, judged on the
//! frame before its egress rules see the packet. [`PortSecurity`] is one
//! instance's compiled spec, [`PortSecurity::check`] the reference
//! evaluator over a description of one frame ([`Frame`]): the
//! specification the XDP program is tested against.
//!
//! # What a port-secured VM may send
//!
//! Checked in this order; the first check that fails names the reason:
//!
//! 1. **Source MAC** ([`SpoofReason::SpoofedMac`]): when the instance has a
//!    `mac`, every frame's source MAC is it or the MAC of one of its
//!    address pairs. Without a `mac`, any.
//! 2. **Ethertype** ([`SpoofReason::Ethertype`]): at most one 802.1Q tag,
//!    then IPv4, IPv6 or ARP.
//! 3. **ARP** ([`SpoofReason::SpoofedArp`]): an Ethernet/IPv4 ARP packet
//!    (any operation) whose sender IP is an allowed source for its sender
//!    MAC (see below), or `0.0.0.0` (a probe) with an allowed MAC. An ARP
//!    frame of another hardware or protocol type, or too short, is dropped.
//! 4. **Source IP** ([`SpoofReason::SpoofedIp`]): the source is an allowed
//!    source for the frame's source MAC, or the unspecified address where
//!    the protocol needs it: `0.0.0.0` for a DHCPv4 client (UDP 68→67),
//!    `::` for duplicate address detection (ICMPv6 neighbour solicitation,
//!    135) and for MLD reports and dones (131, 132, 143), which RFC 3590
//!    sends from `::` while no link-local address is usable yet.
//! 5. **Router messages** ([`SpoofReason::RouterAdvert`]): ICMPv6 router
//!    advertisements (134) and redirects (137). Router solicitations (133),
//!    neighbour solicitations (135) and MLD pass.
//! 6. **Neighbour advertisements** ([`SpoofReason::SpoofedNd`]): an ICMPv6
//!    neighbour advertisement (136) whose target is an allowed source for
//!    the frame's source MAC; one too short to hold a target is dropped.
//! 7. **DHCP servers** ([`SpoofReason::DhcpServer`]): UDP 67→68 (IPv4) and
//!    547→546 (IPv6).
//!
//! An **allowed source** for a MAC is an address in one of
//! [`PortSecurity::allowed`] whose MAC is that MAC or unset: the
//! instance's `ips` (each with the instance's `mac`), its allowed address
//! pairs (each with its own `mac`, else the instance's) and its IPv6
//! link-local address: the EUI-64 one of its `mac` ([`link_local`]), or
//! any of `fe80::/64` when it has none.
//!
//! ICMPv6 and DHCPv6 are recognised in IPv6 packets only and DHCPv4 in
//! IPv4 packets only, as by the implicit allows. A packet whose transport
//! header port security does not read (TCP, a later fragment) is judged on
//! its addresses alone ([`L4::Other`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv6Net};
use secgroup_model::Instance;

/// The ethertypes port security knows.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86dd;
}

/// The ICMPv6 types port security looks at.
pub mod icmpv6 {
    pub const MLD_QUERY: u8 = 130;
    pub const MLD_REPORT: u8 = 131;
    pub const MLD_DONE: u8 = 132;
    pub const ROUTER_SOLICITATION: u8 = 133;
    pub const ROUTER_ADVERTISEMENT: u8 = 134;
    pub const NEIGHBOUR_SOLICITATION: u8 = 135;
    pub const NEIGHBOUR_ADVERTISEMENT: u8 = 136;
    pub const REDIRECT: u8 = 137;
    pub const MLD2_REPORT: u8 = 143;
}

/// Why port security dropped a frame. The data plane counts each under
/// its own reason; [`SpoofReason::as_str`] is that reason's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpoofReason {
    /// The source MAC is not the instance's (nor an address pair's).
    SpoofedMac,
    /// The IPv4 or IPv6 source is not one the instance may use.
    SpoofedIp,
    /// An ARP packet with a foreign sender, or not Ethernet/IPv4 ARP.
    SpoofedArp,
    /// A neighbour advertisement for an address that is not the instance's.
    SpoofedNd,
    /// An ICMPv6 router advertisement or redirect: a VM is no router.
    RouterAdvert,
    /// A DHCPv4 or DHCPv6 server's answer: a VM is no DHCP server.
    DhcpServer,
    /// Neither IPv4, IPv6 nor ARP, or more than one VLAN tag.
    Ethertype,
}

impl SpoofReason {
    pub const ALL: [SpoofReason; 7] = [
        SpoofReason::SpoofedMac,
        SpoofReason::SpoofedIp,
        SpoofReason::SpoofedArp,
        SpoofReason::SpoofedNd,
        SpoofReason::RouterAdvert,
        SpoofReason::DhcpServer,
        SpoofReason::Ethertype,
    ];

    /// The drop reason's name, as counters and logs print it.
    pub fn as_str(self) -> &'static str {
        match self {
            SpoofReason::SpoofedMac => "drop-spoofed-mac",
            SpoofReason::SpoofedIp => "drop-spoofed-ip",
            SpoofReason::SpoofedArp => "drop-spoofed-arp",
            SpoofReason::SpoofedNd => "drop-spoofed-nd",
            SpoofReason::RouterAdvert => "drop-router-advert",
            SpoofReason::DhcpServer => "drop-dhcp-server",
            SpoofReason::Ethertype => "drop-ethertype",
        }
    }
}

impl fmt::Display for SpoofReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one frame a VM sends looks like to port security: the fields a
/// test puts into a raw frame, and the ones the program reads back out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frame {
    pub src_mac: [u8; 6],
    /// How many 802.1Q tags (ethertype 0x8100) precede the payload's
    /// ethertype. An 802.1ad tag (0x88a8) is an other ethertype.
    pub vlan_tags: u8,
    pub payload: Payload,
}

/// What follows the Ethernet header (and its tags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Payload {
    Ipv4 {
        src: Ipv4Addr,
        l4: L4,
    },
    /// `l4` is the header after any extension headers.
    Ipv6 {
        src: Ipv6Addr,
        l4: L4,
    },
    /// An Ethernet/IPv4 ARP packet (hardware type 1, protocol 0x0800,
    /// lengths 6 and 4), request or reply.
    Arp {
        sender_mac: [u8; 6],
        sender_ip: Ipv4Addr,
    },
    /// Anything else. With ethertype 0x0806: ARP that is not
    /// Ethernet/IPv4 or is too short. With 0x0800 or 0x86dd: an IP header
    /// too short to read, which port security leaves to the parser's own
    /// drop (it passes here).
    Other {
        ethertype: u16,
    },
}

/// The transport facts port security needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4 {
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    /// ICMPv6 (in IPv6 only; in IPv4 this is [`L4::Other`] with 58).
    /// `target` is a neighbour solicitation's or advertisement's target
    /// address, `None` when the message is too short to hold one (and for
    /// other types, which have none).
    Icmpv6 {
        icmp_type: u8,
        target: Option<Ipv6Addr>,
    },
    /// Any other protocol, or a header port security does not read (a
    /// later fragment).
    Other {
        protocol: u8,
    },
}

/// A source address block a VM may use, and the MAC it must send it from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AllowedSource {
    pub net: IpNet,
    /// `None`: any MAC (only when neither the instance nor the pair names
    /// one).
    pub mac: Option<[u8; 6]>,
}

impl AllowedSource {
    pub fn allows(&self, ip: IpAddr, mac: [u8; 6]) -> bool {
        self.net.contains(&ip) && self.mac.is_none_or(|m| m == mac)
    }
}

/// One instance's port security, compiled. See the module documentation
/// for what [`PortSecurity::check`] allows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortSecurity {
    /// `false` for `"port_security": false`: nothing is checked (the
    /// instance's rules still are).
    pub enabled: bool,
    /// The instance's own MAC; `None`: any source MAC.
    pub mac: Option<[u8; 6]>,
    /// Its `ips` as /32 or /128 with its MAC, then its address pairs, then
    /// its link-local address (or `fe80::/64` without a MAC); exact repeats
    /// left out.
    pub allowed: Vec<AllowedSource>,
}

impl PortSecurity {
    /// The spec of a validated instance. Computed for every instance;
    /// only those with an interface on this host are enforced.
    pub fn for_instance(instance: &Instance) -> PortSecurity {
        let mac = instance.mac.map(|m| m.0);
        let own = instance.ips.iter().map(|&ip| AllowedSource {
            net: IpNet::from(ip),
            mac,
        });
        let pairs = instance
            .allowed_address_pairs
            .iter()
            .map(|pair| AllowedSource {
                net: pair.net,
                mac: pair.mac.map(|m| m.0).or(mac),
            });
        let link_local = AllowedSource {
            net: match mac {
                Some(mac) => IpNet::from(IpAddr::V6(link_local(mac))),
                None => IpNet::V6(Ipv6Net::new_assert(
                    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
                    64,
                )),
            },
            mac,
        };
        let mut allowed: Vec<AllowedSource> = Vec::new();
        for source in own.chain(pairs).chain([link_local]) {
            if !allowed.contains(&source) {
                allowed.push(source);
            }
        }
        PortSecurity {
            enabled: instance.port_security,
            mac,
            allowed,
        }
    }

    /// Whether a frame may carry `mac` as its source (or an ARP probe as
    /// its sender).
    pub fn allows_mac(&self, mac: [u8; 6]) -> bool {
        self.mac.is_none_or(|own| own == mac) || self.allowed.iter().any(|a| a.mac == Some(mac))
    }

    /// Whether `ip` is an allowed source when sent from `mac`.
    pub fn allows_source(&self, ip: IpAddr, mac: [u8; 6]) -> bool {
        self.allowed.iter().any(|a| a.allows(ip, mac))
    }

    /// The reference evaluator: `Ok` when the VM may send `frame` (its
    /// egress rules then judge it), else why not.
    pub fn check(&self, frame: &Frame) -> Result<(), SpoofReason> {
        if !self.enabled {
            return Ok(());
        }
        if !self.allows_mac(frame.src_mac) {
            return Err(SpoofReason::SpoofedMac);
        }
        if frame.vlan_tags > 1 {
            return Err(SpoofReason::Ethertype);
        }
        match frame.payload {
            Payload::Arp {
                sender_mac,
                sender_ip,
            } => {
                let ok = if sender_ip.is_unspecified() {
                    self.allows_mac(sender_mac)
                } else {
                    self.allows_source(IpAddr::V4(sender_ip), sender_mac)
                };
                ok.then_some(()).ok_or(SpoofReason::SpoofedArp)
            }
            Payload::Ipv4 { src, l4 } => {
                let dhcp_client = matches!(
                    l4,
                    L4::Udp {
                        src_port: 68,
                        dst_port: 67
                    }
                );
                let unspecified_ok = src.is_unspecified() && dhcp_client;
                if !unspecified_ok && !self.allows_source(IpAddr::V4(src), frame.src_mac) {
                    return Err(SpoofReason::SpoofedIp);
                }
                match l4 {
                    L4::Udp {
                        src_port: 67,
                        dst_port: 68,
                    } => Err(SpoofReason::DhcpServer),
                    _ => Ok(()),
                }
            }
            Payload::Ipv6 { src, l4 } => {
                let unspecified_ok = src.is_unspecified()
                    && matches!(
                        l4,
                        L4::Icmpv6 {
                            icmp_type: icmpv6::NEIGHBOUR_SOLICITATION
                                | icmpv6::MLD_REPORT
                                | icmpv6::MLD_DONE
                                | icmpv6::MLD2_REPORT,
                            ..
                        }
                    );
                if !unspecified_ok && !self.allows_source(IpAddr::V6(src), frame.src_mac) {
                    return Err(SpoofReason::SpoofedIp);
                }
                match l4 {
                    L4::Icmpv6 {
                        icmp_type: icmpv6::ROUTER_ADVERTISEMENT | icmpv6::REDIRECT,
                        ..
                    } => Err(SpoofReason::RouterAdvert),
                    L4::Icmpv6 {
                        icmp_type: icmpv6::NEIGHBOUR_ADVERTISEMENT,
                        target,
                    } => target
                        .filter(|&t| self.allows_source(IpAddr::V6(t), frame.src_mac))
                        .map(|_| ())
                        .ok_or(SpoofReason::SpoofedNd),
                    L4::Udp {
                        src_port: 547,
                        dst_port: 546,
                    } => Err(SpoofReason::DhcpServer),
                    _ => Ok(()),
                }
            }
            Payload::Other { ethertype } => match ethertype {
                ethertype::ARP => Err(SpoofReason::SpoofedArp),
                ethertype::IPV4 | ethertype::IPV6 => Ok(()),
                _ => Err(SpoofReason::Ethertype),
            },
        }
    }
}

/// The EUI-64 link-local address of `mac` (RFC 4291 appendix A):
/// `fe80::` + the MAC with `ff:fe` in the middle and the universal/local
/// bit flipped. `52:54:00:12:34:56` → `fe80::5054:ff:fe12:3456`.
pub fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let [a, b, c, d, e, f] = mac;
    let word = |hi: u8, lo: u8| u16::from_be_bytes([hi, lo]);
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        word(a ^ 0x02, b),
        word(c, 0xff),
        word(0xfe, d),
        word(e, f),
    )
}

impl fmt::Display for PortSecurity {
    /// `off`, or `mac 52:54:00:12:34:56; sources 198.51.100.5/32,
    /// 198.51.100.64/28 (00:00:5e:00:01:0a), fe80::5054:ff:fe12:3456/128`:
    /// a source's MAC is shown only where it differs from the instance's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.enabled {
            return f.write_str("off");
        }
        let mac_text = |mac: [u8; 6]| secgroup_model::MacAddr(mac).to_string();
        match self.mac {
            Some(mac) => write!(f, "mac {}", mac_text(mac))?,
            None => f.write_str("any mac")?,
        }
        f.write_str("; sources ")?;
        for (i, source) in self.allowed.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", source.net)?;
            if let Some(mac) = source.mac.filter(|&m| Some(m) != self.mac) {
                write!(f, " ({})", mac_text(mac))?;
            }
        }
        Ok(())
    }
}
