//! Writes the model back out as a native rule file, or one group as a
//! Tencent policy file ([`tencent_group_file`]). [`crate::load`] of the
//! output gives back the same model (tested), so this is how templates are
//! shown and how rule sets and groups are exported.

mod tencent;

pub use tencent::tencent_group_file;

use std::fmt::Write;

use crate::location::quote;
use crate::model::{
    AddressSet, AddressSetGroup, Enforcement, Instance, LogMode, Ports, Protocol, Remote, Rule,
    RuleSet, SecurityGroup, Service, ServiceSet, ServiceSetGroup, Traffic, proto,
};
use crate::outline::ObjectKind;

/// A rule file holding one security group.
pub fn security_group_file(group: &SecurityGroup) -> String {
    let mut out = String::from("{\n  \"security_groups\": [\n");
    write_group(&mut out, group);
    out.push_str("\n  ]\n}\n");
    out
}

/// A rule file holding the whole rule set.
pub fn rule_file(rules: &RuleSet) -> String {
    let mut sections: Vec<(&str, Vec<String>)> = Vec::new();
    let groups: Vec<String> = rules
        .security_groups
        .values()
        .map(|g| {
            let mut s = String::new();
            write_group(&mut s, g);
            s
        })
        .collect();
    sections.push(("security_groups", groups));
    sections.push((
        "instances",
        rules.instances.values().map(instance).collect(),
    ));
    sections.push((
        "address_sets",
        rules.address_sets.values().map(address_set).collect(),
    ));
    sections.push((
        "address_set_groups",
        rules
            .address_set_groups
            .values()
            .map(address_set_group)
            .collect(),
    ));
    sections.push((
        "service_sets",
        rules.service_sets.values().map(service_set).collect(),
    ));
    sections.push((
        "service_set_groups",
        rules
            .service_set_groups
            .values()
            .map(service_set_group)
            .collect(),
    ));
    let body: Vec<String> = sections
        .into_iter()
        .filter(|(_, items)| !items.is_empty())
        .map(|(key, items)| format!("  \"{key}\": [\n{}\n  ]", items.join(",\n")))
        .collect();
    format!("{{\n{}\n}}\n", body.join(",\n"))
}

/// Every object of the rule set on its own, as one element of its array
/// in a rule file: kind, id and JSON text (what a shared store holds, one
/// object per key).
pub fn objects(rules: &RuleSet) -> Vec<(ObjectKind, String, String)> {
    let mut out = Vec::new();
    // The array's indentation goes: a value starts at column 1.
    let mut push = |kind, id: &str, text: String| {
        let lines: Vec<&str> = text
            .trim_matches('\n')
            .lines()
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .collect();
        out.push((kind, id.to_owned(), format!("{}\n", lines.join("\n"))));
    };
    for g in rules.security_groups.values() {
        let mut text = String::new();
        write_group(&mut text, g);
        push(ObjectKind::SecurityGroup, g.id.as_str(), text);
    }
    for i in rules.instances.values() {
        push(ObjectKind::Instance, i.id.as_str(), instance(i));
    }
    for s in rules.address_sets.values() {
        push(ObjectKind::AddressSet, s.id.as_str(), address_set(s));
    }
    for g in rules.address_set_groups.values() {
        push(
            ObjectKind::AddressSetGroup,
            g.id.as_str(),
            address_set_group(g),
        );
    }
    for s in rules.service_sets.values() {
        push(ObjectKind::ServiceSet, s.id.as_str(), service_set(s));
    }
    for g in rules.service_set_groups.values() {
        push(
            ObjectKind::ServiceSetGroup,
            g.id.as_str(),
            service_set_group(g),
        );
    }
    out
}

fn write_group(out: &mut String, group: &SecurityGroup) {
    let _ = write!(out, "    {{\n      \"id\": {}", quote(group.id.as_str()));
    if let Some(name) = &group.name {
        let _ = write!(out, ",\n      \"name\": {}", quote(name));
    }
    if let Some(description) = &group.description {
        let _ = write!(out, ",\n      \"description\": {}", quote(description));
    }
    for (key, rules) in [("ingress", &group.ingress), ("egress", &group.egress)] {
        if rules.is_empty() {
            let _ = write!(out, ",\n      \"{key}\": []");
            continue;
        }
        let lines: Vec<String> = rules
            .iter()
            .map(|r| format!("        {}", rule(r)))
            .collect();
        let _ = write!(out, ",\n      \"{key}\": [\n{}\n      ]", lines.join(",\n"));
    }
    out.push_str("\n    }");
}

/// One rule as a one-line JSON object.
fn rule(rule: &Rule) -> String {
    let mut fields = Vec::new();
    if let Some(id) = &rule.id {
        fields.push(format!("\"id\": {}", quote(id.as_str())));
    }
    fields.push(format!("\"action\": {}", quote(rule.action.as_str())));
    match &rule.traffic {
        Traffic::Service(service) => {
            fields.push(format!("\"protocol\": {}", protocol(service.protocol)));
            if service.ports != Ports::All {
                fields.push(format!("\"port\": {}", quote(&service.ports.to_string())));
            }
        }
        Traffic::ServiceSet(id) => fields.push(format!("\"service\": {}", quote(id.as_str()))),
        Traffic::ServiceSetGroup(id) => {
            fields.push(format!("\"service\": {}", quote(id.as_str())));
        }
    }
    let remote = match &rule.remote {
        Remote::Anywhere => None,
        Remote::Block(block) => Some(block.to_string()),
        Remote::SecurityGroup(id) => Some(id.to_string()),
        Remote::AddressSet(id) => Some(id.to_string()),
        Remote::AddressSetGroup(id) => Some(id.to_string()),
    };
    if let Some(remote) = remote {
        fields.push(format!("\"remote\": {}", quote(&remote)));
    }
    if let Some(description) = &rule.description {
        fields.push(format!("\"description\": {}", quote(description)));
    }
    if rule.log {
        fields.push("\"log\": true".to_owned());
    }
    format!("{{ {} }}", fields.join(", "))
}

/// Named protocols as names, others as JSON numbers.
fn protocol(p: Protocol) -> String {
    match p {
        Protocol::Number(n)
            if !matches!(
                n,
                proto::TCP | proto::UDP | proto::ICMP | proto::ICMPV6 | proto::GRE
            ) =>
        {
            n.to_string()
        }
        _ => quote(&p.to_string()),
    }
}

fn service(s: &Service) -> String {
    match &s.ports {
        Ports::All => s.protocol.to_string(),
        ports => format!("{}:{ports}", s.protocol),
    }
}

fn string_list<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| quote(&i.to_string())).collect();
    format!("[{}]", items.join(", "))
}

fn instance(i: &Instance) -> String {
    let mut fields = vec![format!("\"id\": {}", quote(i.id.as_str()))];
    if let Some(host) = &i.host {
        fields.push(format!("\"host\": {}", quote(host)));
    }
    if let Some(interface) = &i.interface {
        fields.push(format!("\"interface\": {}", quote(interface)));
    }
    if let Some(mac) = &i.mac {
        fields.push(format!("\"mac\": {}", quote(&mac.to_string())));
    }
    fields.push(format!("\"ips\": {}", string_list(&i.ips)));
    if !i.allowed_address_pairs.is_empty() {
        let pairs: Vec<String> = i
            .allowed_address_pairs
            .iter()
            .map(|pair| {
                // A single address as written in `ips`, a block as a CIDR.
                let net = pair.net;
                let ip = if net.prefix_len() == net.max_prefix_len() {
                    net.addr().to_string()
                } else {
                    net.to_string()
                };
                match pair.mac {
                    None => format!("{{\"ip\": {}}}", quote(&ip)),
                    Some(mac) => format!(
                        "{{\"ip\": {}, \"mac\": {}}}",
                        quote(&ip),
                        quote(&mac.to_string())
                    ),
                }
            })
            .collect();
        fields.push(format!("\"allowed_address_pairs\": [{}]", pairs.join(", ")));
    }
    if !i.port_security {
        fields.push("\"port_security\": false".to_owned());
    }
    fields.push(format!(
        "\"security_groups\": {}",
        string_list(&i.security_groups)
    ));
    if i.log != LogMode::default() {
        fields.push(format!("\"log\": {}", quote(i.log.as_str())));
    }
    if i.enforcement != Enforcement::default() {
        fields.push(format!(
            "\"enforcement\": {}",
            quote(i.enforcement.as_str())
        ));
    }
    format!("    {{ {} }}", fields.join(", "))
}

fn address_set(s: &AddressSet) -> String {
    format!(
        "    {{ \"id\": {}, \"addresses\": {} }}",
        quote(s.id.as_str()),
        string_list(&s.addresses)
    )
}

fn address_set_group(g: &AddressSetGroup) -> String {
    format!(
        "    {{ \"id\": {}, \"sets\": {} }}",
        quote(g.id.as_str()),
        string_list(&g.sets)
    )
}

fn service_set(s: &ServiceSet) -> String {
    format!(
        "    {{ \"id\": {}, \"services\": {} }}",
        quote(s.id.as_str()),
        string_list(s.services.iter().map(service))
    )
}

fn service_set_group(g: &ServiceSetGroup) -> String {
    format!(
        "    {{ \"id\": {}, \"sets\": {} }}",
        quote(g.id.as_str()),
        string_list(&g.sets)
    )
}
