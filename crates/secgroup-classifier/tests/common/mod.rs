//! A one-line-per-rule notation for hand-written test lists, and a text
//! rendering of tables to compare against.
//!
//! `accept tcp:22,8000-8080+udp:53 10.0.0.0/8,2001:db8::/32`
//! - action: `accept` or `drop`;
//! - services joined by `+`: `all`, `tcp`, `udp`, `icmp`, `icmpv6`, `gre`,
//!   or a protocol number, with `:ports` (comma-separated ports and ranges)
//!   for TCP and UDP; `none` for no services;
//! - remotes: comma-separated prefixes, `any` for 0.0.0.0/0 + ::/0, `none`
//!   for no remotes.

#![allow(dead_code)]

use ipnet::IpNet;
use secgroup_classifier::Table;
use secgroup_model::{Action, Direction, PortRange, Ports, Protocol, Service, SgId, proto};
use secgroup_policy::{EffectiveRule, RuleList, RuleOrigin};

pub fn list(lines: &[&str]) -> RuleList {
    RuleList {
        rules: lines
            .iter()
            .enumerate()
            .map(|(index, line)| rule("sg-test", index, line))
            .collect(),
    }
}

pub fn rule(sg: &str, index: usize, line: &str) -> EffectiveRule {
    let words: Vec<&str> = line.split_whitespace().collect();
    let [action, services, remotes] = words[..] else {
        panic!("rule {line:?}: expected `action services remotes`");
    };
    let action = match action {
        "accept" => Action::Accept,
        "drop" => Action::Drop,
        other => panic!("rule {line:?}: bad action {other:?}"),
    };
    let services = match services {
        "none" => Vec::new(),
        services => services.split('+').map(|s| service(line, s)).collect(),
    };
    let remotes = match remotes {
        "none" => Vec::new(),
        "any" => vec![net("0.0.0.0/0"), net("::/0")],
        remotes => remotes.split(',').map(net).collect(),
    };
    EffectiveRule {
        origin: RuleOrigin {
            sg: SgId::new(sg).unwrap_or_else(|| panic!("bad sg id {sg:?}")),
            direction: Direction::Ingress,
            index,
            key: secgroup_policy::RuleKey::Content {
                digest: index as u64,
                nth: 0,
            },
        },
        action,
        services,
        remotes,
        log: false,
    }
}

fn service(line: &str, text: &str) -> Service {
    let (name, ports) = match text.split_once(':') {
        Some((name, ports)) => (name, Some(ports)),
        None => (text, None),
    };
    let protocol = match name {
        "all" => Protocol::All,
        "tcp" => Protocol::Number(proto::TCP),
        "udp" => Protocol::Number(proto::UDP),
        "icmp" => Protocol::Number(proto::ICMP),
        "icmpv6" => Protocol::Number(proto::ICMPV6),
        "gre" => Protocol::Number(proto::GRE),
        number => Protocol::Number(
            number
                .parse()
                .unwrap_or_else(|_| panic!("rule {line:?}: bad protocol {number:?}")),
        ),
    };
    let ports = match ports {
        None => Ports::All,
        Some(list) => Ports::List(list.split(',').map(|r| range(line, r)).collect()),
    };
    Service { protocol, ports }
}

fn range(line: &str, text: &str) -> PortRange {
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let port = |p: &str| {
        p.parse::<u16>()
            .unwrap_or_else(|_| panic!("rule {line:?}: bad port {p:?}"))
    };
    PortRange::new(port(lo), port(hi))
        .unwrap_or_else(|| panic!("rule {line:?}: bad range {text:?}"))
}

pub fn net(text: &str) -> IpNet {
    text.parse()
        .unwrap_or_else(|e| panic!("bad prefix {text:?}: {e}"))
}

/// `v4 10.0.0.0/8 {0, 2}` per entry (the class's rules spelled out), in
/// table order, then `classes N`.
pub fn render(table: &Table) -> String {
    let class = |id: u32| {
        let set = table.classes.get(id as usize).unwrap_or_else(|| {
            panic!(
                "entry points to class {id}, the table has {}",
                table.classes.len()
            )
        });
        format!("{set:?}")
    };
    let mut lines = Vec::new();
    lines.extend(
        table
            .v4
            .iter()
            .map(|&(p, c)| format!("v4 {p} {}", class(c))),
    );
    lines.extend(
        table
            .v6
            .iter()
            .map(|&(p, c)| format!("v6 {p} {}", class(c))),
    );
    lines.extend(
        table
            .l4
            .iter()
            .map(|&(p, c)| format!("l4 {p} {}", class(c))),
    );
    lines.push(format!("classes {}", table.classes.len()));
    lines.join("\n")
}
