//! Random rule lists and packets for differential tests: the classifier's
//! own (table lookup vs. reference evaluator) and the data plane's (kernel
//! vs. reference evaluator).
//!
//! Lists are made to be hard: prefixes cluster around a few base addresses
//! so they nest and overlap (including `/0` and host routes), port ranges
//! share their ends, some rules share one big member list the way rules
//! referencing one security group do, and a few rules have no services or
//! no remotes. Packets are biased towards the edges of what the list names:
//! the first and last address of a prefix and the ones just outside, the
//! ends of a port range and the ports just outside.
//!
//! Addresses are random or in documentation ranges; these packets never go
//! on a wire. No packet is implicit-allow traffic in either direction (no
//! ICMPv6 neighbour or multicast-listener discovery, no DHCP or DHCPv6
//! client ports), so the evaluator's verdict always comes from the rules.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rand::Rng;
use rand::seq::SliceRandom;
use secgroup_model::{Action, Direction, PortRange, Ports, Protocol, Service, SgId, proto};
use secgroup_policy::{EffectiveRule, Packet, RuleList, RuleOrigin};

/// A random list of `n_rules` rules. Every rule is valid as the policy
/// compiler would produce it: remotes sorted without covered prefixes,
/// ports only on TCP and UDP.
pub fn random_rule_list(rng: &mut impl Rng, n_rules: usize) -> RuleList {
    let space = Space::random(rng);
    let direction = *Direction::ALL.choose(rng).unwrap_or(&Direction::Ingress);
    // One to three security groups, in binding order, each a run of rules.
    let sgs = ["sg-alpha", "sg-beta", "sg-gamma"];
    let n_sgs = rng.gen_range(1..=sgs.len());
    let mut cuts: Vec<usize> = (0..n_sgs - 1).map(|_| rng.gen_range(0..=n_rules)).collect();
    cuts.sort_unstable();

    let mut rules = Vec::with_capacity(n_rules);
    for position in 0..n_rules {
        let sg_index = cuts.iter().filter(|&&cut| cut <= position).count();
        let first_of_sg = if sg_index == 0 { 0 } else { cuts[sg_index - 1] };
        let sg = SgId::new(sgs[sg_index]).unwrap_or_else(|| unreachable!("ids above are valid"));
        rules.push(EffectiveRule {
            origin: RuleOrigin {
                sg,
                direction,
                index: position - first_of_sg,
                key: secgroup_policy::RuleKey::Content {
                    digest: position as u64,
                    nth: 0,
                },
            },
            action: if rng.gen_bool(0.5) {
                Action::Accept
            } else {
                Action::Drop
            },
            services: random_services(rng, &space),
            remotes: random_remotes(rng, &space),
            // Some logged rules: the data plane's differential test
            // checks which verdicts become events.
            log: rng.gen_bool(0.25),
        });
    }
    RuleList::from(rules)
}

/// A random packet, usually at an edge of something `list` names. Never
/// implicit-allow traffic (see the module docs).
pub fn random_packet(rng: &mut impl Rng, list: &RuleList) -> Packet {
    let remote = random_remote_addr(rng, list);
    let mut protocol = random_protocol_of(rng, list);
    // An IPv6 packet cannot carry an extension header's number as its
    // upper-layer protocol: hop-by-hop, routing, fragment, AH and
    // destination options are walked over by the data plane.
    if remote.is_ipv6() && matches!(protocol, 0 | 43 | 44 | 51 | 60) {
        protocol = proto::GRE;
    }
    let has_ports = matches!(protocol, proto::TCP | proto::UDP);
    let (mut src_port, dst_port) = if has_ports {
        (
            rng.gen_range(1..=u16::MAX),
            random_port_of(rng, list, protocol),
        )
    } else {
        (0, 0)
    };
    if protocol == proto::UDP
        && matches!(
            (src_port, dst_port),
            (68, 67) | (67, 68) | (546, 547) | (547, 546)
        )
    {
        src_port = 40000;
    }
    let (icmp_type, icmp_code) = match protocol {
        proto::ICMP | proto::ICMPV6 => {
            let icmp_type = match rng.gen_range(0..=u8::MAX) {
                // Neighbour discovery and multicast listener discovery.
                130..=137 | 143 => 128,
                t => t,
            };
            (icmp_type, rng.gen_range(0..4))
        }
        _ => (0, 0),
    };
    let local = match remote {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 5)),
    };
    Packet {
        protocol,
        remote,
        local,
        src_port,
        dst_port,
        icmp_type,
        icmp_code,
    }
}

/// One line per rule, `#pos action services remotes`, for failure messages.
pub fn describe(list: &RuleList) -> String {
    let mut out = String::new();
    for (position, rule) in list.rules.iter().enumerate() {
        let services: Vec<String> = rule
            .services
            .iter()
            .map(|s| match &s.ports {
                Ports::All => s.protocol.to_string(),
                ports => format!("{}:{ports}", s.protocol),
            })
            .collect();
        let remotes: Vec<String> = rule.remotes.iter().map(ToString::to_string).collect();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "#{position} {} [{}] [{}]",
            rule.action,
            services.join(" "),
            remotes.join(" ")
        );
    }
    out
}

/// Where one list's prefixes and ports cluster, so they overlap.
struct Space {
    v4_bases: Vec<u32>,
    v6_bases: Vec<u128>,
    port_edges: Vec<u16>,
    /// Host lists shared by several rules, like security-group members.
    member_lists: Vec<Vec<IpNet>>,
}

impl Space {
    fn random(rng: &mut impl Rng) -> Space {
        let mut v4_bases = vec![
            u32::from(Ipv4Addr::new(192, 0, 2, 0)),
            u32::from(Ipv4Addr::new(10, 0, 0, 0)),
        ];
        v4_bases.extend((0..rng.gen_range(0..3)).map(|_| rng.next_u32()));
        let mut v6_bases = vec![u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0))];
        v6_bases.extend((0..rng.gen_range(0..2)).map(|_| random_u128(rng)));
        let mut port_edges = vec![1, 22, 80, 443, 1023, 1024, 8080, 65535];
        port_edges.extend((0..rng.gen_range(0..6)).map(|_| rng.gen_range(1..=u16::MAX)));
        let mut space = Space {
            v4_bases,
            v6_bases,
            port_edges,
            member_lists: Vec::new(),
        };
        for _ in 0..rng.gen_range(1..=3) {
            let n = rng.gen_range(1..=64);
            let hosts: Vec<IpNet> = (0..n)
                .map(|_| {
                    let len = if rng.gen_bool(0.8) { 32 } else { 128 };
                    space.prefix_of_len(rng, len)
                })
                .collect();
            space.member_lists.push(IpNet::aggregate(&hosts));
        }
        space
    }

    /// A prefix near one of the bases. `len` 32 or 128 picks the family
    /// with a host route; see `random_prefix` for the general case.
    fn prefix_of_len(&self, rng: &mut impl Rng, len: u8) -> IpNet {
        if len == 32 {
            IpNet::V4(v4_net(self.v4_near(rng), 32))
        } else {
            IpNet::V6(v6_net(self.v6_near(rng), 128))
        }
    }

    fn random_prefix(&self, rng: &mut impl Rng) -> IpNet {
        if rng.gen_bool(0.7) {
            let len = match rng.gen_range(0..10) {
                0 => 0,
                1 => 8,
                2 => 16,
                3 => 24,
                4 | 5 => 32,
                _ => rng.gen_range(0..=32),
            };
            IpNet::V4(v4_net(self.v4_near(rng), len))
        } else {
            let len = match rng.gen_range(0..10) {
                0 => 0,
                1 => 32,
                2 => 64,
                3 | 4 => 128,
                5 => rng.gen_range(100..=128),
                _ => rng.gen_range(0..=128),
            };
            IpNet::V6(v6_net(self.v6_near(rng), len))
        }
    }

    /// A base with some of its low bits changed: addresses that share a
    /// long prefix with others of the list.
    fn v4_near(&self, rng: &mut impl Rng) -> u32 {
        let base = self.v4_bases[rng.gen_range(0..self.v4_bases.len())];
        base ^ (rng.next_u32() >> rng.gen_range(0..32))
    }

    fn v6_near(&self, rng: &mut impl Rng) -> u128 {
        let base = self.v6_bases[rng.gen_range(0..self.v6_bases.len())];
        base ^ (random_u128(rng) >> rng.gen_range(0..128))
    }

    fn port_range(&self, rng: &mut impl Rng) -> PortRange {
        let mut end = || {
            let edge = self.port_edges[rng.gen_range(0..self.port_edges.len())];
            match rng.gen_range(0..4) {
                0 => edge.saturating_add(1),
                1 => edge.saturating_sub(1).max(1),
                _ => edge,
            }
        };
        let (a, b) = (end(), end());
        let (lo, hi) = if rng.gen_bool(0.4) {
            (a, a)
        } else {
            (a.min(b), a.max(b))
        };
        PortRange::new(lo, hi).unwrap_or_else(|| unreachable!("1 <= lo <= hi by construction"))
    }
}

fn random_services(rng: &mut impl Rng, space: &Space) -> Vec<Service> {
    if rng.gen_bool(0.03) {
        return Vec::new();
    }
    let n = match rng.gen_range(0..10) {
        0 => 3,
        1 | 2 => 2,
        _ => 1,
    };
    (0..n)
        .map(|_| {
            let protocol = match rng.gen_range(0..100) {
                0..15 => Protocol::All,
                15..45 => Protocol::Number(proto::TCP),
                45..65 => Protocol::Number(proto::UDP),
                65..73 => Protocol::Number(proto::ICMP),
                73..81 => Protocol::Number(proto::ICMPV6),
                81..86 => Protocol::Number(proto::GRE),
                _ => Protocol::Number(rng.gen_range(0..=u8::MAX)),
            };
            let ports = if protocol.has_ports() && rng.gen_bool(0.75) {
                Ports::List(
                    (0..rng.gen_range(1..=3))
                        .map(|_| space.port_range(rng))
                        .collect(),
                )
            } else {
                Ports::All
            };
            Service { protocol, ports }
        })
        .collect()
}

fn random_remotes(rng: &mut impl Rng, space: &Space) -> Vec<IpNet> {
    let nets = match rng.gen_range(0..100) {
        0..5 => Vec::new(),
        5..15 => vec![IpNet::V4(Ipv4Net::default()), IpNet::V6(Ipv6Net::default())],
        15..30 => space.member_lists[rng.gen_range(0..space.member_lists.len())].clone(),
        _ => (0..rng.gen_range(1..=4))
            .map(|_| space.random_prefix(rng))
            .collect(),
    };
    // Sorted, no duplicates, no prefix covered by another: the compiled
    // form. (Merging adjacent halves too, which only changes the spelling.)
    IpNet::aggregate(&nets)
}

fn random_remote_addr(rng: &mut impl Rng, list: &RuleList) -> IpAddr {
    let named = list
        .rules
        .get(rng.gen_range(0..list.rules.len().max(1)))
        .and_then(|rule| rule.remotes.choose(rng));
    match named {
        Some(&net) if rng.gen_bool(0.85) => edge_of(rng, net),
        _ if rng.gen_bool(0.6) => IpAddr::V4(Ipv4Addr::from(rng.next_u32())),
        _ => IpAddr::V6(Ipv6Addr::from(random_u128(rng))),
    }
}

/// The first or last address of `net`, one just outside it, or one inside.
fn edge_of(rng: &mut impl Rng, net: IpNet) -> IpAddr {
    match net {
        IpNet::V4(net) => {
            let (first, last) = (u32::from(net.network()), u32::from(net.broadcast()));
            let addr = match rng.gen_range(0..5) {
                0 => first,
                1 => last,
                2 => first.wrapping_sub(1),
                3 => last.wrapping_add(1),
                _ => rng.gen_range(first..=last),
            };
            IpAddr::V4(Ipv4Addr::from(addr))
        }
        IpNet::V6(net) => {
            let (first, last) = (u128::from(net.network()), u128::from(net.broadcast()));
            let addr = match rng.gen_range(0..5) {
                0 => first,
                1 => last,
                2 => first.wrapping_sub(1),
                3 => last.wrapping_add(1),
                _ => rng.gen_range(first..=last),
            };
            IpAddr::V6(Ipv6Addr::from(addr))
        }
    }
}

fn random_protocol_of(rng: &mut impl Rng, list: &RuleList) -> u8 {
    let named = list
        .rules
        .get(rng.gen_range(0..list.rules.len().max(1)))
        .and_then(|rule| rule.services.choose(rng))
        .and_then(|service| match service.protocol {
            Protocol::Number(number) => Some(number),
            Protocol::All => None,
        });
    match named {
        Some(number) if rng.gen_bool(0.7) => number,
        _ => *[
            proto::TCP,
            proto::UDP,
            proto::ICMP,
            proto::ICMPV6,
            proto::GRE,
            rng.gen_range(0..=u8::MAX),
        ]
        .choose(rng)
        .unwrap_or(&proto::TCP),
    }
}

/// A destination port at or next to the end of some range of a service of
/// `protocol` in `list`, or a random one.
fn random_port_of(rng: &mut impl Rng, list: &RuleList, protocol: u8) -> u16 {
    let range = list
        .rules
        .get(rng.gen_range(0..list.rules.len().max(1)))
        .into_iter()
        .flat_map(|rule| &rule.services)
        .filter(|service| service.protocol == Protocol::Number(protocol))
        .filter_map(|service| match &service.ports {
            Ports::List(ranges) => ranges.choose(rng).copied(),
            Ports::All => None,
        })
        .next();
    match range {
        Some(range) if rng.gen_bool(0.8) => match rng.gen_range(0..5) {
            0 => range.lo(),
            1 => range.hi(),
            // Port 0 is fine on the wire for this purpose: no rule has it.
            2 => range.lo().saturating_sub(1),
            3 => range.hi().saturating_add(1),
            _ => rng.gen_range(range.lo()..=range.hi()),
        },
        _ => match rng.gen_range(0..4) {
            0 => *[22, 80, 443, 8080].choose(rng).unwrap_or(&80),
            _ => rng.gen_range(1..=u16::MAX),
        },
    }
}

fn random_u128(rng: &mut impl Rng) -> u128 {
    u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())
}

fn v4_net(addr: u32, len: u8) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(addr), len.min(32))
        .map(|net| net.trunc())
        .unwrap_or_default()
}

fn v6_net(addr: u128, len: u8) -> Ipv6Net {
    Ipv6Net::new(Ipv6Addr::from(addr), len.min(128))
        .map(|net| net.trunc())
        .unwrap_or_default()
}
