//! Writes a security group in Tencent Cloud's policy JSON, the shape
//! `secgroup-model` imports (docs/rule-files.md, "Importing Tencent Cloud
//! policy JSON"): importing the output gives the same group back, except
//! that a rule whose remote is "anywhere" becomes two policies (Tencent
//! has no "anywhere": `CidrBlock` 0.0.0.0/0, then `Ipv6CidrBlock` ::/0).

use std::net::IpAddr;

use secgroup_model::{
    Action, AddressBlock, Ports, Protocol, Remote, Rule, SecurityGroup, Traffic, proto,
};

/// The policy set version we write; Tencent bumps it on every change and
/// the importer ignores it.
const VERSION: &str = "1";

/// A Tencent policy file for `group`, and how many rules were split in
/// two because their remote is "anywhere".
pub fn group_file(group: &SecurityGroup) -> (String, usize) {
    let mut split = 0;
    let mut out = String::from("{\n");
    out.push_str(&format!(
        "  \"SecurityGroupId\": {},\n",
        quote(group.id.as_str())
    ));
    if let Some(name) = &group.name {
        out.push_str(&format!("  \"SecurityGroupName\": {},\n", quote(name)));
    }
    if let Some(description) = &group.description {
        out.push_str(&format!(
            "  \"SecurityGroupDesc\": {},\n",
            quote(description)
        ));
    }
    out.push_str("  \"SecurityGroupPolicySet\": {\n");
    out.push_str(&format!("    \"Version\": {},\n", quote(VERSION)));
    for (key, rules, last) in [
        ("Ingress", &group.ingress, false),
        ("Egress", &group.egress, true),
    ] {
        let mut policies = Vec::new();
        for rule in rules {
            let remotes = remotes(&rule.remote);
            if remotes.len() > 1 {
                split += 1;
            }
            for remote in remotes {
                policies.push(policy(policies.len(), rule, &remote));
            }
        }
        if policies.is_empty() {
            out.push_str(&format!("    \"{key}\": []"));
        } else {
            let lines: Vec<String> = policies.iter().map(|p| format!("      {p}")).collect();
            out.push_str(&format!("    \"{key}\": [\n{}\n    ]", lines.join(",\n")));
        }
        out.push_str(if last { "\n" } else { ",\n" });
    }
    out.push_str("  }\n}\n");
    (out, split)
}

/// A JSON string literal.
fn quote(text: &str) -> String {
    // Serializing a str cannot fail.
    serde_json::to_string(text).unwrap_or_default()
}

/// The remote fields of one policy: key and value, or the template key
/// with its inner key and value.
enum RemoteField {
    Literal(&'static str, String),
    Template(&'static str, String),
}

fn remotes(remote: &Remote) -> Vec<RemoteField> {
    let family_key = |addr: IpAddr| {
        if addr.is_ipv6() {
            "Ipv6CidrBlock"
        } else {
            "CidrBlock"
        }
    };
    match remote {
        Remote::Anywhere => vec![
            RemoteField::Literal("CidrBlock", "0.0.0.0/0".to_owned()),
            RemoteField::Literal("Ipv6CidrBlock", "::/0".to_owned()),
        ],
        Remote::Block(block) => {
            let first = match block {
                AddressBlock::Net(net) => net.addr(),
                AddressBlock::Range(range) => range.first(),
            };
            vec![RemoteField::Literal(family_key(first), block.to_string())]
        }
        Remote::SecurityGroup(id) => vec![RemoteField::Literal("SecurityGroupId", id.to_string())],
        Remote::AddressSet(id) => vec![RemoteField::Template("AddressId", id.to_string())],
        Remote::AddressSetGroup(id) => {
            vec![RemoteField::Template("AddressGroupId", id.to_string())]
        }
    }
}

/// Tencent's spelling of a protocol.
fn protocol(p: Protocol) -> String {
    match p {
        Protocol::All => "ALL".to_owned(),
        Protocol::Number(proto::TCP) => "TCP".to_owned(),
        Protocol::Number(proto::UDP) => "UDP".to_owned(),
        Protocol::Number(proto::ICMP) => "ICMP".to_owned(),
        Protocol::Number(proto::ICMPV6) => "ICMPv6".to_owned(),
        Protocol::Number(proto::GRE) => "GRE".to_owned(),
        Protocol::Number(n) => n.to_string(),
    }
}

/// One policy as a one-line JSON object.
fn policy(index: usize, rule: &Rule, remote: &RemoteField) -> String {
    let mut fields = vec![format!("\"PolicyIndex\": {index}")];
    match &rule.traffic {
        Traffic::Service(service) => {
            fields.push(format!(
                "\"Protocol\": {}",
                quote(&protocol(service.protocol))
            ));
            let port = match &service.ports {
                Ports::All => "ALL".to_owned(),
                ports => ports.to_string(),
            };
            fields.push(format!("\"Port\": {}", quote(&port)));
        }
        Traffic::ServiceSet(id) => fields.push(format!(
            "\"ServiceTemplate\": {{ \"ServiceId\": {} }}",
            quote(id.as_str())
        )),
        Traffic::ServiceSetGroup(id) => fields.push(format!(
            "\"ServiceTemplate\": {{ \"ServiceGroupId\": {} }}",
            quote(id.as_str())
        )),
    }
    match remote {
        RemoteField::Literal(key, value) => fields.push(format!("\"{key}\": {}", quote(value))),
        RemoteField::Template(key, value) => fields.push(format!(
            "\"AddressTemplate\": {{ \"{key}\": {} }}",
            quote(value)
        )),
    }
    let action = match rule.action {
        Action::Accept => "ACCEPT",
        Action::Drop => "DROP",
    };
    fields.push(format!("\"Action\": \"{action}\""));
    if let Some(description) = &rule.description {
        fields.push(format!("\"PolicyDescription\": {}", quote(description)));
    }
    format!("{{ {} }}", fields.join(", "))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use ipnet::IpNet;
    use secgroup_model::render;
    use secgroup_model::{Limits, RuleSet, SgId, SourceFile};

    use super::*;

    /// The examples directory, loaded.
    fn examples() -> RuleSet {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples");
        secgroup_rulesdir::load_paths(&[dir], &Limits::default())
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
    /// IPv4 rule followed by an IPv6 one.
    fn split_anywhere(group: &SecurityGroup) -> SecurityGroup {
        let split = |rules: &[Rule]| -> Vec<Rule> {
            rules
                .iter()
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
                    _ => vec![r.clone()],
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
        { "action": "accept", "protocol": "tcp", "port": "22,8000-8010", "remote": "203.0.113.0/24", "description": "ssh" },
        { "action": "drop", "protocol": "udp", "port": 53, "remote": "198.51.100.10-198.51.100.20" },
        { "action": "accept", "protocol": "icmpv6", "remote": "2001:db8::/32" },
        { "action": "accept", "protocol": 132, "remote": "2001:db8::1-2001:db8::9" },
        { "action": "accept", "protocol": "gre", "remote": "sg-other" },
        { "action": "accept", "service": "ppm-dns", "remote": "ipm-office" },
        { "action": "accept", "service": "ppmg-infra", "remote": "ipmg-corp" },
        { "action": "drop", "protocol": "all" }
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
}
