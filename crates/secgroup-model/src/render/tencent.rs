//! Writes a security group in Tencent Cloud's policy JSON, the shape
//! [`crate::load`] imports (docs/rule-files.md, "Importing Tencent Cloud
//! policy JSON"): importing the output gives the same group back, except
//! that a rule whose remote is "anywhere" becomes two policies (Tencent
//! has no "anywhere": `CidrBlock` 0.0.0.0/0, then `Ipv6CidrBlock` ::/0),
//! and that rule ids are left out (Tencent policies have none).

use std::net::IpAddr;

use crate::location::quote;
use crate::model::{
    Action, AddressBlock, Ports, Protocol, Remote, Rule, SecurityGroup, Traffic, proto,
};

/// The policy set version we write; Tencent bumps it on every change and
/// the importer ignores it.
const VERSION: &str = "1";

/// A Tencent policy file for `group`, and how many rules were split in
/// two because their remote is "anywhere".
pub fn tencent_group_file(group: &SecurityGroup) -> (String, usize) {
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
