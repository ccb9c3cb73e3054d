//! Prefix arithmetic: splitting an address range into CIDRs and normalising
//! a list of prefixes.
//!
//! Both families go through one algorithm by widening addresses to `u128`
//! and carrying the family's width alongside. A prefix is then an aligned
//! block `[start, start | mask(host_bits)]`, and two such blocks are either
//! nested or disjoint: every argument below leans on that.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use secgroup_model::AddressRange;

/// Splits an inclusive range into the minimal list of CIDRs that covers
/// exactly that range, in address order.
///
/// The list is the range's maximal aligned blocks: starting at the first
/// address, each step takes the largest block that starts there and does not
/// run past the end. No two of the resulting blocks are siblings, which is
/// what makes the list minimal.
pub fn split_range(range: AddressRange) -> Vec<IpNet> {
    let (family, first) = widen(range.first());
    let (_, last) = widen(range.last());
    let bits = family.bits();
    let mut nets = Vec::new();
    let mut start = first;
    loop {
        // `start` is aligned to its trailing zeros; shrink until the block
        // fits inside the range.
        let mut host = start.trailing_zeros().min(bits);
        while host > 0 && block_end(start, host) > last {
            host -= 1;
        }
        nets.push(narrow(family, start, bits - host));
        let end = block_end(start, host);
        if end >= last {
            return nets;
        }
        start = end + 1;
    }
}

/// Sorts prefixes, drops duplicates and prefixes covered by another, and
/// merges sibling pairs into their parent, repeatedly.
///
/// The result matches exactly the addresses the input matches, and is the
/// unique shortest prefix list that does: sorted by family, then address,
/// with no prefix covering or neighbouring (as a sibling) another. Host bits
/// in the input are ignored.
pub fn normalise(nets: impl IntoIterator<Item = IpNet>) -> Vec<IpNet> {
    let mut blocks: Vec<Block> = nets.into_iter().map(Block::from_net).collect();
    blocks.sort_unstable();
    let mut kept: Vec<Block> = Vec::with_capacity(blocks.len());
    for block in blocks {
        // Kept blocks are disjoint and in order, and `block` starts no
        // earlier than the last of them, so only the last can cover it.
        if kept.last().is_some_and(|last| last.covers(block)) {
            continue;
        }
        kept.push(block);
        // A merged parent ends where its second half ended, so it cannot
        // cover anything kept before it; it may, however, be a sibling of
        // the block before it.
        while let [.., a, b] = kept[..] {
            match a.parent_if_sibling_of(b) {
                Some(parent) => {
                    kept.truncate(kept.len() - 2);
                    kept.push(parent);
                }
                None => break,
            }
        }
    }
    kept.into_iter().map(Block::to_net).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn bits(self) -> u32 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// A prefix in widened form. The field order is the sort order: family,
/// then start address, then shorter prefixes (bigger blocks) first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Block {
    family: Family,
    start: u128,
    prefix_len: u32,
}

impl Block {
    fn from_net(net: IpNet) -> Block {
        let (family, addr) = widen(net.network());
        Block {
            family,
            start: addr,
            prefix_len: u32::from(net.prefix_len()),
        }
    }

    fn to_net(self) -> IpNet {
        narrow(self.family, self.start, self.prefix_len)
    }

    fn host_bits(self) -> u32 {
        self.family.bits() - self.prefix_len
    }

    fn covers(self, other: Block) -> bool {
        self.family == other.family
            && self.prefix_len <= other.prefix_len
            && other.start & !low_mask(self.host_bits()) == self.start
    }

    /// The block both halves make up, when `self` is the lower half and
    /// `other` the upper half of one.
    fn parent_if_sibling_of(self, other: Block) -> Option<Block> {
        if self.family != other.family || self.prefix_len != other.prefix_len {
            return None;
        }
        if self.prefix_len == 0 {
            return None;
        }
        let half = 1u128 << self.host_bits();
        let siblings = self.start & half == 0 && other.start == self.start | half;
        siblings.then_some(Block {
            prefix_len: self.prefix_len - 1,
            ..self
        })
    }
}

fn widen(addr: IpAddr) -> (Family, u128) {
    match addr {
        IpAddr::V4(v4) => (Family::V4, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (Family::V6, u128::from(v6)),
    }
}

/// Builds the prefix `start/prefix_len`. Callers only pass values of the
/// family's width and lengths no longer than it, which is why the
/// constructors below cannot fail.
fn narrow(family: Family, start: u128, prefix_len: u32) -> IpNet {
    // Both casts are lossless: prefix_len <= 128 and, for V4, start < 2^32.
    let len = prefix_len as u8;
    match family {
        Family::V4 => IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(start as u32), len)),
        Family::V6 => IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(start), len)),
    }
}

/// The last address of the block of `host` host bits that starts at the
/// aligned address `start`.
fn block_end(start: u128, host: u32) -> u128 {
    start | low_mask(host)
}

fn low_mask(host: u32) -> u128 {
    if host >= 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first: &str, last: &str) -> AddressRange {
        let first = first.parse().unwrap_or_else(|e| panic!("{first}: {e}"));
        let last = last.parse().unwrap_or_else(|e| panic!("{last}: {e}"));
        AddressRange::new(first, last).unwrap_or_else(|| panic!("bad range {first}-{last}"))
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|s| s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
            .collect()
    }

    #[test]
    fn split_range_table() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("198.51.100.7", "198.51.100.7", &["198.51.100.7/32"]),
            ("198.51.100.0", "198.51.100.255", &["198.51.100.0/24"]),
            (
                "198.51.100.1",
                "198.51.100.254",
                &[
                    "198.51.100.1/32",
                    "198.51.100.2/31",
                    "198.51.100.4/30",
                    "198.51.100.8/29",
                    "198.51.100.16/28",
                    "198.51.100.32/27",
                    "198.51.100.64/26",
                    "198.51.100.128/26",
                    "198.51.100.192/27",
                    "198.51.100.224/28",
                    "198.51.100.240/29",
                    "198.51.100.248/30",
                    "198.51.100.252/31",
                    "198.51.100.254/32",
                ],
            ),
            (
                "198.51.100.255",
                "203.0.113.0",
                &[
                    "198.51.100.255/32",
                    "198.51.101.0/24",
                    "198.51.102.0/23",
                    "198.51.104.0/21",
                    "198.51.112.0/20",
                    "198.51.128.0/17",
                    "198.52.0.0/14",
                    "198.56.0.0/13",
                    "198.64.0.0/10",
                    "198.128.0.0/9",
                    "199.0.0.0/8",
                    "200.0.0.0/7",
                    "202.0.0.0/8",
                    "203.0.0.0/18",
                    "203.0.64.0/19",
                    "203.0.96.0/20",
                    "203.0.112.0/24",
                    "203.0.113.0/32",
                ],
            ),
            ("0.0.0.0", "255.255.255.255", &["0.0.0.0/0"]),
            (
                "0.0.0.0",
                "255.255.255.254",
                &[
                    "0.0.0.0/1",
                    "128.0.0.0/2",
                    "192.0.0.0/3",
                    "224.0.0.0/4",
                    "240.0.0.0/5",
                    "248.0.0.0/6",
                    "252.0.0.0/7",
                    "254.0.0.0/8",
                    "255.0.0.0/9",
                    "255.128.0.0/10",
                    "255.192.0.0/11",
                    "255.224.0.0/12",
                    "255.240.0.0/13",
                    "255.248.0.0/14",
                    "255.252.0.0/15",
                    "255.254.0.0/16",
                    "255.255.0.0/17",
                    "255.255.128.0/18",
                    "255.255.192.0/19",
                    "255.255.224.0/20",
                    "255.255.240.0/21",
                    "255.255.248.0/22",
                    "255.255.252.0/23",
                    "255.255.254.0/24",
                    "255.255.255.0/25",
                    "255.255.255.128/26",
                    "255.255.255.192/27",
                    "255.255.255.224/28",
                    "255.255.255.240/29",
                    "255.255.255.248/30",
                    "255.255.255.252/31",
                    "255.255.255.254/32",
                ],
            ),
            (
                "255.255.255.255",
                "255.255.255.255",
                &["255.255.255.255/32"],
            ),
            ("2001:db8::", "2001:db8::ffff", &["2001:db8::/112"]),
            (
                "2001:db8::1",
                "2001:db8::4",
                &["2001:db8::1/128", "2001:db8::2/127", "2001:db8::4/128"],
            ),
            ("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &["::/0"]),
        ];
        for (first, last, expected) in cases {
            let got = split_range(range(first, last));
            let want = nets(expected);
            assert_eq!(got, want, "split_range({first}-{last})");
        }
    }

    #[test]
    fn split_range_everything_but_the_first_ipv6_address() {
        // One block per width: ::1/128, ::2/127, ::4/126, ... 8000::/1.
        let want: Vec<IpNet> = (0..128u32)
            .map(|host| narrow(Family::V6, 1u128 << host, 128 - host))
            .collect();
        let got = split_range(range("::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
        assert_eq!(got, want);
    }

    #[test]
    fn normalise_table() {
        let cases: &[(&[&str], &[&str])] = &[
            (&[], &[]),
            (
                &["198.51.100.7/32", "198.51.100.7/32"],
                &["198.51.100.7/32"],
            ),
            (
                &["198.51.100.0/24", "198.51.100.7/32", "198.51.100.128/25"],
                &["198.51.100.0/24"],
            ),
            (
                &["198.51.100.7/32", "198.51.100.0/24"],
                &["198.51.100.0/24"],
            ),
            // Siblings merge, and the merged parent merges again.
            (
                &["198.51.100.0/26", "198.51.100.128/25", "198.51.100.64/26"],
                &["198.51.100.0/24"],
            ),
            // Adjacent but not siblings: stays apart.
            (
                &["198.51.100.64/26", "198.51.100.128/26"],
                &["198.51.100.64/26", "198.51.100.128/26"],
            ),
            // Host bits are ignored.
            (&["198.51.100.77/24"], &["198.51.100.0/24"]),
            // Families never mix, and IPv4 sorts first.
            (
                &["2001:db8::/32", "0.0.0.0/0", "::/0"],
                &["0.0.0.0/0", "::/0"],
            ),
            (&["0.0.0.0/1", "128.0.0.0/1"], &["0.0.0.0/0"]),
            (
                &["2001:db8::1/128", "2001:db8::/128", "203.0.113.9/32"],
                &["203.0.113.9/32", "2001:db8::/127"],
            ),
        ];
        for (input, expected) in cases {
            let got = normalise(nets(input));
            assert_eq!(got, nets(expected), "normalise({input:?})");
        }
    }
}
