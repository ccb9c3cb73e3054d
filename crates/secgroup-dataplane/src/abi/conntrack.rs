//! Conntrack keys and entries (`struct sg_ct_key`, `sg_ct4_key`,
//! `sg_ct_entry`): userspace names every flow by [`CtKey`] and converts to
//! [`Ct4Key`] at the IPv4 map.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{AF_INET, AF_INET6, DIR_MAX};

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CtKey {
    pub ifindex: u32,
    pub family: u8,
    pub proto: u8,
    pub pad: u16,
    /// Network byte order.
    pub local_port: u16,
    /// Network byte order.
    pub remote_port: u16,
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
}

impl CtKey {
    /// The key the programs use for a flow seen from the VM: zone =
    /// `ifindex`, ports in host order here (stored in network order), IPv4
    /// addresses in the first four of the sixteen bytes. Portless
    /// protocols use port 0; ICMP echo uses the echo id for both.
    pub fn new(
        ifindex: u32,
        proto: u8,
        local: IpAddr,
        local_port: u16,
        remote: IpAddr,
        remote_port: u16,
    ) -> CtKey {
        CtKey {
            ifindex,
            family: if local.is_ipv6() { AF_INET6 } else { AF_INET },
            proto,
            pad: 0,
            local_port: local_port.to_be(),
            remote_port: remote_port.to_be(),
            local_addr: addr_bytes(local),
            remote_addr: addr_bytes(remote),
        }
    }

    pub fn local(&self) -> IpAddr {
        bytes_addr(self.family, self.local_addr)
    }

    pub fn remote(&self) -> IpAddr {
        bytes_addr(self.family, self.remote_addr)
    }

    /// Host byte order.
    pub fn local_port(&self) -> u16 {
        u16::from_be(self.local_port)
    }

    /// Host byte order.
    pub fn remote_port(&self) -> u16 {
        u16::from_be(self.remote_port)
    }
}

/// `struct sg_ct4_key`: an IPv4 flow's key in `sg_ct4`, [`CtKey`] with
/// 4-byte addresses (a shorter key hashes faster). Userspace speaks
/// [`CtKey`] and converts at the map.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Ct4Key {
    pub ifindex: u32,
    pub family: u8,
    pub proto: u8,
    pub pad: u16,
    pub local_port: u16,
    pub remote_port: u16,
    pub local_addr: [u8; 4],
    pub remote_addr: [u8; 4],
}

impl CtKey {
    /// The `sg_ct4` key of an IPv4 flow; `None` for IPv6 (in `sg_ct`).
    pub fn to_v4(&self) -> Option<Ct4Key> {
        (self.family == AF_INET).then(|| Ct4Key {
            ifindex: self.ifindex,
            family: self.family,
            proto: self.proto,
            pad: 0,
            local_port: self.local_port,
            remote_port: self.remote_port,
            local_addr: [
                self.local_addr[0],
                self.local_addr[1],
                self.local_addr[2],
                self.local_addr[3],
            ],
            remote_addr: [
                self.remote_addr[0],
                self.remote_addr[1],
                self.remote_addr[2],
                self.remote_addr[3],
            ],
        })
    }
}

impl From<Ct4Key> for CtKey {
    fn from(k: Ct4Key) -> CtKey {
        let mut local_addr = [0u8; 16];
        local_addr[..4].copy_from_slice(&k.local_addr);
        let mut remote_addr = [0u8; 16];
        remote_addr[..4].copy_from_slice(&k.remote_addr);
        CtKey {
            ifindex: k.ifindex,
            family: k.family,
            proto: k.proto,
            pad: 0,
            local_port: k.local_port,
            remote_port: k.remote_port,
            local_addr,
            remote_addr,
        }
    }
}

pub(super) fn addr_bytes(addr: IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match addr {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out = a.octets(),
    }
    out
}

pub(crate) fn bytes_addr(family: u8, bytes: [u8; 16]) -> IpAddr {
    if family == AF_INET6 {
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CtEntry {
    pub created_ns: u64,
    pub expires_ns: u64,
    pub packets: [u64; DIR_MAX],
    pub bytes: [u64; DIR_MAX],
    pub table: u32,
    pub rule_pos: u32,
    pub origin_dir: u8,
    pub state: u8,
    pub flags: u8,
    pub pad: [u8; 5],
}
