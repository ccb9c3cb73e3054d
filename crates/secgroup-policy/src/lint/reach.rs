//! Which packets each rule of a first-match list decides, computed exactly.
//!
//! A rule matches the set *remote addresses × L4 cells*: its remotes (a
//! prefix list) times its services (protocol and destination-port ranges).
//! It decides the part of that set no earlier rule matches. The L4 side is
//! cut into atoms, intervals of one protocol on which every rule involved
//! either matches every port or none; per atom, the earlier rules that
//! match it are subtracted from the rule's remotes in list order (prefixes
//! are nested or disjoint, so subtraction stays a prefix list). The rule is
//! shadowed when nothing is left in any atom; the earlier rules that took
//! something away decide its traffic. Nothing is sampled or guessed.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use secgroup_model::{Ports, Protocol, proto};

use crate::compiled::{EffectiveRule, RuleList};
use crate::evaluate::Packet;

/// What one rule of a list decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// It is the first match of at least this packet (a witness).
    Decides(Packet),
    /// It matches packets, but the rules at these positions (earlier in the
    /// list, ascending) decide every one of them first.
    Shadowed(Vec<usize>),
    /// It matches no packet at all: no remote address or no service.
    Empty,
}

/// The reach of every rule of `list`, in list order.
pub fn reach(list: &RuleList) -> Vec<Reach> {
    let cells: Vec<Vec<Cell>> = list.rules.iter().map(cells).collect();
    let blocks: Vec<Vec<Block>> = list
        .rules
        .iter()
        .map(|r| r.remotes.iter().map(|&n| Block::from_net(n)).collect())
        .collect();
    (0..list.rules.len())
        .map(|i| rule_reach(i, &cells, &blocks))
        .collect()
}

fn rule_reach(i: usize, cells: &[Vec<Cell>], blocks: &[Vec<Block>]) -> Reach {
    if cells[i].is_empty() || blocks[i].is_empty() {
        return Reach::Empty;
    }
    // Only earlier rules overlapping this one in both fields can take
    // anything from it; the atoms are cut from those alone.
    let earlier: Vec<usize> = (0..i)
        .filter(|&j| cells_overlap(&cells[i], &cells[j]) && blocks_overlap(&blocks[i], &blocks[j]))
        .collect();
    let mut deciders = BTreeSet::new();
    for atom in atoms(i, &earlier, cells) {
        let mut left = blocks[i].clone();
        for &j in &earlier {
            if !cells[j].iter().any(|c| c.covers(&atom)) || !blocks_overlap(&left, &blocks[j]) {
                continue;
            }
            deciders.insert(j);
            left = subtract(&left, &blocks[j]);
            if left.is_empty() {
                break;
            }
        }
        if let Some(first) = left.first() {
            return Reach::Decides(witness(first.first_addr(), &atom));
        }
    }
    Reach::Shadowed(deciders.into_iter().collect())
}

/// One protocol (or every protocol) with an inclusive port interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cell {
    protocol: Protocol,
    lo: u16,
    hi: u16,
}

impl Cell {
    fn applies_to(&self, protocol: u8) -> bool {
        match self.protocol {
            Protocol::All => true,
            Protocol::Number(n) => n == protocol,
        }
    }

    fn covers(&self, atom: &Atom) -> bool {
        self.applies_to(atom.protocol) && self.lo <= atom.lo && atom.hi <= self.hi
    }
}

/// An L4 atom: one protocol and a port interval on which every rule
/// considered matches all ports or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Atom {
    protocol: u8,
    lo: u16,
    hi: u16,
}

/// A rule's services as cells. `Ports::All` is every port, 0 included,
/// which no written range contains: the evaluator's semantics exactly.
fn cells(rule: &EffectiveRule) -> Vec<Cell> {
    let mut out = Vec::new();
    for service in &rule.services {
        match &service.ports {
            Ports::All => out.push(Cell {
                protocol: service.protocol,
                lo: 0,
                hi: u16::MAX,
            }),
            Ports::List(ranges) => out.extend(ranges.iter().map(|r| Cell {
                protocol: service.protocol,
                lo: r.lo(),
                hi: r.hi(),
            })),
        }
    }
    out
}

fn cells_overlap(a: &[Cell], b: &[Cell]) -> bool {
    a.iter().any(|x| {
        b.iter().any(|y| {
            let protocols = match (x.protocol, y.protocol) {
                (Protocol::Number(p), Protocol::Number(q)) => p == q,
                _ => true,
            };
            protocols && x.lo <= y.hi && y.lo <= x.hi
        })
    })
}

/// The atoms of rule `i`'s L4 set, cut by the ports of `i` and `earlier`.
/// Protocols no rule names individually behave alike: one stands for all
/// of them.
fn atoms(i: usize, earlier: &[usize], cells: &[Vec<Cell>]) -> Vec<Atom> {
    let involved: Vec<&Cell> = std::iter::once(i)
        .chain(earlier.iter().copied())
        .flat_map(|k| cells[k].iter())
        .collect();
    let named: BTreeSet<u8> = involved
        .iter()
        .filter_map(|c| match c.protocol {
            Protocol::Number(n) => Some(n),
            Protocol::All => None,
        })
        .collect();
    let mut protocols: Vec<u8> = named.iter().copied().collect();
    if let Some(other) = (0..=u8::MAX).find(|p| !named.contains(p)) {
        protocols.push(other);
    }
    let mut out = Vec::new();
    for protocol in protocols {
        // Interval starts: every cell's lo and hi + 1 for this protocol.
        let mut cuts = BTreeSet::from([0u32, 65536]);
        for c in involved.iter().filter(|c| c.applies_to(protocol)) {
            cuts.insert(u32::from(c.lo));
            cuts.insert(u32::from(c.hi) + 1);
        }
        let cuts: Vec<u32> = cuts.into_iter().collect();
        for pair in cuts.windows(2) {
            // Both ends are at most 65535 by construction.
            let atom = Atom {
                protocol,
                lo: u16::try_from(pair[0]).unwrap_or(u16::MAX),
                hi: u16::try_from(pair[1] - 1).unwrap_or(u16::MAX),
            };
            if cells[i].iter().any(|c| c.covers(&atom)) {
                out.push(atom);
            }
        }
    }
    out
}

/// A packet of `atom` from `remote`, in the shape the evaluator takes.
fn witness(remote: IpAddr, atom: &Atom) -> Packet {
    let has_ports = matches!(atom.protocol, proto::TCP | proto::UDP);
    let local = match remote {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 5)),
    };
    Packet {
        protocol: atom.protocol,
        remote,
        local,
        src_port: if has_ports { 40000 } else { 0 },
        dst_port: if has_ports { atom.lo } else { 0 },
        icmp_type: 0,
        icmp_code: 0,
    }
}

/// A prefix widened to `u128`: aligned block `[start, start + 2^(bits-len))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Block {
    v6: bool,
    start: u128,
    len: u32,
}

impl Block {
    fn from_net(net: IpNet) -> Block {
        match net.trunc() {
            IpNet::V4(n) => Block {
                v6: false,
                start: u128::from(u32::from(n.network())),
                len: u32::from(n.prefix_len()),
            },
            IpNet::V6(n) => Block {
                v6: true,
                start: u128::from(n.network()),
                len: u32::from(n.prefix_len()),
            },
        }
    }

    fn bits(self) -> u32 {
        if self.v6 { 128 } else { 32 }
    }

    /// The last address, as an offset from `start`.
    fn span(self) -> u128 {
        let host = self.bits() - self.len;
        if host >= 128 {
            u128::MAX
        } else {
            (1u128 << host) - 1
        }
    }

    fn contains(self, other: Block) -> bool {
        self.v6 == other.v6
            && self.len <= other.len
            && other.start >= self.start
            && other.start - self.start <= self.span()
    }

    fn overlaps(self, other: Block) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// `self` without `hole`, which it strictly contains: the siblings of
    /// `hole`'s ancestors below `self`.
    fn minus(self, hole: Block) -> Vec<Block> {
        (self.len + 1..=hole.len)
            .map(|len| {
                let host = self.bits() - len;
                let ancestor = hole.start >> host << host;
                Block {
                    v6: self.v6,
                    start: ancestor ^ (1u128 << host),
                    len,
                }
            })
            .collect()
    }

    fn first_addr(self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.start))
        } else {
            // A v4 block's start fits in 32 bits by construction.
            IpAddr::V4(Ipv4Addr::from(u32::try_from(self.start).unwrap_or(0)))
        }
    }

    #[cfg(test)]
    fn to_net(self) -> IpNet {
        let len = u8::try_from(self.len).unwrap_or(0);
        IpNet::new(self.first_addr(), len).unwrap_or_else(|e| panic!("{self:?}: {e}"))
    }
}

fn blocks_overlap(a: &[Block], b: &[Block]) -> bool {
    a.iter().any(|x| b.iter().any(|y| x.overlaps(*y)))
}

/// The addresses of `from` that are in none of `holes`.
fn subtract(from: &[Block], holes: &[Block]) -> Vec<Block> {
    let mut pieces = from.to_vec();
    for &hole in holes {
        pieces = pieces
            .into_iter()
            .flat_map(|p| {
                if hole.contains(p) {
                    Vec::new()
                } else if p.contains(hole) {
                    p.minus(hole)
                } else {
                    vec![p]
                }
            })
            .collect();
    }
    pieces.sort_unstable();
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(cidrs: &[&str]) -> Vec<Block> {
        cidrs
            .iter()
            .map(|c| Block::from_net(c.parse().unwrap_or_else(|e| panic!("{c}: {e}"))))
            .collect()
    }

    fn nets(blocks: &[Block]) -> Vec<String> {
        blocks.iter().map(|b| b.to_net().to_string()).collect()
    }

    #[test]
    fn subtraction_is_exact() {
        let left = subtract(&blocks(&["10.0.0.0/24"]), &blocks(&["10.0.0.64/26"]));
        assert_eq!(nets(&left), ["10.0.0.0/26", "10.0.0.128/25"]);
        let left = subtract(&left, &blocks(&["10.0.0.0/26", "10.0.0.128/25"]));
        assert!(left.is_empty());
        let all = subtract(&blocks(&["0.0.0.0/0", "::/0"]), &blocks(&["0.0.0.0/0"]));
        assert_eq!(nets(&all), ["::/0"]);
        let v6 = subtract(&blocks(&["::/0"]), &blocks(&["2001:db8::/32"]));
        assert_eq!(v6.len(), 32);
        assert!(subtract(&v6, &blocks(&["::/1", "8000::/1"])).is_empty());
    }
}
