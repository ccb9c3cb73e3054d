//! Terse builders of model values for unit tests. The integration tests
//! under `tests/` write rule files instead.

use std::net::IpAddr;

use ipnet::IpNet;
use secgroup_model::{
    Action, AddressBlock, AddressRange, AddressSetGroupId, AddressSetId, Enforcement, Instance,
    InstanceId, LogMode, PortRange, Ports, Protocol, Remote, Rule, RuleSet, SecurityGroup, Service,
    ServiceSetGroupId, ServiceSetId, SgId, Traffic, proto,
};

pub fn sg_id(id: &str) -> SgId {
    SgId::new(id).unwrap_or_else(|| panic!("bad security group id {id:?}"))
}

pub fn instance_id(id: &str) -> InstanceId {
    InstanceId::new(id).unwrap_or_else(|| panic!("bad instance id {id:?}"))
}

pub fn ipm(id: &str) -> AddressSetId {
    AddressSetId::new(id).unwrap_or_else(|| panic!("bad address set id {id:?}"))
}

pub fn ipmg(id: &str) -> AddressSetGroupId {
    AddressSetGroupId::new(id).unwrap_or_else(|| panic!("bad address set group id {id:?}"))
}

pub fn ppm(id: &str) -> ServiceSetId {
    ServiceSetId::new(id).unwrap_or_else(|| panic!("bad service set id {id:?}"))
}

pub fn ppmg(id: &str) -> ServiceSetGroupId {
    ServiceSetGroupId::new(id).unwrap_or_else(|| panic!("bad service set group id {id:?}"))
}

pub fn ip(addr: &str) -> IpAddr {
    addr.parse()
        .unwrap_or_else(|e| panic!("bad address {addr:?}: {e}"))
}

pub fn net(cidr: &str) -> IpNet {
    cidr.parse()
        .unwrap_or_else(|e| panic!("bad cidr {cidr:?}: {e}"))
}

pub fn nets(cidrs: &[&str]) -> Vec<IpNet> {
    cidrs.iter().map(|c| net(c)).collect()
}

/// `"22,80-90"` → ports; `"all"` → every port.
pub fn ports(list: &str) -> Ports {
    if list == "all" {
        return Ports::All;
    }
    Ports::List(
        list.split(',')
            .map(|part| {
                let (lo, hi) = part.split_once('-').unwrap_or((part, part));
                let parse = |p: &str| {
                    p.parse::<u16>()
                        .unwrap_or_else(|e| panic!("bad port {p:?}: {e}"))
                };
                PortRange::new(parse(lo), parse(hi))
                    .unwrap_or_else(|| panic!("bad port range {part:?}"))
            })
            .collect(),
    )
}

pub fn tcp_service(list: &str) -> Service {
    Service {
        protocol: Protocol::Number(proto::TCP),
        ports: ports(list),
    }
}

pub fn udp_service(list: &str) -> Service {
    Service {
        protocol: Protocol::Number(proto::UDP),
        ports: ports(list),
    }
}

pub fn tcp(list: &str) -> Traffic {
    Traffic::Service(tcp_service(list))
}

pub fn udp(list: &str) -> Traffic {
    Traffic::Service(udp_service(list))
}

pub fn protocol(number: u8) -> Traffic {
    Traffic::Service(Service {
        protocol: Protocol::Number(number),
        ports: Ports::All,
    })
}

pub fn all() -> Traffic {
    Traffic::Service(Service {
        protocol: Protocol::All,
        ports: Ports::All,
    })
}

pub fn anywhere() -> Remote {
    Remote::Anywhere
}

pub fn block_net(cidr: &str) -> Remote {
    Remote::Block(AddressBlock::Net(net(cidr)))
}

pub fn range_block(first: &str, last: &str) -> AddressBlock {
    AddressBlock::Range(
        AddressRange::new(ip(first), ip(last))
            .unwrap_or_else(|| panic!("bad range {first}-{last}")),
    )
}

pub fn block_range(first: &str, last: &str) -> Remote {
    Remote::Block(range_block(first, last))
}

pub fn sg_ref(id: &str) -> Remote {
    Remote::SecurityGroup(sg_id(id))
}

pub fn accept(traffic: Traffic, remote: Remote) -> Rule {
    Rule {
        id: None,
        action: Action::Accept,
        traffic,
        remote,
        description: None,
        log: false,
    }
}

pub fn drop(traffic: Traffic, remote: Remote) -> Rule {
    Rule {
        action: Action::Drop,
        ..accept(traffic, remote)
    }
}

pub fn group(id: &str, ingress: Vec<Rule>, egress: Vec<Rule>) -> SecurityGroup {
    SecurityGroup {
        id: sg_id(id),
        name: None,
        description: None,
        ingress,
        egress,
    }
}

pub fn instance(id: &str, interface: Option<&str>, ips: &[&str], groups: &[&str]) -> Instance {
    Instance {
        id: instance_id(id),
        host: None,
        interface: interface.map(str::to_owned),
        mac: None,
        ips: ips.iter().map(|a| ip(a)).collect(),
        allowed_address_pairs: Vec::new(),
        port_security: true,
        security_groups: groups.iter().map(|g| sg_id(g)).collect(),
        log: LogMode::None,
        enforcement: Enforcement::Enforce,
    }
}

pub fn rule_set(groups: Vec<SecurityGroup>, instances: Vec<Instance>) -> RuleSet {
    RuleSet {
        security_groups: groups.into_iter().map(|g| (g.id.clone(), g)).collect(),
        instances: instances.into_iter().map(|i| (i.id.clone(), i)).collect(),
        ..RuleSet::default()
    }
}
