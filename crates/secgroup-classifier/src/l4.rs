//! The L4 field: prefixes of the 24-bit value `protocol << 16 | port`, and
//! how services and port ranges become them.

use std::fmt;

use secgroup_model::{Ports, Protocol, Service};

/// A prefix of the 24-bit space `protocol:8 | destination port:16`.
///
/// `len` 0 is every protocol, 8 one protocol with every port, 9..=24 a block
/// of ports of one protocol. In the kernel key (`struct sg_l4_key`) the
/// prefix length also counts the 32 table-id bits: see
/// [`L4Prefix::kernel_prefixlen`]. `port` is a plain number here; the
/// kernel key holds it in network byte order, so the prefix bits run from
/// the protocol through the port's high byte to its low byte.
///
/// Values made by this crate carry no bits past `len`; the derived order is
/// then (value, length), which the table's entry lists are sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct L4Prefix {
    pub protocol: u8,
    pub port: u16,
    pub len: u8,
}

impl L4Prefix {
    /// Bits of the L4 value.
    pub const BITS: u8 = 24;

    /// Every protocol, every port.
    pub const ALL: L4Prefix = L4Prefix {
        protocol: 0,
        port: 0,
        len: 0,
    };

    /// The prefix of length `len` containing `(protocol, port)`: the bits
    /// past `len` are cleared. `None` when `len` exceeds 24.
    pub fn new(protocol: u8, port: u16, len: u8) -> Option<L4Prefix> {
        (len <= Self::BITS).then(|| L4Prefix::from_value(value(protocol, port) & mask(len), len))
    }

    /// Every port of `protocol` (`/8`).
    pub fn protocol(protocol: u8) -> L4Prefix {
        L4Prefix {
            protocol,
            port: 0,
            len: 8,
        }
    }

    /// The prefix length of this prefix in `struct sg_l4_key`, whose first
    /// 32 bits are the table id.
    pub fn kernel_prefixlen(self) -> u32 {
        32 + u32::from(self.len)
    }

    pub fn contains(self, protocol: u8, port: u16) -> bool {
        value(protocol, port) & mask(self.len) == self.value() & mask(self.len)
    }

    /// Whether every value of `other` lies in `self`.
    pub fn covers(self, other: L4Prefix) -> bool {
        self.len <= other.len && other.value() & mask(self.len) == self.value() & mask(self.len)
    }

    /// Every prefix of the value `(protocol, port)`, longest first: what a
    /// longest-prefix lookup tries.
    pub(crate) fn enclosing(protocol: u8, port: u16) -> impl Iterator<Item = L4Prefix> {
        (0..=Self::BITS)
            .rev()
            .map(move |len| L4Prefix::from_value(value(protocol, port) & mask(len), len))
    }

    fn value(self) -> u32 {
        value(self.protocol, self.port)
    }

    fn from_value(value: u32, len: u8) -> L4Prefix {
        L4Prefix {
            protocol: (value >> 16) as u8,
            port: value as u16,
            len,
        }
    }
}

fn value(protocol: u8, port: u16) -> u32 {
    u32::from(protocol) << 16 | u32::from(port)
}

/// The `len` leading bits of the 24-bit space.
fn mask(len: u8) -> u32 {
    match len {
        0 => 0,
        len => (0xff_ffff << (L4Prefix::BITS - len.min(L4Prefix::BITS))) & 0xff_ffff,
    }
}

/// `all`, `tcp`, `tcp:80`, `udp:1024-2047`; `proto 0/3` for the
/// protocol-only prefixes no service produces.
impl fmt::Display for L4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = Protocol::Number(self.protocol);
        match self.len {
            0 => f.write_str("all"),
            1..=7 => write!(f, "proto {}/{}", self.protocol, self.len),
            8 => write!(f, "{protocol}"),
            len => {
                let span = 1u32 << (L4Prefix::BITS - len.min(L4Prefix::BITS));
                let first = u32::from(self.port);
                let last = first + span - 1;
                if span == 1 {
                    write!(f, "{protocol}:{first}")
                } else {
                    write!(f, "{protocol}:{first}-{last}")
                }
            }
        }
    }
}

/// The minimal list of prefixes of the 16-bit port space that covers
/// exactly `lo..=hi`, as (first port, prefix length 0..=16), in increasing
/// order. Empty when `lo > hi`.
///
/// Greedy from the low end: each step takes the largest block that starts
/// at `lo` (so is aligned to it) and ends at or before `hi`. Every block it
/// takes is maximal (its parent block sticks out of the range on one side),
/// and a cover made only of maximal blocks is the unique minimal one.
pub fn port_prefixes(lo: u16, hi: u16) -> Vec<(u16, u8)> {
    let mut out = Vec::new();
    let (mut lo, hi) = (u32::from(lo), u32::from(hi));
    while lo <= hi {
        // Largest alignment of `lo` (port 0 is aligned to the whole space)...
        let mut bits = lo.trailing_zeros().min(16);
        // ...shrunk until the block fits under `hi`.
        while lo + (1 << bits) - 1 > hi {
            bits -= 1;
        }
        out.push((lo as u16, 16 - bits as u8));
        lo += 1 << bits;
    }
    out
}

/// Appends the L4 prefixes whose union is exactly the traffic `service`
/// matches.
pub(crate) fn service_prefixes(service: &Service, out: &mut Vec<L4Prefix>) {
    match (service.protocol, &service.ports) {
        (Protocol::All, Ports::All) => out.push(L4Prefix::ALL),
        (Protocol::Number(protocol), Ports::All) => out.push(L4Prefix::protocol(protocol)),
        (Protocol::Number(protocol), Ports::List(ranges)) => {
            for range in ranges {
                push_ports(protocol, range.lo(), range.hi(), out);
            }
        }
        // The model never builds this (ports need TCP or UDP), but the
        // meaning is clear, so keep it exact rather than refuse it: the
        // ranges under every protocol.
        (Protocol::All, Ports::List(ranges)) => {
            for protocol in 0..=u8::MAX {
                for range in ranges {
                    push_ports(protocol, range.lo(), range.hi(), out);
                }
            }
        }
    }
}

fn push_ports(protocol: u8, lo: u16, hi: u16, out: &mut Vec<L4Prefix>) {
    out.extend(
        port_prefixes(lo, hi)
            .into_iter()
            .map(|(port, len)| L4Prefix {
                protocol,
                port,
                len: 8 + len,
            }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use secgroup_model::PortRange;

    #[test]
    fn split_examples() {
        // (lo, hi, expected prefixes)
        type Case = (u16, u16, &'static [(u16, u8)]);
        let cases: &[Case] = &[
            (80, 80, &[(80, 16)]),
            (0, 65535, &[(0, 0)]),
            (
                1,
                65535,
                &[
                    (1, 16),
                    (2, 15),
                    (4, 14),
                    (8, 13),
                    (16, 12),
                    (32, 11),
                    (64, 10),
                    (128, 9),
                    (256, 8),
                    (512, 7),
                    (1024, 6),
                    (2048, 5),
                    (4096, 4),
                    (8192, 3),
                    (16384, 2),
                    (32768, 1),
                ],
            ),
            (20, 25, &[(20, 14), (24, 15)]),
            (1024, 2047, &[(1024, 6)]),
            (65535, 65535, &[(65535, 16)]),
            (65534, 65535, &[(65534, 15)]),
            (5, 4, &[]),
        ];
        for &(lo, hi, expected) in cases {
            let got = port_prefixes(lo, hi);
            if got != expected {
                panic!("port_prefixes({lo}, {hi}) = {got:?}, expected {expected:?}");
            }
        }
    }

    #[test]
    fn display() {
        let cases = [
            (L4Prefix::ALL, "all"),
            (L4Prefix::protocol(6), "tcp"),
            (L4Prefix::protocol(132), "132"),
            (
                L4Prefix {
                    protocol: 6,
                    port: 80,
                    len: 24,
                },
                "tcp:80",
            ),
            (
                L4Prefix {
                    protocol: 17,
                    port: 1024,
                    len: 14,
                },
                "udp:1024-2047",
            ),
            (
                L4Prefix {
                    protocol: 0,
                    port: 0,
                    len: 3,
                },
                "proto 0/3",
            ),
        ];
        for (prefix, expected) in cases {
            assert_eq!(prefix.to_string(), expected, "{prefix:?}");
        }
    }

    #[test]
    fn new_truncates_and_contains() {
        let p = L4Prefix::new(6, 0x1234, 12);
        assert_eq!(
            p,
            Some(L4Prefix {
                protocol: 6,
                port: 0x1000,
                len: 12
            })
        );
        assert_eq!(L4Prefix::new(6, 0, 25), None);
        let p = L4Prefix {
            protocol: 6,
            port: 0x1000,
            len: 12,
        };
        assert!(p.contains(6, 0x1fff) && !p.contains(6, 0x2000) && !p.contains(7, 0x1000));
        assert!(L4Prefix::ALL.contains(255, 65535));
        assert!(L4Prefix::protocol(6).covers(p) && !p.covers(L4Prefix::protocol(6)));
        assert_eq!(p.kernel_prefixlen(), 44);
    }

    #[test]
    fn enclosing_is_longest_first() {
        let all: Vec<_> = L4Prefix::enclosing(6, 80).collect();
        assert_eq!(all.len(), 25);
        assert_eq!(
            all[0],
            L4Prefix {
                protocol: 6,
                port: 80,
                len: 24
            }
        );
        assert_eq!(all[16], L4Prefix::protocol(6));
        assert_eq!(all[24], L4Prefix::ALL);
    }

    #[test]
    fn services() {
        let range =
            |lo, hi| PortRange::new(lo, hi).unwrap_or_else(|| panic!("bad range {lo}-{hi}"));
        let cases: Vec<(Service, &[&str])> = vec![
            (
                Service {
                    protocol: Protocol::All,
                    ports: Ports::All,
                },
                &["all"],
            ),
            (
                Service {
                    protocol: Protocol::Number(1),
                    ports: Ports::All,
                },
                &["icmp"],
            ),
            (
                Service {
                    protocol: Protocol::Number(6),
                    ports: Ports::List(vec![range(22, 22), range(8080, 8081)]),
                },
                &["tcp:22", "tcp:8080-8081"],
            ),
        ];
        for (service, expected) in cases {
            let mut out = Vec::new();
            service_prefixes(&service, &mut out);
            let got: Vec<String> = out.iter().map(ToString::to_string).collect();
            assert_eq!(got, expected, "{service:?}");
        }
        // Ports under every protocol: 256 protocols × 1 prefix.
        let mut out = Vec::new();
        let odd = Service {
            protocol: Protocol::All,
            ports: Ports::List(vec![range(80, 80)]),
        };
        service_prefixes(&odd, &mut out);
        assert_eq!(out.len(), 256);
        assert!(out.iter().all(|p| p.port == 80 && p.len == 24));
    }
}
