//! `secgroupctl trace`: which rule decides a packet, according to the
//! kernel program (run by the daemon on the live tables) and to the
//! reference evaluator. The two must agree; when they do not, that is a
//! bug in secgroup, and this command says so as loudly as it can.

use std::net::IpAddr;

use secgroup_api::{Direction, TracePacket, TraceRequest, TraceResponse, TracedRule, paths};
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
        proto::TCP | proto::UDP => format!(
            "{protocol} {} > {}",
            address(packet.src, Some(packet.src_port)),
            address(packet.dst, Some(packet.dst_port))
        ),
        proto::ICMP | proto::ICMPV6 => format!(
            "{protocol} echo request {} > {} (id {})",
            packet.src, packet.dst, packet.src_port
        ),
        _ => format!("{protocol} {} > {}", packet.src, packet.dst),
    }
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
    let kernel_why = match &kernel.rule {
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
    if let Some(note) = &trace.note {
        text.push_str(&label("note", note));
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
                text: String::new(),
            },
            kernel,
            reference,
            disagree,
            note: None,
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
            "packet     ingress to ins-vm (tap-vm): tcp 203.0.113.9:61000 > 198.51.100.2:22\n\
             kernel     accept by rule 1 (sg-vm ingress #1)  [accept-rule, 1.2 µs]\n\
             reference  accept by rule 1 (sg-vm ingress #1)\n\
             rule 1     accept tcp:22 from 203.0.113.0/24 (sg-vm ingress #1)\n\
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
    fn packets() {
        let check = |protocol: u8, src: &str, dst: &str, expected: &str| {
            let packet = TracePacket {
                protocol,
                src: ip(src),
                src_port: 61001,
                dst: ip(dst),
                dst_port: 53,
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
            "tcp [2001:db8::2]:61001 > [2001:db8::9]:53",
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
