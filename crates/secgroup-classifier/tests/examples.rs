//! Small rule lists with their expected tables and verdicts, written out.

mod common;

use std::net::IpAddr;

use secgroup_classifier::build;
use secgroup_model::Direction;
use secgroup_policy::{Matched, Packet};

struct Case {
    rules: &'static [&'static str],
    /// `common::render` of the table.
    table: &'static str,
    /// `protocol port remote` and the expected first matching position.
    packets: &'static [(&'static str, Option<usize>)],
}

/// Builds the table, compares it with the expected rendering, and checks
/// each packet against both the expectation and the reference evaluator.
fn check(case: &Case) {
    let list = common::list(case.rules);
    let table = build(&list).unwrap_or_else(|e| panic!("{:?}: {e}", case.rules));
    let rendered = common::render(&table);
    let expected = case.table.trim();
    if rendered != expected {
        panic!(
            "rules {:#?}\ntable:\n{rendered}\nexpected:\n{expected}",
            case.rules
        );
    }
    for &(packet, expected) in case.packets {
        let (protocol, port, remote) = parse_packet(packet);
        let got = table.classify(protocol, port, remote);
        let reference = reference(&list, protocol, port, remote);
        if got != expected || reference != expected {
            panic!(
                "rules {:#?}\npacket {packet}: classify {got:?}, evaluate {reference:?}, expected {expected:?}",
                case.rules
            );
        }
    }
}

fn parse_packet(text: &str) -> (u8, u16, IpAddr) {
    let words: Vec<&str> = text.split_whitespace().collect();
    let [protocol, port, remote] = words[..] else {
        panic!("packet {text:?}: expected `protocol port remote`");
    };
    let protocol = match protocol {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "icmpv6" => 58,
        "gre" => 47,
        n => n
            .parse()
            .unwrap_or_else(|_| panic!("packet {text:?}: bad protocol")),
    };
    let port = port
        .parse()
        .unwrap_or_else(|_| panic!("packet {text:?}: bad port"));
    let remote = remote
        .parse()
        .unwrap_or_else(|_| panic!("packet {text:?}: bad address"));
    (protocol, port, remote)
}

fn reference(
    list: &secgroup_policy::RuleList,
    protocol: u8,
    dst_port: u16,
    remote: IpAddr,
) -> Option<usize> {
    let packet = Packet {
        protocol,
        remote,
        local: remote,
        src_port: 40000,
        dst_port,
        // Echo request: not implicit-allow traffic.
        icmp_type: if protocol == 58 { 128 } else { 8 },
        icmp_code: 0,
    };
    match list.evaluate(Direction::Ingress, &packet).matched {
        Matched::Rule { position, .. } => Some(position),
        Matched::DefaultDrop => None,
        Matched::Implicit(allow) => {
            panic!("test packet {packet} is implicit-allow traffic ({allow})")
        }
    }
}

const CASES: &[Case] = &[
    // The worked example of the crate docs.
    Case {
        rules: &[
            "drop tcp:22 10.1.0.0/16",
            "accept tcp:20-25 10.0.0.0/8",
            "accept all 0.0.0.0/0",
        ],
        table: "
v4 0.0.0.0/0 {2}
v4 10.0.0.0/8 {1, 2}
v4 10.1.0.0/16 {0, 1, 2}
l4 all {2}
l4 tcp:20-23 {1, 2}
l4 tcp:22 {0, 1, 2}
l4 tcp:24-25 {1, 2}
classes 3",
        packets: &[
            ("tcp 22 10.1.2.3", Some(0)),
            ("tcp 22 10.9.9.9", Some(1)),
            ("tcp 25 10.1.2.3", Some(1)),
            ("tcp 26 10.1.2.3", Some(2)),
            ("tcp 19 10.1.2.3", Some(2)),
            ("udp 53 10.1.2.3", Some(2)),
            ("tcp 22 2001:db8::1", None),
        ],
    },
    Case {
        rules: &[],
        table: "classes 0",
        packets: &[("tcp 22 192.0.2.1", None), ("icmp 0 ::1", None)],
    },
    // Rules with no services or no remotes can never match: they may sit in
    // one field's sets, never in both.
    Case {
        rules: &[
            "accept none 10.0.0.0/8",
            "drop tcp none",
            "accept all 10.0.0.0/8",
        ],
        table: "
v4 10.0.0.0/8 {0, 2}
l4 all {2}
l4 tcp {1, 2}
classes 3",
        packets: &[("tcp 80 10.0.0.1", Some(2)), ("udp 80 11.0.0.1", None)],
    },
    // `any` is both /0s; 0.0.0.0/0 alone is IPv4 only.
    Case {
        rules: &[
            "accept tcp:80 any",
            "drop all 2001:db8::/32",
            "accept all 0.0.0.0/0",
        ],
        table: "
v4 0.0.0.0/0 {0, 2}
v6 ::/0 {0}
v6 2001:db8::/32 {0, 1}
l4 all {1, 2}
l4 tcp:80 {0, 1, 2}
classes 5",
        packets: &[
            ("tcp 80 2001:db8::1", Some(0)),
            ("tcp 81 2001:db8::1", Some(1)),
            ("tcp 81 2001:db9::1", None),
            ("gre 0 2001:db9::1", None),
            ("gre 0 203.0.113.1", Some(2)),
        ],
    },
    // Members of a referenced group share one class, however many.
    Case {
        rules: &[
            "accept tcp:22 192.0.2.1/32,192.0.2.2/32,192.0.2.3/32",
            "accept udp:53 192.0.2.1/32,192.0.2.2/32,192.0.2.3/32",
            "drop all 192.0.2.0/24",
        ],
        table: "
v4 192.0.2.0/24 {2}
v4 192.0.2.1/32 {0, 1, 2}
v4 192.0.2.2/32 {0, 1, 2}
v4 192.0.2.3/32 {0, 1, 2}
l4 all {2}
l4 tcp:22 {0, 2}
l4 udp:53 {1, 2}
classes 4",
        packets: &[
            ("tcp 22 192.0.2.2", Some(0)),
            ("udp 53 192.0.2.3", Some(1)),
            ("tcp 22 192.0.2.4", Some(2)),
            ("tcp 22 192.0.3.1", None),
        ],
    },
    // A prefix whose set equals its parent's adds nothing and is left out.
    Case {
        rules: &["accept tcp+tcp:80 10.0.0.0/8"],
        table: "
v4 10.0.0.0/8 {0}
l4 tcp {0}
classes 1",
        packets: &[
            ("tcp 80 10.0.0.1", Some(0)),
            ("tcp 1 10.0.0.1", Some(0)),
            ("udp 80 10.0.0.1", None),
        ],
    },
    // Several services: each protocol and range becomes its own prefixes.
    Case {
        rules: &["accept tcp:1-3+udp:65534-65535+icmp 198.51.100.0/24"],
        table: "
v4 198.51.100.0/24 {0}
l4 icmp {0}
l4 tcp:1 {0}
l4 tcp:2-3 {0}
l4 udp:65534-65535 {0}
classes 1",
        packets: &[
            ("tcp 3 198.51.100.9", Some(0)),
            ("tcp 4 198.51.100.9", None),
            ("tcp 0 198.51.100.9", None),
            ("udp 65533 198.51.100.9", None),
            ("udp 65535 198.51.100.255", Some(0)),
            ("icmp 0 198.51.100.0", Some(0)),
            ("icmp 0 198.51.101.0", None),
        ],
    },
    // A single port inside a range inherits the range's rules.
    Case {
        rules: &["drop tcp:80 any", "accept tcp:1-1023 any"],
        table: "
v4 0.0.0.0/0 {0, 1}
v6 ::/0 {0, 1}
l4 tcp:1 {1}
l4 tcp:2-3 {1}
l4 tcp:4-7 {1}
l4 tcp:8-15 {1}
l4 tcp:16-31 {1}
l4 tcp:32-63 {1}
l4 tcp:64-127 {1}
l4 tcp:80 {0, 1}
l4 tcp:128-255 {1}
l4 tcp:256-511 {1}
l4 tcp:512-1023 {1}
classes 2",
        packets: &[
            ("tcp 80 192.0.2.1", Some(0)),
            ("tcp 79 ::1", Some(1)),
            ("tcp 1023 192.0.2.1", Some(1)),
            ("tcp 1024 192.0.2.1", None),
        ],
    },
    // A rule naming both halves of a prefix another rule inserted: the
    // lookup lands on the halves, which carry both rules.
    Case {
        rules: &[
            "drop all 10.0.0.0/25,10.0.0.128/25",
            "accept all 10.0.0.0/24",
        ],
        table: "
v4 10.0.0.0/24 {1}
v4 10.0.0.0/25 {0, 1}
v4 10.0.0.128/25 {0, 1}
l4 all {0, 1}
classes 2",
        packets: &[
            ("tcp 1 10.0.0.0", Some(0)),
            ("tcp 1 10.0.0.255", Some(0)),
            ("tcp 1 10.0.1.0", None),
        ],
    },
    // First match means lowest position, even when a later rule is more
    // specific.
    Case {
        rules: &["accept all 0.0.0.0/0", "drop tcp:22 192.0.2.7/32"],
        table: "
v4 0.0.0.0/0 {0}
v4 192.0.2.7/32 {0, 1}
l4 all {0}
l4 tcp:22 {0, 1}
classes 2",
        packets: &[("tcp 22 192.0.2.7", Some(0))],
    },
];

#[test]
fn examples() {
    for case in CASES {
        check(case);
    }
}
