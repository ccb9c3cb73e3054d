//! Tencent export: every group of the examples and one using every kind
//! of traffic and remote, written in Tencent's format and loaded back.

use std::fs;
use std::path::Path;

use ipnet::IpNet;
use secgroup_model::render::{self, tencent_group_file as group_file};
use secgroup_model::{
    AddressBlock, Limits, Remote, Rule, RuleSet, SecurityGroup, SgId, SourceFile,
};

/// The examples directory, loaded.
fn examples() -> RuleSet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples");
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let bytes = fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), bytes)
        })
        .collect();
    files.sort();
    let sources: Vec<SourceFile<'_>> = files
        .iter()
        .map(|(name, bytes)| SourceFile { name, bytes })
        .collect();
    secgroup_model::load(&sources, &Limits::default())
        .unwrap_or_else(|e| panic!("loading the examples: {e}"))
}

/// Loads `exported` (the file for one group) next to a file holding
/// everything else of `rules`, which it may refer to.
fn reimport(rules: &RuleSet, id: &SgId, exported: &str) -> RuleSet {
    let mut context = rules.clone();
    context.security_groups.remove(id);
    let context_file = render::rule_file(&context);
    let files = [
        SourceFile {
            name: "context.json",
            bytes: context_file.as_bytes(),
        },
        SourceFile {
            name: "exported.json",
            bytes: exported.as_bytes(),
        },
    ];
    secgroup_model::load(&files, &Limits::default())
        .unwrap_or_else(|e| panic!("re-importing {id}:\n{e}\n{exported}"))
}

/// What the Tencent round trip must give: every "anywhere" rule as an
/// IPv4 rule followed by an IPv6 one, and no rule ids (Tencent has none).
fn split_anywhere(group: &SecurityGroup) -> SecurityGroup {
    let split = |rules: &[Rule]| -> Vec<Rule> {
        rules
            .iter()
            .map(|r| Rule {
                id: None,
                ..r.clone()
            })
            .flat_map(|r| match r.remote {
                Remote::Anywhere => ["0.0.0.0/0", "::/0"]
                    .iter()
                    .map(|net| Rule {
                        remote: Remote::Block(AddressBlock::Net(
                            net.parse::<IpNet>().unwrap_or_else(|e| panic!("{e}")),
                        )),
                        ..r.clone()
                    })
                    .collect::<Vec<_>>(),
                _ => vec![r],
            })
            .collect()
    };
    SecurityGroup {
        ingress: split(&group.ingress),
        egress: split(&group.egress),
        ..group.clone()
    }
}

/// A group using every kind of traffic and remote, with text that
/// needs escaping.
fn everything() -> RuleSet {
    let file = r#"{
  "security_groups": [
    { "id": "sg-all-kinds", "name": "all \"kinds\"", "description": "ünïcode\tand\\slashes",
      "ingress": [
        { "id": "ssh", "action": "accept", "protocol": "tcp", "port": "22,8000-8010", "remote": "203.0.113.0/24", "description": "ssh" },
        { "action": "drop", "protocol": "udp", "port": 53, "remote": "198.51.100.10-198.51.100.20" },
        { "action": "accept", "protocol": "icmpv6", "remote": "2001:db8::/32" },
        { "action": "accept", "protocol": 132, "remote": "2001:db8::1-2001:db8::9" },
        { "action": "accept", "protocol": "gre", "remote": "sg-other" },
        { "action": "accept", "service": "ppm-dns", "remote": "ipm-office" },
        { "action": "accept", "service": "ppmg-infra", "remote": "ipmg-corp" },
        { "id": "deny-rest", "action": "drop", "protocol": "all" }
      ],
      "egress": [ { "action": "accept", "protocol": "icmp", "remote": "198.51.100.7" } ] },
    { "id": "sg-other" }
  ],
  "address_sets": [ { "id": "ipm-office", "addresses": ["203.0.113.0/25"] } ],
  "address_set_groups": [ { "id": "ipmg-corp", "sets": ["ipm-office"] } ],
  "service_sets": [ { "id": "ppm-dns", "services": ["udp:53", "tcp:53"] } ],
  "service_set_groups": [ { "id": "ppmg-infra", "sets": ["ppm-dns"] } ]
}"#;
    let files = [SourceFile {
        name: "everything.json",
        bytes: file.as_bytes(),
    }];
    secgroup_model::load(&files, &Limits::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn round_trips() {
    let mut checked = 0;
    for rules in [examples(), everything()] {
        for (id, group) in &rules.security_groups {
            let native = render::security_group_file(group);
            assert_eq!(
                reimport(&rules, id, &native),
                rules,
                "native export of {id}"
            );

            let (tencent, split) = group_file(group);
            let reimported = reimport(&rules, id, &tencent);
            let expected = split_anywhere(group);
            assert_eq!(
                reimported.security_groups.get(id),
                Some(&expected),
                "Tencent export of {id}:\n{tencent}"
            );
            let anywhere = group
                .ingress
                .iter()
                .chain(&group.egress)
                .filter(|r| r.remote == Remote::Anywhere)
                .count();
            assert_eq!(split, anywhere, "{id}");
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} groups checked");
}

#[test]
fn shape() {
    let rules = everything();
    let id = SgId::new("sg-all-kinds").unwrap_or_else(|| panic!("id"));
    let (text, split) = group_file(&rules.security_groups[&id]);
    assert_eq!(split, 1);
    let expected = r#"{
  "SecurityGroupId": "sg-all-kinds",
  "SecurityGroupName": "all \"kinds\"",
  "SecurityGroupDesc": "ünïcode\tand\\slashes",
  "SecurityGroupPolicySet": {
    "Version": "1",
    "Ingress": [
      { "PolicyIndex": 0, "Protocol": "TCP", "Port": "22,8000-8010", "CidrBlock": "203.0.113.0/24", "Action": "ACCEPT", "PolicyDescription": "ssh" },
      { "PolicyIndex": 1, "Protocol": "UDP", "Port": "53", "CidrBlock": "198.51.100.10-198.51.100.20", "Action": "DROP" },
      { "PolicyIndex": 2, "Protocol": "ICMPv6", "Port": "ALL", "Ipv6CidrBlock": "2001:db8::/32", "Action": "ACCEPT" },
      { "PolicyIndex": 3, "Protocol": "132", "Port": "ALL", "Ipv6CidrBlock": "2001:db8::1-2001:db8::9", "Action": "ACCEPT" },
      { "PolicyIndex": 4, "Protocol": "GRE", "Port": "ALL", "SecurityGroupId": "sg-other", "Action": "ACCEPT" },
      { "PolicyIndex": 5, "ServiceTemplate": { "ServiceId": "ppm-dns" }, "AddressTemplate": { "AddressId": "ipm-office" }, "Action": "ACCEPT" },
      { "PolicyIndex": 6, "ServiceTemplate": { "ServiceGroupId": "ppmg-infra" }, "AddressTemplate": { "AddressGroupId": "ipmg-corp" }, "Action": "ACCEPT" },
      { "PolicyIndex": 7, "Protocol": "ALL", "Port": "ALL", "CidrBlock": "0.0.0.0/0", "Action": "DROP" },
      { "PolicyIndex": 8, "Protocol": "ALL", "Port": "ALL", "Ipv6CidrBlock": "::/0", "Action": "DROP" }
    ],
    "Egress": [
      { "PolicyIndex": 0, "Protocol": "ICMP", "Port": "ALL", "CidrBlock": "198.51.100.7/32", "Action": "ACCEPT" }
    ]
  }
}
"#;
    assert_eq!(text, expected);
}
