//! `secgroupctl trace`: which rule decides a packet, according to the
//! kernel program (run by the daemon on the live tables) and to the
//! reference evaluator. The two must agree; when they do not, that is a
//! bug in secgroup, and this command says so as loudly as it can.

use std::net::IpAddr;

use secgroup_api::{
    ConntrackEntry, Direction, TracePacket, TraceRequest, TraceResponse, TracedRule, paths,
};
use secgroup_model::{Protocol, proto};

use crate::cli::{DirectionArg, TraceArgs};
use crate::daemon::Daemon;
use crate::outcome::{Code, Error, Output, Result, json};

pub fn run(daemon: &Daemon, args: &TraceArgs, as_json: bool) -> Result<Output> {
    let request = TraceRequest {
        instance: args.instance.clone(),
        direction: match args.direction {
            DirectionArg::Ingress => Direction::Ingress,
            DirectionArg::Egress => Direction::Egress,
        },
        protocol: args.protocol.clone(),
        remote: args.remote,
        port: args.port,
        local: args.local,
        source_mac: args.source_mac.clone(),
        source_port: args.source_port,
        icmp_type: args.icmp_type,
        icmp_code: args.icmp_code,
        icmp_id: args.icmp_id,
        tcp_flags: args.tcp_flags.clone(),
    };
    // A 400 is secgroupd finding the request malformed: what `check`
    // cannot see from here (an instance without an address of the
    // remote's family), or a check this secgroupctl does not know yet.
    let response: TraceResponse =
        daemon
            .post(paths::TRACE, Some(&request))
            .map_err(|e| match e {
                Error::Refused {
                    status: 400,
                    message,
                } => Error::Usage(message),
                e => e,
            })?;
    let output = if as_json {
        json(&response)?
    } else {
        Output::success(render(&response))
    };
    if response.disagree {
        return Ok(output.with_code(Code::Failed).with_stderr(
            "secgroupctl: THE KERNEL AND THE REFERENCE EVALUATOR DISAGREE about this packet. \
             This is a bug in secgroup: please report it with the output of this command run with --json.\n",
        ));
    }
    let code = if response.kernel.action == "accept" {
        Code::Success
    } else {
        Code::No
    };
    Ok(output.with_code(code))
}

fn address(addr: IpAddr, port: Option<u16>) -> String {
    match (addr, port) {
        (_, None) => addr.to_string(),
        (IpAddr::V4(a), Some(p)) => format!("{a}:{p}"),
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
    }
}

/// `tcp 203.0.113.9:61000 > 198.51.100.2:22`, `icmp 203.0.113.9 >
/// 198.51.100.2 (echo id 61000)`.
fn packet_text(packet: &TracePacket) -> String {
    let protocol = Protocol::Number(packet.protocol);
    match packet.protocol {
        proto::TCP => format!(
            "{protocol} {} > {} [{}]",
            address(packet.src, Some(packet.src_port)),
            address(packet.dst, Some(packet.dst_port)),
            packet.tcp_flags.as_deref().unwrap_or("syn")
        ),
        proto::UDP => format!(
            "{protocol} {} > {}",
            address(packet.src, Some(packet.src_port)),
            address(packet.dst, Some(packet.dst_port))
        ),
        proto::ICMP | proto::ICMPV6 => {
            let v6 = packet.protocol == proto::ICMPV6;
            let (icmp_type, code) = (
                packet.icmp_type.unwrap_or(if v6 { 128 } else { 8 }),
                packet.icmp_code.unwrap_or(0),
            );
            match (v6, icmp_type) {
                (false, 8) | (true, 128) => format!(
                    "{protocol} echo request {} > {} (id {})",
                    packet.src, packet.dst, packet.src_port
                ),
                (false, 0) | (true, 129) => format!(
                    "{protocol} echo reply {} > {} (id {})",
                    packet.src, packet.dst, packet.src_port
                ),
                _ => format!(
                    "{protocol} type {icmp_type} code {code} {} > {}",
                    packet.src, packet.dst
                ),
            }
        }
        _ => format!("{protocol} {} > {}", packet.src, packet.dst),
    }
}

/// `established tcp flow opened by egress (sg-web egress #0)` and, on a
/// second line, `3/2 packets in/out, expires in 2h`; or that there is
/// none.
fn conntrack_text(entry: Option<&ConntrackEntry>) -> String {
    let Some(e) = entry else {
        return "no tracked flow: classified as a new flow by the rules".to_owned();
    };
    let opened = match e.direction {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    };
    let rule = e.rule.as_ref().map_or_else(String::new, |rule| {
        let direction = match rule.direction {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        };
        format!(" ({} {direction} #{})", rule.security_group, rule.index)
    });
    // Two lines: the flow, then its counts (a line must fit 100 columns).
    format!(
        "{} {} flow opened by {opened}{rule}\n{:11}{}/{} packets in/out, expires in {}",
        e.state,
        e.protocol,
        "",
        e.packets_in,
        e.packets_out,
        crate::fmt::span_ms(e.expires_in_ms)
    )
}

/// Prose broken at spaces into lines of at most `width` characters (a
/// longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

/// `rule 2 (sg-web ingress #1)`.
fn rule_name(rule: &TracedRule) -> String {
    match &rule.origin {
        Some(o) => {
            let direction = match o.direction {
                Direction::Ingress => "ingress",
                Direction::Egress => "egress",
            };
            format!(
                "rule {} ({} {direction} #{})",
                rule.position, o.security_group, o.index
            )
        }
        None => format!("rule {}", rule.position),
    }
}

/// What the kernel's reason means when no rule decided.
fn reason_text(reason: &str) -> String {
    match reason {
        "drop-default" => "no rule matched".to_owned(),
        "accept-implicit" => "implicit allow".to_owned(),
        "accept-established" => "a packet of a tracked flow".to_owned(),
        "accept-reply" => "a reply of a tracked flow".to_owned(),
        "accept-related" => "related to a tracked flow".to_owned(),
        other => other.to_owned(),
    }
}

fn render(trace: &TraceResponse) -> String {
    let label = |name: &str, value: &str| format!("{name:<11}{value}\n");
    let direction = match trace.direction {
        Direction::Ingress => "ingress to",
        Direction::Egress => "egress from",
    };
    let mut text = label(
        "packet",
        &format!(
            "{direction} {} ({}): {}",
            trace.instance,
            trace.interface,
            packet_text(&trace.packet)
        ),
    );
    let kernel = &trace.kernel;
    let by_flow = matches!(
        kernel.reason.as_str(),
        "accept-established" | "accept-reply" | "accept-related"
    );
    let kernel_why = match &kernel.rule {
        // The rule that accepted the flow's first packet, not this one.
        Some(rule) if by_flow => format!("by the tracked flow of {}", rule_name(rule)),
        Some(rule) => format!("by {}", rule_name(rule)),
        None => reason_text(&kernel.reason),
    };
    text.push_str(&label(
        "kernel",
        &format!(
            "{:<7}{kernel_why}  [{}, {:.1} µs]",
            kernel.action,
            kernel.reason,
            kernel.duration_ns as f64 / 1000.0
        ),
    ));
    let reference = &trace.reference;
    let reference_why = match &reference.rule {
        Some(rule) => format!("by {}", rule_name(rule)),
        None => reference.matched.clone(),
    };
    text.push_str(&label(
        "reference",
        &format!("{:<7}{reference_why}", reference.action),
    ));
    // The rule itself, once when both name the same one.
    let mut rules: Vec<&TracedRule> = kernel.rule.iter().chain(&reference.rule).collect();
    rules.dedup_by(|a, b| a.position == b.position && a.text == b.text);
    for rule in rules {
        if let Some(rule_text) = &rule.text {
            text.push_str(&label(
                &format!("rule {}", rule.position),
                // Addresses and ports: never cut.
                rule_text,
            ));
        }
    }
    text.push_str(&label(
        "conntrack",
        &conntrack_text(trace.conntrack.as_ref()),
    ));
    if let Some(note) = &trace.note {
        for (i, line) in wrap(note, 88).iter().enumerate() {
            text.push_str(&label(if i == 0 { "note" } else { "" }, line));
        }
    }
    let verdict = if trace.disagree {
        format!(
            "!!! DISAGREEMENT: kernel: {}, {kernel_why}; reference evaluator: {}, {reference_why} !!!",
            kernel.action, reference.action
        )
    } else {
        format!(
            "{}: the kernel and the reference evaluator agree",
            kernel.action.to_uppercase()
        )
    };
    text.push_str(&label("verdict", &verdict));
    text
}

#[cfg(test)]
mod tests {
    use secgroup_api::{KernelVerdict, ReferenceVerdict, RuleRef};

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn trace(kernel: KernelVerdict, reference: ReferenceVerdict, disagree: bool) -> TraceResponse {
        TraceResponse {
            instance: "ins-vm".into(),
            interface: "tap-vm".into(),
            direction: Direction::Ingress,
            packet: TracePacket {
                protocol: 6,
                src: ip("203.0.113.9"),
                src_port: 61000,
                dst: ip("198.51.100.2"),
                dst_port: 22,
                tcp_flags: Some("syn".into()),
                icmp_type: None,
                icmp_code: None,
                text: String::new(),
            },
            kernel,
            reference,
            disagree,
            note: None,
            conntrack: None,
        }
    }

    fn ssh_rule() -> TracedRule {
        TracedRule {
            position: 1,
            origin: Some(RuleRef {
                security_group: "sg-vm".into(),
                direction: Direction::Ingress,
                index: 1,
            }),
            text: Some("accept tcp:22 from 203.0.113.0/24 (sg-vm ingress #1)".into()),
        }
    }

    #[test]
    fn agreement() {
        let t = trace(
            KernelVerdict {
                action: "accept".into(),
                reason: "accept-rule".into(),
                rule: Some(ssh_rule()),
                duration_ns: 1250,
            },
            ReferenceVerdict {
                action: "accept".into(),
                port_security: None,
                matched: "sg-vm ingress #1".into(),
                rule: Some(ssh_rule()),
            },
            false,
        );
        assert_eq!(
            render(&t),
            "packet     ingress to ins-vm (tap-vm): tcp 203.0.113.9:61000 > 198.51.100.2:22 [syn]\n\
             kernel     accept by rule 1 (sg-vm ingress #1)  [accept-rule, 1.2 µs]\n\
             reference  accept by rule 1 (sg-vm ingress #1)\n\
             rule 1     accept tcp:22 from 203.0.113.0/24 (sg-vm ingress #1)\n\
             conntrack  no tracked flow: classified as a new flow by the rules\n\
             verdict    ACCEPT: the kernel and the reference evaluator agree\n"
        );
    }

    #[test]
    fn disagreement_is_loud() {
        let t = trace(
            KernelVerdict {
                action: "accept".into(),
                reason: "accept-rule".into(),
                rule: Some(ssh_rule()),
                duration_ns: 900,
            },
            ReferenceVerdict {
                action: "drop".into(),
                port_security: None,
                matched: "no rule matched".into(),
                rule: None,
            },
            true,
        );
        let text = render(&t);
        assert!(
            text.ends_with(
                "verdict    !!! DISAGREEMENT: kernel: accept, by rule 1 (sg-vm ingress #1); \
                 reference evaluator: drop, no rule matched !!!\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("reference  drop   no rule matched\n"),
            "{text}"
        );
    }

    #[test]
    fn established() {
        let mut t = trace(
            KernelVerdict {
                action: "accept".into(),
                reason: "accept-established".into(),
                rule: None,
                duration_ns: 900,
            },
            ReferenceVerdict {
                action: "drop".into(),
                port_security: None,
                matched: "no rule matched".into(),
                rule: None,
            },
            false,
        );
        t.packet.tcp_flags = Some("ack".into());
        t.conntrack = Some(ConntrackEntry {
            instance: Some("ins-vm".into()),
            ifindex: 7,
            protocol: "tcp".into(),
            local: ip("198.51.100.2"),
            local_port: 22,
            remote: ip("203.0.113.9"),
            remote_port: 61000,
            direction: Direction::Ingress,
            state: "established".into(),
            packets_in: 3,
            packets_out: 2,
            bytes_in: 180,
            bytes_out: 120,
            age_ms: 1500,
            expires_in_ms: 7_199_500,
            rule: ssh_rule().origin,
        });
        let text = render(&t);
        assert!(
            text.contains("tcp 203.0.113.9:61000 > 198.51.100.2:22 [ack]\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "kernel     accept a packet of a tracked flow  [accept-established, 0.9 µs]\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "conntrack  established tcp flow opened by ingress (sg-vm ingress #1)\n           \
                 3/2 packets in/out, expires in 119m\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn packets() {
        let check = |protocol: u8, src: &str, dst: &str, expected: &str| {
            let packet = TracePacket {
                protocol,
                src: ip(src),
                src_port: 61001,
                dst: ip(dst),
                dst_port: 53,
                tcp_flags: None,
                icmp_type: None,
                icmp_code: None,
                text: String::new(),
            };
            assert_eq!(packet_text(&packet), expected);
        };
        check(
            17,
            "198.51.100.2",
            "203.0.113.9",
            "udp 198.51.100.2:61001 > 203.0.113.9:53",
        );
        check(
            6,
            "2001:db8::2",
            "2001:db8::9",
            "tcp [2001:db8::2]:61001 > [2001:db8::9]:53 [syn]",
        );
        check(
            1,
            "203.0.113.9",
            "198.51.100.2",
            "icmp echo request 203.0.113.9 > 198.51.100.2 (id 61001)",
        );
        check(
            47,
            "198.51.100.2",
            "203.0.113.9",
            "gre 198.51.100.2 > 203.0.113.9",
        );
    }
}
