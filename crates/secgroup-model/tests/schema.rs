//! The JSON Schemas of `schema/` (for editors) against the decoders, so
//! the two cannot drift: per object, the keys the decoder accepts are the
//! schema's `properties`; every valid example (config/examples and the
//! rule files of the docs) validates against its schema; known-invalid
//! files fail both.
//!
//! The decoder's keys are read from its own message for an unknown key
//! ("expected one of ..."), so a key added to a decoder and not to the
//! schema (or the reverse) fails here, naming the key and the object.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use secgroup_model::{Limits, SourceFile};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const NATIVE: &str = "schema/secgroup-rules.schema.json";
const TENCENT: &str = "schema/tencent-policy.schema.json";

fn schema(name: &str) -> Value {
    let path = repo().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

fn validator(name: &str) -> jsonschema::Validator {
    let schema = schema(name);
    jsonschema::draft202012::meta::validate(&schema)
        .unwrap_or_else(|e| panic!("{name} is not a valid draft 2020-12 schema: {e}"));
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The schema for a file: Tencent's when it has one of its marker keys,
/// as the loader decides.
fn schema_for(value: &Value) -> &'static str {
    let tencent = [
        "SecurityGroupId",
        "SecurityGroupName",
        "SecurityGroupDesc",
        "SecurityGroupPolicySet",
    ];
    if tencent.iter().any(|k| value.get(k).is_some()) {
        TENCENT
    } else {
        NATIVE
    }
}

fn load(text: &str) -> Result<(), String> {
    let source = SourceFile {
        name: "t.json",
        bytes: text.as_bytes(),
    };
    secgroup_model::load(&[source], &Limits::default())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

const UNKNOWN: &str = "zz_not_a_key";

/// The keys the decoder accepts in the object where `file` has the key
/// `zz_not_a_key`, from its unknown-key message.
fn decoder_keys(file: &str) -> BTreeSet<String> {
    let errors = load(file)
        .err()
        .unwrap_or_else(|| panic!("the decoder accepted the unknown key {UNKNOWN:?} in:\n{file}"));
    let line = errors
        .lines()
        .find(|l| l.contains(&format!("unknown key \"{UNKNOWN}\"")))
        .unwrap_or_else(|| panic!("no unknown-key error for {UNKNOWN:?}:\n{errors}"));
    let list = line
        .split("expected one of ")
        .nth(1)
        .unwrap_or_else(|| panic!("no key list in {line:?}"));
    let list = list.split(" (did you mean").next().unwrap_or(list);
    list.split(", ").map(str::to_owned).collect()
}

/// The `properties` of the schema object at `pointer`.
fn schema_keys(schema: &Value, pointer: &str) -> BTreeSet<String> {
    schema
        .pointer(pointer)
        .and_then(|o| o.get("properties"))
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("no properties at {pointer}"))
        .keys()
        .cloned()
        .collect()
}

/// One object of a format: where it is in a file, where its definition is
/// in the schema, and a file with the unknown key in it.
struct Object {
    name: &'static str,
    pointer: &'static str,
    file: &'static str,
}

const NATIVE_OBJECTS: &[Object] = &[
    Object {
        name: "the file",
        pointer: "",
        file: r#"{ "zz_not_a_key": 1 }"#,
    },
    Object {
        name: "a security group (security_groups[0])",
        pointer: "/$defs/security_group",
        file: r#"{ "security_groups": [ { "id": "sg-a", "zz_not_a_key": 1 } ] }"#,
    },
    Object {
        name: "a rule (security_groups[0].ingress[0])",
        pointer: "/$defs/rule",
        file: r#"{ "security_groups": [ { "id": "sg-a", "ingress": [ { "action": "accept", "protocol": "tcp", "zz_not_a_key": 1 } ] } ] }"#,
    },
    Object {
        name: "an instance (instances[0])",
        pointer: "/$defs/instance",
        file: r#"{ "instances": [ { "id": "i", "ips": [], "security_groups": ["sg-a"], "zz_not_a_key": 1 } ] }"#,
    },
    Object {
        name: "an address pair (instances[0].allowed_address_pairs[0])",
        pointer: "/$defs/address_pair",
        file: r#"{ "instances": [ { "id": "i", "ips": [], "security_groups": ["sg-a"], "allowed_address_pairs": [ { "ip": "198.51.100.9", "zz_not_a_key": 1 } ] } ] }"#,
    },
    Object {
        name: "an address set (address_sets[0])",
        pointer: "/$defs/address_set",
        file: r#"{ "address_sets": [ { "id": "ipm-a", "addresses": [], "zz_not_a_key": 1 } ] }"#,
    },
    Object {
        name: "an address set group (address_set_groups[0])",
        pointer: "/$defs/address_set_group",
        file: r#"{ "address_set_groups": [ { "id": "ipmg-a", "sets": [], "zz_not_a_key": 1 } ] }"#,
    },
    Object {
        name: "a service set (service_sets[0])",
        pointer: "/$defs/service_set",
        file: r#"{ "service_sets": [ { "id": "ppm-a", "services": [], "zz_not_a_key": 1 } ] }"#,
    },
    Object {
        name: "a service set group (service_set_groups[0])",
        pointer: "/$defs/service_set_group",
        file: r#"{ "service_set_groups": [ { "id": "ppmg-a", "sets": [], "zz_not_a_key": 1 } ] }"#,
    },
];

const TENCENT_OBJECTS: &[Object] = &[
    Object {
        name: "the file",
        pointer: "",
        file: r#"{ "SecurityGroupId": "sg-t", "SecurityGroupPolicySet": {}, "zz_not_a_key": 1 }"#,
    },
    Object {
        name: "the policy set (SecurityGroupPolicySet)",
        pointer: "/properties/SecurityGroupPolicySet",
        file: r#"{ "SecurityGroupId": "sg-t", "SecurityGroupPolicySet": { "zz_not_a_key": 1 } }"#,
    },
    Object {
        name: "a policy (SecurityGroupPolicySet.Ingress[0])",
        pointer: "/$defs/policy",
        file: r#"{ "SecurityGroupId": "sg-t", "SecurityGroupPolicySet": { "Ingress": [ { "Action": "ACCEPT", "CidrBlock": "198.51.100.0/24", "zz_not_a_key": 1 } ] } }"#,
    },
    Object {
        name: "a service template (SecurityGroupPolicySet.Ingress[0].ServiceTemplate)",
        pointer: "/$defs/service_template",
        file: r#"{ "SecurityGroupId": "sg-t", "SecurityGroupPolicySet": { "Ingress": [ { "Action": "ACCEPT", "CidrBlock": "198.51.100.0/24", "ServiceTemplate": { "zz_not_a_key": 1 } } ] } }"#,
    },
    Object {
        name: "an address template (SecurityGroupPolicySet.Ingress[0].AddressTemplate)",
        pointer: "/$defs/address_template",
        file: r#"{ "SecurityGroupId": "sg-t", "SecurityGroupPolicySet": { "Ingress": [ { "Action": "ACCEPT", "AddressTemplate": { "zz_not_a_key": 1 } } ] } }"#,
    },
];

#[test]
fn schema_properties_are_the_decoders_keys() {
    let mut drift = Vec::new();
    for (schema_name, objects) in [(NATIVE, NATIVE_OBJECTS), (TENCENT, TENCENT_OBJECTS)] {
        let schema = schema(schema_name);
        for object in objects {
            let decoder = decoder_keys(object.file);
            let schema_has = schema_keys(&schema, object.pointer);
            let at = if object.pointer.is_empty() {
                "the top level".to_owned()
            } else {
                object.pointer.to_owned()
            };
            for key in decoder.difference(&schema_has) {
                drift.push(format!(
                    "{schema_name}: {at} has no property {key:?}, which the decoder accepts in {}",
                    object.name
                ));
            }
            for key in schema_has.difference(&decoder) {
                drift.push(format!(
                    "{schema_name}: {at} has a property {key:?}, which the decoder refuses in {}",
                    object.name
                ));
            }
        }
    }
    assert!(
        drift.is_empty(),
        "schema and decoders differ:\n{}",
        drift.join("\n")
    );
}

/// Every rule file a reader is told is valid: config/examples and the
/// docs' blocks marked as rule files.
fn valid_examples() -> Vec<(String, String)> {
    let mut files = Vec::new();
    let dir = repo().join("config/examples");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            files.push((path.display().to_string(), text));
        }
    }
    let mut docs: Vec<PathBuf> = vec![repo().join("README.md")];
    let docs_dir = repo().join("docs");
    for entry in std::fs::read_dir(&docs_dir).unwrap_or_else(|e| panic!("docs: {e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    for doc in docs {
        let text =
            std::fs::read_to_string(&doc).unwrap_or_else(|e| panic!("{}: {e}", doc.display()));
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim() != "```json" {
                continue;
            }
            let marker = lines[..i].iter().rev().find(|l| !l.trim().is_empty());
            // Unmarked blocks are whole rule files (the docs test says so).
            let rule_file = marker
                .is_none_or(|m| !m.contains("<!-- example:") || m.contains("example: rule file"));
            if !rule_file {
                continue;
            }
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| !l.trim().starts_with("```"))
                .copied()
                .collect();
            files.push((format!("{}:{}", doc.display(), i + 2), body.join("\n")));
        }
    }
    assert!(files.len() > 10, "found only {} examples", files.len());
    files
}

#[test]
fn every_valid_example_validates_against_its_schema() {
    let native = validator(NATIVE);
    let tencent = validator(TENCENT);
    for (name, text) in valid_examples() {
        let value: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
        let which = schema_for(&value);
        let validator = if which == TENCENT { &tencent } else { &native };
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("  at {}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{name} is a valid rule file but fails {which}:\n{}",
            errors.join("\n")
        );
    }
}

#[test]
fn invalid_files_fail_the_schema_too() {
    let native = validator(NATIVE);
    let tencent = validator(TENCENT);
    let cases = [
        r#"{ "security_group": [] }"#,
        r#"{ "$schema": 5 }"#,
        r#"{ "security_groups": [ { "name": "no id" } ] }"#,
        r#"{ "security_groups": [ { "id": "web" } ] }"#,
        r#"{ "security_groups": [ { "id": "sg-a", "ingress": [ { "action": "allow", "protocol": "tcp" } ] } ] }"#,
        r#"{ "security_groups": [ { "id": "sg-a", "ingress": [ { "action": "accept" } ] } ] }"#,
        r#"{ "security_groups": [ { "id": "sg-a", "ingress": [ { "action": "accept", "protocol": "tcp", "service": "ppm-a" } ] } ] }"#,
        r#"{ "security_groups": [ { "id": "sg-a", "ingress": [ { "action": "accept", "service": "ppm-a", "port": "22" } ] } ] }"#,
        r#"{ "security_groups": [ { "id": "sg-a", "ingress": [ { "action": "accept", "protocol": "TCP" } ] } ] }"#,
        r#"{ "security_groups": [ { "id": "sg-a", "ingress": [ { "action": "accept", "protocol": "tcp", "port": "22-" } ] } ] }"#,
        r#"{ "security_groups": [ { "id": "sg-a", "ingress": [ { "action": "accept", "protcol": "tcp" } ] } ] }"#,
        r#"{ "instances": [ { "id": "i", "ips": [], "security_groups": [] } ] }"#,
        r#"{ "instances": [ { "id": "i", "security_groups": ["sg-a"] } ] }"#,
        r#"{ "instances": [ { "id": "i", "ips": [], "security_groups": ["sg-a"], "port_security": "no" } ] }"#,
        r#"{ "SecurityGroupId": "sg-t" }"#,
        r#"{ "SecurityGroupId": "sg-t", "SecurityGroupPolicySet": { "Ingress": [ { "CidrBlock": "198.51.100.0/24" } ] } }"#,
        r#"{ "SecurityGroupId": "sg-t", "SecurityGroupPolicySet": { "Ingress": [ { "Action": "ACCEPT", "CidrBlock": "198.51.100.0/24", "Direction": "in" } ] } }"#,
        r#"{ "SecurityGroupId": "sg-t", "SecurityGroupPolicySet": {}, "$schema": [] }"#,
    ];
    for text in cases {
        assert!(load(text).is_err(), "the loader accepts {text}");
        let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let validator = if schema_for(&value) == TENCENT {
            &tencent
        } else {
            &native
        };
        assert!(!validator.is_valid(&value), "the schema accepts {text}");
    }
}

#[test]
fn schema_key_is_accepted_and_ignored() {
    for text in [
        r#"{ "$schema": "../schema/secgroup-rules.schema.json" }"#,
        r#"{ "$schema": "/usr/share/secgroup/schema/tencent-policy.schema.json", "SecurityGroupId": "sg-t", "SecurityGroupPolicySet": {} }"#,
    ] {
        assert_eq!(load(text), Ok(()), "{text}");
    }
    assert_eq!(
        load(r#"{ "$schema": 5 }"#),
        Err("t.json:1:14: [\"$schema\"]: expected a string, found number 5".to_owned())
    );
}
