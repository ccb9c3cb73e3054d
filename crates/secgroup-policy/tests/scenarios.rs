//! The specification as tables: rule files in, verdicts out.
//!
//! Each test loads native rule files through `secgroup_model::load`,
//! compiles them and evaluates packets against one instance. A packet is
//! written `<protocol> <remote> [port N] [sport N] [type N] [code N]`
//! (`port` is the destination port; the remote is the source of an ingress
//! packet and the destination of an egress one), and the expected verdict
//! is its operator-facing rendering: `accept by sg-web ingress #2`,
//! `drop: no rule matched`, `accept: implicit allow: DHCPv4 client`.
//!
//! Addresses are documentation ones (198.51.100.0/24, 203.0.113.0/24,
//! 2001:db8::/32), plus private ranges where a template is about them.

use std::net::IpAddr;

use secgroup_model::{Direction, InstanceId, Limits, SgId, SourceFile, templates};
use secgroup_policy::{Packet, Policy, compile};

const IN: Direction = Direction::Ingress;
const OUT: Direction = Direction::Egress;

type Case<'a> = (Direction, &'a str, &'a str);

fn compile_files(files: &[(&str, &str)]) -> Policy {
    let sources: Vec<SourceFile<'_>> = files
        .iter()
        .map(|(name, text)| SourceFile {
            name,
            bytes: text.as_bytes(),
        })
        .collect();
    match secgroup_model::load(&sources, &Limits::default()) {
        Ok(rules) => compile(&rules),
        Err(diagnostics) => panic!("fixture does not load:\n{diagnostics}"),
    }
}

fn parse_number<T: std::str::FromStr>(word: &str, description: &str) -> T {
    word.parse()
        .unwrap_or_else(|_| panic!("{description:?}: {word:?} is not a number"))
}

/// Parses a packet description; the local address is the instance's first
/// address of the remote's family.
fn packet(description: &str, local_ips: &[IpAddr]) -> Packet {
    let mut words = description.split_whitespace();
    let protocol = match words.next() {
        Some("tcp") => 6,
        Some("udp") => 17,
        Some("icmp") => 1,
        Some("icmpv6") => 58,
        Some("gre") => 47,
        Some(number) => parse_number(number, description),
        None => panic!("empty packet description"),
    };
    let remote: IpAddr = match words.next() {
        Some(addr) => addr
            .parse()
            .unwrap_or_else(|e| panic!("{description:?}: bad remote {addr:?}: {e}")),
        None => panic!("{description:?}: no remote address"),
    };
    let local = local_ips
        .iter()
        .copied()
        .find(|ip| ip.is_ipv4() == remote.is_ipv4())
        .unwrap_or_else(|| panic!("{description:?}: the instance has no address of that family"));
    let ported = matches!(protocol, 6 | 17);
    let mut packet = Packet {
        protocol,
        remote,
        local,
        src_port: if ported { 40000 } else { 0 },
        dst_port: 0,
        icmp_type: 0,
        icmp_code: 0,
    };
    while let Some(key) = words.next() {
        let value = words
            .next()
            .unwrap_or_else(|| panic!("{description:?}: {key:?} without a value"));
        match key {
            "port" => packet.dst_port = parse_number(value, description),
            "sport" => packet.src_port = parse_number(value, description),
            "type" => packet.icmp_type = parse_number(value, description),
            "code" => packet.icmp_code = parse_number(value, description),
            _ => panic!("{description:?}: unknown key {key:?}"),
        }
    }
    packet
}

fn check_policy(policy: &Policy, instance: &str, cases: &[Case<'_>]) {
    let id = InstanceId::new(instance).unwrap_or_else(|| panic!("bad instance id {instance:?}"));
    let Some(compiled) = policy.instances.get(&id) else {
        panic!("no instance {instance} in the fixture");
    };
    let mut failures = Vec::new();
    for (direction, description, expected) in cases {
        let packet = packet(description, &compiled.ips);
        let verdict = policy
            .evaluate(&id, *direction, &packet)
            .unwrap_or_else(|| panic!("{instance} vanished"));
        let got = verdict.to_string();
        if got != *expected {
            failures.push(format!(
                "  {instance} {direction} {description:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    if !failures.is_empty() {
        panic!(
            "{} of {} cases failed:\n{}\n{instance} ingress:\n{}{instance} egress:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n"),
            compiled.ingress,
            compiled.egress
        );
    }
}

fn check_files(files: &[(&str, &str)], instance: &str, cases: &[Case<'_>]) {
    check_policy(&compile_files(files), instance, cases);
}

fn check(scenario: &str, instance: &str, cases: &[Case<'_>]) {
    check_files(&[("scenario.json", scenario)], instance, cases);
}

// Tencent CLB documentation, scenarios 1 to 5 (seed 004). ClientA is
// 198.51.100.10, ClientB 198.51.100.11, the CLB VIP 203.0.113.100.

#[test]
fn clb_scenario_1_public_clb_clients_and_vip_only() {
    let scenario = r#"{
      "security_groups": [{
        "id": "sg-backend",
        "ingress": [
          { "action": "accept", "protocol": "tcp", "port": "8080", "remote": "198.51.100.10" },
          { "action": "accept", "protocol": "tcp", "port": "8080", "remote": "198.51.100.11" },
          { "action": "accept", "protocol": "tcp", "port": "8080", "remote": "203.0.113.100" },
          { "action": "drop", "protocol": "tcp", "port": "8080", "remote": "0.0.0.0/0" }
        ]
      }],
      "instances": [{
        "id": "ins-backend", "interface": "tap0",
        "ips": ["198.51.100.50", "2001:db8::50"], "security_groups": ["sg-backend"]
      }]
    }"#;
    check(
        scenario,
        "ins-backend",
        &[
            (
                IN,
                "tcp 198.51.100.10 port 8080",
                "accept by sg-backend ingress #0",
            ),
            (
                IN,
                "tcp 198.51.100.11 port 8080",
                "accept by sg-backend ingress #1",
            ),
            (
                IN,
                "tcp 203.0.113.100 port 8080",
                "accept by sg-backend ingress #2",
            ),
            (
                IN,
                "tcp 198.51.100.12 port 8080",
                "drop by sg-backend ingress #3",
            ),
            (
                IN,
                "tcp 203.0.113.101 port 8080",
                "drop by sg-backend ingress #3",
            ),
            // Other ports: no rule at all, so the default drop.
            (IN, "tcp 198.51.100.10 port 22", "drop: no rule matched"),
            (IN, "udp 198.51.100.10 port 8080", "drop: no rule matched"),
            // 0.0.0.0/0 says nothing about IPv6.
            (IN, "tcp 2001:db8::10 port 8080", "drop: no rule matched"),
            // No egress rules: the group denies all outbound traffic.
            (OUT, "tcp 198.51.100.10 port 80", "drop: no rule matched"),
        ],
    );
}

#[test]
fn clb_scenario_2_public_clb_everyone() {
    let scenario = r#"{
      "security_groups": [{
        "id": "sg-backend",
        "ingress": [
          { "action": "accept", "protocol": "tcp", "port": 8080, "remote": "0.0.0.0/0" }
        ]
      }],
      "instances": [{
        "id": "ins-backend", "interface": "tap0",
        "ips": ["198.51.100.50", "2001:db8::50"], "security_groups": ["sg-backend"]
      }]
    }"#;
    check(
        scenario,
        "ins-backend",
        &[
            (
                IN,
                "tcp 198.51.100.10 port 8080",
                "accept by sg-backend ingress #0",
            ),
            (
                IN,
                "tcp 203.0.113.200 port 8080",
                "accept by sg-backend ingress #0",
            ),
            (IN, "tcp 203.0.113.200 port 8081", "drop: no rule matched"),
            (IN, "tcp 2001:db8::1 port 8080", "drop: no rule matched"),
        ],
    );
}

/// Scenarios 3 and 4: the real server's inbound rules, with (3) and
/// without (4) the VIP, and the client's outbound rules.
const CLB_PRIVATE: &str = r#"{
  "security_groups": [
    {
      "id": "sg-real-server-3",
      "ingress": [
        { "action": "accept", "protocol": "tcp", "port": "8080", "remote": "198.51.100.10" },
        { "action": "accept", "protocol": "tcp", "port": "8080", "remote": "198.51.100.11" },
        { "action": "accept", "protocol": "tcp", "port": "8080", "remote": "203.0.113.100" },
        { "action": "drop", "protocol": "tcp", "port": "8080", "remote": "0.0.0.0/0" }
      ]
    },
    {
      "id": "sg-real-server-4",
      "ingress": [
        { "action": "accept", "protocol": "tcp", "port": "8080", "remote": "198.51.100.10" },
        { "action": "accept", "protocol": "tcp", "port": "8080", "remote": "198.51.100.11" },
        { "action": "drop", "protocol": "tcp", "port": "8080", "remote": "0.0.0.0/0" }
      ]
    },
    {
      "id": "sg-client",
      "egress": [
        { "action": "accept", "protocol": "tcp", "port": "8080", "remote": "203.0.113.100" },
        { "action": "drop", "protocol": "tcp", "port": "8080", "remote": "0.0.0.0/0" }
      ]
    }
  ],
  "instances": [
    { "id": "ins-rs3", "interface": "tap0", "ips": ["198.51.100.50"], "security_groups": ["sg-real-server-3"] },
    { "id": "ins-rs4", "interface": "tap1", "ips": ["198.51.100.51"], "security_groups": ["sg-real-server-4"] },
    { "id": "ins-client-a", "interface": "tap2", "ips": ["198.51.100.10"], "security_groups": ["sg-client"] }
  ]
}"#;

#[test]
fn clb_scenario_3_private_clb_with_vip() {
    let policy = compile_files(&[("clb.json", CLB_PRIVATE)]);
    check_policy(
        &policy,
        "ins-rs3",
        &[
            (
                IN,
                "tcp 198.51.100.10 port 8080",
                "accept by sg-real-server-3 ingress #0",
            ),
            (
                IN,
                "tcp 198.51.100.11 port 8080",
                "accept by sg-real-server-3 ingress #1",
            ),
            (
                IN,
                "tcp 203.0.113.100 port 8080",
                "accept by sg-real-server-3 ingress #2",
            ),
            (
                IN,
                "tcp 198.51.100.99 port 8080",
                "drop by sg-real-server-3 ingress #3",
            ),
        ],
    );
    check_policy(
        &policy,
        "ins-client-a",
        &[
            (
                OUT,
                "tcp 203.0.113.100 port 8080",
                "accept by sg-client egress #0",
            ),
            // Straight to a backend, bypassing the CLB.
            (
                OUT,
                "tcp 198.51.100.50 port 8080",
                "drop by sg-client egress #1",
            ),
            (OUT, "tcp 203.0.113.100 port 443", "drop: no rule matched"),
            // The client's ingress list is empty.
            (IN, "tcp 203.0.113.100 port 8080", "drop: no rule matched"),
        ],
    );
}

#[test]
fn clb_scenario_4_private_clb_health_checks_implicit() {
    let policy = compile_files(&[("clb.json", CLB_PRIVATE)]);
    check_policy(
        &policy,
        "ins-rs4",
        &[
            (
                IN,
                "tcp 198.51.100.10 port 8080",
                "accept by sg-real-server-4 ingress #0",
            ),
            (
                IN,
                "tcp 198.51.100.11 port 8080",
                "accept by sg-real-server-4 ingress #1",
            ),
            // The VIP is not listed: it falls to the drop.
            (
                IN,
                "tcp 203.0.113.100 port 8080",
                "drop by sg-real-server-4 ingress #2",
            ),
        ],
    );
}

#[test]
fn clb_scenario_5_blocklist_order_matters() {
    let scenario = r#"{
      "security_groups": [
        {
          "id": "sg-blocklist",
          "ingress": [
            { "action": "drop", "protocol": "tcp", "port": "443", "remote": "198.51.100.10" },
            { "action": "drop", "protocol": "tcp", "port": "443", "remote": "198.51.100.11" },
            { "action": "accept", "protocol": "tcp", "port": "443", "remote": "0.0.0.0/0" }
          ]
        },
        {
          "id": "sg-blocklist-reversed",
          "ingress": [
            { "action": "accept", "protocol": "tcp", "port": "443", "remote": "0.0.0.0/0" },
            { "action": "drop", "protocol": "tcp", "port": "443", "remote": "198.51.100.10" },
            { "action": "drop", "protocol": "tcp", "port": "443", "remote": "198.51.100.11" }
          ]
        }
      ],
      "instances": [
        { "id": "ins-right", "interface": "tap0", "ips": ["203.0.113.50"], "security_groups": ["sg-blocklist"] },
        { "id": "ins-wrong", "interface": "tap1", "ips": ["203.0.113.51"], "security_groups": ["sg-blocklist-reversed"] }
      ]
    }"#;
    let policy = compile_files(&[("blocklist.json", scenario)]);
    check_policy(
        &policy,
        "ins-right",
        &[
            (
                IN,
                "tcp 198.51.100.10 port 443",
                "drop by sg-blocklist ingress #0",
            ),
            (
                IN,
                "tcp 198.51.100.11 port 443",
                "drop by sg-blocklist ingress #1",
            ),
            (
                IN,
                "tcp 198.51.100.12 port 443",
                "accept by sg-blocklist ingress #2",
            ),
            // The drops are for the port only.
            (IN, "tcp 198.51.100.10 port 80", "drop: no rule matched"),
        ],
    );
    check_policy(
        &policy,
        "ins-wrong",
        &[
            (
                IN,
                "tcp 198.51.100.10 port 443",
                "accept by sg-blocklist-reversed ingress #0",
            ),
            (
                IN,
                "tcp 198.51.100.11 port 443",
                "accept by sg-blocklist-reversed ingress #0",
            ),
            (
                IN,
                "tcp 198.51.100.12 port 443",
                "accept by sg-blocklist-reversed ingress #0",
            ),
        ],
    );
}

#[test]
fn new_group_without_rules_denies_everything() {
    let scenario = r#"{
      "security_groups": [{ "id": "sg-new", "name": "just created" }],
      "instances": [{
        "id": "ins-a", "interface": "tap0",
        "ips": ["198.51.100.50", "2001:db8::50"], "security_groups": ["sg-new"]
      }]
    }"#;
    check(
        scenario,
        "ins-a",
        &[
            (IN, "tcp 198.51.100.10 port 22", "drop: no rule matched"),
            (IN, "udp 198.51.100.10 port 53", "drop: no rule matched"),
            (IN, "icmp 198.51.100.10 type 8", "drop: no rule matched"),
            (IN, "icmpv6 2001:db8::1 type 128", "drop: no rule matched"),
            (IN, "gre 198.51.100.10", "drop: no rule matched"),
            (OUT, "tcp 203.0.113.1 port 443", "drop: no rule matched"),
            (OUT, "udp 2001:db8::53 port 53", "drop: no rule matched"),
            // The VM can still get its addresses.
            (
                OUT,
                "udp 198.51.100.1 sport 68 port 67",
                "accept: implicit allow: DHCPv4 client",
            ),
            (
                IN,
                "icmpv6 fe80::1 type 134",
                "accept: implicit allow: IPv6 neighbour discovery",
            ),
        ],
    );
}

const PRIVATE_INSTANCE: &str = r#"{
  "instances": [{
    "id": "ins-t", "interface": "tap0",
    "ips": ["198.51.100.50", "2001:db8::50"], "security_groups": ["sg-t"]
  }]
}"#;

fn check_template(template: &str, cases: &[Case<'_>]) {
    let id = SgId::new("sg-t").unwrap_or_else(|| panic!("bad id"));
    let group =
        templates::rule_file(template, id).unwrap_or_else(|| panic!("no template {template:?}"));
    check_files(
        &[("group.json", &group), ("instance.json", PRIVATE_INSTANCE)],
        "ins-t",
        cases,
    );
}

#[test]
fn template_open_major_ports() {
    check_template(
        "open-major-ports",
        &[
            (IN, "tcp 203.0.113.9 port 22", "accept by sg-t ingress #0"),
            (IN, "tcp 203.0.113.9 port 80", "accept by sg-t ingress #1"),
            (IN, "tcp 203.0.113.9 port 443", "accept by sg-t ingress #2"),
            (IN, "tcp 203.0.113.9 port 3389", "accept by sg-t ingress #3"),
            (IN, "tcp 2001:db8::9 port 443", "accept by sg-t ingress #2"),
            (IN, "icmp 203.0.113.9 type 8", "accept by sg-t ingress #4"),
            (
                IN,
                "icmpv6 2001:db8::9 type 128",
                "accept by sg-t ingress #5",
            ),
            (IN, "tcp 203.0.113.9 port 8080", "drop: no rule matched"),
            (IN, "udp 203.0.113.9 port 53", "drop: no rule matched"),
            (IN, "tcp 2001:db8::9 port 8080", "drop: no rule matched"),
            // Private networks get everything.
            (IN, "tcp 10.1.2.3 port 8080", "accept by sg-t ingress #6"),
            (IN, "udp 172.16.0.9 port 53", "accept by sg-t ingress #7"),
            (
                IN,
                "tcp 172.31.255.1 port 8080",
                "accept by sg-t ingress #7",
            ),
            (IN, "tcp 172.32.0.1 port 8080", "drop: no rule matched"),
            (IN, "gre 192.168.1.1", "accept by sg-t ingress #8"),
            (IN, "tcp fd00::1 port 8080", "accept by sg-t ingress #9"),
            (OUT, "tcp 203.0.113.9 port 8080", "accept by sg-t egress #0"),
            (OUT, "udp 2001:db8::9 port 53", "accept by sg-t egress #0"),
        ],
    );
}

#[test]
fn template_open_all() {
    check_template(
        "open-all",
        &[
            (IN, "tcp 203.0.113.9 port 8080", "accept by sg-t ingress #0"),
            (IN, "132 2001:db8::9", "accept by sg-t ingress #0"),
            (OUT, "gre 203.0.113.9", "accept by sg-t egress #0"),
        ],
    );
}

#[test]
fn template_linux_ssh_and_windows_rdp() {
    check_template(
        "linux-ssh",
        &[
            (IN, "tcp 203.0.113.9 port 22", "accept by sg-t ingress #0"),
            (IN, "tcp 2001:db8::9 port 22", "accept by sg-t ingress #0"),
            (IN, "tcp 203.0.113.9 port 3389", "drop: no rule matched"),
            (IN, "icmp 203.0.113.9 type 8", "drop: no rule matched"),
            (OUT, "tcp 203.0.113.9 port 443", "accept by sg-t egress #0"),
        ],
    );
    check_template(
        "windows-rdp",
        &[
            (IN, "tcp 203.0.113.9 port 3389", "accept by sg-t ingress #0"),
            (IN, "tcp 203.0.113.9 port 22", "drop: no rule matched"),
        ],
    );
}

#[test]
fn several_groups_in_binding_order() {
    // X = 198.51.100.66.
    let scenario = r#"{
      "security_groups": [
        {
          "id": "sg-deny-ssh-from-x",
          "ingress": [{ "action": "drop", "protocol": "tcp", "port": "22", "remote": "198.51.100.66" }]
        },
        {
          "id": "sg-allow-all",
          "ingress": [{ "action": "accept", "protocol": "all" }],
          "egress": [{ "action": "accept", "protocol": "all" }]
        }
      ],
      "instances": [
        { "id": "ins-deny-first", "interface": "tap0", "ips": ["203.0.113.50"],
          "security_groups": ["sg-deny-ssh-from-x", "sg-allow-all"] },
        { "id": "ins-allow-first", "interface": "tap1", "ips": ["203.0.113.51"],
          "security_groups": ["sg-allow-all", "sg-deny-ssh-from-x"] }
      ]
    }"#;
    let policy = compile_files(&[("order.json", scenario)]);
    check_policy(
        &policy,
        "ins-deny-first",
        &[
            (
                IN,
                "tcp 198.51.100.66 port 22",
                "drop by sg-deny-ssh-from-x ingress #0",
            ),
            (
                IN,
                "tcp 198.51.100.66 port 80",
                "accept by sg-allow-all ingress #0",
            ),
            (
                IN,
                "tcp 198.51.100.67 port 22",
                "accept by sg-allow-all ingress #0",
            ),
            (
                OUT,
                "tcp 198.51.100.66 port 22",
                "accept by sg-allow-all egress #0",
            ),
        ],
    );
    check_policy(
        &policy,
        "ins-allow-first",
        &[(
            IN,
            "tcp 198.51.100.66 port 22",
            "accept by sg-allow-all ingress #0",
        )],
    );
    // The position counts across groups.
    let id = InstanceId::new("ins-deny-first").unwrap_or_else(|| panic!("id"));
    let compiled = &policy.instances[&id];
    let packet = packet("tcp 198.51.100.67 port 22", &compiled.ips);
    match compiled.ingress.evaluate(IN, &packet).matched {
        secgroup_policy::Matched::Rule { position, .. } => assert_eq!(position, 1),
        other => panic!("expected a rule match, got {other:?}"),
    }
}

const REFERENCES: &str = r#"{
  "security_groups": [
    {
      "id": "sg-web",
      "ingress": [
        { "action": "accept", "protocol": "tcp", "port": "80,443" },
        { "action": "accept", "protocol": "tcp", "port": "22", "remote": "sg-bastion" }
      ],
      "egress": [
        { "action": "accept", "protocol": "tcp", "port": "5432", "remote": "sg-db" },
        { "action": "drop", "protocol": "all", "remote": "sg-db" },
        { "action": "accept", "protocol": "all" }
      ]
    },
    {
      "id": "sg-db",
      "ingress": [{ "action": "accept", "protocol": "tcp", "port": "5432", "remote": "sg-web" }]
    },
    {
      "id": "sg-cluster",
      "description": "members talk to each other, nobody else gets in",
      "ingress": [{ "action": "accept", "protocol": "all", "remote": "sg-cluster" }],
      "egress": [{ "action": "accept", "protocol": "all", "remote": "sg-cluster" }]
    },
    { "id": "sg-bastion" },
    {
      "id": "sg-lonely",
      "ingress": [{ "action": "accept", "protocol": "all", "remote": "sg-nobody" }]
    },
    { "id": "sg-nobody" }
  ],
  "instances": [
    { "id": "ins-web-1", "interface": "tap0", "ips": ["198.51.100.10", "2001:db8::10"], "security_groups": ["sg-web"] },
    { "id": "ins-web-2", "ips": ["203.0.113.20"], "security_groups": ["sg-web"] },
    { "id": "ins-db", "interface": "tap1", "ips": ["198.51.100.30", "2001:db8::30"], "security_groups": ["sg-db", "sg-cluster"] },
    { "id": "ins-node-2", "ips": ["203.0.113.31"], "security_groups": ["sg-cluster"] },
    { "id": "ins-bastion", "ips": ["203.0.113.99"], "security_groups": ["sg-bastion"] },
    { "id": "ins-lonely", "interface": "tap2", "ips": ["198.51.100.77"], "security_groups": ["sg-lonely"] }
  ]
}"#;

#[test]
fn security_group_references() {
    let policy = compile_files(&[("refs.json", REFERENCES)]);
    check_policy(
        &policy,
        "ins-db",
        &[
            // Members of sg-web, on this host and elsewhere, both families.
            (
                IN,
                "tcp 198.51.100.10 port 5432",
                "accept by sg-db ingress #0",
            ),
            (
                IN,
                "tcp 203.0.113.20 port 5432",
                "accept by sg-db ingress #0",
            ),
            (
                IN,
                "tcp 2001:db8::10 port 5432",
                "accept by sg-db ingress #0",
            ),
            (IN, "tcp 198.51.100.11 port 5432", "drop: no rule matched"),
            // sg-cluster refers to itself: ins-db and ins-node-2 (another
            // host) reach each other, on anything.
            (
                IN,
                "udp 203.0.113.31 port 9999",
                "accept by sg-cluster ingress #0",
            ),
            (
                IN,
                "tcp 198.51.100.30 port 22",
                "accept by sg-cluster ingress #0",
            ),
            (
                OUT,
                "tcp 203.0.113.31 port 5432",
                "accept by sg-cluster egress #0",
            ),
            (OUT, "tcp 198.51.100.10 port 80", "drop: no rule matched"),
            // The bastion is in sg-bastion, not in sg-cluster.
            (IN, "tcp 203.0.113.99 port 22", "drop: no rule matched"),
        ],
    );
    check_policy(
        &policy,
        "ins-web-1",
        &[
            (
                IN,
                "tcp 203.0.113.99 port 22",
                "accept by sg-web ingress #1",
            ),
            (IN, "tcp 198.51.100.30 port 22", "drop: no rule matched"),
            (
                IN,
                "tcp 2001:db8::1 port 443",
                "accept by sg-web ingress #0",
            ),
            (
                OUT,
                "tcp 198.51.100.30 port 5432",
                "accept by sg-web egress #0",
            ),
            (
                OUT,
                "tcp 2001:db8::30 port 5432",
                "accept by sg-web egress #0",
            ),
            (OUT, "tcp 198.51.100.30 port 22", "drop by sg-web egress #1"),
            (
                OUT,
                "tcp 198.51.100.31 port 22",
                "accept by sg-web egress #2",
            ),
        ],
    );
    // A group nobody is bound to contributes no address: the rule
    // referring to it matches nothing.
    check_policy(
        &policy,
        "ins-lonely",
        &[(IN, "tcp 198.51.100.10 port 22", "drop: no rule matched")],
    );
}

#[test]
fn ipv6_families() {
    let scenario = r#"{
      "security_groups": [{
        "id": "sg-v6",
        "ingress": [
          { "action": "accept", "protocol": "tcp", "port": "22", "remote": "0.0.0.0/0" },
          { "action": "accept", "protocol": "tcp", "port": "80", "remote": "::/0" },
          { "action": "accept", "protocol": "tcp", "port": "443" },
          { "action": "accept", "protocol": "udp", "port": "53", "remote": "2001:db8:53::/48" },
          { "action": "drop", "protocol": "all", "remote": "2001:db8::bad" },
          { "action": "accept", "protocol": "tcp", "port": "8080", "remote": "2001:db8::1-2001:db8::3" }
        ]
      }],
      "instances": [{
        "id": "ins-a", "interface": "tap0",
        "ips": ["198.51.100.50", "2001:db8::50"], "security_groups": ["sg-v6"]
      }]
    }"#;
    check(
        scenario,
        "ins-a",
        &[
            (IN, "tcp 203.0.113.9 port 22", "accept by sg-v6 ingress #0"),
            (IN, "tcp 2001:db8::9 port 22", "drop: no rule matched"),
            (IN, "tcp 2001:db8::9 port 80", "accept by sg-v6 ingress #1"),
            (IN, "tcp 203.0.113.9 port 80", "drop: no rule matched"),
            // An omitted remote is anywhere: both families.
            (IN, "tcp 203.0.113.9 port 443", "accept by sg-v6 ingress #2"),
            (IN, "tcp 2001:db8::9 port 443", "accept by sg-v6 ingress #2"),
            (
                IN,
                "udp 2001:db8:53:ffff::1 port 53",
                "accept by sg-v6 ingress #3",
            ),
            (IN, "udp 2001:db8:54::1 port 53", "drop: no rule matched"),
            (
                IN,
                "tcp 2001:db8::bad port 443",
                "accept by sg-v6 ingress #2",
            ),
            (
                IN,
                "tcp 2001:db8::bad port 8443",
                "drop by sg-v6 ingress #4",
            ),
            (IN, "tcp 2001:db8::0 port 8080", "drop: no rule matched"),
            (
                IN,
                "tcp 2001:db8::1 port 8080",
                "accept by sg-v6 ingress #5",
            ),
            (
                IN,
                "tcp 2001:db8::3 port 8080",
                "accept by sg-v6 ingress #5",
            ),
            (IN, "tcp 2001:db8::4 port 8080", "drop: no rule matched"),
        ],
    );
}

#[test]
fn service_sets_and_groups() {
    let scenario = r#"{
      "service_sets": [
        { "id": "ppm-web", "services": ["tcp:80", "tcp:443"] },
        { "id": "ppm-dns", "services": ["udp:53", "tcp:53"] },
        { "id": "ppm-ping", "services": ["icmp", "icmpv6"] },
        { "id": "ppm-high", "services": ["tcp:8000-8100", "udp:all"] }
      ],
      "service_set_groups": [
        { "id": "ppmg-infra", "sets": ["ppm-dns", "ppm-ping"] }
      ],
      "security_groups": [{
        "id": "sg-svc",
        "ingress": [
          { "action": "accept", "service": "ppm-web", "remote": "203.0.113.0/24" },
          { "action": "accept", "service": "ppmg-infra", "remote": "198.51.100.0/24" },
          { "action": "drop", "service": "ppm-high", "remote": "198.51.100.66" },
          { "action": "accept", "service": "ppm-high" }
        ]
      }],
      "instances": [{
        "id": "ins-a", "interface": "tap0",
        "ips": ["198.51.100.50", "2001:db8::50"], "security_groups": ["sg-svc"]
      }]
    }"#;
    check(
        scenario,
        "ins-a",
        &[
            (IN, "tcp 203.0.113.9 port 80", "accept by sg-svc ingress #0"),
            (
                IN,
                "tcp 203.0.113.9 port 443",
                "accept by sg-svc ingress #0",
            ),
            (IN, "tcp 203.0.113.9 port 22", "drop: no rule matched"),
            (IN, "udp 203.0.113.9 port 80", "accept by sg-svc ingress #3"),
            (IN, "icmp 203.0.113.9 type 8", "drop: no rule matched"),
            (IN, "tcp 198.51.100.9 port 80", "drop: no rule matched"),
            (
                IN,
                "udp 198.51.100.9 port 53",
                "accept by sg-svc ingress #1",
            ),
            (
                IN,
                "tcp 198.51.100.9 port 53",
                "accept by sg-svc ingress #1",
            ),
            (
                IN,
                "icmp 198.51.100.9 type 8",
                "accept by sg-svc ingress #1",
            ),
            (
                IN,
                "tcp 198.51.100.66 port 8000",
                "drop by sg-svc ingress #2",
            ),
            (IN, "udp 198.51.100.66 port 1", "drop by sg-svc ingress #2"),
            (
                IN,
                "tcp 198.51.100.67 port 8100",
                "accept by sg-svc ingress #3",
            ),
            (IN, "tcp 198.51.100.67 port 8101", "drop: no rule matched"),
            (
                IN,
                "udp 2001:db8::9 port 65535",
                "accept by sg-svc ingress #3",
            ),
        ],
    );
}

#[test]
fn address_sets_and_groups() {
    let scenario = r#"{
      "address_sets": [
        { "id": "ipm-office", "addresses": ["203.0.113.0/25", "203.0.113.200-203.0.113.210", "2001:db8:100::/48"] },
        { "id": "ipm-monitor", "addresses": ["198.51.100.250", "2001:db8:200::10"] },
        { "id": "ipm-empty", "addresses": [] }
      ],
      "address_set_groups": [
        { "id": "ipmg-corp", "sets": ["ipm-office", "ipm-monitor"] }
      ],
      "security_groups": [{
        "id": "sg-sets",
        "ingress": [
          { "action": "accept", "protocol": "tcp", "port": "22", "remote": "ipm-office" },
          { "action": "drop", "protocol": "all", "remote": "ipm-empty" },
          { "action": "accept", "protocol": "tcp", "port": "9100", "remote": "ipmg-corp" }
        ]
      }],
      "instances": [{
        "id": "ins-a", "interface": "tap0",
        "ips": ["198.51.100.50", "2001:db8::50"], "security_groups": ["sg-sets"]
      }]
    }"#;
    check(
        scenario,
        "ins-a",
        &[
            (
                IN,
                "tcp 203.0.113.0 port 22",
                "accept by sg-sets ingress #0",
            ),
            (
                IN,
                "tcp 203.0.113.127 port 22",
                "accept by sg-sets ingress #0",
            ),
            (IN, "tcp 203.0.113.128 port 22", "drop: no rule matched"),
            (IN, "tcp 203.0.113.199 port 22", "drop: no rule matched"),
            (
                IN,
                "tcp 203.0.113.200 port 22",
                "accept by sg-sets ingress #0",
            ),
            (
                IN,
                "tcp 203.0.113.210 port 22",
                "accept by sg-sets ingress #0",
            ),
            (IN, "tcp 203.0.113.211 port 22", "drop: no rule matched"),
            (
                IN,
                "tcp 2001:db8:100:1::1 port 22",
                "accept by sg-sets ingress #0",
            ),
            (IN, "tcp 198.51.100.250 port 22", "drop: no rule matched"),
            (
                IN,
                "tcp 198.51.100.250 port 9100",
                "accept by sg-sets ingress #2",
            ),
            (
                IN,
                "tcp 2001:db8:200::10 port 9100",
                "accept by sg-sets ingress #2",
            ),
            (
                IN,
                "tcp 2001:db8:200::11 port 9100",
                "drop: no rule matched",
            ),
            (
                IN,
                "tcp 203.0.113.205 port 9100",
                "accept by sg-sets ingress #2",
            ),
        ],
    );
}

#[test]
fn address_ranges() {
    let scenario = r#"{
      "security_groups": [{
        "id": "sg-range",
        "ingress": [
          { "action": "accept", "protocol": "tcp", "port": "22", "remote": "198.51.100.10-198.51.100.20" },
          { "action": "accept", "protocol": "tcp", "port": "80", "remote": "198.51.100.255-203.0.113.0" }
        ]
      }],
      "instances": [{ "id": "ins-a", "interface": "tap0", "ips": ["198.51.100.50"], "security_groups": ["sg-range"] }]
    }"#;
    check(
        scenario,
        "ins-a",
        &[
            (IN, "tcp 198.51.100.9 port 22", "drop: no rule matched"),
            (
                IN,
                "tcp 198.51.100.10 port 22",
                "accept by sg-range ingress #0",
            ),
            (
                IN,
                "tcp 198.51.100.15 port 22",
                "accept by sg-range ingress #0",
            ),
            (
                IN,
                "tcp 198.51.100.20 port 22",
                "accept by sg-range ingress #0",
            ),
            (IN, "tcp 198.51.100.21 port 22", "drop: no rule matched"),
            (IN, "tcp 198.51.100.254 port 80", "drop: no rule matched"),
            (
                IN,
                "tcp 198.51.100.255 port 80",
                "accept by sg-range ingress #1",
            ),
            (IN, "tcp 200.1.2.3 port 80", "accept by sg-range ingress #1"),
            (
                IN,
                "tcp 203.0.113.0 port 80",
                "accept by sg-range ingress #1",
            ),
            (IN, "tcp 203.0.113.1 port 80", "drop: no rule matched"),
        ],
    );
}

#[test]
fn protocols_numbers_gre_and_icmp_families() {
    let scenario = r#"{
      "security_groups": [{
        "id": "sg-proto",
        "ingress": [
          { "action": "accept", "protocol": "gre", "remote": "203.0.113.1" },
          { "action": "accept", "protocol": 132, "remote": "203.0.113.2" },
          { "action": "accept", "protocol": "6", "port": "22", "remote": "203.0.113.3" },
          { "action": "accept", "protocol": "icmp", "remote": "203.0.113.4" },
          { "action": "accept", "protocol": "icmp" },
          { "action": "accept", "protocol": "icmpv6", "remote": "2001:db8::4" },
          { "action": "accept", "protocol": "udp", "port": "all", "remote": "203.0.113.5" }
        ]
      }],
      "instances": [{
        "id": "ins-a", "interface": "tap0",
        "ips": ["198.51.100.50", "2001:db8::50"], "security_groups": ["sg-proto"]
      }]
    }"#;
    check(
        scenario,
        "ins-a",
        &[
            (IN, "gre 203.0.113.1", "accept by sg-proto ingress #0"),
            (IN, "tcp 203.0.113.1 port 22", "drop: no rule matched"),
            (IN, "132 203.0.113.2", "accept by sg-proto ingress #1"),
            (IN, "47 203.0.113.2", "drop: no rule matched"),
            (
                IN,
                "tcp 203.0.113.3 port 22",
                "accept by sg-proto ingress #2",
            ),
            (IN, "tcp 203.0.113.3 port 23", "drop: no rule matched"),
            (IN, "udp 203.0.113.3 port 22", "drop: no rule matched"),
            (
                IN,
                "icmp 203.0.113.4 type 8",
                "accept by sg-proto ingress #3",
            ),
            (
                IN,
                "icmp 203.0.113.9 type 3 code 4",
                "accept by sg-proto ingress #4",
            ),
            // "icmp" is ICMP for IPv4: it names protocol 1, and ICMPv6 is 58.
            (IN, "icmpv6 2001:db8::9 type 128", "drop: no rule matched"),
            (
                IN,
                "icmpv6 2001:db8::4 type 128",
                "accept by sg-proto ingress #5",
            ),
            // Protocol numbers are taken literally, whatever the family.
            (
                IN,
                "icmp 2001:db8::4 type 8",
                "accept by sg-proto ingress #4",
            ),
            (
                IN,
                "udp 203.0.113.5 port 1",
                "accept by sg-proto ingress #6",
            ),
            (
                IN,
                "udp 203.0.113.5 port 65535",
                "accept by sg-proto ingress #6",
            ),
        ],
    );
}

#[test]
fn port_lists() {
    let scenario = r#"{
      "security_groups": [{
        "id": "sg-ports",
        "ingress": [
          { "action": "accept", "protocol": "tcp", "port": "22,80,8000-8100" },
          { "action": "accept", "protocol": "udp", "port": 53 }
        ]
      }],
      "instances": [{ "id": "ins-a", "interface": "tap0", "ips": ["198.51.100.50"], "security_groups": ["sg-ports"] }]
    }"#;
    check(
        scenario,
        "ins-a",
        &[
            (
                IN,
                "tcp 203.0.113.1 port 22",
                "accept by sg-ports ingress #0",
            ),
            (
                IN,
                "tcp 203.0.113.1 port 80",
                "accept by sg-ports ingress #0",
            ),
            (IN, "tcp 203.0.113.1 port 81", "drop: no rule matched"),
            (IN, "tcp 203.0.113.1 port 7999", "drop: no rule matched"),
            (
                IN,
                "tcp 203.0.113.1 port 8000",
                "accept by sg-ports ingress #0",
            ),
            (
                IN,
                "tcp 203.0.113.1 port 8100",
                "accept by sg-ports ingress #0",
            ),
            (IN, "tcp 203.0.113.1 port 8101", "drop: no rule matched"),
            // The source port is not what a rule's port means.
            (
                IN,
                "tcp 203.0.113.1 sport 22 port 40000",
                "drop: no rule matched",
            ),
            (
                IN,
                "udp 203.0.113.1 port 53",
                "accept by sg-ports ingress #1",
            ),
            (IN, "udp 203.0.113.1 port 22", "drop: no rule matched"),
        ],
    );
}

#[test]
fn implicit_allows_come_before_the_rules() {
    let scenario = r#"{
      "security_groups": [{
        "id": "sg-lockdown",
        "ingress": [{ "action": "drop", "protocol": "all" }],
        "egress": [{ "action": "drop", "protocol": "all" }]
      }],
      "instances": [{
        "id": "ins-a", "interface": "tap0",
        "ips": ["198.51.100.50", "2001:db8::50"], "security_groups": ["sg-lockdown"]
      }]
    }"#;
    check(
        scenario,
        "ins-a",
        &[
            (
                OUT,
                "udp 255.255.255.255 sport 68 port 67",
                "accept: implicit allow: DHCPv4 client",
            ),
            (
                IN,
                "udp 198.51.100.1 sport 67 port 68",
                "accept: implicit allow: DHCPv4 client",
            ),
            (
                OUT,
                "udp ff02::1:2 sport 546 port 547",
                "accept: implicit allow: DHCPv6 client",
            ),
            (
                IN,
                "udp fe80::1 sport 547 port 546",
                "accept: implicit allow: DHCPv6 client",
            ),
            (
                OUT,
                "icmpv6 ff02::2 type 133",
                "accept: implicit allow: IPv6 neighbour discovery",
            ),
            (
                IN,
                "icmpv6 fe80::1 type 134",
                "accept: implicit allow: IPv6 neighbour discovery",
            ),
            (
                OUT,
                "icmpv6 ff02::1:ff00:1 type 135",
                "accept: implicit allow: IPv6 neighbour discovery",
            ),
            (
                IN,
                "icmpv6 fe80::1 type 136",
                "accept: implicit allow: IPv6 neighbour discovery",
            ),
            (
                IN,
                "icmpv6 fe80::1 type 137",
                "accept: implicit allow: IPv6 neighbour discovery",
            ),
            (
                IN,
                "icmpv6 fe80::1 type 130",
                "accept: implicit allow: IPv6 multicast listener discovery",
            ),
            (
                OUT,
                "icmpv6 ff02::16 type 143",
                "accept: implicit allow: IPv6 multicast listener discovery",
            ),
            // Everything else meets the rules.
            (
                IN,
                "icmpv6 2001:db8::1 type 128",
                "drop by sg-lockdown ingress #0",
            ),
            (
                IN,
                "udp 198.51.100.1 sport 68 port 67",
                "drop by sg-lockdown ingress #0",
            ),
            (
                OUT,
                "udp 198.51.100.1 sport 67 port 68",
                "drop by sg-lockdown egress #0",
            ),
            (
                OUT,
                "udp 2001:db8::1 sport 68 port 67",
                "drop by sg-lockdown egress #0",
            ),
            (
                IN,
                "icmp 198.51.100.1 type 134",
                "drop by sg-lockdown ingress #0",
            ),
        ],
    );
}

#[test]
fn unknown_instance_has_no_verdict() {
    let policy = compile_files(&[("refs.json", REFERENCES)]);
    let id = InstanceId::new("ins-missing").unwrap_or_else(|| panic!("id"));
    let packet = packet(
        "tcp 198.51.100.1 port 22",
        &["198.51.100.2".parse().unwrap_or_else(|e| panic!("{e}"))],
    );
    assert_eq!(policy.evaluate(&id, IN, &packet), None);
}
