//! The example rules directory (`config/examples`), compiled: a realistic
//! mix of both file formats, every kind of reference and both families.

use std::net::IpAddr;
use std::path::PathBuf;

use secgroup_model::{Direction, InstanceId, Limits, Ports, Protocol, SourceFile};
use secgroup_policy::{Matched, Packet, Policy, compile};

fn examples() -> Policy {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/examples");
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
                .path()
        })
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (path.display().to_string(), bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no rule files in {}", dir.display());
    let sources: Vec<SourceFile<'_>> = files
        .iter()
        .map(|(name, bytes)| SourceFile { name, bytes })
        .collect();
    match secgroup_model::load(&sources, &Limits::default()) {
        Ok(rules) => compile(&rules),
        Err(diagnostics) => panic!("the examples do not load:\n{diagnostics}"),
    }
}

fn tcp(remote: &str, dst_port: u16) -> Packet {
    let remote: IpAddr = remote.parse().unwrap_or_else(|e| panic!("{remote}: {e}"));
    Packet {
        protocol: 6,
        remote,
        local: remote,
        src_port: 40000,
        dst_port,
        icmp_type: 0,
        icmp_code: 0,
    }
}

#[test]
fn example_verdicts() {
    let policy = examples();
    let cases: &[(&str, Direction, Packet, &str)] = &[
        // The Tencent-format group: PolicyIndex order, security-group refs.
        (
            "ins-db-1",
            Direction::Ingress,
            tcp("198.51.100.5", 3306),
            "accept by sg-db ingress #0",
        ),
        (
            "ins-db-1",
            Direction::Ingress,
            tcp("198.51.100.9", 22),
            "accept by sg-db ingress #1",
        ),
        (
            "ins-db-1",
            Direction::Ingress,
            tcp("203.0.113.9", 3306),
            "drop by sg-db ingress #3",
        ),
        // The blocklist.
        (
            "ins-public-web",
            Direction::Ingress,
            tcp("203.0.113.66", 443),
            "drop by sg-blocklist ingress #0",
        ),
        (
            "ins-public-web",
            Direction::Ingress,
            tcp("203.0.113.77", 443),
            "drop by sg-blocklist ingress #1",
        ),
        (
            "ins-public-web",
            Direction::Ingress,
            tcp("203.0.113.78", 443),
            "accept by sg-blocklist ingress #2",
        ),
    ];
    for (instance, direction, packet, expected) in cases {
        let id = InstanceId::new(instance).unwrap_or_else(|| panic!("bad id {instance}"));
        let verdict = policy
            .evaluate(&id, *direction, packet)
            .unwrap_or_else(|| panic!("no instance {instance} in the examples"));
        assert_eq!(
            verdict.to_string(),
            *expected,
            "{instance} {direction} {packet}"
        );
    }
}

/// A packet `rule` matches, built from its first service and prefix; `None`
/// when the rule matches nothing.
fn packet_for(rule: &secgroup_policy::EffectiveRule) -> Option<Packet> {
    let service = rule.services.first()?;
    let remote = rule.remotes.first()?.network();
    let protocol = match service.protocol {
        Protocol::All => 6,
        Protocol::Number(n) => n,
    };
    let dst_port = match &service.ports {
        Ports::All => 0,
        Ports::List(ranges) => ranges.first()?.lo(),
    };
    Some(Packet {
        protocol,
        remote,
        local: remote,
        src_port: 0,
        dst_port,
        // Stay clear of the implicit allows.
        icmp_type: 8,
        icmp_code: 0,
    })
}

#[test]
fn instance_lists_are_their_groups_in_binding_order() {
    let policy = examples();
    for instance in policy.instances.values() {
        for direction in Direction::ALL {
            let expected: Vec<_> = instance
                .security_groups
                .iter()
                .flat_map(|sg| {
                    let group = policy
                        .security_groups
                        .get(sg)
                        .unwrap_or_else(|| panic!("{}: unknown group {sg}", instance.id));
                    group.rules(direction).rules.to_vec()
                })
                .collect();
            assert_eq!(
                instance.rules(direction).rules[..],
                expected[..],
                "{} {direction}",
                instance.id
            );
            for (position, rule) in instance.rules(direction).rules.iter().enumerate() {
                // Origins point back at the right rule.
                let group = &policy.security_groups[&rule.origin.sg];
                assert_eq!(rule.origin.direction, direction);
                assert_eq!(&group.rules(direction).rules[rule.origin.index], rule);
                // A packet the rule matches is decided by it or earlier.
                let Some(packet) = packet_for(rule) else {
                    continue;
                };
                assert!(rule.matches(&packet), "{rule} does not match {packet}");
                match instance.evaluate(direction, &packet).matched {
                    Matched::Rule { position: p, .. } => assert!(
                        p <= position,
                        "{} {direction}: {packet} decided by #{p}, after {rule} at #{position}",
                        instance.id
                    ),
                    other => panic!(
                        "{} {direction}: {packet} got {other}, not {rule}",
                        instance.id
                    ),
                }
            }
        }
    }
}
