//! One synthetic flow of a trace: its protocol (named or numbered), its
//! frame, its conntrack key and the evaluator's view of it.

use std::net::IpAddr;

use secgroup_api::TracePacket;
use secgroup_dataplane::abi::CtKey;
use secgroup_dataplane::packet::{Packet, Transport, tcp_flags};
use secgroup_model::{Direction, proto};

pub const FIRST_TRACE_PORT: u16 = 61000;

/// The protocol of a trace request: a name or a number.
pub fn parse_protocol(text: &str, ipv6: bool) -> Result<u8, String> {
    let number = match text.to_ascii_lowercase().as_str() {
        "tcp" => proto::TCP,
        "udp" => proto::UDP,
        "icmp" => proto::ICMP,
        "icmpv6" => proto::ICMPV6,
        "gre" => proto::GRE,
        "all" => return Err("a traced packet has one protocol, not \"all\"".to_owned()),
        other => other.parse::<u8>().map_err(|_| {
            format!("unknown protocol {text:?}; use tcp, udp, icmp, icmpv6, gre or a number")
        })?,
    };
    match (number, ipv6) {
        (proto::ICMP, true) => Err("ICMP over IPv6 is icmpv6".to_owned()),
        (proto::ICMPV6, false) => Err("icmpv6 needs an IPv6 remote".to_owned()),
        _ => Ok(number),
    }
}

/// A MAC address as `52:54:00:12:34:56` (or with dashes).
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    let bad =
        || format!("{text:?} is not a MAC address; expected six hex bytes like 52:54:00:12:34:56");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

/// TCP flags by name, as a trace request writes them: `syn`, `ack,fin`.
pub fn parse_tcp_flags(text: &str) -> Result<u8, String> {
    let mut flags = 0;
    for name in text.split(',').map(str::trim) {
        flags |= match name.to_ascii_lowercase().as_str() {
            "syn" => tcp_flags::SYN,
            "ack" => tcp_flags::ACK,
            "fin" => tcp_flags::FIN,
            "rst" => tcp_flags::RST,
            "psh" => tcp_flags::PSH,
            "urg" => tcp_flags::URG,
            _ => {
                return Err(format!(
                    "unknown TCP flag {name:?} in {text:?}; use syn, ack, fin, rst, psh or urg, comma-separated"
                ));
            }
        };
    }
    Ok(flags)
}

/// `syn`, `ack,fin`: the flags by name, in wire bit order.
pub fn tcp_flags_text(flags: u8) -> String {
    let names = [
        (tcp_flags::FIN, "fin"),
        (tcp_flags::SYN, "syn"),
        (tcp_flags::RST, "rst"),
        (tcp_flags::PSH, "psh"),
        (tcp_flags::ACK, "ack"),
        (tcp_flags::URG, "urg"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if set.is_empty() {
        "none".to_owned()
    } else {
        set.join(",")
    }
}

/// Whether an ICMP(v6) type is an echo request or reply: the only ICMP
/// messages conntrack tracks (by their echo id).
pub fn icmp_is_echo(protocol: u8, icmp_type: u8) -> bool {
    matches!(
        (protocol, icmp_type),
        (proto::ICMP, 0 | 8) | (proto::ICMPV6, 128 | 129)
    )
}

/// Whether an ICMP(v6) type is an error, which quotes a packet of the
/// flow it is about (as the data plane's parser lists them).
pub fn icmp_is_error(protocol: u8, icmp_type: u8) -> bool {
    matches!(
        (protocol, icmp_type),
        (proto::ICMP, 3 | 4 | 5 | 11 | 12) | (proto::ICMPV6, 1..=4)
    )
}

/// One synthetic flow: everything needed to build its frame, its
/// conntrack key and the evaluator's view of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub protocol: u8,
    pub direction: Direction,
    pub local: IpAddr,
    pub remote: IpAddr,
    /// Destination port (TCP, UDP), else 0.
    pub port: u16,
    /// Source port (TCP, UDP) or echo id (ICMP echo).
    pub ephemeral: u16,
    /// TCP only.
    pub tcp_flags: u8,
    /// ICMP and ICMPv6 only: type and code.
    pub icmp_type: u8,
    pub icmp_code: u8,
}

impl Flow {
    /// A new flow's first packet: a TCP SYN, an echo request.
    pub fn opening(
        protocol: u8,
        direction: Direction,
        local: IpAddr,
        remote: IpAddr,
        port: u16,
    ) -> Flow {
        Flow {
            protocol,
            direction,
            local,
            remote,
            port,
            ephemeral: 0,
            tcp_flags: tcp_flags::SYN,
            icmp_type: match protocol {
                proto::ICMP => 8,
                proto::ICMPV6 => 128,
                _ => 0,
            },
            icmp_code: 0,
        }
    }

    pub fn is_icmp(&self) -> bool {
        matches!(self.protocol, proto::ICMP | proto::ICMPV6)
    }

    /// An echo request or reply: tracked by its echo id.
    pub fn is_echo(&self) -> bool {
        icmp_is_echo(self.protocol, self.icmp_type)
    }

    pub fn has_ports(&self) -> bool {
        matches!(self.protocol, proto::TCP | proto::UDP)
    }

    fn endpoints(&self) -> (IpAddr, IpAddr) {
        match self.direction {
            Direction::Ingress => (self.remote, self.local),
            Direction::Egress => (self.local, self.remote),
        }
    }

    /// The frame's packet: a TCP segment with its flags, a UDP datagram,
    /// an ICMP message (an echo with its id), or a bare datagram of
    /// another protocol.
    pub fn packet(&self) -> Packet {
        let (src, dst) = self.endpoints();
        match self.protocol {
            proto::TCP => Packet::tcp(src, self.ephemeral, dst, self.port, self.tcp_flags),
            proto::UDP => Packet::udp(src, self.ephemeral, dst, self.port),
            proto::ICMP | proto::ICMPV6 if self.is_echo() => {
                let request = matches!(self.icmp_type, 8 | 128);
                Packet::echo(src, dst, request, self.ephemeral)
            }
            proto::ICMP | proto::ICMPV6 => Packet::new(
                src,
                dst,
                Transport::Icmp {
                    icmp_type: self.icmp_type,
                    code: self.icmp_code,
                    body: vec![0; 8],
                },
            ),
            other => Packet::other(src, dst, other),
        }
    }

    /// (source port, destination port) on the wire; the echo id for ICMP
    /// echo.
    fn ports(&self) -> (u16, u16) {
        if self.has_ports() {
            (self.ephemeral, self.port)
        } else if self.is_echo() {
            (self.ephemeral, self.ephemeral)
        } else {
            (0, 0)
        }
    }

    /// The conntrack entry the program creates when it accepts the packet
    /// (`sg_ct_key_init` in ebpf/lib/conntrack.h): seen from the VM, zone =
    /// ifindex, ports in network order, IPv4 addresses in the first four
    /// bytes.
    pub fn ct_key(&self, ifindex: u32) -> CtKey {
        let (sport, dport) = self.ports();
        let (local_port, remote_port) = match self.direction {
            Direction::Egress => (sport, dport),
            Direction::Ingress => (dport, sport),
        };
        CtKey::new(
            ifindex,
            self.protocol,
            self.local,
            local_port,
            self.remote,
            remote_port,
        )
    }

    /// The evaluator's view: ports only for TCP/UDP, type and code for
    /// ICMP.
    pub fn policy_packet(&self) -> secgroup_policy::Packet {
        let (src_port, dst_port) = if self.has_ports() {
            (self.ephemeral, self.port)
        } else {
            (0, 0)
        };
        let (icmp_type, icmp_code) = if self.is_icmp() {
            (self.icmp_type, self.icmp_code)
        } else {
            (0, 0)
        };
        secgroup_policy::Packet {
            protocol: self.protocol,
            remote: self.remote,
            local: self.local,
            src_port,
            dst_port,
            icmp_type,
            icmp_code,
        }
    }

    /// What port security sees of the flow's frame sent from `src_mac`.
    pub fn policy_frame(&self, src_mac: [u8; 6]) -> secgroup_policy::Frame {
        use secgroup_policy::{L4, Payload};
        let (src, _) = self.endpoints();
        let l4 = match self.protocol {
            proto::UDP => L4::Udp {
                src_port: self.ephemeral,
                dst_port: self.port,
            },
            proto::ICMPV6 => L4::Icmpv6 {
                icmp_type: self.icmp_type,
                target: None,
            },
            protocol => L4::Other { protocol },
        };
        let payload = match src {
            IpAddr::V4(src) => Payload::Ipv4 { src, l4 },
            IpAddr::V6(src) => Payload::Ipv6 { src, l4 },
        };
        secgroup_policy::Frame {
            src_mac,
            vlan_tags: 0,
            payload,
        }
    }

    pub fn describe(&self) -> TracePacket {
        let (src, dst) = self.endpoints();
        let (src_port, dst_port) = self.ports();
        TracePacket {
            protocol: self.protocol,
            src,
            src_port,
            dst,
            dst_port,
            tcp_flags: (self.protocol == proto::TCP).then(|| tcp_flags_text(self.tcp_flags)),
            icmp_type: self.is_icmp().then_some(self.icmp_type),
            icmp_code: self.is_icmp().then_some(self.icmp_code),
            text: self.policy_packet().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn protocols() {
        let cases = [
            ("tcp", false, Ok(6)),
            ("UDP", false, Ok(17)),
            ("icmp", false, Ok(1)),
            ("icmpv6", true, Ok(58)),
            ("gre", false, Ok(47)),
            ("132", false, Ok(132)),
            ("icmp", true, Err("ICMP over IPv6 is icmpv6")),
            ("icmpv6", false, Err("icmpv6 needs an IPv6 remote")),
            (
                "all",
                false,
                Err("a traced packet has one protocol, not \"all\""),
            ),
            (
                "sctpx",
                false,
                Err("unknown protocol \"sctpx\"; use tcp, udp, icmp, icmpv6, gre or a number"),
            ),
            (
                "256",
                false,
                Err("unknown protocol \"256\"; use tcp, udp, icmp, icmpv6, gre or a number"),
            ),
        ];
        for (text, ipv6, expected) in cases {
            assert_eq!(
                parse_protocol(text, ipv6),
                expected.map_err(str::to_owned),
                "{text} (ipv6: {ipv6})"
            );
        }
    }

    /// (flow, expected src:sport > dst:dport, key local/remote ports as
    /// numbers, evaluator's src/dst ports)
    #[test]
    fn flows() {
        let check = |flow: Flow,
                     wire: (&str, u16, &str, u16),
                     key_ports: (u16, u16),
                     eval_ports: (u16, u16)| {
            let p = flow.packet();
            let described = flow.describe();
            assert_eq!(
                (p.src, described.src_port, p.dst, described.dst_port),
                (ip(wire.0), wire.1, ip(wire.2), wire.3),
                "{flow:?}"
            );
            let key = flow.ct_key(7);
            assert_eq!(key.ifindex, 7);
            assert_eq!(
                (u16::from_be(key.local_port), u16::from_be(key.remote_port)),
                key_ports,
                "{flow:?}"
            );
            let local_len = if flow.local.is_ipv6() { 16 } else { 4 };
            let local_bytes = match flow.local {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            };
            assert_eq!(&key.local_addr[..local_len], &local_bytes[..], "{flow:?}");
            assert!(
                key.local_addr[local_len..].iter().all(|b| *b == 0),
                "{flow:?}"
            );
            let pp = flow.policy_packet();
            assert_eq!((pp.src_port, pp.dst_port), eval_ports, "{flow:?}");
            assert_eq!((pp.local, pp.remote), (flow.local, flow.remote), "{flow:?}");
        };
        let vm4 = ip("198.51.100.5");
        let far4 = ip("203.0.113.9");
        check(
            Flow {
                protocol: 6,
                direction: Direction::Ingress,
                local: vm4,
                remote: far4,
                port: 22,
                ephemeral: 61000,
                ..Flow::opening(6, Direction::Ingress, vm4, far4, 0)
            },
            ("203.0.113.9", 61000, "198.51.100.5", 22),
            (22, 61000),
            (61000, 22),
        );
        check(
            Flow {
                protocol: 17,
                direction: Direction::Egress,
                local: vm4,
                remote: far4,
                port: 53,
                ephemeral: 61001,
                ..Flow::opening(17, Direction::Ingress, vm4, far4, 0)
            },
            ("198.51.100.5", 61001, "203.0.113.9", 53),
            (61001, 53),
            (61001, 53),
        );
        check(
            Flow {
                protocol: 1,
                direction: Direction::Ingress,
                local: vm4,
                remote: far4,
                port: 0,
                ephemeral: 61002,
                ..Flow::opening(1, Direction::Ingress, vm4, far4, 0)
            },
            ("203.0.113.9", 61002, "198.51.100.5", 61002),
            (61002, 61002),
            (0, 0),
        );
        check(
            Flow {
                protocol: 58,
                direction: Direction::Egress,
                local: ip("2001:db8::5"),
                remote: ip("2001:db8:1::9"),
                port: 0,
                ephemeral: 61003,
                ..Flow::opening(58, Direction::Ingress, vm4, far4, 0)
            },
            ("2001:db8::5", 61003, "2001:db8:1::9", 61003),
            (61003, 61003),
            (0, 0),
        );
        check(
            Flow {
                protocol: 47,
                direction: Direction::Egress,
                local: vm4,
                remote: far4,
                port: 0,
                ephemeral: 61004,
                ..Flow::opening(47, Direction::Ingress, vm4, far4, 0)
            },
            ("198.51.100.5", 0, "203.0.113.9", 0),
            (0, 0),
            (0, 0),
        );
        let echo = Flow {
            protocol: 1,
            direction: Direction::Egress,
            local: vm4,
            remote: far4,
            port: 0,
            ephemeral: 9,
            ..Flow::opening(1, Direction::Ingress, vm4, far4, 0)
        };
        assert_eq!(echo.policy_packet().icmp_type, 8);
        assert!(matches!(
            echo.packet().transport,
            Transport::Echo {
                request: true,
                id: 9,
                ..
            }
        ));
    }
}
