//! Raw Ethernet frames on an interface of a namespace: an `AF_PACKET`
//! socket bound to it, opened on a thread that entered the namespace (the
//! socket stays there when handed back). What a VM's guest writes with
//! [`RawSocket::send`] leaves its `eth0` exactly as built, bypassing the
//! guest's stack (forged sources, router advertisements, DHCP answers),
//! and enters the host through the tap's receive path, where XDP runs.
//! [`RawSocket::recv`] and [`RawSocket::capture`] see every frame that
//! arrives on the interface, whatever its destination (never the
//! socket's own or the stack's outgoing ones), before any local filter:
//! on the world or a VM, what crossed the bridge.
//!
//! [`Frame`] reads back the few fields the scenarios look at, so a
//! predicate can pick one exchange out of the neighbour discovery and
//! multicast chatter a live segment carries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::error::{Error, or_panic};
use crate::netns::NetNs;

const ETH_P_ALL: u16 = 0x0003;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_IPV6: u16 = 0x86dd;

/// An `AF_PACKET` raw socket bound to one interface of one namespace;
/// closed on drop.
#[derive(Debug)]
pub struct RawSocket {
    fd: OwnedFd,
    /// `NS/IFNAME`, for messages.
    pub place: String,
}

impl RawSocket {
    /// A raw socket on `ifname` in `ns`, receiving every protocol.
    pub fn open(ns: &NetNs, ifname: &str) -> RawSocket {
        or_panic(RawSocket::try_open(ns, ifname))
    }

    pub fn try_open(ns: &NetNs, ifname: &str) -> Result<RawSocket, Error> {
        let place = format!("{}/{ifname}", ns.name);
        let fail = |what: &'static str| Error::Socket {
            what,
            place: place.clone(),
            source: std::io::Error::last_os_error(),
        };
        let name = std::ffi::CString::new(ifname).map_err(|_| Error::Socket {
            what: "naming",
            place: place.clone(),
            source: std::io::ErrorKind::InvalidInput.into(),
        })?;
        let fd = ns.try_run(|| {
            // Protocol 0 until bound: no frame of another interface can
            // queue up in between.
            // SAFETY: plain socket(2); the fd is owned right away.
            let raw = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                    0,
                )
            };
            if raw < 0 {
                return Err(fail("opening an AF_PACKET socket on"));
            }
            // SAFETY: raw is a fresh fd nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: name is NUL-terminated.
            let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
            if index == 0 {
                return Err(fail("looking up"));
            }
            let addr = link_addr(index);
            // SAFETY: addr is a sockaddr_ll of the size passed.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&raw const addr).cast(),
                    size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(fail("binding an AF_PACKET socket to"));
            }
            Ok(fd)
        })??;
        Ok(RawSocket { fd, place })
    }

    /// Writes one whole Ethernet frame (headers included) out of the
    /// interface.
    pub fn send(&self, frame: &[u8]) {
        or_panic(self.try_send(frame));
    }

    pub fn try_send(&self, frame: &[u8]) -> Result<(), Error> {
        // SAFETY: frame is a valid buffer of its length.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if usize::try_from(n).ok() == Some(frame.len()) {
            return Ok(());
        }
        Err(Error::Socket {
            what: "sending a frame on",
            place: self.place.clone(),
            source: if n < 0 {
                std::io::Error::last_os_error()
            } else {
                std::io::Error::other(format!("{n} of {} bytes sent", frame.len()))
            },
        })
    }

    /// The first frame arriving within `timeout` that `wanted` picks.
    pub fn recv(&self, timeout: Duration, mut wanted: impl FnMut(&Frame) -> bool) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        while let Some(frame) = self.next(deadline) {
            if wanted(&frame) {
                return Some(frame);
            }
        }
        None
    }

    /// Every frame arriving during `window` that `wanted` picks: what
    /// an observer saw, to say that something never came.
    pub fn capture(&self, window: Duration, mut wanted: impl FnMut(&Frame) -> bool) -> Vec<Frame> {
        let deadline = Instant::now() + window;
        let mut seen = Vec::new();
        while let Some(frame) = self.next(deadline) {
            if wanted(&frame) {
                seen.push(frame);
            }
        }
        seen
    }

    /// The next frame that arrived from the wire (not one sent from
    /// here), or `None` at `deadline`.
    fn next(&self, deadline: Instant) -> Option<Frame> {
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let mut pollfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pollfd, 1, ms.max(1)) } <= 0 {
                continue;
            }
            // SAFETY: sockaddr_ll is plain data; all zeroes is valid.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buf and from are valid for the sizes passed.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&raw mut from).cast(),
                    &mut len,
                )
            };
            let Ok(n) = usize::try_from(n) else {
                continue;
            };
            if from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            return Some(Frame {
                bytes: buf[..n].to_vec(),
            });
        }
    }
}

fn link_addr(ifindex: u32) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain data; all zeroes is valid.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as libc::sa_family_t;
    addr.sll_protocol = ETH_P_ALL.to_be();
    addr.sll_ifindex = ifindex as libc::c_int;
    addr
}

/// Sends one frame from `ifname` in `ns` through a socket of its own.
pub fn send_frame(ns: &NetNs, ifname: &str, frame: &[u8]) {
    RawSocket::open(ns, ifname).send(frame);
}

/// A received Ethernet frame, and the fields of it the scenarios read.
/// Every accessor is `None` where the frame is too short or of another
/// kind. One 802.1Q tag is looked through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub bytes: Vec<u8>,
}

/// The fields of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

impl Frame {
    pub fn dst_mac(&self) -> Option<[u8; 6]> {
        self.bytes.get(0..6)?.try_into().ok()
    }

    pub fn src_mac(&self) -> Option<[u8; 6]> {
        self.bytes.get(6..12)?.try_into().ok()
    }

    /// The ethertype after at most one 802.1Q tag, and where its payload
    /// starts.
    fn ether(&self) -> Option<(u16, usize)> {
        let at = |i: usize| -> Option<u16> {
            Some(u16::from_be_bytes([
                *self.bytes.get(i)?,
                *self.bytes.get(i + 1)?,
            ]))
        };
        match at(12)? {
            ETH_P_8021Q => Some((at(16)?, 18)),
            ethertype => Some((ethertype, 14)),
        }
    }

    pub fn ethertype(&self) -> Option<u16> {
        self.ether().map(|(ethertype, _)| ethertype)
    }

    /// What follows the Ethernet header (and its tag).
    pub fn payload(&self) -> &[u8] {
        self.ether()
            .and_then(|(_, at)| self.bytes.get(at..))
            .unwrap_or(&[])
    }

    pub fn arp(&self) -> Option<Arp> {
        if self.ethertype()? != ETH_P_ARP {
            return None;
        }
        let p = self.payload().get(..28)?;
        if p[0..6] != [0, 1, 8, 0, 6, 4] {
            return None;
        }
        let ip = |i: usize| Ipv4Addr::new(p[i], p[i + 1], p[i + 2], p[i + 3]);
        Some(Arp {
            op: u16::from_be_bytes([p[6], p[7]]),
            sender_mac: p[8..14].try_into().ok()?,
            sender_ip: ip(14),
            target_mac: p[18..24].try_into().ok()?,
            target_ip: ip(24),
        })
    }

    /// Source, destination, protocol (after IPv6 extension headers this
    /// does not skip: the scenarios send none) and the transport bytes.
    pub fn ip(&self) -> Option<(IpAddr, IpAddr, u8, &[u8])> {
        let (ethertype, _) = self.ether()?;
        let p = self.payload();
        match ethertype {
            ETH_P_IP if p.first()? >> 4 == 4 => {
                let header = usize::from(p[0] & 0x0f) * 4;
                let src: [u8; 4] = p.get(12..16)?.try_into().ok()?;
                let dst: [u8; 4] = p.get(16..20)?.try_into().ok()?;
                Some((src.into(), dst.into(), p[9], p.get(header..)?))
            }
            ETH_P_IPV6 if p.first()? >> 4 == 6 => {
                let src: [u8; 16] = p.get(8..24)?.try_into().ok()?;
                let dst: [u8; 16] = p.get(24..40)?.try_into().ok()?;
                Some((
                    Ipv6Addr::from(src).into(),
                    Ipv6Addr::from(dst).into(),
                    p[6],
                    p.get(40..)?,
                ))
            }
            _ => None,
        }
    }

    /// Source and destination port of a UDP datagram, and its payload.
    pub fn udp(&self) -> Option<(u16, u16, &[u8])> {
        let (_, _, protocol, l4) = self.ip()?;
        if protocol != libc::IPPROTO_UDP as u8 {
            return None;
        }
        let ports = l4.get(..8)?;
        Some((
            u16::from_be_bytes([ports[0], ports[1]]),
            u16::from_be_bytes([ports[2], ports[3]]),
            l4.get(8..)?,
        ))
    }

    /// The type of an ICMPv6 message (in IPv6 only), and the message.
    pub fn icmpv6(&self) -> Option<(u8, &[u8])> {
        let (IpAddr::V6(_), _, 58, l4) = self.ip()? else {
            return None;
        };
        Some((*l4.first()?, l4))
    }

    /// Whether `needle` occurs anywhere in the frame: how a scenario
    /// marks its own datagrams.
    pub fn contains(&self, needle: &[u8]) -> bool {
        !needle.is_empty() && self.bytes.windows(needle.len()).any(|w| w == needle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secgroup_dataplane::packet::{Packet, Transport, arp_request};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn reads_back_what_the_packet_builder_writes() {
        let udp = Frame {
            bytes: Packet::udp(ip("198.51.100.5"), 68, ip("255.255.255.255"), 67)
                .with_payload(b"marker".to_vec())
                .with_vlan(7)
                .frame(),
        };
        assert_eq!(udp.ethertype(), Some(ETH_P_IP));
        assert_eq!(udp.udp(), Some((68, 67, &b"marker"[..])));
        assert!(udp.contains(b"marker") && !udp.contains(b"absent"));
        assert_eq!(udp.arp(), None);
        assert_eq!(udp.icmpv6(), None);

        let ra = Packet::new(
            ip("fe80::1"),
            ip("ff02::1"),
            Transport::Icmp {
                icmp_type: 134,
                code: 0,
                body: vec![0; 8],
            },
        );
        let ra = Frame { bytes: ra.frame() };
        assert_eq!(ra.icmpv6().map(|(t, _)| t), Some(134));
        assert_eq!(ra.ip().map(|(src, ..)| src), Some(ip("fe80::1")));

        let arp = Frame {
            bytes: arp_request([198, 51, 100, 5], [198, 51, 100, 6]),
        };
        let parsed = arp.arp().unwrap_or_else(|| panic!("not ARP: {arp:02x?}"));
        assert_eq!(parsed.op, 1);
        assert_eq!(parsed.sender_ip, Ipv4Addr::new(198, 51, 100, 5));
        assert_eq!(parsed.target_ip, Ipv4Addr::new(198, 51, 100, 6));
        assert_eq!(Some(parsed.sender_mac), arp.src_mac());
        assert_eq!(arp.ip(), None);

        let short = Frame {
            bytes: vec![0xff; 13],
        };
        assert_eq!(
            (short.ethertype(), short.payload(), short.udp()),
            (None, &[][..], None)
        );
    }
}
