//! Port security as the daemon shows it: `trace` answers for spoofed
//! sources (kernel and reference evaluator agreeing on the reason) and
//! counts nowhere; spoofed frames the VM really sends are counted per
//! interface with their own reasons.

use std::time::Duration;

use secgroup_api::{Direction, TraceRequest, TraceResponse, paths};
use secgroup_dataplane::packet::Packet;
use secgroup_testbed::{Control, Veth, send_frame};

use crate::harness::*;

const VM_MAC: &str = "52:54:00:00:00:02";
const VM_MAC_BYTES: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x02];
const FOREIGN_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x99];
const REMOTE: &str = "203.0.113.53";
const SPOOFED_IP: &str = "198.51.100.77";
const SPOOF_REASONS: [&str; 2] = ["drop-spoofed-ip", "drop-spoofed-mac"];

fn rules() -> String {
    vm_rules(
        "",
        r#"{ "action": "accept", "protocol": "udp", "port": "53" }"#,
    )
    .replace(r#""ips": ["#, &format!(r#""mac": "{VM_MAC}", "ips": ["#))
}

fn trace(daemon: &Daemon, local: Option<&str>, source_mac: Option<&str>) -> TraceResponse {
    let request = TraceRequest {
        port: Some(53),
        local: local.map(|l| l.parse().unwrap_or_else(|e| panic!("{l}: {e}"))),
        source_mac: source_mac.map(str::to_owned),
        ..TraceRequest::new(
            "ins-vm",
            Direction::Egress,
            "udp",
            REMOTE.parse().unwrap_or_else(|e| panic!("{e}")),
        )
    };
    daemon
        .client()
        .post(paths::TRACE, Some(&request))
        .unwrap_or_else(|e| panic!("trace {request:?}: {e}"))
}

/// The VM's egress packets counted under each spoofing reason.
fn spoof_counts(control: &Control) -> [u64; 2] {
    SPOOF_REASONS.map(|reason| control.verdict_packets("ins-vm", Direction::Egress, reason))
}

#[test]
fn trace_answers_for_spoofed_sources_without_counting_and_real_spoofs_are_counted() {
    if !root_or_skip(
        "trace_answers_for_spoofed_sources_without_counting_and_real_spoofs_are_counted",
    ) {
        return;
    }
    let lab = Lab::without_link("psec");
    // The guest's NIC has the instance's MAC: its own chatter (neighbour
    // discovery from the EUI-64 link-local address) is genuine and counts
    // under no spoofing reason.
    Veth::new(&lab.host.ns, TAP, &lab.guest, "eth0")
        .addr(&format!("{HOST_IP}/24"))
        .peer_addr(&format!("{GUEST_IP}/24"))
        .peer_mac(VM_MAC)
        .create();
    lab.host.rules.write("vm.json", &rules());
    let daemon = start(&lab);
    daemon.wait_attached(Duration::from_secs(5));
    let control = Control::of(&daemon);

    let before = spoof_counts(&control);
    let genuine = trace(&daemon, None, None);
    assert_eq!(genuine.kernel.action, "accept", "{genuine:?}");
    assert_eq!(genuine.reference.port_security.as_deref(), Some("pass"));
    assert!(!genuine.disagree, "{genuine:?}");

    let cases = [
        (Some(SPOOFED_IP), None, "drop-spoofed-ip"),
        (None, Some("52:54:00:00:00:99"), "drop-spoofed-mac"),
    ];
    for (local, mac, reason) in cases {
        let t = trace(&daemon, local, mac);
        assert_eq!(t.kernel.action, "drop", "{t:?}");
        assert_eq!(t.kernel.reason, reason, "{t:?}");
        assert_eq!(t.reference.port_security.as_deref(), Some(reason), "{t:?}");
        assert!(!t.disagree, "kernel and reference agree: {t:?}");
    }
    assert_eq!(
        spoof_counts(&control),
        before,
        "a trace counts nowhere: {:?}",
        control.verdicts("ins-vm", Direction::Egress)
    );

    // The same forgeries written onto the guest's NIC are real traffic:
    // dropped by XDP on the tap and counted under their own reasons.
    let ip = |text: &str| text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
    let frames = [(VM_MAC_BYTES, ip(SPOOFED_IP)), (FOREIGN_MAC, ip(GUEST_IP))];
    for (i, ((src_mac, src), reason)) in frames.into_iter().zip(SPOOF_REASONS).enumerate() {
        let frame = Packet::udp(src, 5353, ip(REMOTE), 53)
            .with_macs(src_mac, [0xff; 6])
            .frame();
        send_frame(&lab.guest, "eth0", &frame);
        control.wait_verdict(
            "ins-vm",
            Direction::Egress,
            reason,
            before[i] + 1,
            Duration::from_secs(5),
        );
    }
}
