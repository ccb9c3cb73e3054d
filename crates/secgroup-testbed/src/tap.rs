//! A VM on a real tap device, with the test process as the guest: it
//! writes the guest's Ethernet frames (built with
//! `secgroup_dataplane::packet`, addressed from [`TapGuest::mac`] to
//! [`crate::WORLD_MAC`]) into the tap's file descriptor
//! (they enter the host through the tap's receive path, where XDP runs)
//! and reads what the host sends the guest (the transmit path, where the
//! TCX hook runs). No network stack behind the tap: what arrives is
//! exactly what the hooks let through.

use std::fs::File;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::bed::{TestBed, mac_text};
use crate::link::Tap;

/// The EtherType of IPv4.
const ETH_P_IP: u16 = 0x0800;

/// The guest side of a tap device in the bed's host namespace; the
/// device goes away when this is dropped (it is not persistent).
pub struct TapGuest {
    file: File,
    pub name: String,
    pub ip4: String,
    pub mac: [u8; 6],
}

impl TapGuest {
    /// Creates `tap-NAME` in the host namespace, on the bridge, for a
    /// guest with 198.51.100.`n`; the world gets a static neighbour entry
    /// for it, since no stack here answers ARP.
    pub fn create(bed: &TestBed, name: &str, n: u8) -> TapGuest {
        let tap = format!("tap-{name}");
        let file = Tap::new(&bed.host.ns, &tap).master("br0").open();
        let guest = TapGuest {
            file,
            name: name.to_owned(),
            ip4: format!("198.51.100.{n}"),
            mac: [0x02, 0x00, 0x00, 0x00, 0x01, n],
        };
        bed.world.ip(&[
            "neigh",
            "replace",
            &guest.ip4,
            "lladdr",
            &mac_text(guest.mac),
            "dev",
            "eth0",
        ]);
        guest
    }

    pub fn tap(&self) -> String {
        format!("tap-{}", self.name)
    }

    pub fn instance(&self) -> String {
        format!("ins-{}", self.name)
    }

    pub fn ip(&self) -> IpAddr {
        self.ip4
            .parse()
            .unwrap_or_else(|e| panic!("guest address {}: {e}", self.ip4))
    }

    /// Sends one Ethernet frame from the guest.
    pub fn send(&mut self, frame: &[u8]) {
        self.file
            .write_all(frame)
            .unwrap_or_else(|e| panic!("writing a frame to {}: {e}", self.tap()));
    }

    /// The first IPv4 TCP segment the guest receives within `timeout`
    /// that `wanted` accepts (others, such as neighbour discovery, are
    /// skipped).
    pub fn recv_tcp(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&TcpSegment) -> bool,
    ) -> Option<TcpSegment> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let mut pollfd = libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pollfd, 1, ms.max(1)) } <= 0 {
                continue;
            }
            let Ok(n) = self.file.read(&mut buf) else {
                continue;
            };
            if let Some(segment) = TcpSegment::parse(&buf[..n])
                && wanted(&segment)
            {
                return Some(segment);
            }
        }
    }
}

/// The parts of a received IPv4 TCP segment the scenarios look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSegment {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub flags: u8,
}

impl TcpSegment {
    fn parse(frame: &[u8]) -> Option<TcpSegment> {
        let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
        let ip = frame.get(14..)?;
        if ethertype != ETH_P_IP || ip.first()? >> 4 != 4 || *ip.get(9)? != libc::IPPROTO_TCP as u8
        {
            return None;
        }
        let header = usize::from(ip[0] & 0x0f) * 4;
        let tcp = ip.get(header..header + 14)?;
        let addr = |at: usize| -> Option<IpAddr> {
            let bytes: [u8; 4] = ip.get(at..at + 4)?.try_into().ok()?;
            Some(IpAddr::from(bytes))
        };
        Some(TcpSegment {
            src: addr(12)?,
            dst: addr(16)?,
            src_port: u16::from_be_bytes([tcp[0], tcp[1]]),
            dst_port: u16::from_be_bytes([tcp[2], tcp[3]]),
            flags: tcp[13],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secgroup_dataplane::packet::Packet;
    use secgroup_dataplane::packet::tcp_flags::{ACK, SYN};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn check(frame: Vec<u8>, expected: Option<TcpSegment>) {
        assert_eq!(TcpSegment::parse(&frame), expected, "frame {frame:02x?}");
    }

    #[test]
    fn parses_ipv4_tcp_and_skips_everything_else() {
        let (a, b) = (ip("198.51.100.40"), ip("203.0.113.10"));
        check(
            Packet::tcp(a, 40080, b, 80, SYN).frame(),
            Some(TcpSegment {
                src: a,
                dst: b,
                src_port: 40080,
                dst_port: 80,
                flags: SYN,
            }),
        );
        check(
            Packet::tcp(b, 80, a, 40080, SYN | ACK)
                .with_ipv4_options(vec![1, 1, 1, 0])
                .frame(),
            Some(TcpSegment {
                src: b,
                dst: a,
                src_port: 80,
                dst_port: 40080,
                flags: SYN | ACK,
            }),
        );
        check(Packet::udp(a, 1, b, 53).frame(), None);
        check(Packet::echo(a, b, true, 7).frame(), None);
        check(
            Packet::tcp(ip("2001:db8:1::5"), 1, ip("2001:db8:2::10"), 80, SYN).frame(),
            None,
        );
        let mut truncated = Packet::tcp(a, 1, b, 80, SYN).frame();
        truncated.truncate(40);
        check(truncated, None);
    }
}
