//! The reference evaluator's audit mode and what it says is logged: a
//! table per instance setting, from rule files to (verdict, passes,
//! logged).

use std::net::IpAddr;

use secgroup_model::{Direction, InstanceId, Limits, SourceFile, proto};
use secgroup_policy::{Packet, Policy, compile};

const GROUP: &str = r#"{"security_groups": [{"id": "sg-db", "ingress": [
  {"action": "accept", "protocol": "tcp", "port": 5432, "remote": "198.51.100.0/24", "log": true},
  {"action": "drop", "protocol": "tcp", "port": 5432, "remote": "203.0.113.9", "log": true},
  {"action": "drop", "protocol": "tcp", "port": 22},
  {"action": "accept", "protocol": "icmp"}
]}]}"#;

/// One instance per setting, all bound to `sg-db`.
const INSTANCES: &str = r#"{"instances": [
  {"id": "i-plain", "interface": "tap1", "ips": ["198.51.100.10"], "security_groups": ["sg-db"]},
  {"id": "i-drops", "interface": "tap2", "ips": ["198.51.100.11"], "security_groups": ["sg-db"], "log": "drops"},
  {"id": "i-all", "interface": "tap3", "ips": ["198.51.100.12"], "security_groups": ["sg-db"], "log": "all"},
  {"id": "i-audit", "interface": "tap4", "ips": ["198.51.100.13"], "security_groups": ["sg-db"], "enforcement": "audit"},
  {"id": "i-audit-drops", "interface": "tap5", "ips": ["198.51.100.14"], "security_groups": ["sg-db"], "enforcement": "audit", "log": "drops"}
]}"#;

fn policy() -> Policy {
    let sources = [
        SourceFile {
            name: "g.json",
            bytes: GROUP.as_bytes(),
        },
        SourceFile {
            name: "i.json",
            bytes: INSTANCES.as_bytes(),
        },
    ];
    match secgroup_model::load(&sources, &Limits::default()) {
        Ok(rules) => compile(&rules),
        Err(diagnostics) => panic!("fixture does not load:\n{diagnostics}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("bad test address {s}: {e}"))
}

fn tcp(remote: &str, port: u16) -> Packet {
    Packet {
        protocol: proto::TCP,
        remote: ip(remote),
        local: ip("198.51.100.10"),
        src_port: 40000,
        dst_port: port,
        icmp_type: 0,
        icmp_code: 0,
    }
}

fn icmp(remote: &str) -> Packet {
    Packet {
        protocol: proto::ICMP,
        src_port: 0,
        dst_port: 0,
        icmp_type: 8,
        ..tcp(remote, 0)
    }
}

fn dhcp_reply() -> Packet {
    Packet {
        protocol: proto::UDP,
        src_port: 67,
        dst_port: 68,
        ..tcp("198.51.100.1", 68)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Passes {
    Yes,
    No,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logged {
    Yes,
    No,
}

#[test]
fn audit_and_logging_table() {
    use Logged as L;
    use Passes as P;
    let accepted = || tcp("198.51.100.7", 5432);
    let denied = || tcp("203.0.113.9", 5432);
    let ssh = || tcp("203.0.113.5", 22);
    let nothing = || tcp("203.0.113.5", 80);
    let ping = || icmp("203.0.113.5");
    #[rustfmt::skip]
    let cases: &[(&str, Packet, &str, Passes, Logged)] = &[
        // Only logged rules log; drops drop.
        ("i-plain", accepted(), "accept by sg-db ingress #0", P::Yes, L::Yes),
        ("i-plain", denied(), "drop by sg-db ingress #1", P::No, L::Yes),
        ("i-plain", ssh(), "drop by sg-db ingress #2", P::No, L::No),
        ("i-plain", nothing(), "drop: no rule matched", P::No, L::No),
        ("i-plain", ping(), "accept by sg-db ingress #3", P::Yes, L::No),
        // "drops": every drop, default ones too; accepts only when logged.
        ("i-drops", accepted(), "accept by sg-db ingress #0", P::Yes, L::Yes),
        ("i-drops", ssh(), "drop by sg-db ingress #2", P::No, L::Yes),
        ("i-drops", nothing(), "drop: no rule matched", P::No, L::Yes),
        ("i-drops", ping(), "accept by sg-db ingress #3", P::Yes, L::No),
        // "all": every verdict of a rule or the default.
        ("i-all", ping(), "accept by sg-db ingress #3", P::Yes, L::Yes),
        ("i-all", nothing(), "drop: no rule matched", P::No, L::Yes),
        // Audit: drops by a rule or the default pass, as would-drops;
        // logging is as without audit.
        ("i-audit", denied(), "drop by sg-db ingress #1 (audit: passes)", P::Yes, L::Yes),
        ("i-audit", ssh(), "drop by sg-db ingress #2 (audit: passes)", P::Yes, L::No),
        ("i-audit", nothing(), "drop: no rule matched (audit: passes)", P::Yes, L::No),
        ("i-audit", accepted(), "accept by sg-db ingress #0", P::Yes, L::Yes),
        ("i-audit-drops", ssh(), "drop by sg-db ingress #2 (audit: passes)", P::Yes, L::Yes),
        ("i-audit-drops", nothing(), "drop: no rule matched (audit: passes)", P::Yes, L::Yes),
        ("i-audit-drops", ping(), "accept by sg-db ingress #3", P::Yes, L::No),
        // Implicit allows are never logged, whatever the mode.
        ("i-all", dhcp_reply(), "accept: implicit allow: DHCPv4 client", P::Yes, L::No),
        ("i-audit-drops", dhcp_reply(), "accept: implicit allow: DHCPv4 client", P::Yes, L::No),
    ];
    let policy = policy();
    let mut failures = Vec::new();
    for (instance, packet, verdict, passes, logged) in cases {
        let id = InstanceId::new(instance).unwrap_or_else(|| panic!("bad id {instance}"));
        let got = policy
            .evaluate(&id, Direction::Ingress, packet)
            .unwrap_or_else(|| panic!("no instance {instance}"));
        let got_passes = if got.passes { P::Yes } else { P::No };
        let got_logged = if got.logged { L::Yes } else { L::No };
        let want = (verdict.to_string(), *passes, *logged);
        let have = (got.to_string(), got_passes, got_logged);
        if have != want {
            failures.push(format!(
                "  {instance} {packet}: expected {want:?}, got {have:?}"
            ));
        }
        assert_eq!(
            got.would_drop(),
            got.passes && got.action == secgroup_model::Action::Drop
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_list_alone_enforces_and_logs_only_logged_rules() {
    // Without an instance (what the classifier and a table see) the audit
    // instance's list drops and logs only what a logged rule decides.
    let policy = policy();
    let id = InstanceId::new("i-audit-drops").unwrap_or_else(|| panic!());
    let list = &policy.instances[&id].ingress;
    let ssh = list.evaluate(Direction::Ingress, &tcp("203.0.113.5", 22));
    assert_eq!((ssh.passes, ssh.logged), (false, false));
    let denied = list.evaluate(Direction::Ingress, &tcp("203.0.113.9", 5432));
    assert_eq!((denied.passes, denied.logged), (false, true));
}
