//! `POST /v1/trace`: what happens to one packet, asked of the kernel
//! program itself and of the reference evaluator.
//!
//! The packet is built as a real frame and run through the live program of
//! the hook that enforces the direction (BPF_PROG_TEST_RUN, with the
//! instance's ifindex so it finds the instance's tables). A packet the
//! program accepts opens a conntrack entry, as real traffic would; left
//! there it would let replies to a flow nobody opened through (for an
//! egress trace). So every trace uses a fresh port on the side the rules
//! do not look at (the source port; the echo id for ICMP) from
//! 61000–65535, above Linux's ephemeral range, checked to be absent from
//! conntrack before the run, and the entry the run created is deleted
//! right after. Entries that existed before are never touched.

use std::net::IpAddr;

use secgroup_api::{
    KernelVerdict, ReferenceVerdict, TracePacket, TraceRequest, TraceResponse, TracedRule,
};
use secgroup_dataplane::Dataplane;
use secgroup_dataplane::abi::{ACTION_ACCEPT, CtKey, NO_RULE, Reason};
use secgroup_dataplane::packet::{Packet, tcp_flags};
use secgroup_model::{Action, Direction, InstanceId, Protocol, proto};
use secgroup_policy::{Matched, RuleList};
use tracing::{info, warn};

use crate::daemon::{Daemon, error_chain};
use crate::event::ApiError;
use crate::views::{api_direction, rule_ref};

pub(crate) const FIRST_TRACE_PORT: u16 = 61000;

/// The protocol of a trace request: a name or a number.
pub fn parse_protocol(text: &str, ipv6: bool) -> Result<u8, String> {
    let number = match text.to_ascii_lowercase().as_str() {
        "tcp" => proto::TCP,
        "udp" => proto::UDP,
        "icmp" => proto::ICMP,
        "icmpv6" => proto::ICMPV6,
        "gre" => proto::GRE,
        "all" => return Err("a traced packet has one protocol, not \"all\"".to_owned()),
        other => other.parse::<u8>().map_err(|_| {
            format!("unknown protocol {text:?}; use tcp, udp, icmp, icmpv6, gre or a number")
        })?,
    };
    match (number, ipv6) {
        (proto::ICMP, true) => Err("ICMP over IPv6 is icmpv6".to_owned()),
        (proto::ICMPV6, false) => Err("icmpv6 needs an IPv6 remote".to_owned()),
        _ => Ok(number),
    }
}

/// One synthetic flow: everything needed to build its frame, its
/// conntrack key and the evaluator's view of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub protocol: u8,
    pub direction: Direction,
    pub local: IpAddr,
    pub remote: IpAddr,
    /// Destination port (TCP, UDP), else 0.
    pub port: u16,
    /// Source port (TCP, UDP) or echo id (ICMP).
    pub ephemeral: u16,
}

impl Flow {
    fn is_icmp(&self) -> bool {
        matches!(self.protocol, proto::ICMP | proto::ICMPV6)
    }

    fn has_ports(&self) -> bool {
        matches!(self.protocol, proto::TCP | proto::UDP)
    }

    fn endpoints(&self) -> (IpAddr, IpAddr) {
        match self.direction {
            Direction::Ingress => (self.remote, self.local),
            Direction::Egress => (self.local, self.remote),
        }
    }

    /// The frame's packet: a TCP SYN, a UDP datagram, an echo request, or
    /// a bare datagram of another protocol.
    pub fn packet(&self) -> Packet {
        let (src, dst) = self.endpoints();
        match self.protocol {
            proto::TCP => Packet::tcp(src, self.ephemeral, dst, self.port, tcp_flags::SYN),
            proto::UDP => Packet::udp(src, self.ephemeral, dst, self.port),
            proto::ICMP | proto::ICMPV6 => Packet::echo(src, dst, true, self.ephemeral),
            other => Packet::other(src, dst, other),
        }
    }

    /// (source port, destination port) on the wire; the echo id for ICMP.
    fn ports(&self) -> (u16, u16) {
        if self.has_ports() {
            (self.ephemeral, self.port)
        } else if self.is_icmp() {
            (self.ephemeral, self.ephemeral)
        } else {
            (0, 0)
        }
    }

    /// The conntrack entry the program creates when it accepts the packet
    /// (`sg_ct_key_init` in ebpf/lib/conntrack.h): seen from the VM, zone =
    /// ifindex, ports in network order, IPv4 addresses in the first four
    /// bytes.
    pub fn ct_key(&self, ifindex: u32) -> CtKey {
        let (sport, dport) = self.ports();
        let (local_port, remote_port) = match self.direction {
            Direction::Egress => (sport, dport),
            Direction::Ingress => (dport, sport),
        };
        CtKey::new(
            ifindex,
            self.protocol,
            self.local,
            local_port,
            self.remote,
            remote_port,
        )
    }

    /// The evaluator's view: ports only for TCP/UDP, type and code for
    /// ICMP.
    pub fn policy_packet(&self) -> secgroup_policy::Packet {
        let (src_port, dst_port) = if self.has_ports() {
            (self.ephemeral, self.port)
        } else {
            (0, 0)
        };
        let icmp_type = match self.protocol {
            proto::ICMP => 8,
            proto::ICMPV6 => 128,
            _ => 0,
        };
        secgroup_policy::Packet {
            protocol: self.protocol,
            remote: self.remote,
            local: self.local,
            src_port,
            dst_port,
            icmp_type,
            icmp_code: 0,
        }
    }

    fn describe(&self) -> TracePacket {
        let (src, dst) = self.endpoints();
        let (src_port, dst_port) = self.ports();
        TracePacket {
            protocol: self.protocol,
            src,
            src_port,
            dst,
            dst_port,
            text: self.policy_packet().to_string(),
        }
    }
}

/// What decided, for comparing the kernel with the evaluator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decided {
    Rule(usize),
    Implicit,
    Default,
    /// Connection state, a malformed packet, no policy...: not a rule
    /// verdict.
    Other,
}

fn traced_rule(list: &RuleList, position: usize) -> TracedRule {
    let rule = list.rules.get(position);
    TracedRule {
        position,
        origin: rule.map(|r| rule_ref(&r.origin)),
        text: rule.map(ToString::to_string),
    }
}

impl Daemon {
    pub(crate) fn trace(&mut self, request: &TraceRequest) -> Result<TraceResponse, ApiError> {
        let loaded = self.loaded.clone().ok_or_else(|| {
            ApiError::conflict(
                "no rules loaded: there is nothing to trace against (see /v1/status)",
            )
        })?;
        let known = || {
            loaded
                .policy
                .instances
                .keys()
                .map(|id| id.to_string())
                .collect()
        };
        let id = InstanceId::new(&request.instance)
            .ok_or_else(|| ApiError::unknown("instance", &request.instance, known()))?;
        let instance = loaded
            .policy
            .instances
            .get(&id)
            .ok_or_else(|| ApiError::unknown("instance", &request.instance, known()))?;
        let Some(interface) = instance.interface.clone() else {
            return Err(ApiError::conflict(format!(
                "instance {id} lives on another host: it has no interface here"
            )));
        };
        let ifindex = self
            .bound_ifindex(&id)
            .filter(|i| self.hooks.contains_key(i))
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "instance {id} is not attached (interface {interface}); see /v1/status"
                ))
            })?;

        let protocol = parse_protocol(&request.protocol, request.remote.is_ipv6())
            .map_err(ApiError::bad_request)?;
        let local = match request.local {
            Some(local) if local.is_ipv6() != request.remote.is_ipv6() => {
                return Err(ApiError::bad_request(format!(
                    "local {local} and remote {} are of different families",
                    request.remote
                )));
            }
            Some(local) => local,
            None => *instance
                .ips
                .iter()
                .find(|ip| ip.is_ipv6() == request.remote.is_ipv6())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "instance {id} has no {} address; give \"local\"",
                        if request.remote.is_ipv6() {
                            "IPv6"
                        } else {
                            "IPv4"
                        }
                    ))
                })?,
        };
        let port = match (protocol, request.port) {
            (proto::TCP | proto::UDP, Some(0)) => {
                return Err(ApiError::bad_request("port 0 cannot be traced"));
            }
            (proto::TCP | proto::UDP, Some(port)) => port,
            (proto::TCP | proto::UDP, None) => {
                return Err(ApiError::bad_request("tcp and udp traces need a \"port\""));
            }
            (_, None) => 0,
            (_, Some(_)) => {
                return Err(ApiError::bad_request(format!(
                    "\"port\" applies to tcp and udp only, not {}",
                    Protocol::Number(protocol)
                )));
            }
        };
        let direction = match request.direction {
            secgroup_api::Direction::Ingress => Direction::Ingress,
            secgroup_api::Direction::Egress => Direction::Egress,
        };
        let mut flow = Flow {
            protocol,
            direction,
            local,
            remote: request.remote,
            port,
            ephemeral: 0,
        };
        let preexisting = self.pick_ephemeral(&mut flow, ifindex);
        let key = flow.ct_key(ifindex);

        let outcome = self
            .dp
            .test_run(
                Dataplane::hook_for(direction),
                &flow.packet().frame(),
                Some(ifindex),
                1,
            )
            .map_err(|e| {
                ApiError::internal(format!(
                    "running the packet through the kernel program: {}",
                    error_chain(&e)
                ))
            })?;
        if !preexisting && let Err(e) = self.dp.remove_conntrack(&key) {
            warn!(error = %e, "removing the conntrack entry of a trace failed");
        }

        let list = instance.rules(direction);
        let decision = outcome.decision;
        let reason = decision.and_then(|d| Reason::from_u8(d.reason));
        let kernel_accepts = decision.map_or(outcome.passed, |d| d.action == ACTION_ACCEPT);
        // The list the program actually used: the table it reports.
        let kernel_list = decision
            .and_then(|d| self.dp.table_rules(d.table))
            .unwrap_or(list);
        let kernel_rule = decision
            .filter(|d| d.rule_pos != NO_RULE)
            .map(|d| traced_rule(kernel_list, d.rule_pos as usize));
        let kernel_decided = match reason {
            Some(Reason::AcceptRule | Reason::DropRule) => kernel_rule
                .as_ref()
                .map_or(Decided::Other, |r| Decided::Rule(r.position)),
            Some(Reason::AcceptImplicit) => Decided::Implicit,
            Some(Reason::DropDefault) => Decided::Default,
            _ => Decided::Other,
        };

        let verdict = list.evaluate(direction, &flow.policy_packet());
        let (reference_decided, reference_rule) = match &verdict.matched {
            Matched::Rule { position, .. } => {
                (Decided::Rule(*position), Some(traced_rule(list, *position)))
            }
            Matched::Implicit(_) => (Decided::Implicit, None),
            Matched::DefaultDrop => (Decided::Default, None),
        };
        let reference_accepts = verdict.action == Action::Accept;
        let disagree = kernel_accepts != reference_accepts
            || (kernel_decided != Decided::Other && kernel_decided != reference_decided);
        let note = match (kernel_decided, reason) {
            (Decided::Other, Some(reason)) => Some(format!(
                "the kernel decided by {reason}, not by a rule: only the actions are compared"
            )),
            (Decided::Other, None) => {
                Some("the kernel program wrote no decision report".to_owned())
            }
            _ => None,
        };
        let response = TraceResponse {
            instance: id.to_string(),
            interface,
            direction: api_direction(direction),
            packet: flow.describe(),
            kernel: KernelVerdict {
                action: if kernel_accepts { "accept" } else { "drop" }.to_owned(),
                reason: reason.map_or_else(|| "none".to_owned(), |r| r.as_str().to_owned()),
                rule: kernel_rule,
                duration_ns: u64::try_from(outcome.duration.as_nanos()).unwrap_or(u64::MAX),
            },
            reference: ReferenceVerdict {
                action: verdict.action.to_string(),
                matched: verdict.matched.to_string(),
                rule: reference_rule,
            },
            disagree,
            note,
        };
        if disagree {
            warn!(instance = %id, packet = %response.packet.text, kernel = ?response.kernel, reference = ?response.reference, "trace: KERNEL AND REFERENCE DISAGREE");
        } else {
            info!(instance = %id, packet = %response.packet.text, verdict = %verdict, "trace");
        }
        Ok(response)
    }

    /// Picks the trace's source port or echo id so that the flow has no
    /// conntrack entry yet. Returns whether the flow had one anyway (only
    /// for protocols without ports, or if every candidate is taken).
    fn pick_ephemeral(&mut self, flow: &mut Flow, ifindex: u32) -> bool {
        let span = u32::from(u16::MAX - FIRST_TRACE_PORT) + 1;
        for _ in 0..64 {
            flow.ephemeral = self.next_trace_port;
            let offset = (u32::from(self.next_trace_port - FIRST_TRACE_PORT) + 1) % span;
            self.next_trace_port = FIRST_TRACE_PORT + offset as u16;
            match self.dp.conntrack_entry(&flow.ct_key(ifindex)) {
                Ok(None) => return false,
                Ok(Some(_)) => {}
                // Cannot tell: take this port; cleanup will say if it fails.
                Err(_) => return false,
            }
            if !flow.has_ports() && !flow.is_icmp() {
                return true; // nothing to vary
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secgroup_dataplane::packet::Transport;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn protocols() {
        let cases = [
            ("tcp", false, Ok(6)),
            ("UDP", false, Ok(17)),
            ("icmp", false, Ok(1)),
            ("icmpv6", true, Ok(58)),
            ("gre", false, Ok(47)),
            ("132", false, Ok(132)),
            ("icmp", true, Err("ICMP over IPv6 is icmpv6")),
            ("icmpv6", false, Err("icmpv6 needs an IPv6 remote")),
            (
                "all",
                false,
                Err("a traced packet has one protocol, not \"all\""),
            ),
            (
                "sctpx",
                false,
                Err("unknown protocol \"sctpx\"; use tcp, udp, icmp, icmpv6, gre or a number"),
            ),
            (
                "256",
                false,
                Err("unknown protocol \"256\"; use tcp, udp, icmp, icmpv6, gre or a number"),
            ),
        ];
        for (text, ipv6, expected) in cases {
            assert_eq!(
                parse_protocol(text, ipv6),
                expected.map_err(str::to_owned),
                "{text} (ipv6: {ipv6})"
            );
        }
    }

    /// (flow, expected src:sport > dst:dport, key local/remote ports as
    /// numbers, evaluator's src/dst ports)
    #[test]
    fn flows() {
        let check = |flow: Flow,
                     wire: (&str, u16, &str, u16),
                     key_ports: (u16, u16),
                     eval_ports: (u16, u16)| {
            let p = flow.packet();
            let described = flow.describe();
            assert_eq!(
                (p.src, described.src_port, p.dst, described.dst_port),
                (ip(wire.0), wire.1, ip(wire.2), wire.3),
                "{flow:?}"
            );
            let key = flow.ct_key(7);
            assert_eq!(key.ifindex, 7);
            assert_eq!(
                (u16::from_be(key.local_port), u16::from_be(key.remote_port)),
                key_ports,
                "{flow:?}"
            );
            let local_len = if flow.local.is_ipv6() { 16 } else { 4 };
            let local_bytes = match flow.local {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            };
            assert_eq!(&key.local_addr[..local_len], &local_bytes[..], "{flow:?}");
            assert!(
                key.local_addr[local_len..].iter().all(|b| *b == 0),
                "{flow:?}"
            );
            let pp = flow.policy_packet();
            assert_eq!((pp.src_port, pp.dst_port), eval_ports, "{flow:?}");
            assert_eq!((pp.local, pp.remote), (flow.local, flow.remote), "{flow:?}");
        };
        let vm4 = ip("198.51.100.5");
        let far4 = ip("203.0.113.9");
        check(
            Flow {
                protocol: 6,
                direction: Direction::Ingress,
                local: vm4,
                remote: far4,
                port: 22,
                ephemeral: 61000,
            },
            ("203.0.113.9", 61000, "198.51.100.5", 22),
            (22, 61000),
            (61000, 22),
        );
        check(
            Flow {
                protocol: 17,
                direction: Direction::Egress,
                local: vm4,
                remote: far4,
                port: 53,
                ephemeral: 61001,
            },
            ("198.51.100.5", 61001, "203.0.113.9", 53),
            (61001, 53),
            (61001, 53),
        );
        check(
            Flow {
                protocol: 1,
                direction: Direction::Ingress,
                local: vm4,
                remote: far4,
                port: 0,
                ephemeral: 61002,
            },
            ("203.0.113.9", 61002, "198.51.100.5", 61002),
            (61002, 61002),
            (0, 0),
        );
        check(
            Flow {
                protocol: 58,
                direction: Direction::Egress,
                local: ip("2001:db8::5"),
                remote: ip("2001:db8:1::9"),
                port: 0,
                ephemeral: 61003,
            },
            ("2001:db8::5", 61003, "2001:db8:1::9", 61003),
            (61003, 61003),
            (0, 0),
        );
        check(
            Flow {
                protocol: 47,
                direction: Direction::Egress,
                local: vm4,
                remote: far4,
                port: 0,
                ephemeral: 61004,
            },
            ("198.51.100.5", 0, "203.0.113.9", 0),
            (0, 0),
            (0, 0),
        );
        let echo = Flow {
            protocol: 1,
            direction: Direction::Egress,
            local: vm4,
            remote: far4,
            port: 0,
            ephemeral: 9,
        };
        assert_eq!(echo.policy_packet().icmp_type, 8);
        assert!(matches!(
            echo.packet().transport,
            Transport::Echo {
                request: true,
                id: 9,
                ..
            }
        ));
    }
}
