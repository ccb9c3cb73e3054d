//! Port security as the daemon shows it: `trace` answers for spoofed
//! sources (kernel and reference evaluator agreeing on the reason), and
//! the drops are counted per interface with their own reasons.

use std::time::Duration;

use secgroup_api::{Direction, InstanceDetail, TraceRequest, TraceResponse, paths};

use crate::harness::*;

const VM_MAC: &str = "52:54:00:00:00:02";

fn rules() -> String {
    vm_rules(
        "",
        r#"{ "action": "accept", "protocol": "udp", "port": "53" }"#,
    )
    .replace(r#""ips": ["#, &format!(r#""mac": "{VM_MAC}", "ips": ["#))
}

fn trace(daemon: &Daemon, local: Option<&str>, source_mac: Option<&str>) -> TraceResponse {
    let request = TraceRequest {
        instance: "ins-vm".into(),
        direction: Direction::Egress,
        protocol: "udp".into(),
        remote: "203.0.113.53".parse().unwrap_or_else(|e| panic!("{e}")),
        port: Some(53),
        local: local.map(|l| l.parse().unwrap_or_else(|e| panic!("{l}: {e}"))),
        source_mac: source_mac.map(str::to_owned),
    };
    daemon
        .client()
        .post(paths::TRACE, Some(&request))
        .unwrap_or_else(|e| panic!("trace {request:?}: {e}"))
}

#[test]
fn trace_answers_for_spoofed_sources_and_the_drops_are_counted() {
    if !root_or_skip("trace_answers_for_spoofed_sources_and_the_drops_are_counted") {
        return;
    }
    let lab = Lab::new("psec");
    lab.host.rules.write("vm.json", &rules());
    let daemon = start(&lab);
    daemon.wait_attached(Duration::from_secs(5));

    let genuine = trace(&daemon, None, None);
    assert_eq!(genuine.kernel.action, "accept", "{genuine:?}");
    assert_eq!(genuine.reference.port_security.as_deref(), Some("pass"));
    assert!(!genuine.disagree, "{genuine:?}");

    let cases = [
        (Some("198.51.100.77"), None, "drop-spoofed-ip"),
        (None, Some("52:54:00:00:00:99"), "drop-spoofed-mac"),
    ];
    for (local, mac, reason) in cases {
        let t = trace(&daemon, local, mac);
        assert_eq!(t.kernel.action, "drop", "{t:?}");
        assert_eq!(t.kernel.reason, reason, "{t:?}");
        assert_eq!(t.reference.port_security.as_deref(), Some(reason), "{t:?}");
        assert!(!t.disagree, "kernel and reference agree: {t:?}");
    }

    let detail: InstanceDetail = daemon
        .client()
        .get(&paths::instance("ins-vm"))
        .unwrap_or_else(|e| panic!("{e}"));
    let egress = detail.verdicts.map(|v| v.egress).unwrap_or_default();
    for reason in ["drop-spoofed-ip", "drop-spoofed-mac"] {
        assert!(
            egress.get(reason).is_some_and(|c| c.packets >= 1),
            "{reason} counted: {egress:?}"
        );
    }
}
