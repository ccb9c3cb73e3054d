//! The reference evaluator: what verdict a compiled list gives a packet.
//!
//! This is the specification the eBPF data plane is tested against, so it
//! is written to be obviously right rather than fast: implicit allows
//! first, then the rules top to bottom, the first match deciding, and a
//! drop when none matches.
//!
//! A rule matches a packet when both hold:
//! - some of its services matches: the protocol is `all` or equals the
//!   packet's, and the service names no ports or its ports contain the
//!   packet's destination port;
//! - the packet's remote address (source on ingress, destination on egress)
//!   lies in one of its remote prefixes. The prefixes decide the family:
//!   `0.0.0.0/0` matches no IPv6 packet, `anywhere` is `0.0.0.0/0` plus
//!   `::/0`.
//!
//! # Implicit allows
//!
//! Whatever the rules say, a VM must be able to get and keep an address, so
//! these are accepted before any rule is looked at, in both directions
//! unless stated otherwise:
//! - IPv6 neighbour discovery, ICMPv6 types 133–137 (router solicitation and
//!   advertisement, neighbour solicitation and advertisement, redirect):
//!   without it IPv6 has no link layer.
//! - Multicast listener discovery, ICMPv6 types 130, 131, 132 and 143
//!   (query, v1 report, done, v2 report): neighbour discovery relies on the
//!   solicited-node multicast groups it joins.
//! - DHCPv4 client traffic: UDP 68→67 leaving the VM, UDP 67→68 arriving.
//! - DHCPv6 client traffic: UDP 546→547 leaving the VM, UDP 547→546
//!   arriving.
//!
//! ICMPv6 and DHCPv6 are only recognised in IPv6 packets and DHCPv4 only in
//! IPv4 packets (judged by the remote address): protocol 58 inside IPv4 is
//! not ICMPv6, and UDP 68→67 towards an IPv6 address is not DHCP.
//! Replies to accepted traffic are the connection tracker's business, not
//! this evaluator's: it judges a packet that opens a flow. What a VM sends
//! has passed port security first ([`crate::PortSecurity::check`]), which
//! drops some of the above from a VM: router advertisements and redirects,
//! DHCP servers' answers, neighbour advertisements for foreign addresses.

use std::fmt;
use std::net::IpAddr;

use secgroup_model::{Action, Direction, InstanceId, Protocol, Service, proto};

use crate::compiled::{EffectiveRule, InstancePolicy, Policy, RuleList, RuleOrigin};
use crate::{Enforcement, LogMode};

/// The fields of a packet the rules look at. `remote` is the source of an
/// ingress packet and the destination of an egress one; `local` is the
/// instance's side. Ports are 0 for protocols without ports; ICMP type and
/// code are 0 for protocols other than ICMP and ICMPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Packet {
    pub protocol: u8,
    pub remote: IpAddr,
    pub local: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
}

impl fmt::Display for Packet {
    /// `tcp 198.51.100.7:40000 > 10.0.0.5:22`-ish, remote first, the way
    /// an operator thinks of a flow from the instance's point of view.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = Protocol::Number(self.protocol);
        write!(f, "{protocol} remote {}", self.remote)?;
        match self.protocol {
            proto::TCP | proto::UDP => write!(
                f,
                " local {} sport {} dport {}",
                self.local, self.src_port, self.dst_port
            ),
            proto::ICMP | proto::ICMPV6 => write!(
                f,
                " local {} type {} code {}",
                self.local, self.icmp_type, self.icmp_code
            ),
            _ => write!(f, " local {}", self.local),
        }
    }
}

/// Traffic accepted before the rules are consulted; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImplicitAllow {
    /// ICMPv6 133–137.
    NeighborDiscovery,
    /// ICMPv6 130, 131, 132, 143.
    Mld,
    /// UDP 68→67 out, 67→68 in, over IPv4.
    Dhcp4Client,
    /// UDP 546→547 out, 547→546 in, over IPv6.
    Dhcp6Client,
}

impl ImplicitAllow {
    pub fn describe(self) -> &'static str {
        match self {
            ImplicitAllow::NeighborDiscovery => "IPv6 neighbour discovery",
            ImplicitAllow::Mld => "IPv6 multicast listener discovery",
            ImplicitAllow::Dhcp4Client => "DHCPv4 client",
            ImplicitAllow::Dhcp6Client => "DHCPv6 client",
        }
    }
}

impl fmt::Display for ImplicitAllow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why a packet got its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Matched {
    /// The rule at `position` (0-based) of the instance's list matched
    /// first.
    Rule {
        position: usize,
        origin: RuleOrigin,
    },
    Implicit(ImplicitAllow),
    /// No rule matched.
    DefaultDrop,
}

impl fmt::Display for Matched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matched::Rule { origin, .. } => write!(f, "{origin}"),
            Matched::Implicit(allow) => write!(f, "implicit allow: {allow}"),
            Matched::DefaultDrop => f.write_str("no rule matched"),
        }
    }
}

/// What happens to a packet, and why.
///
/// `action` is what the rules decide; `passes` whether the packet goes
/// through, which differs from it only in audit mode (a drop by a rule or
/// the default passes: a would-drop). `logged` says whether the verdict
/// is reported as an event. A list on its own ([`RuleList::evaluate`])
/// knows no instance: it enforces, and reports only what a logged rule
/// decides; [`InstancePolicy::evaluate`] applies the instance's
/// `enforcement` and `log`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Verdict {
    pub action: Action,
    pub matched: Matched,
    pub passes: bool,
    pub logged: bool,
}

impl Verdict {
    /// A drop by a rule or the default that audit mode let through.
    pub fn would_drop(&self) -> bool {
        self.action == Action::Drop && self.passes
    }
}

impl fmt::Display for Verdict {
    /// `accept by sg-web ingress #2`, `accept: implicit allow: DHCPv4
    /// client`, `drop: no rule matched`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.matched {
            Matched::Rule { .. } => write!(f, "{} by {}", self.action, self.matched)?,
            Matched::Implicit(_) | Matched::DefaultDrop => {
                write!(f, "{}: {}", self.action, self.matched)?
            }
        }
        if self.would_drop() {
            f.write_str(" (audit: passes)")?;
        }
        Ok(())
    }
}

/// The implicit allow `packet` falls under, if any; see the module docs.
pub fn implicit_allow(direction: Direction, packet: &Packet) -> Option<ImplicitAllow> {
    let ipv6 = packet.remote.is_ipv6();
    match packet.protocol {
        proto::ICMPV6 if ipv6 => match packet.icmp_type {
            133..=137 => Some(ImplicitAllow::NeighborDiscovery),
            130 | 131 | 132 | 143 => Some(ImplicitAllow::Mld),
            _ => None,
        },
        proto::UDP => {
            let (client_port, server_port) = match direction {
                Direction::Egress => (packet.src_port, packet.dst_port),
                Direction::Ingress => (packet.dst_port, packet.src_port),
            };
            match (client_port, server_port, ipv6) {
                (68, 67, false) => Some(ImplicitAllow::Dhcp4Client),
                (546, 547, true) => Some(ImplicitAllow::Dhcp6Client),
                _ => None,
            }
        }
        _ => None,
    }
}

fn service_matches(service: &Service, packet: &Packet) -> bool {
    let protocol = match service.protocol {
        Protocol::All => true,
        Protocol::Number(number) => number == packet.protocol,
    };
    // `Ports::All` contains every port, so portless services pass here.
    protocol && service.ports.contains(packet.dst_port)
}

impl EffectiveRule {
    pub fn matches(&self, packet: &Packet) -> bool {
        let service = self.services.iter().any(|s| service_matches(s, packet));
        let remote = self.remotes.iter().any(|net| net.contains(&packet.remote));
        service && remote
    }
}

impl RuleList {
    /// Implicit allows, then the first matching rule, then drop.
    pub fn evaluate(&self, direction: Direction, packet: &Packet) -> Verdict {
        if let Some(allow) = implicit_allow(direction, packet) {
            return Verdict {
                action: Action::Accept,
                matched: Matched::Implicit(allow),
                passes: true,
                logged: false,
            };
        }
        for (position, rule) in self.rules.iter().enumerate() {
            if rule.matches(packet) {
                return Verdict {
                    action: rule.action,
                    matched: Matched::Rule {
                        position,
                        origin: rule.origin.clone(),
                    },
                    passes: rule.action == Action::Accept,
                    logged: rule.log,
                };
            }
        }
        Verdict {
            action: Action::Drop,
            matched: Matched::DefaultDrop,
            passes: false,
            logged: false,
        }
    }
}

impl InstancePolicy {
    /// The list's verdict under this instance's enforcement and log mode:
    /// - audit: a drop by a rule or the default passes (port security is
    ///   not this evaluator's: [`crate::PortSecurity::check`] runs before
    ///   and its drops are enforced in audit mode too);
    /// - logged: a logged rule decided, or the mode is `drops` and the
    ///   rules drop (would-drop included), or `all` and a rule or the
    ///   default decided. Implicit allows are never logged: they are not
    ///   rule verdicts, and neighbour discovery would drown everything.
    ///
    /// A port-security drop is reported iff [`LogMode::logs_drops`].
    pub fn evaluate(&self, direction: Direction, packet: &Packet) -> Verdict {
        let mut verdict = self.rules(direction).evaluate(direction, packet);
        if matches!(verdict.matched, Matched::Implicit(_)) {
            return verdict;
        }
        if self.enforcement == Enforcement::Audit {
            verdict.passes = true;
        }
        let by_mode = match self.log {
            LogMode::None => false,
            LogMode::Drops => verdict.action == Action::Drop,
            LogMode::All => true,
        };
        verdict.logged |= by_mode;
        verdict
    }
}

impl Policy {
    /// `None` when the policy has no such instance.
    pub fn evaluate(
        &self,
        instance: &InstanceId,
        direction: Direction,
        packet: &Packet,
    ) -> Option<Verdict> {
        let instance = self.instances.get(instance)?;
        Some(instance.evaluate(direction, packet))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    const DOC4: &str = "198.51.100.7";
    const DOC6: &str = "2001:db8::7";

    fn packet(protocol: u8, remote: &str) -> Packet {
        let remote = ip(remote);
        let local = if remote.is_ipv4() {
            ip("203.0.113.5")
        } else {
            ip("2001:db8:1::5")
        };
        Packet {
            protocol,
            remote,
            local,
            src_port: 0,
            dst_port: 0,
            icmp_type: 0,
            icmp_code: 0,
        }
    }

    fn ports(protocol: u8, remote: &str, src_port: u16, dst_port: u16) -> Packet {
        Packet {
            src_port,
            dst_port,
            ..packet(protocol, remote)
        }
    }

    fn icmp(protocol: u8, remote: &str, icmp_type: u8) -> Packet {
        Packet {
            icmp_type,
            ..packet(protocol, remote)
        }
    }

    #[test]
    fn implicit_allow_table() {
        use Direction::{Egress, Ingress};
        use ImplicitAllow::*;
        let cases: &[(Direction, Packet, Option<ImplicitAllow>)] = &[
            (
                Ingress,
                icmp(proto::ICMPV6, "fe80::1", 133),
                Some(NeighborDiscovery),
            ),
            (
                Egress,
                icmp(proto::ICMPV6, "fe80::1", 134),
                Some(NeighborDiscovery),
            ),
            (
                Ingress,
                icmp(proto::ICMPV6, DOC6, 135),
                Some(NeighborDiscovery),
            ),
            (
                Egress,
                icmp(proto::ICMPV6, DOC6, 136),
                Some(NeighborDiscovery),
            ),
            (
                Ingress,
                icmp(proto::ICMPV6, DOC6, 137),
                Some(NeighborDiscovery),
            ),
            (Ingress, icmp(proto::ICMPV6, DOC6, 138), None),
            (Ingress, icmp(proto::ICMPV6, "ff02::1", 130), Some(Mld)),
            (Egress, icmp(proto::ICMPV6, "ff02::16", 131), Some(Mld)),
            (Egress, icmp(proto::ICMPV6, "ff02::2", 132), Some(Mld)),
            (Egress, icmp(proto::ICMPV6, "ff02::16", 143), Some(Mld)),
            (Ingress, icmp(proto::ICMPV6, DOC6, 128), None),
            (Ingress, icmp(proto::ICMPV6, DOC6, 129), None),
            (Ingress, icmp(proto::ICMPV6, DOC6, 1), None),
            // Protocol 58 over IPv4 is not ICMPv6; ICMP is not ICMPv6.
            (Ingress, icmp(proto::ICMPV6, DOC4, 135), None),
            (Ingress, icmp(proto::ICMP, DOC4, 135), None),
            (Ingress, icmp(proto::ICMP, DOC6, 135), None),
            (
                Egress,
                ports(proto::UDP, "255.255.255.255", 68, 67),
                Some(Dhcp4Client),
            ),
            (Ingress, ports(proto::UDP, DOC4, 67, 68), Some(Dhcp4Client)),
            // Reversed roles: the VM acting as a DHCP server is not implicit.
            (Ingress, ports(proto::UDP, DOC4, 68, 67), None),
            (Egress, ports(proto::UDP, DOC4, 67, 68), None),
            (Egress, ports(proto::TCP, DOC4, 68, 67), None),
            (Egress, ports(proto::UDP, DOC6, 68, 67), None),
            (
                Egress,
                ports(proto::UDP, "ff02::1:2", 546, 547),
                Some(Dhcp6Client),
            ),
            (
                Ingress,
                ports(proto::UDP, "fe80::1", 547, 546),
                Some(Dhcp6Client),
            ),
            (Ingress, ports(proto::UDP, "fe80::1", 546, 547), None),
            (Egress, ports(proto::UDP, "fe80::1", 547, 546), None),
            (Egress, ports(proto::UDP, DOC4, 546, 547), None),
            (Egress, ports(proto::UDP, DOC4, 68, 53), None),
            (Egress, ports(proto::TCP, DOC4, 40000, 22), None),
        ];
        for (direction, packet, expected) in cases {
            assert_eq!(
                implicit_allow(*direction, packet),
                *expected,
                "{direction} {packet}"
            );
        }
    }

    fn list(rules: Vec<secgroup_model::Rule>) -> RuleList {
        let policy = crate::compile(&rule_set(
            vec![group("sg-t", rules, vec![])],
            vec![instance("ins-t", Some("tap0"), &["203.0.113.5"], &["sg-t"])],
        ));
        policy.instances[&instance_id("ins-t")].ingress.clone()
    }

    #[test]
    fn first_match_wins() {
        let rules = list(vec![
            drop(tcp("22"), block_net("198.51.100.0/24")),
            accept(tcp("22,80"), anywhere()),
            accept(protocol(proto::ICMP), block_net("0.0.0.0/0")),
            accept(protocol(proto::ICMPV6), block_net("::/0")),
            accept(udp("53,5353"), block_range("203.0.113.10", "203.0.113.20")),
        ]);
        let cases: &[(Packet, &str)] = &[
            (
                ports(proto::TCP, DOC4, 40000, 22),
                "drop by sg-t ingress #0",
            ),
            (
                ports(proto::TCP, "203.0.113.9", 40000, 22),
                "accept by sg-t ingress #1",
            ),
            (
                ports(proto::TCP, DOC4, 40000, 80),
                "accept by sg-t ingress #1",
            ),
            (
                ports(proto::TCP, DOC6, 40000, 22),
                "accept by sg-t ingress #1",
            ),
            (ports(proto::TCP, DOC4, 40000, 81), "drop: no rule matched"),
            (ports(proto::UDP, DOC4, 40000, 22), "drop: no rule matched"),
            (icmp(proto::ICMP, DOC4, 8), "accept by sg-t ingress #2"),
            // 0.0.0.0/0 is IPv4 only.
            (icmp(proto::ICMP, DOC6, 8), "drop: no rule matched"),
            (icmp(proto::ICMPV6, DOC6, 128), "accept by sg-t ingress #3"),
            (
                icmp(proto::ICMPV6, DOC6, 135),
                "accept: implicit allow: IPv6 neighbour discovery",
            ),
            (packet(proto::GRE, DOC4), "drop: no rule matched"),
            (
                ports(proto::UDP, "203.0.113.10", 40000, 53),
                "accept by sg-t ingress #4",
            ),
            (
                ports(proto::UDP, "203.0.113.20", 40000, 5353),
                "accept by sg-t ingress #4",
            ),
            (
                ports(proto::UDP, "203.0.113.21", 40000, 53),
                "drop: no rule matched",
            ),
            (
                ports(proto::UDP, "203.0.113.15", 40000, 54),
                "drop: no rule matched",
            ),
        ];
        for (packet, expected) in cases {
            let verdict = rules.evaluate(Direction::Ingress, packet);
            assert_eq!(verdict.to_string(), *expected, "{packet}");
        }
    }

    #[test]
    fn position_counts_the_whole_list() {
        let policy = crate::compile(&rule_set(
            vec![
                group(
                    "sg-a",
                    vec![drop(tcp("22"), block_net("203.0.113.0/24"))],
                    vec![],
                ),
                group(
                    "sg-b",
                    vec![accept(tcp("80"), anywhere()), accept(tcp("22"), anywhere())],
                    vec![],
                ),
            ],
            vec![instance(
                "ins-t",
                Some("tap0"),
                &["198.51.100.5"],
                &["sg-a", "sg-b"],
            )],
        ));
        let verdict = policy
            .evaluate(
                &instance_id("ins-t"),
                Direction::Ingress,
                &ports(proto::TCP, DOC4, 1, 22),
            )
            .unwrap_or_else(|| panic!("ins-t is in the policy"));
        let Matched::Rule { position, origin } = &verdict.matched else {
            panic!("expected a rule to match, got {:?}", verdict.matched);
        };
        assert_eq!(*position, 2);
        assert_eq!(
            (&origin.sg, origin.direction, origin.index),
            (&sg_id("sg-b"), Direction::Ingress, 1)
        );
        assert_eq!(verdict.action, Action::Accept);
        let unknown = policy.evaluate(
            &instance_id("ins-nope"),
            Direction::Ingress,
            &ports(proto::TCP, DOC4, 1, 22),
        );
        assert_eq!(unknown, None);
    }

    #[test]
    fn empty_sets_match_nothing() {
        let empty_services = EffectiveRule {
            origin: RuleOrigin {
                sg: sg_id("sg-t"),
                direction: Direction::Ingress,
                index: 0,
                key: crate::RuleKey::Content { digest: 0, nth: 0 },
            },
            action: Action::Drop,
            services: vec![],
            remotes: nets(&["0.0.0.0/0"]),
            log: false,
        };
        let empty_remotes = EffectiveRule {
            services: vec![tcp_service("all")],
            remotes: vec![],
            ..empty_services.clone()
        };
        let packet = ports(proto::TCP, DOC4, 1, 22);
        assert!(!empty_services.matches(&packet));
        assert!(!empty_remotes.matches(&packet));
    }
}
