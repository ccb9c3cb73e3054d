//! Times `compile` on a synthetic rules directory of 100 000 rules: 500
//! security groups of 100 ingress and 100 egress rules each, every kind of
//! remote and traffic, and 2 000 instances (half on this host) bound to
//! one to three groups each.
//!
//! The cost is mostly the output: every effective rule is a deep copy
//! (its services' port lists, its prefixes, its origin's group id), so a
//! rule naming a 100-service set costs a hundred allocations per instance
//! it lands in.
//!
//! `cargo bench -p secgroup-policy --bench compile`; the target is well
//! under a second per compile in release.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use secgroup_model::{
    Action, AddressBlock, AddressRange, AddressSet, AddressSetGroup, AddressSetGroupId,
    AddressSetId, Instance, InstanceId, PortRange, Ports, Protocol, Remote, Rule, RuleSet,
    SecurityGroup, Service, ServiceSet, ServiceSetGroup, ServiceSetGroupId, ServiceSetId, SgId,
    Traffic, proto,
};

const GROUPS: usize = 500;
const RULES_PER_DIRECTION: usize = 100;
const INSTANCES: usize = 2000;
const ADDRESS_SETS: usize = 50;
const SERVICE_SETS: usize = 20;
const ITERATIONS: usize = 10;

fn sg(i: usize) -> SgId {
    SgId::new(&format!("sg-{i:04}")).unwrap_or_else(|| panic!("sg id {i}"))
}

fn ipm(i: usize) -> AddressSetId {
    AddressSetId::new(&format!("ipm-{i:03}")).unwrap_or_else(|| panic!("ipm id {i}"))
}

fn ppm(i: usize) -> ServiceSetId {
    ServiceSetId::new(&format!("ppm-{i:03}")).unwrap_or_else(|| panic!("ppm id {i}"))
}

fn v4(i: usize) -> Ipv4Addr {
    // 10.0.0.0/8 keeps every generated address distinct and valid.
    Ipv4Addr::from(0x0a00_0000 | (i as u32 & 0x00ff_ffff))
}

fn v6(i: usize) -> Ipv6Addr {
    Ipv6Addr::from(0x2001_0db8_u128 << 96 | i as u128)
}

fn net4(i: usize, len: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new_assert(v4(i), len).trunc())
}

fn net6(i: usize, len: u8) -> IpNet {
    IpNet::V6(Ipv6Net::new_assert(v6(i), len).trunc())
}

fn range(first: IpAddr, last: IpAddr) -> AddressBlock {
    AddressBlock::Range(AddressRange::new(first, last).unwrap_or_else(|| panic!("range")))
}

fn tcp(lo: u16, hi: u16) -> Service {
    Service {
        protocol: Protocol::Number(proto::TCP),
        ports: Ports::List(vec![
            PortRange::new(lo, hi).unwrap_or_else(|| panic!("ports {lo}-{hi}")),
        ]),
    }
}

fn rule(g: usize, r: usize) -> Rule {
    let n = g * 1000 + r;
    let remote = match r % 8 {
        0 => Remote::Anywhere,
        1 => Remote::Block(AddressBlock::Net(net4(n * 256, 24))),
        2 => Remote::Block(AddressBlock::Net(net6(n << 16, 112))),
        3 => Remote::Block(range(
            IpAddr::V4(v4(n * 7 + 3)),
            IpAddr::V4(v4(n * 7 + 1000)),
        )),
        4 => Remote::SecurityGroup(sg((g + r) % GROUPS)),
        5 => Remote::AddressSet(ipm(n % ADDRESS_SETS)),
        6 => Remote::AddressSetGroup(
            AddressSetGroupId::new("ipmg-all").unwrap_or_else(|| panic!("ipmg id")),
        ),
        _ => Remote::Block(AddressBlock::Net(net4(n, 32))),
    };
    let traffic = match r % 5 {
        0 => Traffic::Service(tcp(22, 22)),
        1 => Traffic::Service(tcp(8000 + r as u16, 9000)),
        2 => Traffic::ServiceSet(ppm(n % SERVICE_SETS)),
        3 => Traffic::ServiceSetGroup(
            ServiceSetGroupId::new("ppmg-all").unwrap_or_else(|| panic!("ppmg id")),
        ),
        _ => Traffic::Service(Service {
            protocol: Protocol::Number(proto::ICMP),
            ports: Ports::All,
        }),
    };
    Rule {
        id: None,
        action: if r.is_multiple_of(3) {
            Action::Drop
        } else {
            Action::Accept
        },
        traffic,
        remote,
        description: None,
        log: false,
    }
}

fn rule_set() -> RuleSet {
    let mut rules = RuleSet::default();
    for g in 0..GROUPS {
        let group = SecurityGroup {
            id: sg(g),
            name: Some(format!("group {g}")),
            description: None,
            ingress: (0..RULES_PER_DIRECTION).map(|r| rule(g, r)).collect(),
            egress: (0..RULES_PER_DIRECTION).map(|r| rule(g, r + 500)).collect(),
        };
        rules.security_groups.insert(group.id.clone(), group);
    }
    for i in 0..INSTANCES {
        let bound = 1 + i % 3;
        let instance = Instance {
            id: InstanceId::new(&format!("ins-{i:05}")).unwrap_or_else(|| panic!("ins id")),
            host: None,
            interface: i.is_multiple_of(2).then(|| format!("tap{i}")),
            mac: None,
            ips: vec![
                IpAddr::V4(v4(0x10_0000 + i)),
                IpAddr::V6(v6(0x1_0000_0000 + i)),
            ],
            allowed_address_pairs: Vec::new(),
            port_security: true,
            security_groups: (0..bound).map(|k| sg((i * 7 + k * 13) % GROUPS)).collect(),
            log: Default::default(),
            enforcement: Default::default(),
        };
        rules.instances.insert(instance.id.clone(), instance);
    }
    for s in 0..ADDRESS_SETS {
        let set = AddressSet {
            id: ipm(s),
            addresses: (0..20)
                .map(|k| AddressBlock::Net(net4(0x20_0000 + s * 4096 + k * 64, 26)))
                .chain([range(
                    IpAddr::V6(v6(s << 20)),
                    IpAddr::V6(v6((s << 20) + 999)),
                )])
                .collect(),
        };
        rules.address_sets.insert(set.id.clone(), set);
    }
    let all_sets = AddressSetGroup {
        id: AddressSetGroupId::new("ipmg-all").unwrap_or_else(|| panic!("ipmg id")),
        sets: (0..ADDRESS_SETS).step_by(5).map(ipm).collect(),
    };
    rules
        .address_set_groups
        .insert(all_sets.id.clone(), all_sets);
    for s in 0..SERVICE_SETS {
        let set = ServiceSet {
            id: ppm(s),
            services: (0..5)
                .map(|k| tcp(1000 + (s * 10 + k) as u16, 1000 + (s * 10 + k) as u16))
                .collect(),
        };
        rules.service_sets.insert(set.id.clone(), set);
    }
    let all_services = ServiceSetGroup {
        id: ServiceSetGroupId::new("ppmg-all").unwrap_or_else(|| panic!("ppmg id")),
        sets: (0..SERVICE_SETS).step_by(5).map(ppm).collect(),
    };
    rules
        .service_set_groups
        .insert(all_services.id.clone(), all_services);
    rules
}

fn main() {
    let rules = rule_set();
    let rule_count: usize = rules
        .security_groups
        .values()
        .map(|g| g.ingress.len() + g.egress.len())
        .sum();
    let mut times: Vec<Duration> = Vec::with_capacity(ITERATIONS);
    let mut effective = 0;
    for _ in 0..ITERATIONS {
        let start = Instant::now();
        let policy = black_box(secgroup_policy::compile(black_box(&rules)));
        times.push(start.elapsed());
        effective = policy
            .instances
            .values()
            .map(|i| i.ingress.rules.len() + i.egress.rules.len())
            .sum();
        // Dropping a policy this size takes time too; keep it out of the
        // measurement.
        drop(policy);
    }
    times.sort();
    println!(
        "compile: {rule_count} rules, {} instances, {effective} effective rules: \
         min {:?}, median {:?}, max {:?} over {ITERATIONS} runs",
        rules.instances.len(),
        times[0],
        times[ITERATIONS / 2],
        times[ITERATIONS - 1],
    );
}
