//! Ethernet frames built from a description: what tests feed to
//! BPF_PROG_TEST_RUN, what `secgroupctl trace` synthesises, and what the tap
//! test writes as a guest. Checksums are real, so a frame written into a tap
//! is accepted by the host stack.

use std::net::IpAddr;

mod l2;
pub use l2::{Arp, ETH_P_8021AD, EthFrame, EthPayload, nd};

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_8021Q: u16 = 0x8100;

pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// The transport part of a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Tcp {
        src: u16,
        dst: u16,
        flags: u8,
    },
    Udp {
        src: u16,
        dst: u16,
    },
    /// ICMP or ICMPv6 (by the address family) echo request or reply.
    Echo {
        request: bool,
        id: u16,
        seq: u16,
    },
    /// Any other ICMP/ICMPv6 message; `body` follows the 4-byte rest of
    /// header (for errors: the offending packet, see [`Packet::ip_bytes`]).
    Icmp {
        icmp_type: u8,
        code: u8,
        body: Vec<u8>,
    },
    /// Any other protocol number with an opaque payload.
    Other {
        proto: u8,
        payload: Vec<u8>,
    },
}

impl Transport {
    pub fn protocol(&self, v6: bool) -> u8 {
        match self {
            Transport::Tcp { .. } => 6,
            Transport::Udp { .. } => 17,
            Transport::Echo { .. } | Transport::Icmp { .. } => {
                if v6 {
                    58
                } else {
                    1
                }
            }
            Transport::Other { proto, .. } => *proto,
        }
    }
}

/// Fragmentation fields: `offset` in 8-byte units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    pub id: u32,
    pub offset: u16,
    pub more: bool,
}

/// An IPv6 extension header placed before the transport header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtHeader {
    HopByHop,
    DestinationOptions,
    Routing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub vlan: Option<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub transport: Transport,
    /// Extra payload bytes after the transport header.
    pub payload: Vec<u8>,
    /// IPv4 options (padded to 4 bytes).
    pub ipv4_options: Vec<u8>,
    pub fragment: Option<Fragment>,
    pub ipv6_ext: Vec<ExtHeader>,
}

const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x01];
const HOST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x02];

impl Packet {
    pub fn new(src: IpAddr, dst: IpAddr, transport: Transport) -> Packet {
        Packet {
            src_mac: GUEST_MAC,
            dst_mac: HOST_MAC,
            vlan: None,
            src,
            dst,
            ttl: 64,
            transport,
            payload: Vec::new(),
            ipv4_options: Vec::new(),
            fragment: None,
            ipv6_ext: Vec::new(),
        }
    }

    pub fn tcp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, flags: u8) -> Packet {
        Packet::new(
            src,
            dst,
            Transport::Tcp {
                src: sport,
                dst: dport,
                flags,
            },
        )
    }

    pub fn udp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Packet {
        Packet::new(
            src,
            dst,
            Transport::Udp {
                src: sport,
                dst: dport,
            },
        )
    }

    pub fn echo(src: IpAddr, dst: IpAddr, request: bool, id: u16) -> Packet {
        Packet::new(
            src,
            dst,
            Transport::Echo {
                request,
                id,
                seq: 1,
            },
        )
    }

    pub fn other(src: IpAddr, dst: IpAddr, proto: u8) -> Packet {
        Packet::new(
            src,
            dst,
            Transport::Other {
                proto,
                payload: vec![0; 8],
            },
        )
    }

    /// An ICMP(v6) error from `src` to `dst` quoting `offending`.
    pub fn icmp_error(
        src: IpAddr,
        dst: IpAddr,
        icmp_type: u8,
        code: u8,
        offending: &Packet,
    ) -> Packet {
        let mut quoted = offending.ip_bytes();
        // Errors quote the header and at least 8 bytes of payload.
        let keep = match offending.src {
            IpAddr::V4(_) => 20 + offending.ipv4_options.len() + 8,
            IpAddr::V6(_) => 40 + 8,
        };
        quoted.truncate(keep);
        Packet::new(
            src,
            dst,
            Transport::Icmp {
                icmp_type,
                code,
                body: quoted,
            },
        )
    }

    pub fn with_vlan(mut self, vid: u16) -> Packet {
        self.vlan = Some(vid);
        self
    }

    pub fn with_fragment(mut self, fragment: Fragment) -> Packet {
        self.fragment = Some(fragment);
        self
    }

    pub fn with_ipv4_options(mut self, options: Vec<u8>) -> Packet {
        self.ipv4_options = options;
        self
    }

    pub fn with_ipv6_ext(mut self, ext: Vec<ExtHeader>) -> Packet {
        self.ipv6_ext = ext;
        self
    }

    pub fn with_payload(mut self, payload: Vec<u8>) -> Packet {
        self.payload = payload;
        self
    }

    pub fn with_macs(mut self, src: [u8; 6], dst: [u8; 6]) -> Packet {
        self.src_mac = src;
        self.dst_mac = dst;
        self
    }

    /// The same flow seen the other way: addresses, ports and MACs swapped.
    pub fn reversed(&self) -> Packet {
        let mut p = self.clone();
        std::mem::swap(&mut p.src, &mut p.dst);
        std::mem::swap(&mut p.src_mac, &mut p.dst_mac);
        p.transport = match &self.transport {
            Transport::Tcp { src, dst, flags } => Transport::Tcp {
                src: *dst,
                dst: *src,
                flags: *flags,
            },
            Transport::Udp { src, dst } => Transport::Udp {
                src: *dst,
                dst: *src,
            },
            Transport::Echo { request, id, seq } => Transport::Echo {
                request: !request,
                id: *id,
                seq: *seq,
            },
            other => other.clone(),
        };
        p
    }

    fn is_v6(&self) -> bool {
        matches!(self.src, IpAddr::V6(_))
    }

    /// Transport header and payload, checksummed.
    fn transport_bytes(&self) -> Vec<u8> {
        let v6 = self.is_v6();
        let mut out = match &self.transport {
            Transport::Tcp { src, dst, flags } => {
                let mut h = vec![0u8; 20];
                h[0..2].copy_from_slice(&src.to_be_bytes());
                h[2..4].copy_from_slice(&dst.to_be_bytes());
                h[4..8].copy_from_slice(&1u32.to_be_bytes()); // seq
                if flags & tcp_flags::ACK != 0 {
                    h[8..12].copy_from_slice(&1u32.to_be_bytes());
                }
                h[12] = 5 << 4;
                h[13] = *flags;
                h[14..16].copy_from_slice(&64240u16.to_be_bytes());
                h
            }
            Transport::Udp { src, dst } => {
                let mut h = vec![0u8; 8];
                h[0..2].copy_from_slice(&src.to_be_bytes());
                h[2..4].copy_from_slice(&dst.to_be_bytes());
                h
            }
            Transport::Echo { request, id, seq } => {
                let icmp_type = match (v6, request) {
                    (false, true) => 8,
                    (false, false) => 0,
                    (true, true) => 128,
                    (true, false) => 129,
                };
                let mut h = vec![icmp_type, 0, 0, 0];
                h.extend_from_slice(&id.to_be_bytes());
                h.extend_from_slice(&seq.to_be_bytes());
                h
            }
            Transport::Icmp {
                icmp_type,
                code,
                body,
            } => {
                let mut h = vec![*icmp_type, *code, 0, 0, 0, 0, 0, 0];
                h.extend_from_slice(body);
                h
            }
            Transport::Other { payload, .. } => payload.clone(),
        };
        out.extend_from_slice(&self.payload);
        if let Some(frag) = self.fragment
            && frag.offset != 0
        {
            // A later fragment carries no transport header of its own.
            return out;
        }
        let proto = self.transport.protocol(v6);
        let checksum_at = match self.transport {
            Transport::Tcp { .. } => Some(16),
            Transport::Udp { .. } => Some(6),
            Transport::Echo { .. } | Transport::Icmp { .. } => Some(2),
            Transport::Other { .. } => None,
        };
        if let Transport::Udp { .. } = self.transport {
            let len = out.len() as u16;
            out[4..6].copy_from_slice(&len.to_be_bytes());
        }
        if let Some(at) = checksum_at {
            // ICMPv4 has no pseudo-header; TCP, UDP and ICMPv6 do.
            let pseudo = if proto == 1 {
                Vec::new()
            } else {
                self.pseudo_header(proto, out.len())
            };
            let sum = checksum(&[&pseudo, &out]);
            let sum = if sum == 0 && proto == 17 { 0xffff } else { sum };
            out[at..at + 2].copy_from_slice(&sum.to_be_bytes());
        }
        out
    }

    fn pseudo_header(&self, proto: u8, len: usize) -> Vec<u8> {
        let mut p = Vec::new();
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&[0, proto]);
                p.extend_from_slice(&(len as u16).to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&(len as u32).to_be_bytes());
                p.extend_from_slice(&[0, 0, 0, proto]);
            }
            _ => {}
        }
        p
    }

    /// The IP packet (header, extension headers, transport, payload).
    ///
    /// # Panics
    /// When `src` and `dst` are of different families: a bug in the caller.
    pub fn ip_bytes(&self) -> Vec<u8> {
        let body = self.transport_bytes();
        let proto = self.transport.protocol(self.is_v6());
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut options = self.ipv4_options.clone();
                while !options.len().is_multiple_of(4) {
                    options.push(0); // end-of-options padding
                }
                let ihl = 5 + options.len() / 4;
                let total = ihl * 4 + body.len();
                let mut h = vec![0u8; 20];
                h[0] = 0x40 | ihl as u8;
                h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                if let Some(f) = self.fragment {
                    h[4..6].copy_from_slice(&(f.id as u16).to_be_bytes());
                    let flags_off = (u16::from(f.more) << 13) | (f.offset & 0x1fff);
                    h[6..8].copy_from_slice(&flags_off.to_be_bytes());
                } else {
                    h[6] = 0x40; // don't fragment
                }
                h[8] = self.ttl;
                h[9] = proto;
                h[12..16].copy_from_slice(&s.octets());
                h[16..20].copy_from_slice(&d.octets());
                h.extend_from_slice(&options);
                let sum = checksum(&[&h]);
                h[10..12].copy_from_slice(&sum.to_be_bytes());
                h.extend_from_slice(&body);
                h
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                // Chain: extension headers in order, then fragment, then L4.
                let mut chain: Vec<(u8, Vec<u8>)> = Vec::new();
                for ext in &self.ipv6_ext {
                    let next_code = match ext {
                        ExtHeader::HopByHop => 0,
                        ExtHeader::DestinationOptions => 60,
                        ExtHeader::Routing => 43,
                    };
                    // 8 bytes: next header, length 0, then padding (PadN)
                    // or an empty type-0 routing header.
                    let bytes = match ext {
                        ExtHeader::Routing => vec![0, 0, 0, 0, 0, 0, 0, 0],
                        _ => vec![0, 0, 1, 4, 0, 0, 0, 0],
                    };
                    chain.push((next_code, bytes));
                }
                if let Some(f) = self.fragment {
                    let mut bytes = vec![0u8; 8];
                    let off = (f.offset << 3) | u16::from(f.more);
                    bytes[2..4].copy_from_slice(&off.to_be_bytes());
                    bytes[4..8].copy_from_slice(&f.id.to_be_bytes());
                    chain.push((44, bytes));
                }
                let first_next = chain.first().map_or(proto, |(code, _)| *code);
                let mut exts = Vec::new();
                for i in 0..chain.len() {
                    let next = chain.get(i + 1).map_or(proto, |(code, _)| *code);
                    let mut bytes = chain[i].1.clone();
                    bytes[0] = next;
                    exts.extend_from_slice(&bytes);
                }
                let payload_len = exts.len() + body.len();
                let mut h = vec![0u8; 40];
                h[0] = 0x60;
                h[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
                h[6] = first_next;
                h[7] = self.ttl;
                h[8..24].copy_from_slice(&s.octets());
                h[24..40].copy_from_slice(&d.octets());
                h.extend_from_slice(&exts);
                h.extend_from_slice(&body);
                h
            }
            _ => panic!(
                "packet mixes address families: {} -> {}",
                self.src, self.dst
            ),
        }
    }

    /// The whole Ethernet frame.
    pub fn frame(&self) -> Vec<u8> {
        let ethertype = if self.is_v6() { ETH_P_IPV6 } else { ETH_P_IP };
        let mut f = Vec::with_capacity(64);
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        if let Some(vid) = self.vlan {
            f.extend_from_slice(&ETH_P_8021Q.to_be_bytes());
            f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(&self.ip_bytes());
        f
    }
}

/// An ARP request frame (who-has `target` tell `sender`) from the guest's
/// default MAC; [`Arp`] and [`EthFrame::arp`] build any other.
pub fn arp_request(sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&sender);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f
}

/// The Internet checksum over the concatenation of `parts`.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies_to_zero() {
        let p = Packet::tcp(
            "198.51.100.5".parse().unwrap_or_else(|e| panic!("{e}")),
            40000,
            "203.0.113.9".parse().unwrap_or_else(|e| panic!("{e}")),
            22,
            tcp_flags::SYN,
        );
        let ip = p.ip_bytes();
        assert_eq!(checksum(&[&ip[..20]]), 0, "a correct header sums to zero");
        let tcp = &ip[20..];
        let pseudo = p.pseudo_header(6, tcp.len());
        assert_eq!(
            checksum(&[&pseudo, tcp]),
            0,
            "a correct TCP segment sums to zero"
        );
    }

    #[test]
    fn ipv6_chain_links_extension_headers_to_the_transport() {
        let p = Packet::udp(
            "2001:db8::1".parse().unwrap_or_else(|e| panic!("{e}")),
            1000,
            "2001:db8::2".parse().unwrap_or_else(|e| panic!("{e}")),
            53,
        )
        .with_ipv6_ext(vec![ExtHeader::HopByHop, ExtHeader::DestinationOptions]);
        let ip = p.ip_bytes();
        assert_eq!(ip[6], 0, "first next-header is hop-by-hop");
        assert_eq!(ip[40], 60, "hop-by-hop points at destination options");
        assert_eq!(ip[48], 17, "destination options point at UDP");
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]) as usize, ip.len() - 40);
    }
}
