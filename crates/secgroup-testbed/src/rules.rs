//! Rule files for the scenarios, built as JSON values so each test reads
//! like the rule table it exercises.

use serde_json::{Map, Value, json};

use crate::bed::Vm;

/// `{"action": "accept", "protocol": .., "port": .., "remote": ..}`;
/// `port` and `remote` are left out when empty.
pub fn accept(protocol: &str, port: &str, remote: &str) -> Value {
    rule("accept", protocol, port, remote)
}

pub fn drop(protocol: &str, port: &str, remote: &str) -> Value {
    rule("drop", protocol, port, remote)
}

fn rule(action: &str, protocol: &str, port: &str, remote: &str) -> Value {
    let mut rule = Map::new();
    rule.insert("action".into(), action.into());
    rule.insert("protocol".into(), protocol.into());
    if !port.is_empty() {
        rule.insert("port".into(), port.into());
    }
    if !remote.is_empty() {
        rule.insert("remote".into(), remote.into());
    }
    Value::Object(rule)
}

/// A rule on a service set: `{"action": .., "service": .., "remote": ..}`.
pub fn service(action: &str, service: &str, remote: &str) -> Value {
    let mut rule = json!({ "action": action, "service": service });
    if !remote.is_empty() {
        rule["remote"] = remote.into();
    }
    rule
}

/// One rule file: groups, instances, address and service sets.
#[derive(Default)]
pub struct RuleFile {
    groups: Vec<Value>,
    instances: Vec<Value>,
    address_sets: Vec<Value>,
    service_sets: Vec<Value>,
}

impl RuleFile {
    pub fn new() -> RuleFile {
        RuleFile::default()
    }

    pub fn group(mut self, id: &str, ingress: Vec<Value>, egress: Vec<Value>) -> RuleFile {
        self.groups
            .push(json!({ "id": id, "ingress": ingress, "egress": egress }));
        self
    }

    /// Binds `vm` (its tap, both its addresses) to `groups` in order.
    pub fn instance(self, vm: &Vm, groups: &[&str]) -> RuleFile {
        self.binding(&vm.instance(), &vm.tap(), &[&vm.ip4, &vm.ip6], groups)
    }

    /// Binds `vm` as [`RuleFile::instance`] does, with the keys of
    /// `extra` (an object: `mac`, `allowed_address_pairs`,
    /// `port_security`, ...) added to the instance.
    pub fn instance_with(self, vm: &Vm, groups: &[&str], extra: Value) -> RuleFile {
        self.binding_with(
            &vm.instance(),
            &vm.tap(),
            &[&vm.ip4, &vm.ip6],
            groups,
            extra,
        )
    }

    /// [`RuleFile::binding`] with the keys of `extra` (an object) added
    /// to the instance, replacing any of the same name.
    pub fn binding_with(
        self,
        id: &str,
        interface: &str,
        ips: &[&str],
        groups: &[&str],
        extra: Value,
    ) -> RuleFile {
        let Value::Object(extra) = extra else {
            panic!("instance keys must be an object, got {extra}");
        };
        let mut file = self.binding(id, interface, ips, groups);
        if let Some(Value::Object(instance)) = file.instances.last_mut() {
            instance.extend(extra);
        }
        file
    }

    /// Binds an instance on interface `interface` of this host.
    pub fn binding(mut self, id: &str, interface: &str, ips: &[&str], groups: &[&str]) -> RuleFile {
        self.instances.push(json!({
            "id": id,
            "interface": interface,
            "ips": ips,
            "security_groups": groups,
        }));
        self
    }

    /// An instance on another host: it only lends its addresses to rules
    /// that name its groups.
    pub fn remote_instance(mut self, id: &str, ips: &[&str], groups: &[&str]) -> RuleFile {
        self.instances
            .push(json!({ "id": id, "ips": ips, "security_groups": groups }));
        self
    }

    pub fn address_set(mut self, id: &str, addresses: &[&str]) -> RuleFile {
        self.address_sets
            .push(json!({ "id": id, "addresses": addresses }));
        self
    }

    pub fn service_set(mut self, id: &str, services: &[&str]) -> RuleFile {
        self.service_sets
            .push(json!({ "id": id, "services": services }));
        self
    }

    pub fn to_json(&self) -> String {
        let mut file = Map::new();
        let sections = [
            ("security_groups", &self.groups),
            ("instances", &self.instances),
            ("address_sets", &self.address_sets),
            ("service_sets", &self.service_sets),
        ];
        for (key, values) in sections {
            if !values.is_empty() {
                file.insert(key.into(), Value::Array(values.clone()));
            }
        }
        serde_json::to_string_pretty(&Value::Object(file))
            .unwrap_or_else(|e| panic!("encoding a rule file: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secgroup_model::{Limits, SourceFile, load};

    /// What the builder writes is a valid rule file that says what it was
    /// told.
    #[test]
    fn built_files_load() {
        let file = RuleFile::new()
            .address_set(
                "ipm-clients",
                &["203.0.113.10", "203.0.113.12-203.0.113.13"],
            )
            .service_set("ppm-app", &["tcp:8080", "udp:5353"])
            .group(
                "sg-a",
                vec![
                    accept("tcp", "22", "203.0.113.10"),
                    drop("udp", "", ""),
                    service("accept", "ppm-app", "ipm-clients"),
                ],
                vec![accept("all", "", "sg-a")],
            )
            .binding(
                "ins-a",
                "tap-a",
                &["198.51.100.10", "2001:db8:1::a"],
                &["sg-a"],
            )
            .binding_with(
                "ins-b",
                "tap-b",
                &["198.51.100.11"],
                &["sg-a"],
                json!({
                    "mac": "02:00:00:00:02:0b",
                    "allowed_address_pairs": [{"ip": "198.51.100.200"}],
                    "port_security": false,
                }),
            )
            .remote_instance("ins-far", &["198.51.100.99"], &["sg-a"])
            .to_json();
        let rules = load(
            &[SourceFile {
                name: "e2e.json",
                bytes: file.as_bytes(),
            }],
            &Limits::default(),
        )
        .unwrap_or_else(|e| panic!("{e}\n{file}"));
        let debug = format!("{rules:?}");
        for needle in [
            "sg-a",
            "ins-a",
            "ins-far",
            "tap-a",
            "ipm-clients",
            "ppm-app",
            "ins-b",
            "198.51.100.200",
            "port_security: false",
        ] {
            assert!(debug.contains(needle), "{needle} missing from {debug}");
        }
    }
}
