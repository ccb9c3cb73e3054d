//! `POST /v1/trace`: what happens to one packet, asked of the kernel
//! program itself and of the reference evaluator.
//!
//! The packet is built as a real frame and run through the live program of
//! the hook that enforces the direction (BPF_PROG_TEST_RUN, with the
//! instance's ifindex so it finds the instance's tables). A packet the
//! program accepts opens a conntrack entry, as real traffic would; left
//! there it would let replies to a flow nobody opened through (for an
//! egress trace). So unless the request fixes it, every trace uses a
//! fresh port on the side the rules do not look at (the source port; the
//! echo id for ICMP echo) from 61000–65535, above Linux's ephemeral range,
//! checked to be absent from conntrack before the run, and the entry the
//! run created is deleted right after. A request that gives the source
//! port (or echo id) may name a tracked flow: the trace then shows its
//! entry, the program passes the packet by it as it would a real one, and
//! the entry is written back as it was before the run (counters, timeout,
//! state), so a traced FIN or RST closes nothing.

mod flow;

use std::sync::atomic::{AtomicU16, Ordering};

use secgroup_api::{KernelVerdict, ReferenceVerdict, TraceRequest, TraceResponse, TracedRule};
use secgroup_dataplane::abi::{ACTION_ACCEPT, NO_RULE, Reason};
use secgroup_dataplane::{Dataplane, Observer, error_chain};
use secgroup_model::{Action, Direction, InstanceId, Protocol, proto};
use secgroup_policy::{Matched, RuleList};
use tracing::{info, warn};

pub use flow::{FIRST_TRACE_PORT, Flow, icmp_is_error, parse_mac, parse_protocol, parse_tcp_flags};

/// The frame of a trace: the flow's packet, sent from `source_mac` when
/// given.
fn frame_of(flow: &Flow, source_mac: Option<[u8; 6]>) -> Vec<u8> {
    let packet = flow.packet();
    match source_mac {
        Some(mac) => {
            let dst = packet.dst_mac;
            packet.with_macs(mac, dst).frame()
        }
        None => packet.frame(),
    }
}

/// The source MAC a trace frame carries when none is chosen.
fn frame_of_mac(flow: &Flow) -> [u8; 6] {
    flow.packet().src_mac
}

use crate::event::ApiError;
use crate::state::InForce;
use crate::wire::{api_direction, rule_ref};

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

/// A trace request checked against the policy in force: an attached
/// instance here, one protocol, addresses of one family, ports only where
/// they mean something.
#[derive(Debug, Clone)]
pub struct TraceQuery {
    pub instance: InstanceId,
    pub interface: String,
    pub ifindex: u32,
    /// The flow, its ephemeral side not chosen yet unless `fixed`.
    pub flow: Flow,
    /// The request gave the source port or echo id: the flow is the
    /// request's, tracked or not.
    pub fixed: bool,
    /// Egress: the frame's source MAC (the instance's unless the request
    /// spoofs one).
    pub source_mac: Option<[u8; 6]>,
}

impl TraceQuery {
    pub fn validate(now: &InForce, request: &TraceRequest) -> Result<TraceQuery, ApiError> {
        let loaded = now.loaded.clone().ok_or_else(|| {
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
        let ifindex = now
            .bound_ifindex(&id)
            .filter(|i| now.hooks.contains_key(i))
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
        let mut flow = Flow::opening(protocol, direction, local, request.remote, port);
        let fixed = packet_details(request, &mut flow).map_err(ApiError::bad_request)?;
        let source_mac = match (&request.source_mac, direction) {
            (Some(_), Direction::Ingress) => {
                return Err(ApiError::bad_request(
                    "\"source_mac\" applies to egress traces (what the VM sends)",
                ));
            }
            (Some(text), Direction::Egress) => {
                Some(parse_mac(text).map_err(ApiError::bad_request)?)
            }
            (None, Direction::Egress) => instance.mac.map(|m| m.0),
            (None, Direction::Ingress) => None,
        };
        Ok(TraceQuery {
            instance: id,
            interface,
            ifindex,
            flow,
            fixed,
            source_mac,
        })
    }
}

/// The request's source port, TCP flags, ICMP type, code and echo id,
/// each checked against the protocol, into `flow`. Returns whether the
/// flow's tracked side (source port, echo id) is given, not to be chosen.
fn packet_details(request: &TraceRequest, flow: &mut Flow) -> Result<bool, String> {
    let protocol = Protocol::Number(flow.protocol);
    let only =
        |what: &str, applies: &str| format!("\"{what}\" applies to {applies} only, not {protocol}");
    if let Some(text) = &request.tcp_flags {
        if flow.protocol != proto::TCP {
            return Err(only("tcp_flags", "tcp"));
        }
        flow.tcp_flags = parse_tcp_flags(text)?;
    }
    if request.icmp_type.is_some() || request.icmp_code.is_some() {
        if !flow.is_icmp() {
            return Err(only("icmp_type\" and \"icmp_code", "icmp and icmpv6"));
        }
        flow.icmp_type = request.icmp_type.unwrap_or(flow.icmp_type);
        flow.icmp_code = request.icmp_code.unwrap_or(0);
        if icmp_is_error(flow.protocol, flow.icmp_type) {
            return Err(format!(
                "{protocol} type {} is an error message: it quotes a packet of the flow it is about and is judged with that flow; trace the flow itself",
                flow.icmp_type
            ));
        }
        if flow.is_echo() && flow.icmp_code != 0 {
            return Err(format!(
                "an echo message has code 0, not {}",
                flow.icmp_code
            ));
        }
    }
    match (request.source_port, request.icmp_id) {
        (Some(_), Some(_)) => {
            Err("give \"source_port\" (tcp, udp) or \"icmp_id\" (echo), not both".to_owned())
        }
        (Some(0), None) => Err("source port 0 cannot be traced".to_owned()),
        (Some(port), None) if flow.has_ports() => {
            flow.ephemeral = port;
            Ok(true)
        }
        (Some(_), None) => Err(only("source_port", "tcp and udp")),
        (None, Some(id)) if flow.is_echo() => {
            flow.ephemeral = id;
            Ok(true)
        }
        (None, Some(_)) => Err(only("icmp_id", "icmp and icmpv6 echo requests and replies")),
        (None, None) => Ok(false),
    }
}

/// The trace's side ports (or echo ids), handed out in turn from
/// 61000–65535 by every API connection.
pub struct TracePorts(AtomicU16);

impl Default for TracePorts {
    fn default() -> Self {
        TracePorts(AtomicU16::new(FIRST_TRACE_PORT))
    }
}

impl TracePorts {
    fn next(&self) -> u16 {
        let span = u32::from(u16::MAX - FIRST_TRACE_PORT) + 1;
        let taken = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |port| {
                let offset = (u32::from(port.saturating_sub(FIRST_TRACE_PORT)) + 1) % span;
                Some(FIRST_TRACE_PORT + offset as u16)
            })
            .unwrap_or(FIRST_TRACE_PORT);
        taken.max(FIRST_TRACE_PORT)
    }

    /// Picks the trace's source port or echo id so that the flow has no
    /// conntrack entry yet, if it can (a protocol without ports has only
    /// one flow per pair of addresses; after 64 taken candidates the last
    /// is used). An entry found anyway is put back after the run.
    fn pick(&self, observer: &Observer, flow: &mut Flow, ifindex: u32) {
        for _ in 0..64 {
            flow.ephemeral = self.next();
            match observer.conntrack_entry(&flow.ct_key(ifindex)) {
                Ok(None) => return,
                Ok(Some(_)) => {}
                // Cannot tell: take this port; cleanup will say if it fails.
                Err(_) => return,
            }
            if !flow.has_ports() && !flow.is_echo() {
                return; // nothing to vary
            }
        }
    }
}

/// Runs the packet of `request` through the live program of the hook that
/// enforces its direction and through the reference evaluator, from the
/// snapshot in force (the engine is not involved: a trace never waits for
/// a reload).
pub fn trace(
    now: &InForce,
    observer: &Observer,
    ports: &TracePorts,
    request: &TraceRequest,
) -> Result<TraceResponse, ApiError> {
    let query = TraceQuery::validate(now, request)?;
    let loaded = now.loaded.clone().ok_or_else(|| {
        ApiError::conflict("no rules loaded: there is nothing to trace against (see /v1/status)")
    })?;
    let instance = loaded
        .policy
        .instances
        .get(&query.instance)
        .ok_or_else(|| ApiError::conflict(format!("no instance {}", query.instance)))?;
    let TraceQuery {
        instance: id,
        interface,
        ifindex,
        mut flow,
        fixed,
        source_mac,
    } = query;
    let direction = flow.direction;
    if !fixed {
        ports.pick(observer, &mut flow, ifindex);
    }
    let key = flow.ct_key(ifindex);
    let internal = |what: &str, e: secgroup_dataplane::DataplaneError| {
        ApiError::internal(format!("{what}: {}", error_chain(&e)))
    };
    // The flow's entry before the run: put back afterwards, so that the
    // trace changes nothing of a tracked flow; shown when live, as what
    // passes the packet.
    let before = observer
        .conntrack_entry(&key)
        .map_err(|e| internal("reading the flow's conntrack entry", e))?;
    let now_ns = observer
        .now_ns()
        .map_err(|e| internal("reading the data plane's clock", e))?;
    let tracked = before.filter(|entry| entry.expires_ns > now_ns);

    let outcome = observer
        .test_runner()
        .run(
            Dataplane::hook_for(direction),
            &frame_of(&flow, source_mac),
            Some(ifindex),
            1,
        )
        .map_err(|e| {
            ApiError::internal(format!(
                "running the packet through the kernel program: {}",
                error_chain(&e)
            ))
        })?;
    let cleanup = match &before {
        Some(entry) => observer.restore_conntrack(&key, entry),
        None => observer.remove_conntrack(&key).map(|_| ()),
    };
    if let Err(e) = cleanup {
        warn!(error = %e, "restoring conntrack after a trace failed");
    }

    let list = instance.rules(direction);
    let decision = outcome.decision;
    let reason = decision.and_then(|d| Reason::from_u8(d.reason));
    let kernel_accepts = decision.map_or(outcome.passed, |d| d.action == ACTION_ACCEPT);
    // The list the program actually used: the table it reports.
    let kernel_list = decision
        .and_then(|d| now.table_rules(d.table))
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
    // What port security says first (egress of a secured instance).
    let spoofed = match direction {
        Direction::Egress if instance.port_security.enabled => Some(
            instance
                .port_security
                .check(&flow.policy_frame(source_mac.unwrap_or(frame_of_mac(&flow)))),
        ),
        _ => None,
    };
    let (reference_decided, reference_rule) = match &verdict.matched {
        Matched::Rule { position, .. } => {
            (Decided::Rule(*position), Some(traced_rule(list, *position)))
        }
        Matched::Implicit(_) => (Decided::Implicit, None),
        Matched::DefaultDrop => (Decided::Default, None),
    };
    let reference_accepts = verdict.action == Action::Accept && !matches!(spoofed, Some(Err(_)));
    // Passed by its flow's entry: the rules were not asked, and the
    // reference (what they say of a new flow) is not to be compared.
    let by_conntrack = tracked.is_some()
        && matches!(
            reason,
            Some(Reason::AcceptEstablished | Reason::AcceptReply | Reason::AcceptRelated)
        );
    let disagree = match spoofed {
        // Dropped before any rule: the kernel must say so, with that reason.
        Some(Err(spoof)) => kernel_accepts || reason.map(|r| r.as_str()) != Some(spoof.as_str()),
        _ if by_conntrack => false,
        _ => {
            kernel_accepts != reference_accepts
                || (kernel_decided != Decided::Other && kernel_decided != reference_decided)
        }
    };
    let note = match (kernel_decided, reason) {
        (_, Some(reason)) if by_conntrack => Some(format!(
            "a packet of a tracked flow (see conntrack), passed by {reason} without the rules; the reference says what the rules would do with a new flow"
        )),
        (Decided::Other, Some(reason)) => Some(format!(
            "the kernel decided by {reason}, not by a rule: only the actions are compared"
        )),
        (Decided::Other, None) => Some("the kernel program wrote no decision report".to_owned()),
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
        reference: match spoofed {
            Some(Err(spoof)) => ReferenceVerdict {
                action: Action::Drop.to_string(),
                port_security: Some(spoof.as_str().to_owned()),
                matched: format!("port security: {spoof}"),
                rule: None,
            },
            _ => ReferenceVerdict {
                action: verdict.action.to_string(),
                port_security: spoofed.map(|_| "pass".to_owned()),
                matched: verdict.matched.to_string(),
                rule: reference_rule,
            },
        },
        disagree,
        note,
        conntrack: tracked.map(|entry| now.flow(&key, &entry, now_ns)),
    };
    if disagree {
        warn!(instance = %id, packet = %response.packet.text, kernel = ?response.kernel, reference = ?response.reference, "trace: KERNEL AND REFERENCE DISAGREE");
    } else {
        info!(instance = %id, packet = %response.packet.text, verdict = %verdict, "trace");
    }
    Ok(response)
}
