//! Built-in security group templates, after the ones Tencent Cloud offers:
//! open all, open major ports, and the Linux (SSH) and Windows (RDP)
//! defaults.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::model::{
    Action, AddressBlock, PortRange, Ports, Protocol, Remote, Rule, SecurityGroup, Service, SgId,
    Traffic, proto,
};
use crate::render;

/// A named recipe for a security group.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    pub name: &'static str,
    pub description: &'static str,
    ingress: fn() -> Vec<Rule>,
}

impl Template {
    /// The group with the given id.
    pub fn build(&self, id: SgId) -> SecurityGroup {
        SecurityGroup {
            id,
            name: Some(self.name.to_owned()),
            description: Some(self.description.to_owned()),
            ingress: (self.ingress)(),
            // Every template lets the instance reach out anywhere.
            egress: vec![rule(
                Protocol::All,
                None,
                Remote::Anywhere,
                "all outbound traffic",
            )],
        }
    }

    /// A native rule file defining the group, ready to drop into the rules
    /// directory.
    pub fn rule_file(&self, id: SgId) -> String {
        render::security_group_file(&self.build(id))
    }
}

/// Every built-in template.
pub const TEMPLATES: &[Template] = &[
    Template {
        name: "open-all",
        description: "accept all inbound and outbound traffic",
        ingress: open_all,
    },
    Template {
        name: "open-major-ports",
        description: "accept SSH (tcp 22), HTTP/HTTPS (tcp 80, 443), RDP (tcp 3389) and ping from anywhere, everything from private networks; all outbound",
        ingress: open_major_ports,
    },
    Template {
        name: "linux-ssh",
        description: "accept SSH (tcp 22) from anywhere; all outbound",
        ingress: linux_ssh,
    },
    Template {
        name: "windows-rdp",
        description: "accept RDP (tcp 3389) from anywhere; all outbound",
        ingress: windows_rdp,
    },
];

pub fn find(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

/// The template `name` as a group with id `id`.
pub fn template(name: &str, id: SgId) -> Option<SecurityGroup> {
    find(name).map(|t| t.build(id))
}

/// The template `name` as a native rule file defining group `id`.
pub fn rule_file(name: &str, id: SgId) -> Option<String> {
    find(name).map(|t| t.rule_file(id))
}

const PRIVATE_V4: [Ipv4Net; 3] = [
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 8),
    Ipv4Net::new_assert(Ipv4Addr::new(172, 16, 0, 0), 12),
    Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16),
];
/// Unique local addresses, IPv6's private range.
const PRIVATE_V6: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7);
const ANY_V4: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0);
const ANY_V6: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 0);

fn rule(protocol: Protocol, port: Option<u16>, remote: Remote, description: &str) -> Rule {
    let ports = match port {
        // Template ports are non-zero constants, so the list is never empty.
        Some(p) => Ports::List(PortRange::single(p).into_iter().collect()),
        None => Ports::All,
    };
    Rule {
        id: None,
        action: Action::Accept,
        traffic: Traffic::Service(Service { protocol, ports }),
        remote,
        description: Some(description.to_owned()),
        log: false,
    }
}

fn block(net: impl Into<IpNet>) -> Remote {
    Remote::Block(AddressBlock::Net(net.into()))
}

fn tcp(port: u16, description: &str) -> Rule {
    rule(
        Protocol::Number(proto::TCP),
        Some(port),
        Remote::Anywhere,
        description,
    )
}

fn open_all() -> Vec<Rule> {
    vec![rule(
        Protocol::All,
        None,
        Remote::Anywhere,
        "all inbound traffic",
    )]
}

fn open_major_ports() -> Vec<Rule> {
    let mut rules = vec![
        tcp(22, "SSH"),
        tcp(80, "HTTP"),
        tcp(443, "HTTPS"),
        tcp(3389, "RDP"),
        rule(
            Protocol::Number(proto::ICMP),
            None,
            block(ANY_V4),
            "ping (ICMP)",
        ),
        rule(
            Protocol::Number(proto::ICMPV6),
            None,
            block(ANY_V6),
            "ping (ICMPv6)",
        ),
    ];
    for net in PRIVATE_V4 {
        rules.push(rule(Protocol::All, None, block(net), "private network"));
    }
    rules.push(rule(
        Protocol::All,
        None,
        block(PRIVATE_V6),
        "private network (unique local)",
    ));
    rules
}

fn linux_ssh() -> Vec<Rule> {
    vec![tcp(22, "SSH")]
}

fn windows_rdp() -> Vec<Rule> {
    vec![tcp(3389, "RDP")]
}
