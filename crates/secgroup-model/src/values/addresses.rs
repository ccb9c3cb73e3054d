//! IP addresses: address blocks (an address, a CIDR or a range) and an
//! instance's own addresses.

use std::net::IpAddr;

use ipnet::IpNet;

use super::decimal;
use crate::location::quote;
use crate::model::{AddressBlock, AddressRange};

const BLOCK_EXPECTED: &str = "expected an IPv4/IPv6 address, a CIDR like \"203.0.113.0/24\" or a range like \"198.51.100.10-198.51.100.20\"";

/// An address, CIDR or `first-last` range.
pub(crate) fn address_block(s: &str) -> Result<AddressBlock, String> {
    // A CIDR never holds '-' outside a (bad) prefix length, a range never '/'.
    if let Some((addr, len)) = s.split_once('/') {
        let Ok(addr) = addr.parse::<IpAddr>() else {
            return Err(format!("{} is not a CIDR; {BLOCK_EXPECTED}", quote(s)));
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let Some(len) = decimal(len) else {
            return Err(format!(
                "{} is not a CIDR: {} is not a prefix length 0-{max}",
                quote(s),
                quote(len)
            ));
        };
        let net = u8::try_from(len)
            .ok()
            .and_then(|l| IpNet::new(addr, l).ok())
            .ok_or_else(|| {
                format!(
                    "{} is not a CIDR: prefix length {len} is longer than {max} bits",
                    quote(s)
                )
            })?;
        if net.network() != addr {
            return Err(format!(
                "{} has host bits set; did you mean {}?",
                quote(s),
                quote(&net.trunc().to_string())
            ));
        }
        return Ok(AddressBlock::Net(net));
    }
    if let Some((first, last)) = s.split_once('-') {
        let (Ok(a), Ok(b)) = (first.parse::<IpAddr>(), last.parse::<IpAddr>()) else {
            return Err(format!(
                "{} is not an address range; {BLOCK_EXPECTED}",
                quote(s)
            ));
        };
        if a.is_ipv4() != b.is_ipv4() {
            return Err(format!(
                "{} is not an address range: it mixes IPv4 and IPv6",
                quote(s)
            ));
        }
        return AddressRange::new(a, b)
            .map(AddressBlock::Range)
            .ok_or_else(|| format!("{} is not an address range (start > end)", quote(s)));
    }
    match s.parse::<IpAddr>() {
        Ok(addr) => Ok(AddressBlock::Net(IpNet::from(addr))),
        Err(_) => Err(format!("{} is not an address; {BLOCK_EXPECTED}", quote(s))),
    }
}

/// An instance's own address.
pub(crate) fn ip(s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| {
        if s.contains('/') {
            format!(
                "{} is not an IP address; an instance's ips are single addresses (no prefix length)",
                quote(s)
            )
        } else {
            format!("{} is not an IPv4 or IPv6 address", quote(s))
        }
    })
}
