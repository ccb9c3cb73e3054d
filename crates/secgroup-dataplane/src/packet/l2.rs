//! Whole frames as port security sees them: an IP packet, an ARP packet or
//! any other ethertype, behind any number of VLAN tags and from any source
//! MAC ([`EthFrame`]); the neighbour-discovery, router and DHCP messages
//! port security singles out; and what the reference evaluator is given
//! for a frame ([`EthFrame::to_policy`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use secgroup_policy::{Frame, L4, Payload};

use super::{ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, GUEST_MAC, HOST_MAC, Packet, Transport};

pub const ETH_P_8021AD: u16 = 0x88a8;

/// ICMPv6 types of neighbour discovery.
pub mod nd {
    pub const ROUTER_SOLICITATION: u8 = 133;
    pub const ROUTER_ADVERTISEMENT: u8 = 134;
    pub const NEIGHBOUR_SOLICITATION: u8 = 135;
    pub const NEIGHBOUR_ADVERTISEMENT: u8 = 136;
    pub const REDIRECT: u8 = 137;
}

/// An Ethernet/IPv4 ARP packet (RFC 826).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub operation: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// Who has `target_ip`? Tell `sender_ip` (a probe when it is 0.0.0.0).
    pub fn request(sender_mac: [u8; 6], sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Arp {
        Arp {
            operation: 1,
            sender_mac,
            sender_ip,
            target_mac: [0; 6],
            target_ip,
        }
    }

    /// `sender_ip` is at `sender_mac` (gratuitous when sent unasked).
    pub fn reply(sender_mac: [u8; 6], sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Arp {
        Arp {
            operation: 2,
            target_mac: HOST_MAC,
            ..Arp::request(sender_mac, sender_ip, target_ip)
        }
    }

    /// The 28 bytes after the Ethernet header.
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(28);
        b.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
        b.extend_from_slice(&self.operation.to_be_bytes());
        b.extend_from_slice(&self.sender_mac);
        b.extend_from_slice(&self.sender_ip.octets());
        b.extend_from_slice(&self.target_mac);
        b.extend_from_slice(&self.target_ip.octets());
        b
    }
}

/// What follows the Ethernet header and its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EthPayload {
    /// The packet's IP bytes. Its own MACs and tag are not used: the
    /// frame's are ([`EthFrame::from`] copies them).
    Ip(Packet),
    Arp(Arp),
    /// Any ethertype with opaque bytes. With 0x0800, 0x86dd or 0x0806 the
    /// bytes are meant to be unreadable as that protocol (too short, wrong
    /// version or hardware type): [`EthFrame::to_policy`] says so.
    Raw {
        ethertype: u16,
        bytes: Vec<u8>,
    },
}

/// A frame a VM sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthFrame {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// Tag protocol ids (0x8100, 0x88a8, ...), outermost first.
    pub tags: Vec<u16>,
    pub payload: EthPayload,
}

impl From<Packet> for EthFrame {
    fn from(packet: Packet) -> EthFrame {
        EthFrame {
            src_mac: packet.src_mac,
            dst_mac: packet.dst_mac,
            tags: packet.vlan.map(|_| ETH_P_8021Q).into_iter().collect(),
            payload: EthPayload::Ip(packet),
        }
    }
}

impl EthFrame {
    /// An ARP packet from its sender MAC, broadcast.
    pub fn arp(arp: Arp) -> EthFrame {
        EthFrame {
            src_mac: arp.sender_mac,
            dst_mac: [0xff; 6],
            tags: Vec::new(),
            payload: EthPayload::Arp(arp),
        }
    }

    /// Any ethertype and bytes, from the guest's default MAC.
    pub fn raw(ethertype: u16, bytes: Vec<u8>) -> EthFrame {
        EthFrame {
            src_mac: GUEST_MAC,
            dst_mac: HOST_MAC,
            tags: Vec::new(),
            payload: EthPayload::Raw { ethertype, bytes },
        }
    }

    pub fn with_src_mac(mut self, mac: [u8; 6]) -> EthFrame {
        self.src_mac = mac;
        self
    }

    pub fn with_tags(mut self, tags: Vec<u16>) -> EthFrame {
        self.tags = tags;
        self
    }

    fn ethertype(&self) -> u16 {
        match &self.payload {
            EthPayload::Ip(p) if p.src.is_ipv6() => ETH_P_IPV6,
            EthPayload::Ip(_) => ETH_P_IP,
            EthPayload::Arp(_) => ETH_P_ARP,
            EthPayload::Raw { ethertype, .. } => *ethertype,
        }
    }

    /// The wire bytes; tags carry VLAN ids 100, 101, ...
    pub fn bytes(&self) -> Vec<u8> {
        let mut f = Vec::with_capacity(64);
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        for (i, tpid) in self.tags.iter().enumerate() {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(100 + i as u16).to_be_bytes());
        }
        f.extend_from_slice(&self.ethertype().to_be_bytes());
        match &self.payload {
            EthPayload::Ip(p) => f.extend_from_slice(&p.ip_bytes()),
            EthPayload::Arp(a) => f.extend_from_slice(&a.bytes()),
            EthPayload::Raw { bytes, .. } => f.extend_from_slice(bytes),
        }
        f
    }

    /// What [`secgroup_policy::PortSecurity::check`] is given for this
    /// frame, derived from the bytes a receiver would parse: 802.1Q tags
    /// are counted up to the first other ethertype (an 802.1ad tag is
    /// one), the transport facts are read from the transport bytes as the
    /// data plane reads them.
    pub fn to_policy(&self) -> Frame {
        let q_tags = self.tags.iter().take_while(|t| **t == ETH_P_8021Q).count();
        let ethertype = self.tags.get(q_tags).copied().unwrap_or(self.ethertype());
        let payload = match (&self.payload, q_tags == self.tags.len()) {
            (_, false) => Payload::Other { ethertype },
            (EthPayload::Ip(p), true) => match p.src {
                IpAddr::V4(src) => Payload::Ipv4 {
                    src,
                    l4: p.policy_l4(),
                },
                IpAddr::V6(src) => Payload::Ipv6 {
                    src,
                    l4: p.policy_l4(),
                },
            },
            (EthPayload::Arp(a), true) => Payload::Arp {
                sender_mac: a.sender_mac,
                sender_ip: a.sender_ip,
            },
            (EthPayload::Raw { ethertype, .. }, true) => Payload::Other {
                ethertype: *ethertype,
            },
        };
        Frame {
            src_mac: self.src_mac,
            vlan_tags: u8::try_from(q_tags).unwrap_or(u8::MAX),
            payload,
        }
    }
}

impl Packet {
    /// An ICMPv6 message of `icmp_type` with `body` after the first 8
    /// bytes (the 4 after type, code and checksum are zero).
    pub fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, icmp_type: u8, body: Vec<u8>) -> Packet {
        Packet::new(
            IpAddr::V6(src),
            IpAddr::V6(dst),
            Transport::Icmp {
                icmp_type,
                code: 0,
                body,
            },
        )
        .with_ttl(255)
    }

    /// A neighbour solicitation for `target` (duplicate address detection
    /// when `src` is `::`).
    pub fn neighbour_solicitation(src: Ipv6Addr, target: Ipv6Addr) -> Packet {
        let seg = target.segments();
        let solicited = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | (seg[6] & 0xff), seg[7]);
        Packet::icmpv6(
            src,
            solicited,
            nd::NEIGHBOUR_SOLICITATION,
            target.octets().to_vec(),
        )
    }

    /// A neighbour advertisement: `target` is at the sender's MAC.
    pub fn neighbour_advertisement(src: Ipv6Addr, target: Ipv6Addr) -> Packet {
        Packet::icmpv6(
            src,
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
            nd::NEIGHBOUR_ADVERTISEMENT,
            target.octets().to_vec(),
        )
    }

    /// A router advertisement to all nodes: hop limit, flags and lifetime
    /// zero, then 8 bytes of timers.
    pub fn router_advertisement(src: Ipv6Addr) -> Packet {
        Packet::icmpv6(
            src,
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
            nd::ROUTER_ADVERTISEMENT,
            vec![0; 8],
        )
    }

    /// A redirect of traffic for `destination` to `target`.
    pub fn redirect(
        src: Ipv6Addr,
        dst: Ipv6Addr,
        target: Ipv6Addr,
        destination: Ipv6Addr,
    ) -> Packet {
        let mut body = target.octets().to_vec();
        body.extend_from_slice(&destination.octets());
        Packet::icmpv6(src, dst, nd::REDIRECT, body)
    }

    /// DHCPv4 from the client: udp 68 -> 67, broadcast.
    pub fn dhcp4_client(src: Ipv4Addr) -> Packet {
        Packet::udp(IpAddr::V4(src), 68, IpAddr::V4(Ipv4Addr::BROADCAST), 67)
            .with_payload(vec![1; 16])
    }

    /// DHCPv4 from a server: udp 67 -> 68.
    pub fn dhcp4_server(src: Ipv4Addr) -> Packet {
        Packet::udp(IpAddr::V4(src), 67, IpAddr::V4(Ipv4Addr::BROADCAST), 68)
            .with_payload(vec![2; 16])
    }

    /// DHCPv6 from the client: udp 546 -> 547, to all DHCP agents.
    pub fn dhcp6_client(src: Ipv6Addr) -> Packet {
        let agents = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
        Packet::udp(IpAddr::V6(src), 546, IpAddr::V6(agents), 547).with_payload(vec![1; 16])
    }

    /// DHCPv6 from a server: udp 547 -> 546.
    pub fn dhcp6_server(src: Ipv6Addr, dst: Ipv6Addr) -> Packet {
        Packet::udp(IpAddr::V6(src), 547, IpAddr::V6(dst), 546).with_payload(vec![7; 16])
    }

    pub fn with_ttl(mut self, ttl: u8) -> Packet {
        self.ttl = ttl;
        self
    }

    pub fn with_src_mac(mut self, mac: [u8; 6]) -> Packet {
        self.src_mac = mac;
        self
    }

    /// The transport facts port security reads, from the transport bytes:
    /// UDP ports when the 8-byte header is there, ICMPv6 (in IPv6) type
    /// when its 8-byte header is, and a solicitation's or advertisement's
    /// target when 16 more bytes are; nothing for a later fragment.
    fn policy_l4(&self) -> L4 {
        let v6 = self.src.is_ipv6();
        let protocol = self.transport.protocol(v6);
        if self.fragment.is_some_and(|f| f.offset != 0) {
            return L4::Other { protocol };
        }
        let bytes = self.transport_bytes();
        match protocol {
            17 if bytes.len() >= 8 => L4::Udp {
                src_port: u16::from_be_bytes([bytes[0], bytes[1]]),
                dst_port: u16::from_be_bytes([bytes[2], bytes[3]]),
            },
            58 if v6 && bytes.len() >= 8 => {
                let icmp_type = bytes[0];
                let has_target = matches!(
                    icmp_type,
                    nd::NEIGHBOUR_SOLICITATION | nd::NEIGHBOUR_ADVERTISEMENT
                );
                let target = bytes
                    .get(8..24)
                    .filter(|_| has_target)
                    .and_then(|t| <[u8; 16]>::try_from(t).ok())
                    .map(Ipv6Addr::from);
                L4::Icmpv6 { icmp_type, target }
            }
            protocol => L4::Other { protocol },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn tags_and_payloads_as_the_evaluator_sees_them() {
        let ll = v6("fe80::1");
        let na = EthFrame::from(Packet::neighbour_advertisement(ll, v6("2001:db8::5")));
        assert_eq!(
            na.to_policy().payload,
            Payload::Ipv6 {
                src: ll,
                l4: L4::Icmpv6 {
                    icmp_type: nd::NEIGHBOUR_ADVERTISEMENT,
                    target: Some(v6("2001:db8::5"))
                }
            }
        );
        let mut short = Packet::neighbour_advertisement(ll, ll);
        short.transport = Transport::Icmp {
            icmp_type: nd::NEIGHBOUR_ADVERTISEMENT,
            code: 0,
            body: vec![0; 15],
        };
        assert!(matches!(
            EthFrame::from(short).to_policy().payload,
            Payload::Ipv6 {
                l4: L4::Icmpv6 { target: None, .. },
                ..
            }
        ));
        let dhcp = EthFrame::from(Packet::dhcp4_client(Ipv4Addr::UNSPECIFIED));
        let q_ad = dhcp.clone().with_tags(vec![ETH_P_8021Q, ETH_P_8021AD]);
        let f = q_ad.to_policy();
        assert_eq!(
            (f.vlan_tags, f.payload),
            (
                1,
                Payload::Other {
                    ethertype: ETH_P_8021AD
                }
            )
        );
        let qq = dhcp.with_tags(vec![ETH_P_8021Q, ETH_P_8021Q]).to_policy();
        assert_eq!(qq.vlan_tags, 2);
        let arp = EthFrame::arp(Arp::request(
            GUEST_MAC,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::LOCALHOST,
        ));
        let bytes = arp.bytes();
        assert_eq!((bytes.len(), &bytes[12..14]), (42, &[8u8, 6][..]));
    }
}
