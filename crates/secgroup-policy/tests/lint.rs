//! Warnings about valid rule sets, each from rule files as an operator
//! writes them, with the exact place and message.

use secgroup_model::{Limits, SourceFile};
use secgroup_policy::{compile, lint};

/// Every warning of the files, as `file:line:column: path: message`.
fn warnings(files: &[(&str, &str)]) -> Vec<String> {
    let sources: Vec<SourceFile<'_>> = files
        .iter()
        .map(|(name, text)| SourceFile {
            name,
            bytes: text.as_bytes(),
        })
        .collect();
    let loaded = secgroup_model::load_with(&sources, &Limits::default(), &[])
        .unwrap_or_else(|e| panic!("the files do not load:\n{e}"));
    let policy = compile(&loaded.rules);
    lint(&loaded.rules, &policy, &loaded.index)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// An instance of this host bound to `groups`, with both lists deliberate
/// unless the groups say otherwise.
fn instance(id: &str, iface: &str, ip: &str, groups: &str) -> String {
    format!(
        r#"{{ "id": "{id}", "interface": "{iface}", "ips": ["{ip}"], "security_groups": [{groups}] }}"#
    )
}

#[test]
fn a_clean_set_has_no_warnings() {
    let text = format!(
        r#"{{ "security_groups": [ {{ "id": "sg-web",
    "ingress": [ {{ "action": "accept", "protocol": "tcp", "port": "22", "remote": "198.51.100.0/24" }},
                 {{ "action": "accept", "protocol": "tcp", "port": "22" }} ],
    "egress": [] }} ],
  "instances": [ {} ] }}"#,
        instance("ins-a", "tap-a", "203.0.113.5", r#""sg-web""#)
    );
    assert_eq!(warnings(&[("a.json", &text)]), Vec::<String>::new());
}

#[test]
fn unbound_groups() {
    let text = format!(
        r#"{{ "security_groups": [
    {{ "id": "sg-used", "ingress": [ {{ "action": "accept", "protocol": "all", "remote": "sg-db" }} ], "egress": [] }},
    {{ "id": "sg-db", "ingress": [], "egress": [] }},
    {{ "id": "sg-spare", "ingress": [], "egress": [] }} ],
  "instances": [ {} ] }}"#,
        instance("ins-a", "tap-a", "203.0.113.5", r#""sg-used""#)
    );
    assert_eq!(
        warnings(&[("a.json", &text)]),
        [
            "a.json:2:37: security_groups[0].ingress[0]: this rule matches no packet: its remote stands for no address (an empty set, or a security group no instance with addresses is bound to)",
            "a.json:3:13: security_groups[1].id: security group sg-db is bound to no instance: its rules are enforced nowhere, and rules naming it as remote match no address",
            "a.json:4:13: security_groups[2].id: security group sg-spare is bound to no instance: its rules are enforced nowhere",
        ]
    );
}

#[test]
fn shadowed_rules_name_what_decides_them() {
    let text = format!(
        r#"{{ "security_groups": [ {{ "id": "sg-web", "egress": [],
    "ingress": [
      {{ "action": "accept", "protocol": "tcp", "port": "1-1000", "remote": "198.51.100.0/25" }},
      {{ "action": "drop", "protocol": "tcp", "port": "1001-65535", "remote": "198.51.100.0/24" }},
      {{ "action": "accept", "protocol": "tcp", "port": "1-1000", "remote": "198.51.100.128/25" }},
      {{ "action": "drop", "protocol": "tcp", "port": "22", "remote": "198.51.100.7" }},
      {{ "action": "drop", "protocol": "tcp", "remote": "198.51.100.0/24" }},
      {{ "action": "drop", "service": "ppm-web", "remote": "ipm-lan" }},
      {{ "action": "accept", "protocol": "all", "remote": "2001:db8::/32" }},
      {{ "action": "accept", "protocol": "udp", "port": "53", "remote": "2001:db8:1::/48" }}
    ] }} ],
  "address_sets": [ {{ "id": "ipm-lan", "addresses": ["198.51.100.0-198.51.100.127", "198.51.100.128/25"] }} ],
  "service_sets": [ {{ "id": "ppm-web", "services": ["tcp:80", "tcp:443"] }} ],
  "instances": [ {} ] }}"#,
        instance("ins-a", "tap-a", "203.0.113.5", r#""sg-web""#)
    );
    assert_eq!(
        warnings(&[("a.json", &text)]),
        [
            // 22 from .7 lies in rule 0's ports and prefix.
            "a.json:6:7: security_groups[0].ingress[3]: this rule never decides a packet: sg-web ingress #0 (a.json:3:7) decides all of its traffic first",
            // Ports 80 and 443 from the whole /24, spelt as a range and a
            // CIDR: rules 0 and 2 split it between them.
            "a.json:8:7: security_groups[0].ingress[5]: this rule never decides a packet: sg-web ingress #0 (a.json:3:7), sg-web ingress #2 (a.json:5:7) together decide all of its traffic first",
            "a.json:10:7: security_groups[0].ingress[7]: this rule never decides a packet: sg-web ingress #6 (a.json:9:7) decides all of its traffic first",
        ]
    );
}

#[test]
fn port_zero_and_all_protocols_are_exact() {
    // "tcp" is every port, 0 included, which no range names: rule 1 still
    // decides tcp port 0. "all" is decided only when every protocol is.
    let text = format!(
        r#"{{ "security_groups": [ {{ "id": "sg-web", "egress": [],
    "ingress": [
      {{ "action": "accept", "protocol": "tcp", "port": "1-65535" }},
      {{ "action": "drop", "protocol": "tcp" }},
      {{ "action": "accept", "protocol": "udp" }},
      {{ "action": "accept", "protocol": "icmp" }},
      {{ "action": "drop", "protocol": "all" }},
      {{ "action": "drop", "protocol": "gre" }}
    ] }} ],
  "instances": [ {} ] }}"#,
        instance("ins-a", "tap-a", "203.0.113.5", r#""sg-web""#)
    );
    assert_eq!(
        warnings(&[("a.json", &text)]),
        [
            "a.json:8:7: security_groups[0].ingress[5]: this rule never decides a packet: sg-web ingress #4 (a.json:7:7) decides all of its traffic first"
        ]
    );
}

#[test]
fn shadowed_in_the_concatenated_list_of_an_instance() {
    let text = format!(
        r#"{{ "security_groups": [
    {{ "id": "sg-open", "ingress": [ {{ "action": "accept", "protocol": "tcp" }} ], "egress": [] }},
    {{ "id": "sg-ssh", "ingress": [ {{ "action": "drop", "protocol": "tcp", "port": "22" }} ], "egress": [] }} ],
  "instances": [ {}, {}, {} ] }}"#,
        instance("ins-a", "tap-a", "203.0.113.5", r#""sg-open", "sg-ssh""#),
        instance("ins-b", "tap-b", "203.0.113.6", r#""sg-open", "sg-ssh""#),
        instance("ins-c", "tap-c", "203.0.113.7", r#""sg-ssh", "sg-open""#)
    );
    assert_eq!(
        warnings(&[("a.json", &text)]),
        [
            "a.json:3:36: security_groups[1].ingress[0]: for instances ins-a, ins-b (bound to sg-open, sg-ssh in this order) this rule never decides a packet: sg-open ingress #0 (a.json:2:37) decides all of its traffic first"
        ]
    );
}

#[test]
fn extension_header_protocols() {
    let text = format!(
        r#"{{ "security_groups": [ {{ "id": "sg-web", "egress": [],
    "ingress": [
      {{ "action": "accept", "protocol": "44", "remote": "2001:db8::/32" }},
      {{ "action": "accept", "protocol": 51, "remote": "198.51.100.0/24" }},
      {{ "action": "accept", "protocol": "50" }},
      {{ "action": "accept", "service": "ppm-odd" }}
    ] }} ],
  "service_sets": [ {{ "id": "ppm-odd", "services": ["60", "135"] }} ],
  "instances": [ {} ] }}"#,
        instance("ins-a", "tap-a", "203.0.113.5", r#""sg-web""#)
    );
    // 51 towards IPv4 only is IPv4's AH; 50 (ESP) and 135 (mobility) are
    // classified as the protocol they are.
    assert_eq!(
        warnings(&[("a.json", &text)]),
        [
            "a.json:3:7: security_groups[0].ingress[0]: protocol 44 is an IPv6 extension header (fragment): the data plane walks over it to the protocol behind it, so this rule never matches IPv6 traffic",
            "a.json:6:7: security_groups[0].ingress[3]: protocol 60 is an IPv6 extension header (destination options): the data plane walks over it to the protocol behind it, so this rule never matches IPv6 traffic",
        ]
    );
}

#[test]
fn over_tencent_quota() {
    let rule = r#"{ "action": "accept", "protocol": "tcp", "port": "PORT" }"#;
    let rules: Vec<String> = (1..=101)
        .map(|p| rule.replace("PORT", &p.to_string()))
        .collect();
    let text = format!(
        "{{ \"security_groups\": [ {{ \"id\": \"sg-big\", \"egress\": [],\n  \"ingress\": [ {} ] }} ],\n  \"instances\": [ {} ] }}",
        rules.join(", "),
        instance("ins-a", "tap-a", "203.0.113.5", r#""sg-big""#)
    );
    assert_eq!(
        warnings(&[("a.json", &text)]),
        [
            "a.json:2:14: security_groups[0].ingress: 101 ingress rules, over Tencent Cloud's quota of 100 per direction per security group: enforced here, but this group cannot be applied in Tencent Cloud as it is"
        ]
    );
    let hundred = text.replace(&format!(", {}", rules[100]), "");
    assert_eq!(warnings(&[("a.json", &hundred)]), Vec::<String>::new());
}

#[test]
fn deny_all_unless_deliberate() {
    let groups = r#"{ "security_groups": [
    { "id": "sg-in", "ingress": [ { "action": "accept", "protocol": "tcp", "port": "22" } ] },
    { "id": "sg-quiet", "egress": [] },
    { "id": "sg-none" } ] }"#;
    let instances = format!(
        r#"{{ "instances": [ {}, {}, {} ] }}"#,
        instance("ins-a", "tap-a", "203.0.113.5", r#""sg-in""#),
        instance("ins-b", "tap-b", "203.0.113.6", r#""sg-in", "sg-quiet""#),
        instance("ins-c", "tap-c", "203.0.113.7", r#""sg-none""#)
    );
    assert_eq!(
        warnings(&[("g.json", groups), ("i.json", &instances)]),
        [
            "i.json:1:26: instances[0].id: instance ins-a drops all its egress traffic: none of its security groups (sg-in) has egress rules; write \"egress\": [] in one of them if that is meant",
            "i.json:1:228: instances[2].id: instance ins-c drops all its egress traffic: none of its security groups (sg-none) has egress rules; write \"egress\": [] in one of them if that is meant",
            "i.json:1:228: instances[2].id: instance ins-c drops all its ingress traffic: none of its security groups (sg-none) has ingress rules; write \"ingress\": [] in one of them if that is meant",
        ]
    );
}

#[test]
fn tencent_files_state_both_lists() {
    let tencent = r#"{ "SecurityGroupId": "sg-t", "SecurityGroupPolicySet": { "Ingress": [], "Egress": [] } }"#;
    let instances = format!(
        r#"{{ "instances": [ {} ] }}"#,
        instance("ins-a", "tap-a", "203.0.113.5", r#""sg-t""#)
    );
    assert_eq!(
        warnings(&[("t.json", tencent), ("i.json", &instances)]),
        Vec::<String>::new()
    );
}

/// The example of docs/rule-files.md's "Warnings": its rule file gives
/// exactly the warnings the page shows (as `secgroupctl validate` prints
/// them, `FILE:LINE:COLUMN: PATH: warning: MESSAGE`).
#[test]
fn the_documented_example() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rule-files.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let section = doc
        .split("### Warnings")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .unwrap_or_else(|| panic!("no Warnings section"));
    let block = |fence: &str, nth: usize| -> String {
        section
            .split(fence)
            .nth(nth)
            .and_then(|b| b.split("```").next())
            .unwrap_or_else(|| panic!("no {fence} block {nth}"))
            .to_owned()
    };
    let file = block("```json\n", 1);
    let shown: Vec<String> = block("```text\n", 2)
        .lines()
        .filter(|l| l.contains(": warning: "))
        .map(str::to_owned)
        .collect();
    let produced: Vec<String> = warnings(&[("app.json", &file)])
        .iter()
        .map(|w| {
            // `file:line:column: path: message` → `...: path: warning: message`
            let mut parts = w.splitn(5, ": ");
            let (Some(place), Some(at), Some(rest)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!("{w}")
            };
            let rest: Vec<&str> = std::iter::once(rest).chain(parts).collect();
            format!("{place}: {at}: warning: {}", rest.join(": "))
        })
        .collect();
    assert_eq!(produced, shown);
}
